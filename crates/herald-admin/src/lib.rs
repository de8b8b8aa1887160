//! Herald's admin HTTP API (axum): [`router`] builds it from an [`AdminState`], tested
//! without a socket; [`bind`] and [`serve`] run it until shutdown (`herald admin`, and inside
//! `herald serve`).
//!
//! # Routes
//! - `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and `/webhooks/whatsapp`: no token
//!   (probes, scrapers and the provider carry none; the webhooks are signed instead).
//! - `/v1/...`: the bearer token from the variable `[admin] token_env` names (see [`auth`]).
//!   Without a configured token the admin listens on loopback only, and then `/v1` is open to
//!   whoever can reach loopback (a laptop's operator).
//!
//! Every error is one JSON shape with a stable code (see [`error`]). JSON bodies are limited to
//! `[admin] max_body_bytes`; `POST /v1/campaigns` to `[admin] max_upload_bytes` plus the
//! campaign's 1 MiB. Request logs mask phone numbers (see `trace`).
#![deny(clippy::disallowed_methods)]

pub mod auth;
pub mod campaigns;
pub mod consent;
pub mod error;
mod health;
mod json;
pub mod limit;
pub mod openapi;
pub mod runs;
pub mod senders;
mod serve;
mod state;
mod trace;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use error::{ApiError, ApiResult, ErrorCode};
pub use serve::{bind, check_listen, serve};
pub use state::AdminState;

/// Room for the multipart framing and the campaign part around the audience part.
const UPLOAD_OVERHEAD: u64 = 2 * herald_campaign::input::MAX_DOCUMENT_BYTES;

/// Why the admin cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `[admin] token_env` names a variable that is unset or empty.
    #[error("admin.token_env: the variable {0} is unset or empty")]
    TokenUnset(String),
    /// No token and a listen address other than loopback.
    #[error(
        "admin.listen: {0} is not a loopback address, and no token is configured; set \
         `[admin] token_env` to the variable holding the bearer token, or listen on 127.0.0.1"
    )]
    OpenOnNetwork(std::net::SocketAddr),
    /// The address cannot be bound.
    #[error("admin.listen: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Every route [`router`] serves, as (method, path) with `{param}` placeholders as in the
/// OpenAPI document. Kept next to the router, in one place, because axum cannot list a router's
/// routes: the router test checks each answers (no 404 "no such route", no 405), and the
/// OpenAPI test checks the document's operations equal this set. Add a route here when you add
/// it below.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/webhooks/whatsapp"),
    ("POST", "/webhooks/whatsapp"),
    ("POST", "/v1/campaigns"),
    ("GET", "/v1/campaigns"),
    ("GET", "/v1/runs"),
    ("GET", "/v1/runs/{id}"),
    ("POST", "/v1/runs/{id}/pause"),
    ("POST", "/v1/runs/{id}/resume"),
    ("POST", "/v1/runs/{id}/cancel"),
    ("GET", "/v1/senders"),
    ("POST", "/v1/senders/{name}/resume"),
    ("POST", "/v1/consent"),
    ("GET", "/v1/consent/{phone}"),
];

/// The admin API (its routes: [`ROUTES`]).
pub fn router(state: AdminState) -> Router {
    let limits = &state.settings.admin;
    let upload_limit = usize::try_from(limits.max_upload_bytes.saturating_add(UPLOAD_OVERHEAD))
        .unwrap_or(usize::MAX);
    let v1 = Router::new()
        .route(
            "/campaigns",
            post(campaigns::create)
                .layer(DefaultBodyLimit::max(upload_limit))
                .get(campaigns::list),
        )
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::get_one))
        .route("/runs/{id}/pause", post(runs::pause))
        .route("/runs/{id}/resume", post(runs::resume))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/senders", get(senders::list))
        .route("/senders/{name}/resume", post(senders::resume))
        .route("/consent", post(consent::record))
        .route("/consent/{phone}", get(consent::get_one))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::serve))
        .nest("/webhooks/whatsapp", webhooks::routes())
        .nest("/v1", v1)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::map_response(error::json_rejections))
        .layer(axum::middleware::from_fn(trace::log_request))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}
