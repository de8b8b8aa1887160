//! `/healthz`, `/readyz`, `/metrics`: no token (probes and Prometheus scrapers carry none, and
//! none of them holds personal data).

use axum::extract::State;
use axum::response::Response;
use herald_store::{Senders, Stores};

use crate::{AdminState, ApiResult};

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is up", body = String)))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// The store is reachable: one cheap read (the sender states, a handful of rows or keys).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "The store answers", body = String),
        (status = 503, description = "The store is unreachable", body = crate::error::ErrorBody)))]
pub(crate) async fn readyz(State(state): State<AdminState>) -> ApiResult<&'static str> {
    match state.stores.senders().senders().await {
        Ok(_) => Ok("ready"),
        Err(error) => {
            tracing::warn!(error = %error, "readyz: the store does not answer");
            Err(crate::ApiError::new(
                crate::error::ErrorCode::Unavailable,
                "the store does not answer",
            ))
        }
    }
}

/// The process's metrics, Prometheus text format 0.0.4: the same answer as the `[metrics]
/// listen` listener's ([`herald_app::metrics_listener::response`]).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8")))]
pub(crate) async fn metrics(State(state): State<AdminState>) -> Response {
    herald_app::metrics_listener::response(&state.metrics)
}
