//! `msnd forget-cluster`: a stopped cluster's session directory goes from
//! NATS; a running cluster's stays.

use super::*;

fn forget_cluster(c: &Cluster) -> std::process::Output {
    let (nats, name) = c.bus();
    msnd()
        .args(["forget-cluster", "--nats", nats, "--cluster-name", name, "--quiet-ms", "1000"])
        .env("MSND_LOG", "warn")
        .output()
        .unwrap()
}

async fn directory_exists(c: &Cluster) -> bool {
    let (nats, name) = c.bus();
    let jetstream = async_nats::jetstream::new(async_nats::connect(nats).await.unwrap());
    jetstream.get_key_value(format!("{name}_sessions")).await.is_ok()
}

#[tokio::test]
async fn a_stopped_clusters_directory_is_deleted_and_a_running_ones_is_kept() {
    let Some(mut c) = cluster("forget", STEADY_NODE_TIMEOUT_MS).await else { return };
    let (_alice, _) = sign_in(&c, "u0").await;

    let refused = forget_cluster(&c);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "deleted under running nodes");
    assert!(said.contains("running") && said.contains("stop them first"), "{said}");
    assert!(directory_exists(&c).await);

    c.kill_all();
    let deleted = forget_cluster(&c);
    let told = String::from_utf8_lossy(&deleted.stdout);
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    assert!(told.contains("deleted the session directory"), "{told}");
    assert!(!directory_exists(&c).await);

    let again = forget_cluster(&c);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("has no session directory"));
}
