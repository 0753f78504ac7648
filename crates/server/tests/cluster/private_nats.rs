//! A NATS server of a test's own, and a cluster on it.

use std::path::Path;
use std::time::{Duration, Instant};

use super::common::cluster::*;

/// A NATS server of the test's own (so that it can be stopped), on a free
/// port, keeping JetStream in a directory that outlives a restart.
pub struct PrivateNats {
    child: std::process::Child,
    port: u16,
    store: tempfile::TempDir,
}

impl PrivateNats {
    pub fn start(test: &str) -> Option<PrivateNats> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let store = tempfile::tempdir().unwrap();
        let child = Self::spawn(test, port, store.path())?;
        Some(PrivateNats { child, port, store })
    }

    fn spawn(test: &str, port: u16, store: &Path) -> Option<std::process::Child> {
        let child = std::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else {
            backend::testing::skip(test, "nats-server is not installed");
            return None;
        };
        // Serving once it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(child)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server without closing its connections (a starved or
    /// swapped-out NATS), until [`PrivateNats::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal}");
    }

    pub fn restart(&mut self, test: &str) {
        self.child = Self::spawn(test, self.port, self.store.path()).expect("nats-server starts again");
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A cluster on a NATS of its own, for tests that watch or break the bus;
/// `None` (said why) where PostgreSQL or nats-server is absent.
pub async fn cluster_on_a_bus_of_its_own(name: &str, node_timeout_ms: &str) -> Option<(PrivateNats, Cluster)> {
    let test = format!("cluster::{name}");
    backend::testing::postgres_schema_url(&test).await?;
    let nats = PrivateNats::start(&test)?;
    let c = cluster_on(name, &nats.url(), node_timeout_ms).await?;
    Some((nats, c))
}
