//! `POST /v1/consent` and `GET /v1/consent/{phone}`: the rules of `herald consent opt-in`,
//! `opt-out` and `show`, through the same functions ([`herald_app::consent`]): the event names
//! its channel, an opt-in names its scope, nothing dated more than five minutes ahead.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_app::consent::{ConsentInput, InputError, show, store};
use herald_core::{ConsentChannel, ConsentKind, Purpose, Scope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ErrorBody;
use crate::json::parse;
use crate::{AdminState, ApiError, ApiResult};

/// Longest `source` or `proof`, in bytes.
pub const MAX_TEXT_BYTES: usize = 1000;

/// One consent event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentEventRequest {
    /// The phone, E.164 (`+15551234567`).
    pub phone: String,
    /// The channel it was given or withdrawn on (`whatsapp`, `sms`, …).
    pub channel: String,
    /// `opt_in` or `opt_out`.
    pub kind: String,
    /// `marketing`, `transactional`, `service` or `all`; an opt-in must name it, an opt-out
    /// without one withdraws `all`.
    pub scope: Option<String>,
    /// Where it came from (a form, a keyword, an import).
    pub source: String,
    /// Evidence (a form submission id, a message id).
    pub proof: Option<String>,
    /// When it happened (RFC 3339; default: now). At most five minutes ahead.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// What `POST /v1/consent` stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentRecorded {
    /// False when the identical event was already in the log (nothing stored twice).
    pub new: bool,
    /// The channel.
    pub channel: String,
    /// `opt_in` or `opt_out`.
    pub kind: String,
    /// The scope recorded.
    pub scope: String,
}

/// Records one consent event.
#[utoipa::path(post, path = "/v1/consent", tag = "consent", security(("bearer" = [])),
    request_body = ConsentEventRequest,
    responses((status = 201, body = ConsentRecorded), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn record(
    State(state): State<AdminState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ConsentRecorded>)> {
    let request: ConsentEventRequest = parse(&body)?;
    for (field, value) in [
        ("source", Some(&request.source)),
        ("proof", request.proof.as_ref()),
    ] {
        if value.is_some_and(|v| v.len() > MAX_TEXT_BYTES) {
            return Err(ApiError::bad_request(format!(
                "{field}: at most {MAX_TEXT_BYTES} bytes"
            )));
        }
        // The audit trail is printed line by line (`herald consent show`, a terminal): a line
        // break or an escape sequence in it could forge a line or rewrite the screen.
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(ApiError::bad_request(format!(
                "{field}: control characters (line breaks, tabs, escapes) are not allowed"
            )));
        }
    }
    if request.source.trim().is_empty() {
        return Err(ApiError::bad_request("source: must not be empty"));
    }
    let channel = ConsentChannel::parse(&request.channel)
        .map_err(|e| ApiError::bad_request(format!("channel: {e}")))?;
    let kind: ConsentKind = request
        .kind
        .parse()
        .map_err(|e| ApiError::bad_request(format!("kind: {e}")))?;
    let scope: Option<Scope> = request
        .scope
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("scope: {e}")))?;
    let input = ConsentInput {
        channel,
        phone: request.phone,
        kind,
        scope,
        occurred_at: request.occurred_at,
        source: request.source,
        proof: request.proof,
    };
    let now = state.clock.now();
    let stored = input.to_stored(now).map_err(|e| {
        ApiError::bad_request(match e {
            InputError::MissingScope => "scope: an opt-in needs a scope (marketing, \
                                         transactional, service or all); it never defaults to all"
                .to_owned(),
            InputError::DatedAhead(e) => format!("occurred_at: {e}"),
            InputError::Phone(e) => format!("phone: {e}"),
        })
    })?;
    let answer = ConsentRecorded {
        new: false,
        channel: stored.channel.clone(),
        kind: kind_name(kind).to_owned(),
        scope: stored.event.scope.as_str().to_owned(),
    };
    tracing::info!(phone = %stored.phone, channel = %stored.channel, kind = answer.kind,
        scope = answer.scope, "consent event over the API");
    let new = store(&state.stores, stored, now).await?;
    Ok((StatusCode::CREATED, Json(ConsentRecorded { new, ..answer })))
}

/// `GET /v1/consent/{phone}`'s query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsentQuery {
    /// The channel (default `whatsapp`).
    pub channel: Option<String>,
}

/// A phone's consent on one channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentShown {
    /// The channel.
    pub channel: String,
    /// Per scope (`marketing`, `transactional`, `service`, `all`): `opted_in`, `opted_out` or
    /// `none`.
    pub scopes: std::collections::BTreeMap<String, String>,
    /// Per purpose: `may_send`, or why a campaign of it is skipped.
    pub purposes: std::collections::BTreeMap<String, String>,
    /// The audit trail, in the order the events happened.
    pub events: Vec<ConsentEventShown>,
}

/// One event of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentEventShown {
    /// `opt_in` or `opt_out`.
    pub kind: String,
    /// Its scope.
    pub scope: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Where it came from.
    pub source: String,
    /// Its evidence.
    pub proof: Option<String>,
    /// When it counts from as of now (`null` while it does not count yet).
    pub counts_from: Option<DateTime<Utc>>,
}

/// The state per scope and the audit trail of a phone (as `herald consent show`).
#[utoipa::path(get, path = "/v1/consent/{phone}", tag = "consent", security(("bearer" = [])),
    params(("phone" = String, Path, description = "E.164 phone"), ConsentQuery),
    responses((status = 200, body = ConsentShown), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn get_one(
    State(state): State<AdminState>,
    Path(phone): Path<String>,
    Query(query): Query<ConsentQuery>,
) -> ApiResult<Json<ConsentShown>> {
    let channel = match query.channel.as_deref() {
        Some(name) => ConsentChannel::parse(name)
            .map_err(|e| ApiError::bad_request(format!("channel: {e}")))?,
        None => ConsentChannel::whatsapp(),
    };
    let now = state.clock.now();
    let view = show(&state.stores, &channel, &phone, now)
        .await
        .map_err(|e| match e {
            herald_app::AppError::User(message) => {
                ApiError::bad_request(format!("phone: {message}"))
            }
            other => ApiError::from(other),
        })?;
    let scopes = Scope::ALL
        .iter()
        .map(|scope| {
            let current = match view.state.of_scope(*scope) {
                Some(ConsentKind::OptIn) => "opted_in",
                Some(ConsentKind::OptOut) => "opted_out",
                None => "none",
            };
            (scope.as_str().to_owned(), current.to_owned())
        })
        .collect();
    let purposes = [Purpose::Marketing, Purpose::Transactional, Purpose::Service]
        .iter()
        .map(|purpose| {
            let verdict = match view.state.permits(*purpose) {
                Ok(()) => "may_send".to_owned(),
                Err(reason) => reason.to_string(),
            };
            (purpose.as_str().to_owned(), verdict)
        })
        .collect();
    let events = view
        .records
        .iter()
        .map(|record| ConsentEventShown {
            kind: kind_name(record.event.kind).to_owned(),
            scope: record.event.scope.as_str().to_owned(),
            occurred_at: record.event.occurred_at,
            recorded_at: record.recorded_at,
            source: record.event.source.clone(),
            proof: record.event.proof.clone(),
            counts_from: record.counts_from(now),
        })
        .collect();
    Ok(Json(ConsentShown {
        channel: view.channel.to_string(),
        scopes,
        purposes,
        events,
    }))
}

fn kind_name(kind: ConsentKind) -> &'static str {
    match kind {
        ConsentKind::OptIn => "opt_in",
        ConsentKind::OptOut => "opt_out",
    }
}
