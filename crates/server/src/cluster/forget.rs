//! Deleting a stopped cluster's session directory (`msnd forget-cluster`).

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use futures::StreamExt;

use super::settings::{directory_bucket, heartbeat_subject};

/// What [`forget`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Forgotten {
    /// The directory was deleted.
    Deleted,
    /// The cluster had no directory on this NATS.
    Absent,
}

/// Deletes the session directory of cluster `name`, whose nodes are all
/// stopped: a cluster that is gone for good, or a test run's. Every node
/// that runs recreates it when it starts, so nothing else is kept. Refused
/// if a heartbeat of the cluster is heard within `quiet` (deleting the
/// directory under running nodes would lose who is signed in where).
pub async fn forget(nats_url: &str, name: &str, quiet: Duration) -> anyhow::Result<Forgotten> {
    let wait = Duration::from_secs(5);
    let client = tokio::time::timeout(wait, async_nats::connect(nats_url))
        .await
        .ok()
        .with_context(|| format!("NATS at {nats_url} did not answer"))?
        .with_context(|| format!("cannot reach NATS at {nats_url}"))?;
    let mut beats = client.subscribe(heartbeat_subject(name)).await?;
    // Listening from here on: the server has the subscription.
    super::round_trip(&client).await.map_err(|e| anyhow::anyhow!("NATS at {nats_url}: {e}"))?;
    if let Ok(Some(_)) = tokio::time::timeout(quiet, beats.next()).await {
        anyhow::bail!("nodes of cluster {name} are running (a heartbeat was heard): stop them first");
    }
    let js = async_nats::jetstream::new(client);
    let bucket = directory_bucket(name);
    match tokio::time::timeout(wait, js.get_stream(format!("KV_{bucket}"))).await.context("JetStream did not answer")? {
        Ok(_) => {}
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            return Ok(Forgotten::Absent);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot look {bucket} up")),
    }
    tokio::time::timeout(wait, js.delete_key_value(&bucket))
        .await
        .context("JetStream did not answer")?
        .with_context(|| format!("cannot delete {bucket}"))?;
    Ok(Forgotten::Deleted)
}
