//! What both HTTP adapters share: how a request ended, as far as the client can tell, and the
//! reqwest plumbing that decides it. Each adapter classifies an [`Outcome`] with its own table.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The most of a response body kept: enough for an id or an error object, never a whole page.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// What happened to one request, as far as the client can tell.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The request could not be built (a control character in a header value, an unusable
    /// message): nothing was sent, and sending again would fail the same way.
    Unsendable(String),
    /// No connection was established: nothing was sent.
    NotConnected(String),
    /// The other side answered.
    Answered(Answer),
    /// The request may have been written and no answer came in time.
    TimedOut(String),
    /// The connection failed once established (reset, closed before the answer).
    Dropped(String),
}

/// An answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// The body, or its first [`MAX_BODY_BYTES`]; empty if it could not be read.
    pub(crate) body: Vec<u8>,
    /// When the answer arrived, to turn a `Retry-After` date into a delay.
    pub(crate) received_at: SystemTime,
}

/// What a failed `send` tells about the request. A connect error, timeouts included, means no
/// connection and so no request; any timeout after that means it may have been written.
pub(crate) fn outcome_of(error: &reqwest::Error) -> Outcome {
    let reason = chain(error);
    if error.is_connect() {
        Outcome::NotConnected(reason)
    } else if error.is_builder() {
        Outcome::Unsendable(reason)
    } else if error.is_timeout() {
        Outcome::TimedOut(reason)
    } else {
        Outcome::Dropped(reason)
    }
}

/// The error and its causes, `: `-separated (reqwest's own message alone says only "error
/// sending request").
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads up to [`MAX_BODY_BYTES`]; stops quietly at an error, since the status has already
/// decided the outcome.
pub(crate) async fn read_body(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_BODY_BYTES {
            break;
        }
    }
    body
}

/// `Retry-After` as delay-seconds or an HTTP date (a date in the past means now); `None` when
/// absent or unreadable, leaving the delay to the engine.
pub(crate) fn retry_after(headers: &HeaderMap, received_at: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(received_at).unwrap_or(Duration::ZERO))
}
