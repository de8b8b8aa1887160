//! `GET /v1/runs`, `GET /v1/runs/{id}` and `POST /v1/runs/{id}/pause|resume|cancel`.
//!
//! The JSON is `herald status --format json`'s, built by the same function
//! ([`herald_app::status::status_in`] and [`herald_app::status::Status::runs_json`]), so the CLI
//! and the API never drift.
//!
//! The list is bounded (`?limit=`, newest first) and leaves the send rate, the ETA and the
//! in-flight owners `null`: they are read from a run's claims, which grow with its audience,
//! so only `GET /v1/runs/{id}` computes them, for that one run (the ports have no per-run
//! counter of recent sends yet; see [`herald_app::status`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use herald_app::resume::ResumeError;
use herald_app::run_control::{
    Operator, RunControlError, RunPaused, RunResumed, cancel_run, parse_run, pause_run, resume_run,
};
use herald_app::status::{Which, status_in};
use herald_core::RunId;
use herald_store::{RunState, Runs, Stores};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::json::parse_optional;
use crate::{AdminState, ApiError, ApiResult, ErrorCode};

/// The newest runs (`?limit=`, default 100, at most 1000), as `herald status --format json`
/// without the per-run reads: `send_rate_per_second`, `eta` and `in_flight` are `null` here.
#[utoipa::path(get, path = "/v1/runs", tag = "runs", security(("bearer" = [])),
    params(("limit" = Option<usize>, Query, description = "How many runs, newest first \
        (default 100, at most 1000)")),
    responses(
        (status = 200, description = "The newest runs: counts by state and reason, rates, next \
            wave, waits, pause reason (send rate, ETA and in-flight owners are null: ask \
            `/v1/runs/{id}`)", body = Vec<Object>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    query: RawQuery,
) -> ApiResult<Json<Value>> {
    let limit = crate::limit::limit(&query)?;
    let now = state.clock.now();
    let status = status_in(&state.stores, &state.settings, &Which::Newest(limit), now).await?;
    Ok(Json(status.runs_json(now)))
}

/// One run, as `herald status RUN --format json`: with its send rate, ETA and in-flight owners.
#[utoipa::path(get, path = "/v1/runs/{id}", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The run id")),
    responses(
        (status = 200, description = "The run", body = Object),
        (status = 400, description = "Not a run id", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn get_one(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let run = existing(&state, &id).await?;
    let now = state.clock.now();
    let status = status_in(&state.stores, &state.settings, &Which::One(run), now).await?;
    match status.runs_json(now) {
        Value::Array(mut runs) if runs.len() == 1 => Ok(Json(runs.remove(0))),
        other => Err(ApiError::internal(format!(
            "status of one run gave {} entries",
            other.as_array().map_or(0, Vec::len)
        ))),
    }
}

/// The optional body of `POST /v1/runs/{id}/pause`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why (shown by `status` and `GET /v1/runs/{id}`), at most 500 characters, no control characters.
    pub reason: Option<String>,
}

/// What a run control did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunControl {
    /// The run.
    pub run: String,
    /// Its state now: `active`, `paused` or `cancelled`.
    pub state: String,
    /// Whether this request changed it (false when it already was so).
    pub changed: bool,
}

/// Pauses a run: nothing of it is claimed until it is resumed, across restarts.
#[utoipa::path(post, path = "/v1/runs/{id}/pause", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The run id")),
    request_body(content = Option<PauseRequest>, content_type = "application/json"),
    responses(
        (status = 200, body = RunControl),
        (status = 404, body = ErrorBody), (status = 409, description = "The run is cancelled",
            body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn pause(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<RunControl>> {
    let request: PauseRequest = parse_optional(&body)?;
    let run = parse_run(&id).map_err(control_error)?;
    let paused = pause_run(
        &state.stores,
        &run,
        Operator::Api,
        request.reason.as_deref(),
    )
    .await
    .map_err(control_error)?;
    Ok(Json(RunControl {
        run: run.to_string(),
        state: RunState::Paused.as_str().to_owned(),
        changed: paused == RunPaused::Paused,
    }))
}

/// Resumes a paused run (409 for a cancelled one).
#[utoipa::path(post, path = "/v1/runs/{id}/resume", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The run id")),
    responses(
        (status = 200, body = RunControl),
        (status = 404, body = ErrorBody), (status = 409, description = "The run is cancelled",
            body = ErrorBody), (status = 400, description = "Not a run id", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn resume(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RunControl>> {
    let run = parse_run(&id).map_err(control_error)?;
    let resumed = resume_run(&state.stores, &run, Operator::Api)
        .await
        .map_err(control_error)?;
    Ok(Json(RunControl {
        run: run.to_string(),
        state: RunState::Active.as_str().to_owned(),
        changed: matches!(resumed, RunResumed::Resumed { .. }),
    }))
}

/// Cancels a run: its queued deliveries end `skipped(cancelled)`; never undone.
#[utoipa::path(post, path = "/v1/runs/{id}/cancel", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The run id")),
    responses(
        (status = 200, body = RunControl),
        (status = 400, description = "Not a run id", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn cancel(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RunControl>> {
    let run = parse_run(&id).map_err(control_error)?;
    let cancelled = cancel_run(&state.stores, &run, Operator::Api)
        .await
        .map_err(control_error)?;
    Ok(Json(RunControl {
        run: run.to_string(),
        state: RunState::Cancelled.as_str().to_owned(),
        changed: !cancelled.already,
    }))
}

/// A refused run control, by type: 404 for no such run, 409 for a cancelled one, 400 for a bad
/// run id or reason.
fn control_error(error: RunControlError) -> ApiError {
    match error {
        RunControlError::Store(store) => ApiError::from(store),
        missing @ RunControlError::NoRun { .. } => ApiError::not_found(missing.to_string()),
        bad @ RunControlError::BadRunId { .. } => ApiError::bad_request(bad.to_string()),
        cancelled @ RunControlError::Cancelled(_) => {
            ApiError::new(ErrorCode::Conflict, cancelled.to_string())
        }
        reason @ RunControlError::BadReason(_) => ApiError::bad_request(reason.to_string()),
    }
}

/// A refused sender resume, by type: 404 for a sender nobody knows.
pub(crate) fn resume_error(error: ResumeError) -> ApiError {
    match error {
        ResumeError::Store(store) => ApiError::from(store),
        missing @ ResumeError::NoSender { .. } => ApiError::not_found(missing.to_string()),
    }
}

/// The run, or 404.
async fn existing(state: &AdminState, id: &str) -> ApiResult<RunId> {
    let run = parse_run(id).map_err(control_error)?;
    match state.stores.runs().run(&run).await? {
        Some(_) => Ok(run),
        None => Err(ApiError::not_found(format!("no run {run}"))),
    }
}
