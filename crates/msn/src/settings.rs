//! Where the account and server come from: flags, then the environment
//! (`MSN_SERVER`, `MSN_ACCOUNT`, `MSN_PASSWORD`, `MSN_LOGIN_URL`), then a
//! config file, in that order. The password is never read from the file.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use msnp::Dialect;
use serde::Deserialize;

/// The config file (`~/.config/msn/config.toml`, or `--config`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub server: Option<String>,
    pub account: Option<String>,
    /// The dialect version, 2-18 or 21.
    pub dialect: Option<u8>,
    pub login_url: Option<String>,
    pub trust_ca: Option<PathBuf>,
    /// Speak MSNP over TLS (to a server's `--msnp-tls-listen` port).
    pub tls: Option<bool>,
    /// Speak MSNP through this HTTP gateway.
    pub http_gateway: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// What the flags and the environment gave (clap fills both, flags first).
#[derive(Debug, Default, Clone)]
pub struct Given {
    pub server: Option<String>,
    pub account: Option<String>,
    pub dialect: Option<u8>,
    pub login_url: Option<String>,
    pub trust_ca: Option<PathBuf>,
    pub tls: bool,
    pub http_gateway: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub password_stdin: bool,
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: String,
    pub account: String,
    pub dialect: Dialect,
    pub login_url: Option<String>,
    pub trust_ca: Option<PathBuf>,
    pub tls: bool,
    /// The HTTP gateway MSNP goes through, if any.
    pub http_gateway: Option<String>,
    /// History and the list cache live here.
    pub data_dir: PathBuf,
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

/// The default config file.
pub fn default_config_path() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".config"))
        .join("msn/config.toml")
}

/// Reads a config file; a missing default file is no error, a missing given one is.
pub fn read_file(path: &Path, required: bool) -> anyhow::Result<FileSettings> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            if let Ok(table) = text.parse::<toml::Table>()
                && table.contains_key("password")
            {
                bail!(
                    "{}: passwords are not kept in the config file; use a prompt, --password-stdin or MSN_PASSWORD",
                    path.display()
                );
            }
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(FileSettings::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Combines flags/environment with the config file.
pub fn resolve(given: &Given) -> anyhow::Result<Settings> {
    let file = match &given.config {
        Some(path) => read_file(path, true)?,
        None => read_file(&default_config_path(), false)?,
    };
    let account = given
        .account
        .clone()
        .or(file.account)
        .context("no account: give --account, MSN_ACCOUNT or `account` in the config file")?;
    let version = given.dialect.or(file.dialect).unwrap_or(11);
    let dialect = Dialect::ALL
        .into_iter()
        .find(|d| d.number() == version)
        .with_context(|| format!("no dialect MSNP{version} (2-18, 21)"))?;
    let server = given.server.clone().or(file.server).unwrap_or_else(|| "127.0.0.1:1863".into());
    let login_url = given.login_url.clone().or(file.login_url);
    let data_dir = given.data_dir.clone().or(file.data_dir).unwrap_or_else(|| {
        std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".local/share")).join("msn")
    });
    let tls = given.tls || file.tls.unwrap_or(false);
    Ok(Settings {
        server,
        account,
        dialect,
        login_url,
        trust_ca: given.trust_ca.clone().or(file.trust_ca),
        tls,
        http_gateway: given.http_gateway.clone().or(file.http_gateway),
        data_dir,
    })
}

/// The password: one line from standard input with `--password-stdin`, else
/// `MSN_PASSWORD`, else a prompt without echo on a terminal.
pub fn password(given: &Given) -> anyhow::Result<String> {
    if given.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Ok(p) = std::env::var("MSN_PASSWORD") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        return Ok(rpassword::prompt_password("Password: ")?);
    }
    bail!("no password: give --password-stdin, MSN_PASSWORD, or run on a terminal")
}

impl Settings {
    /// The client configuration for these settings.
    pub fn client_config(&self, password: String) -> client::ClientConfig {
        let mut c = client::ClientConfig::new(&self.server, &self.account, &password);
        c.dialect = self.dialect;
        c.login_url = self.login_url.clone();
        c.trust_ca = self.trust_ca.clone();
        c.tls = self.tls;
        c.http_gateway = self.http_gateway.clone();
        c.cache_dir = Some(self.data_dir.join("cache"));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_environment_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "server = \"file:1\"\naccount = \"file@x.com\"\ndialect = 7\n").unwrap();
        let given = Given { config: Some(path.clone()), server: Some("flag:2".into()), ..Default::default() };
        let s = resolve(&given).unwrap();
        assert_eq!((s.server.as_str(), s.account.as_str(), s.dialect), ("flag:2", "file@x.com", Dialect::Msnp7));
        std::fs::write(&path, "account = \"a@x.com\"\npassword = \"plain\"\n").unwrap();
        assert!(resolve(&given).unwrap_err().to_string().contains("passwords are not kept"));
        std::fs::write(&path, "acount = \"typo\"\n").unwrap();
        assert!(resolve(&given).is_err(), "unknown keys are errors");
        let missing =
            Given { config: Some(dir.path().join("nope.toml")), account: Some("a@x.com".into()), ..Default::default() };
        assert!(resolve(&missing).is_err());
    }
}
