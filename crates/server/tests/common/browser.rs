//! A real browser for the web tests: Debian's Chromium driven over
//! WebDriver (chromedriver) by fantoccini. Without them a test says so and
//! passes, unless `MARIPOSA_REQUIRE_SERVICES=1` (CI installs both).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::ClientBuilder;

pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver on a free port; `None` (after a skip notice) when
/// the browser is not installed.
pub async fn chromedriver(test: &str) -> Option<(Driver, u16)> {
    for tool in ["/usr/bin/chromedriver", "/usr/bin/chromium"] {
        if !std::path::Path::new(tool).exists() {
            backend::testing::skip(
                test,
                &format!("{tool} is not installed (apt-get install chromium chromium-driver)"),
            );
            return None;
        }
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    // It says when it listens.
    let stdout = child.stdout.take().unwrap();
    let driver = Driver(child);
    let started = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let ok = lines.by_ref().any(|l| l.is_ok_and(|l| l.contains("started successfully")));
        std::thread::spawn(move || for _ in lines {});
        ok
    });
    let ok = tokio::time::timeout(Duration::from_secs(30), started).await.expect("chromedriver in time").unwrap();
    assert!(ok, "chromedriver did not start");
    Some((driver, port))
}

pub async fn browser(port: u16) -> fantoccini::Client {
    browser_with(port, &[]).await
}

/// A browser started with further Chromium flags.
pub async fn browser_with(port: u16, flags: &[&str]) -> fantoccini::Client {
    let mut args = vec!["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"];
    args.extend_from_slice(flags);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": args,
        }),
    );
    // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session")
}
