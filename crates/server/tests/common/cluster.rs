//! The cluster harness: separate `msnd` processes on loopback (one
//! dispatch node, two notification nodes, two switchboard nodes) on the
//! shared PostgreSQL store and the NATS bus, and ways to sign in on them.

use std::path::Path;

use super::*;

/// Fast heartbeats, so that a dead node is noticed in about a second.
pub const HEARTBEAT_MS: &str = "200";
/// For the tests where a node dies or the bus goes away: short, so they
/// see the failure handled soon.
pub const NODE_TIMEOUT_MS: &str = "1200";
/// For the tests where every node stays up: on a loaded two-core CI
/// machine thirty nodes of six tests can miss a 1.2 s window, and a node
/// wrongly declared dead there is noise, not the behaviour under test.
pub const STEADY_NODE_TIMEOUT_MS: &str = "10000";

/// Fields drop in this order: the nodes, then the directory they leave in
/// NATS, then their data dirs.
pub struct Cluster {
    pub dispatch: TestServer,
    pub notification: Vec<TestServer>,
    pub switchboards: Vec<TestServer>,
    directory: Forget,
    pub _dir: tempfile::TempDir,
}

/// Deletes a test cluster's session directory from NATS once its nodes are
/// stopped (`msnd forget-cluster`): each test's cluster has a name of its
/// own, and its directory would otherwise stay in the test NATS for good.
pub struct Forget {
    nats: String,
    name: String,
}

impl Forget {
    pub fn new(nats: &str, name: &str) -> Forget {
        Forget { nats: nats.to_string(), name: name.to_string() }
    }
}

impl Drop for Forget {
    fn drop(&mut self) {
        // Three of the tests' heartbeats; best effort, as a test may have
        // stopped its NATS already.
        let _ = msnd()
            .args(["forget-cluster", "--nats", &self.nats, "--cluster-name", &self.name, "--quiet-ms", "600"])
            .env("MSND_LOG", "error")
            .stdout(std::process::Stdio::null())
            .status();
    }
}

pub async fn cluster(test: &str, node_timeout_ms: &str) -> Option<Cluster> {
    let nats = backend::testing::nats(&format!("cluster::{test}")).await?;
    cluster_on(test, &nats, node_timeout_ms).await
}

/// A cluster on the given NATS server, whose nodes declare one another
/// dead after `node_timeout_ms` of silence.
pub async fn cluster_on(test: &str, nats: &str, node_timeout_ms: &str) -> Option<Cluster> {
    let name = format!("cluster::{test}");
    let database = backend::testing::postgres_schema_url(&name).await?;
    let nats = nats.to_string();
    let dir = tempfile::tempdir().unwrap();
    let cluster_name = format!("t{:08x}", rand_u32());
    // Every node needs the same server key (MD5 secrets are sealed under it).
    let key_dir = dir.path().join("key");
    std::fs::create_dir_all(&key_dir).unwrap();
    let status =
        msnd().arg("--data-dir").arg(&key_dir).args(["--database", &database, "user", "list"]).status().unwrap();
    assert!(status.success());
    let node = |name: &str, role: &str| {
        let node_dir = dir.path().join(name);
        std::fs::create_dir_all(&node_dir).unwrap();
        copy_key(&key_dir, &node_dir);
        TestServer::start_in(
            &node_dir,
            &[
                "--database",
                &database,
                "--nats",
                &nats,
                "--cluster-name",
                &cluster_name,
                "--node-id",
                name,
                "--role",
                role,
                "--ns-listen",
                "127.0.0.1:0",
                "--heartbeat-ms",
                HEARTBEAT_MS,
                "--node-timeout-ms",
                node_timeout_ms,
                "--challenges",
                "off",
                // Served on the notification nodes only.
                "--xmpp-listen",
                "127.0.0.1:0",
            ],
        )
    };
    let cluster = Cluster {
        notification: vec![node("ns1", "notification"), node("ns2", "notification")],
        switchboards: vec![node("sb1", "switchboard"), node("sb2", "switchboard")],
        dispatch: node("ds", "dispatch,http"),
        directory: Forget { nats: nats.clone(), name: cluster_name.clone() },
        _dir: dir,
    };
    // Accounts go into the shared store.
    let input: String = (0..12).map(|i| format!("u{i}@example.com\tpw-u{i}\n")).collect();
    let mut import = msnd()
        .arg("--data-dir")
        .arg(&key_dir)
        .args(["--database", &database, "user", "import"])
        .env("MSND_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut import.stdin.take().unwrap(), input.as_bytes()).unwrap();
    assert!(import.wait().unwrap().success());
    // A node is ready once it has heard a heartbeat round: the dispatch
    // node, started last, knows every node.
    let status = http_get(cluster.dispatch.http.unwrap(), "/status.json", &[]).await;
    let status: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(status["cluster"]["nodes"].as_array().map_or(0, Vec::len), 5, "{status}");
    Some(cluster)
}

impl Cluster {
    /// The cluster's NATS and its name there.
    pub fn bus(&self) -> (&str, &str) {
        (&self.directory.nats, &self.directory.name)
    }

    /// Kills every node at once, as a crash of the whole cluster would.
    pub fn kill_all(&mut self) {
        self.dispatch.kill9();
        for node in self.notification.iter_mut().chain(&mut self.switchboards) {
            node.kill9();
        }
    }
}

pub fn rand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() ^ std::process::id()
}

