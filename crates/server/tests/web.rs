//! The web pages in a real headless browser: Debian's Chromium driven over
//! WebDriver (chromedriver) by fantoccini. Sign up, change the password,
//! sign in with the client library as that account, then an operator kicks
//! the live session and the client sees `OUT`.
//!
//! Without Chromium and chromedriver the test says so and passes, unless
//! `MARIPOSA_REQUIRE_SERVICES=1` (CI installs both: see `.ci/run`).

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use client::{ClientConfig, Event};
use common::*;
use fantoccini::{ClientBuilder, Locator};
use msnp::Dialect;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver on a free port; `None` (after a skip notice) when
/// the browser is not installed.
async fn chromedriver(test: &str) -> Option<(Driver, u16)> {
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
    let child = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some((driver, port));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

async fn browser(port: u16) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        }),
    );
    // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session")
}

async fn fill(b: &fantoccini::Client, fields: &[(&str, &str)]) {
    for (id, value) in fields {
        b.find(Locator::Id(id)).await.unwrap().send_keys(value).await.unwrap();
    }
}

async fn text_of(b: &fantoccini::Client, id: &str) -> String {
    b.wait().for_element(Locator::Id(id)).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_change_password_sign_in_and_an_operator_kicks_the_session() {
    let Some((_driver, port)) = chromedriver("web::sign_up_and_kick").await else { return };
    let server = TestServer::start_with(&["--registration", "open", "--operator", "boss@example.com"]);
    users(&server, &["boss"]);
    let site = format!("http://{}", server.http.unwrap());
    let b = browser(port).await;

    // Sign up.
    b.goto(&format!("{site}/signup")).await.unwrap();
    fill(
        &b,
        &[("email", "newbie@example.com"), ("name", "Newbie"), ("password", "first-pw"), ("password2", "first-pw")],
    )
    .await;
    b.find(Locator::Id("submit")).await.unwrap().click().await.unwrap();
    assert!(text_of(&b, "ok").await.contains("newbie@example.com created"));

    // Change the password.
    b.goto(&format!("{site}/password")).await.unwrap();
    fill(&b, &[("email", "newbie@example.com"), ("old", "first-pw"), ("new", "second-pw"), ("new2", "second-pw")])
        .await;
    b.find(Locator::Id("submit")).await.unwrap().click().await.unwrap();
    assert!(text_of(&b, "ok").await.contains("changed"));

    // The new account signs in with the client, with the new password.
    let mut config = ClientConfig::new(&server.dispatch.to_string(), "newbie@example.com", "second-pw");
    config.dialect = Dialect::Msnp11;
    config.login_url = Some(format!("{site}/rdr/pprdr.asp"));
    let (client, mut events) = client::Client::sign_in(config).await.expect("the new account signs in");
    client.set_state(msnp::OnlineState::Online).await.unwrap();

    // The operator signs in, sees the session, and kicks it.
    b.goto(&format!("{site}/admin")).await.unwrap();
    fill(&b, &[("email", "boss@example.com"), ("password", "pw-boss")]).await;
    b.find(Locator::Id("submit")).await.unwrap().click().await.unwrap();
    let sessions = text_of(&b, "sessions").await;
    assert!(sessions.contains("newbie@example.com"), "{sessions}");
    b.find(Locator::Css("button[id='kick-newbie@example.com']")).await.unwrap().click().await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await.expect("events") {
                Event::SignedOut { reason } => return reason,
                _ => continue,
            }
        }
    })
    .await
    .expect("the client is told it was signed out");
    assert_eq!(reason, "signed out", "a plain OUT");
    b.close().await.unwrap();
}
