//! `/webhooks/whatsapp`: Meta's webhooks, without the admin token (Meta signs its requests
//! instead).
//!
//! - `GET` answers Meta's subscription challenge (`hub.mode=subscribe`, `hub.verify_token`,
//!   `hub.challenge`) with the challenge when the token equals the value of the variable
//!   `[webhooks] verify_token_env` names (compared in constant time); 403 otherwise, and always
//!   when no verify token is configured.
//! - `POST` takes a notification. The `X-Hub-Signature-256` header must be the HMAC-SHA256 of
//!   the raw body under the app secret of *every* sender whose `phone_number_id` the payload
//!   names (`[senders.X] app_secret_env`); a missing or wrong signature, a signature for
//!   another body, or a `phone_number_id` no WhatsApp sender has is 401 and nothing is applied.
//!   A body that does not parse is 401 too unless some configured app secret signs it (then it
//!   is Meta's, and 400 says Herald cannot read it). Once verified, every status and message is
//!   applied (`herald_engine::feedback`) and the answer is 200, including for events Herald
//!   ignores (an unknown message id or button is counted and logged: a non-2xx makes Meta
//!   retry for days). Only a store failure is 503, so Meta retries later (every effect is
//!   idempotent: the status ladder, consent events deduplicated by content).
//!
//! Every request and every event is counted in `herald_webhook_events_total{kind, verdict}`,
//! with bounded label values and never a phone number; a `failed` status whose code did
//! something beyond its delivery is also counted as kind `failed_status` with the effect
//! (`opted_out`, `sender_blocked`, `run_paused`, `unresolved`).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_app::config::{ChannelKind, SenderSettings};
use herald_channel::whatsapp::inbound::{MAX_BODY_BYTES, Notification, parse_notification};
use herald_channel::whatsapp::verify_hub_signature;
use herald_engine::feedback::{Verdict, apply_message, apply_status};
use herald_engine::statuses::FailureEffect;
use herald_store::StoreError;
use subtle::ConstantTimeEq;

use crate::AdminState;

/// The longest `hub.challenge` echoed (Meta sends a short number).
const MAX_CHALLENGE_CHARS: usize = 256;

/// The signature header.
const SIGNATURE: &str = "x-hub-signature-256";

/// The webhook routes, relative to `/webhooks/whatsapp`.
pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/", get(challenge).post(notification))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

fn count(kind: &'static str, verdict: &'static str) {
    metrics::counter!("herald_webhook_events_total", "kind" => kind, "verdict" => verdict)
        .increment(1);
}

async fn challenge(
    State(state): State<AdminState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let expected = state
        .settings
        .webhooks
        .verify_token_env
        .as_ref()
        .and_then(|name| state.env.get(name))
        .filter(|token| !token.is_empty());
    let given = query.get("hub.verify_token");
    let challenge = query.get("hub.challenge");
    let subscribe = query
        .get("hub.mode")
        .is_some_and(|mode| mode == "subscribe");
    let token_ok = match (expected, given) {
        (Some(expected), Some(given)) => bool::from(expected.as_bytes().ct_eq(given.as_bytes())),
        _ => false,
    };
    match challenge {
        Some(challenge)
            if subscribe
                && token_ok
                && !challenge.is_empty()
                && challenge.chars().count() <= MAX_CHALLENGE_CHARS =>
        {
            count("verification", "accepted");
            (StatusCode::OK, challenge.clone()).into_response()
        }
        _ => {
            count("verification", "refused");
            tracing::warn!("WhatsApp subscription challenge refused");
            StatusCode::FORBIDDEN.into_response()
        }
    }
}

/// Why a notification was refused before anything was applied.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    MissingSignature,
    BadSignature,
    UnknownSender,
    NoAppSecret,
    Unreadable,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::MissingSignature => "missing_signature",
            Refusal::BadSignature => "bad_signature",
            Refusal::UnknownSender => "unknown_sender",
            Refusal::NoAppSecret => "no_app_secret",
            Refusal::Unreadable => "unreadable",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Refusal::Unreadable => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

