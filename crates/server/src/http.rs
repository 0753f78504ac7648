//! The HTTP side: a health check and a status document for now; the
//! Passport login service and the web pages of later work live here too.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::server::Shared;

#[derive(Clone)]
struct HttpState {
    shared: Arc<Shared>,
    started: Instant,
}

/// The routes served on `--http-listen`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/status.json", get(status))
        .with_state(HttpState { shared, started: Instant::now() })
}

async fn status(State(state): State<HttpState>) -> axum::Json<serde_json::Value> {
    let backend = &state.shared.backend;
    axum::Json(serde_json::json!({
        "users_online": backend.registry().len(),
        "switchboard_sessions": backend.switchboards().len(),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
