//! What one webhook request's outcome means for the delivery: a pure function, so every row of
//! the at-most-once table (design §1.3) has a test that needs no network.
//!
//! | what happened | result |
//! | --- | --- |
//! | 2xx | `Accepted`, `provider_id` from a JSON body's `id` |
//! | no connection (DNS, refused, connect timeout, TLS handshake) | `Retryable`: nothing was sent |
//! | 429 | `Throttled { Sender, Retry-After }` |
//! | 503 with `{"error": {"code": "not_processed"}}` or `X-Herald-Not-Processed: 1` | `Retryable` |
//! | 3xx, other 4xx | `Rejected { code: "http_<status>" }` |
//! | other 5xx, a timeout after sending, a dropped connection | `Unknown` |
//!
//! A 3xx is `Rejected` because redirects are not followed (a 307 would re-send the POST):
//! a webhook URL that redirects is misconfigured, and retrying cannot fix it.

use reqwest::StatusCode;

use super::NOT_PROCESSED_HEADER;
use crate::transport::{Answer, Outcome, retry_after};
use crate::{Accepted, SendError, ThrottleScope};

/// How much of a response body is kept for the detail of a rejection.
const DETAIL_CHARS: usize = 200;

/// Classifies `outcome` per the table in the module docs.
pub(super) fn classify(outcome: Outcome) -> Result<Accepted, SendError> {
    match outcome {
        Outcome::Unsendable(reason) => Err(SendError::Rejected {
            code: "invalid_request".into(),
            detail: reason,
            action: None,
        }),
        Outcome::NotConnected(reason) => Err(SendError::Retryable {
            retry_after: None,
            reason: format!("no connection: {reason}"),
        }),
        Outcome::TimedOut(reason) => Err(SendError::Unknown(format!(
            "no answer in time after sending: {reason}"
        ))),
        Outcome::Dropped(reason) => Err(SendError::Unknown(format!(
            "connection lost after sending: {reason}"
        ))),
        Outcome::Answered(answer) => classify_answer(&answer),
    }
}

fn classify_answer(answer: &Answer) -> Result<Accepted, SendError> {
    let status = answer.status;
    if status.is_success() {
        return Ok(Accepted {
            provider_id: provider_id(&answer.body),
        });
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(SendError::Throttled {
            retry_after: retry_after(&answer.headers, answer.received_at),
            scope: ThrottleScope::Sender,
        });
    }
    if status == StatusCode::SERVICE_UNAVAILABLE && not_processed(answer) {
        let reason = "the receiver answered 503 not_processed".to_owned();
        return Err(SendError::Retryable {
            retry_after: retry_after(&answer.headers, answer.received_at),
            reason,
        });
    }
    if status.is_client_error() || status.is_redirection() {
        return Err(SendError::Rejected {
            code: format!("http_{}", status.as_u16()),
            detail: detail(answer),
            action: None,
        });
    }
    Err(SendError::Unknown(format!(
        "HTTP {}: {}",
        status.as_u16(),
        detail(answer)
    )))
}

/// A JSON body's top-level `id`, a string or a number.
fn provider_id(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.get("id")? {
        serde_json::Value::String(id) if !id.is_empty() => Some(id.clone()),
        serde_json::Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// The receiver's documented "I did not process this": the header, or the code in the body.
fn not_processed(answer: &Answer) -> bool {
    let header = answer
        .headers
        .get(NOT_PROCESSED_HEADER)
        .is_some_and(|value| value.as_bytes().trim_ascii() == b"1");
    let code = || {
        let value: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
        Some(value.get("error")?.get("code")?.as_str()? == "not_processed")
    };
    header || code().unwrap_or(false)
}

/// The body as text, trimmed and cut to [`DETAIL_CHARS`] characters; the reason phrase if empty.
fn detail(answer: &Answer) -> String {
    let text = String::from_utf8_lossy(&answer.body);
    let text = text.trim();
    if text.is_empty() {
        return answer
            .status
            .canonical_reason()
            .unwrap_or_default()
            .to_owned();
    }
    text.chars().take(DETAIL_CHARS).collect()
}