pub fn copy_key(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let target = to.join("server.key");
    std::fs::copy(from.join("server.key"), &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Signs a user in through the dispatch node; returns the connection and
/// the notification node's address it was referred to.
pub async fn sign_in(c: &Cluster, name: &str) -> (Client, String) {
    let (_, ns) = refer(c, name).await;
    (direct(&ns, name).await, ns)
}

/// The dispatch node's referral for a user.
pub async fn refer(c: &Cluster, name: &str) -> (Client, String) {
    let mut ds = Client::connect(c.dispatch.dispatch).await;
    ds.send("VER 1 MSNP7 CVR0").await;
    ds.expect("VER 1 MSNP7").await;
    ds.send(&format!("USR 2 MD5 I {name}@example.com")).await;
    let xfr = ds.expect_prefix("XFR 2 NS ").await;
    let ns = xfr.args()[3].to_string();
    (ds, ns)
}

/// Signs in on a given notification node, skipping the dispatch node.
pub async fn direct(ns: &str, name: &str) -> Client {
    let mut c = Client::connect_str(ns).await;
    c.send("VER 1 MSNP7 CVR0").await;
    c.expect("VER 1 MSNP7").await;
    c.send(&format!("USR 2 MD5 I {name}@example.com")).await;
    let challenge = c.expect_prefix("USR 2 MD5 S ").await.args()[4].to_string();
    c.send(&format!("USR 3 MD5 S {}", md5_hex(&challenge, &format!("pw-{name}")))).await;
    c.expect_prefix(&format!("USR 3 OK {name}@example.com ")).await;
    c.expect_prefix("MSG Hotmail Hotmail").await;
    c
}

/// One request to the address book service of `node`.
pub async fn address_book(node: &TestServer, ticket: &str, op: msnp::addressbook::Operation) -> (u16, String) {
    let body = msnp::addressbook::request(ticket, &op.to_xml());
    let answer = soap_post(node, op.path(), &op.action(), &body).await;
    (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
}

/// Reads lines until one starts with `prefix`, skipping others.
pub async fn until(c: &mut Client, prefix: &str) -> Line {
    loop {
        let line = c.recv().await;
        if line.text.starts_with(prefix) {
            return line;
        }
    }
}

/// Two users whom the dispatch node put on different notification nodes.
pub async fn users_on_two_nodes(c: &Cluster) -> ((Client, String, String), (Client, String, String)) {
    let mut first: Option<(Client, String, String)> = None;
    for i in 0..12 {
        let name = format!("u{i}");
        let (client, ns) = sign_in(c, &name).await;
        match &first {
            None => first = Some((client, name, ns)),
            Some((_, _, first_ns)) if *first_ns != ns => return (first.unwrap(), (client, name, ns)),
            Some(_) => {}
        }
    }
    panic!("the dispatch node sent twelve users to one notification node");
}

/// Two users on different notification nodes, both online, A watching B
/// (B on A's forward list, A shown B online).
pub async fn a_watching_b_across_nodes(c: &Cluster) -> ((Client, String, String), (Client, String, String)) {
    let ((mut a, a_name, a_ns), (mut b, b_name, b_ns)) = users_on_two_nodes(c).await;
    for client in [&mut a, &mut b] {
        client.send("CHG 5 NLN").await;
        client.expect("CHG 5 NLN").await;
    }
    a.send(&format!("ADD 6 FL {b_name}@example.com {b_name}")).await;
    until(&mut a, &format!("ILN 6 NLN {b_name}@example.com")).await;
    ((a, a_name, a_ns), (b, b_name, b_ns))
}
