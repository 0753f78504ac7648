//! Starting an `msnd` of our own: a data dir, the accounts, and limits
//! opened wide enough that flood control does not shape the measurement.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

/// A running `msnd` started by the load tool; stopped when dropped.
pub struct Launched {
    pub child: Child,
    /// The dispatch address (`host:port`).
    pub dispatch: String,
    /// The plain-HTTP Passport nexus.
    pub nexus: String,
    /// The XMPP listener (`host:port`), always started.
    pub xmpp: Option<String>,
}

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `msnd` is: beside this executable (both are built into the same
/// target directory), else on `PATH`.
pub fn find_msnd() -> PathBuf {
    let beside = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?;
        // Test binaries live one level down, in `deps/`.
        [dir.join("msnd"), dir.parent()?.join("msnd")].into_iter().find(|p| p.exists())
    });
    beside.unwrap_or_else(|| PathBuf::from("msnd"))
}

/// Creates the accounts `PREFIX0@example.com`.. (`msnd user import`; the
/// ones that exist are kept).
pub fn import_accounts(msnd: &Path, data_dir: &Path, users: usize, prefix: &str, password: &str) -> anyhow::Result<()> {
    let mut child = Command::new(msnd)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["user", "import"])
        .env("MSND_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", msnd.display()))?;
    {
        let mut stdin = std::io::BufWriter::new(child.stdin.take().context("stdin")?);
        for i in 0..users {
            writeln!(stdin, "{}\t{password}", handle(prefix, i))?;
        }
    }
    if !child.wait()?.success() {
        bail!("msnd user import failed");
    }
    Ok(())
}

/// The lists in a data dir are made once, for one social graph; a run with
/// another graph would expect watchers the lists do not have. The graph's
/// parameters are written beside the data the first time and must match
/// afterwards.
pub fn check_graph(data_dir: &Path, users: usize, contacts: usize, mutual: f64, prefix: &str) -> anyhow::Result<()> {
    let path = data_dir.join("msn-load-graph");
    let wanted = format!("users={users} contacts={contacts} mutual={mutual} prefix={prefix}\n");
    match std::fs::read_to_string(&path) {
        Ok(made) if made == wanted => Ok(()),
        Ok(made) => bail!(
            "{} holds lists made for `{}`, not `{}`: use another --data-dir",
            data_dir.display(),
            made.trim(),
            wanted.trim()
        ),
        Err(_) => std::fs::write(&path, wanted).with_context(|| format!("writing {}", path.display())),
    }
}

/// The handle of user `i`.
pub fn handle(prefix: &str, i: usize) -> String {
    format!("{prefix}{i}@example.com")
}

/// Starts `msnd serve` on loopback ports of its choosing; with `open_limits`,
/// flood control and per-address limits are opened wide (every simulated
/// user comes from 127.0.0.1, and the point is to measure the server, not
/// its rate limits).
pub fn serve(msnd: &Path, data_dir: &Path, open_limits: bool) -> anyhow::Result<Launched> {
    let wide = "1000000000/1000000000";
    let mut command = Command::new(msnd);
    command.arg("--data-dir").arg(data_dir).args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"]);
    command.args(["--xmpp-listen", "127.0.0.1:0"]);
    if open_limits {
        command
            .args(["--max-connections-per-address", "10000000", "--login-failures-per-address", "1000000000"])
            .args(["--logins-in-flight-per-address", "1000000"])
            .args(["--rate-messages", wide, "--rate-messages-per-connection", wide, "--rate-invitations", wide])
            .args(["--rate-list-changes", wide, "--rate-state-changes", wide]);
    }
    let mut child = command
        .env("MSND_LOG", std::env::var("MSND_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", msnd.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut dispatch, mut http, mut xmpp) = (None, None, None);
    for line in lines.by_ref() {
        let line = line?;
        let addr = line.rsplit(' ').next().unwrap_or("").to_string();
        if line.starts_with("msnd: dispatch") {
            dispatch = Some(addr);
        } else if line.starts_with("msnd: http listening") {
            http = Some(addr);
        } else if line.starts_with("msnd: xmpp listening") {
            xmpp = Some(addr);
        } else if line == "msnd: ready" {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let (Some(dispatch), Some(http)) = (dispatch, http) else {
        let _ = child.kill();
        bail!("msnd did not print its addresses")
    };
    Ok(Launched { child, dispatch, nexus: format!("http://{http}/rdr/pprdr.asp"), xmpp })
}
