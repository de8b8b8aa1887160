//! What both HTTP adapters share: how a request ended, as far as the client can tell, and the
//! reqwest plumbing that decides it. Each adapter classifies an [`Outcome`] with its own table.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::MAX_RETRY_AFTER;

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

/// `Retry-After` as delay-seconds or an HTTP date (a date in the past means now), capped at
/// [`MAX_RETRY_AFTER`]; `None` when absent or unreadable, leaving the delay to the engine.
pub(crate) fn retry_after(headers: &HeaderMap, received_at: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let after = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(received_at).unwrap_or(Duration::ZERO)
        }
    };
    Some(after.min(MAX_RETRY_AFTER))
}

/// Below the shortest common server keep-alive (Node's 5 s), so a pooled connection is dropped
/// by us before the server closes it under a request we just wrote, which would read as
/// `Unknown`.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Why an HTTP client for a channel could not be built.
pub(crate) enum ClientError {
    /// A timeout is zero, or connecting may take longer than the whole request.
    Timeouts(String),
    /// reqwest refused the configuration.
    Client(reqwest::Error),
}

/// The client every HTTP channel sends with: the request timeout bounds a hang (which ends
/// `Unknown`), no redirects (a provider answering with one is misconfigured, and following it
/// could send the message elsewhere), no automatic retries (the worker decides, so every request
/// is counted by the rate limit), idle connections dropped before the server would.
pub(crate) fn http_client(
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<reqwest::Client, ClientError> {
    if timeout.is_zero() || connect_timeout.is_zero() {
        return Err(ClientError::Timeouts(
            "timeouts must be greater than zero".into(),
        ));
    }
    if connect_timeout > timeout {
        return Err(ClientError::Timeouts(format!(
            "connect_timeout {connect_timeout:?} exceeds timeout {timeout:?}"
        )));
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(ClientError::Client)
}

/// Sends `request` and reads the answer, whatever its status: judging it is the channel's own
/// classification. A failure to send is reported without the URL, which may carry a token, in
/// a detail that ends up in the ledger.
pub(crate) async fn exchange(request: reqwest::RequestBuilder) -> Outcome {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return outcome_of(&error.without_url()),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_body(response).await;
    Outcome::Answered(Answer {
        status,
        headers,
        body,
        received_at: SystemTime::now(),
    })
}
