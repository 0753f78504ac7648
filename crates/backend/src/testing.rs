//! For tests that need the shared services of a cluster (PostgreSQL, NATS):
//! where to find them, and what to do when they are absent.
//!
//! A machine without them still passes the default test command: each such
//! test says on the terminal that it was skipped and why (past cargo's
//! output capture, so the line shows even when the test passes). CI sets
//! `MARIPOSA_REQUIRE_SERVICES=1`, which turns every skip into a failure, so
//! the tests cannot silently stop running there.

use std::io::Write;
use std::str::FromStr;

/// The PostgreSQL for tests: `MARIPOSA_TEST_POSTGRES`, or the project
/// machines' local server.
pub fn postgres_url() -> String {
    std::env::var("MARIPOSA_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The NATS server for tests: `MARIPOSA_TEST_NATS`, or the local one.
pub fn nats_url() -> String {
    std::env::var("MARIPOSA_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Whether absent services fail the tests instead of skipping them.
pub fn services_required() -> bool {
    std::env::var("MARIPOSA_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Reports that `test` did not run because of `reason`; panics instead when
/// the services are required.
pub fn skip(test: &str, reason: &str) {
    if services_required() {
        panic!("{test}: {reason} (MARIPOSA_REQUIRE_SERVICES=1)");
    }
    // Straight to the terminal: cargo captures only print!/eprint!.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// A schema of its own in the test PostgreSQL, so tests run in parallel
/// without seeing each other's rows; `None` (after [`skip`]) when the server
/// cannot be reached. The schema outlives the test, for inspection, until a
/// later run finds the process that made it gone and drops it.
pub async fn postgres_schema(test: &str) -> Option<tokio_postgres::Config> {
    let url = postgres_url();
    let mut config = match tokio_postgres::Config::from_str(&url) {
        Ok(c) => c,
        Err(e) => {
            skip(test, &format!("bad MARIPOSA_TEST_POSTGRES {url}: {e}"));
            return None;
        }
    };
    config.connect_timeout(std::time::Duration::from_secs(3));
    let (client, connection) = match config.connect(tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => {
            skip(test, &format!("PostgreSQL is not reachable at {url}: {e}"));
            return None;
        }
    };
    tokio::spawn(connection);
    // The random part first: PostgreSQL cuts names at 63 bytes, and a name
    // cut before its random part would collide with an earlier run's.
    let suffix: u64 = rand::random();
    let name: String = test
        .rsplit("::")
        .next()
        .unwrap_or(test)
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect();
    // The test process's id leads, so that schemas of finished runs can be
    // told apart from those of runs still going and dropped.
    let schema = format!("t_{}_{suffix:016x}_{name}", std::process::id());
    // Once per test process: one pass drops every schema of finished runs.
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let existing = if SWEPT.swap(true, std::sync::atomic::Ordering::SeqCst) {
        Vec::new()
    } else {
        client
            .query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'", &[])
            .await
            .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    for old in existing {
        let pid = old.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{old}\" CASCADE")).await;
        }
    }
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("CREATE SCHEMA");
    config.options(format!("-c search_path={schema}"));
    Some(config)
}

/// A `postgres://` URL whose connections use a fresh schema of their own
/// (for tests that start `msnd` processes with `--database`); `None` after
/// [`skip`] when PostgreSQL is absent.
pub async fn postgres_schema_url(test: &str) -> Option<String> {
    let config = postgres_schema(test).await?;
    let options = config.get_options().unwrap_or_default().to_string();
    let schema = options.trim_start_matches("-c search_path=");
    let base = postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

/// The NATS URL, if something answers there; `None` after [`skip`].
pub async fn nats(test: &str) -> Option<String> {
    let url = nats_url();
    let address = url.trim_start_matches("nats://").to_string();
    match tokio::time::timeout(std::time::Duration::from_secs(3), tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_)) => Some(url),
        Ok(Err(e)) => {
            skip(test, &format!("NATS is not reachable at {url}: {e}"));
            None
        }
        Err(_) => {
            skip(test, &format!("NATS did not answer at {url}"));
            None
        }
    }
}