async fn notification(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let notification = match authenticate(&state, &headers, &body) {
        Ok(notification) => notification,
        Err(refusal) => {
            count("request", refusal.as_str());
            tracing::warn!(reason = refusal.as_str(), "WhatsApp webhook refused");
            return refusal.status().into_response();
        }
    };
    match apply(&state, &notification).await {
        Ok(()) => {
            count("request", "accepted");
            StatusCode::OK.into_response()
        }
        Err(error) => {
            count("request", "store_error");
            tracing::error!(%error, "WhatsApp webhook not applied: store error (Meta retries)");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// The WhatsApp sender with this phone number id: the one lookup both the signature check and
/// the consent channel use (a sender of another channel never answers for a WhatsApp number).
fn whatsapp_sender<'a>(
    state: &'a AdminState,
    phone_number_id: &str,
) -> Option<(&'a String, &'a SenderSettings)> {
    state.settings.senders.iter().find(|(_, s)| {
        s.channel == ChannelKind::Whatsapp && s.phone_number_id.as_deref() == Some(phone_number_id)
    })
}

/// The app secret of the WhatsApp sender with this phone number id.
fn app_secret<'a>(state: &'a AdminState, phone_number_id: &str) -> Result<&'a str, Refusal> {
    let (_, sender) = whatsapp_sender(state, phone_number_id).ok_or(Refusal::UnknownSender)?;
    sender
        .app_secret_env
        .as_ref()
        .and_then(|name| state.env.get(name))
        .map(String::as_str)
        .filter(|secret| !secret.is_empty())
        .ok_or(Refusal::NoAppSecret)
}

/// Verifies the signature before anything in the body is trusted (module docs).
fn authenticate(
    state: &AdminState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Notification, Refusal> {
    let signature = headers
        .get(SIGNATURE)
        .and_then(|value| value.to_str().ok())
        .ok_or(Refusal::MissingSignature)?;
    let signed_by_any = || {
        state
            .settings
            .senders
            .values()
            .filter(|s| s.channel == ChannelKind::Whatsapp)
            .filter_map(|s| s.app_secret_env.as_ref().and_then(|n| state.env.get(n)))
            .filter(|secret| !secret.is_empty())
            .any(|secret| verify_hub_signature(secret, body, signature))
    };
    let notification = match parse_notification(body) {
        Ok(notification) => notification,
        Err(error) if signed_by_any() => {
            // serde's message can quote a value of the body (a phone, a text): only where
            // and what kind above debug.
            tracing::warn!(
                category = error.category(),
                location = %error.location(),
                "signed WhatsApp notification Herald cannot read"
            );
            tracing::debug!(%error, "the unreadable notification's parse error");
            return Err(Refusal::Unreadable);
        }
        Err(_) => return Err(Refusal::BadSignature),
    };
    let ids = notification.phone_number_ids();
    if ids.is_empty() {
        // Nothing Herald acts on (a template status update): still only Meta's.
        return if signed_by_any() {
            Ok(notification)
        } else {
            Err(Refusal::BadSignature)
        };
    }
    for id in ids {
        if !verify_hub_signature(app_secret(state, id)?, body, signature) {
            return Err(Refusal::BadSignature);
        }
    }
    Ok(notification)
}

async fn apply(state: &AdminState, notification: &Notification) -> Result<(), StoreError> {
    let keywords = state.settings.webhooks.keywords().map_err(|error| {
        // Invariant: settings were validated at load; this is a bug, not input.
        StoreError::Conflict(format!("webhook keywords: {error}"))
    })?;
    for change in &notification.changes {
        // Every change's sender was authenticated, so it is found; the default is unreachable.
        let sender = whatsapp_sender(state, &change.phone_number_id);
        let consent_channel = sender
            .map(|(_, s)| s.consent_channel())
            .unwrap_or_else(herald_core::ConsentChannel::whatsapp);
        let channel = consent_channel.as_str();
        let sender = sender.map(|(name, _)| name.as_str());
        for status in &change.statuses {
            let now = state.clock.now();
            let outcome = apply_status(&state.stores, channel, sender, status, now).await?;
            record("status", outcome.verdict);
            if outcome.effect != FailureEffect::None {
                count("failed_status", outcome.effect.as_str());
            }
        }
        for message in &change.messages {
            let now = state.clock.now();
            let verdict =
                apply_message(&state.stores, channel, sender, &keywords, message, now).await?;
            record(message.content.kind(), verdict);
        }
    }
    Ok(())
}

fn record(kind: &'static str, verdict: Verdict) {
    count(kind, verdict.as_str());
    tracing::debug!(kind, verdict = verdict.as_str(), "WhatsApp webhook event");
}
