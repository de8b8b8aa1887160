//! `GET /v1/senders` and `POST /v1/senders/{name}/resume`.

use axum::Json;
use axum::extract::{Path, State};
use herald_app::resume::{SenderResumed, resume_sender_in};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::runs::resume_error;
use crate::{AdminState, ApiResult};

/// Every configured sender and every sender with stored state: `ok`, `throttled` (until when)
/// or `blocked` (the provider's code and reason), as `herald status` shows them.
#[utoipa::path(get, path = "/v1/senders", tag = "senders", security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(State(state): State<AdminState>) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    let senders = herald_app::status::senders(&state.stores, &state.settings).await?;
    Ok(Json(herald_app::status::senders_json(&senders, now)))
}

/// What resuming a sender did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SenderResume {
    /// The sender.
    pub sender: String,
    /// Whether it was blocked and is not any more.
    pub unblocked: bool,
    /// The provider's code of the block that was cleared.
    pub code: Option<String>,
    /// The provider's reason for it.
    pub reason: Option<String>,
    /// A throttle the provider asked for is kept (it ends by itself): until when.
    pub throttled_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Clears a blocked sender (as `herald resume --sender`). A throttle is kept.
#[utoipa::path(post, path = "/v1/senders/{name}/resume", tag = "senders",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The sender's name")),
    responses((status = 200, body = SenderResume), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn resume(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<Json<SenderResume>> {
    let resumed = resume_sender_in(&state.stores, &state.settings, &name)
        .await
        .map_err(resume_error)?;
    tracing::info!(sender = %name, "sender resumed over the API");
    Ok(Json(match resumed {
        SenderResumed::Unblocked(block) => SenderResume {
            sender: name,
            unblocked: true,
            code: block.as_ref().map(|b| b.code.clone()),
            reason: block.map(|b| b.reason),
            throttled_until: None,
        },
        SenderResumed::NotBlocked(until) => SenderResume {
            sender: name,
            unblocked: false,
            code: None,
            reason: None,
            throttled_until: until,
        },
    }))
}
