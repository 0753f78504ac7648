//! How a node joins a cluster, and the names of the cluster's subjects and
//! directory on NATS.

use std::time::Duration;

/// How a node joins the cluster.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub nats_url: String,
    /// Names the cluster's subjects and directory, so that several clusters
    /// (or test runs) can share one NATS server.
    pub cluster_name: String,
    /// Unique per running node; by default generated at start.
    pub node_id: String,
    pub heartbeat: Duration,
    /// Silence after which a node counts as dead.
    pub node_timeout: Duration,
    /// How long a request to another node may take.
    pub request_timeout: Duration,
}

/// The subject cluster `name`'s nodes beat on.
pub(super) fn heartbeat_subject(name: &str) -> String {
    format!("{name}.heartbeat")
}

/// Cluster `name`'s session directory in JetStream.
pub(super) fn directory_bucket(name: &str) -> String {
    format!("{name}_sessions")
}

impl ClusterSettings {
    pub(super) fn heartbeats(&self) -> String {
        heartbeat_subject(&self.cluster_name)
    }

    pub(super) fn bucket(&self) -> String {
        directory_bucket(&self.cluster_name)
    }

    pub(super) fn broadcast_subject(&self) -> String {
        format!("{}.all", self.cluster_name)
    }

    pub(super) fn node_subject(&self, node: &str) -> String {
        format!("{}.node.{node}", self.cluster_name)
    }

    pub(super) fn request_subject(&self, node: &str) -> String {
        format!("{}.request.{node}", self.cluster_name)
    }

    pub(super) fn seats_subject(&self) -> String {
        format!("{}.seats", self.cluster_name)
    }
}
