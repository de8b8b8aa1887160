//! The webhook channel: one signed JSON POST per message to a configured URL.
//!
//! # The request (the contract a receiver implements)
//! - `POST <url>` with `Content-Type: application/json` and a body holding `sent_at` (RFC 3339
//!   UTC) and the message fields of an outbox line (see [`crate::outbox`]).
//! - `Idempotency-Key: <run>/<recipient>`: the same for every attempt at one delivery. A
//!   receiver that already accepted a key should answer 2xx again, not 409: a 4xx ends the
//!   delivery `failed`.
//! - `X-Herald-Timestamp` and, when a secret is configured, `X-Herald-Signature`: see
//!   [`verify_signature`] and the scheme in its module.
//!
//! # The answer
//! 2xx accepts (a JSON body's `id` becomes the provider id). 429 slows the whole sender down
//! (honouring `Retry-After`). To refuse a message *without processing it*, so that Herald may
//! retry even under at-most-once, answer 503 with `{"error": {"code": "not_processed"}}` or the
//! header `X-Herald-Not-Processed: 1`. Any other 5xx, a timeout or a dropped connection leaves
//! Herald unable to tell, and the delivery ends `unknown`. The full table is in `classify`.
//!
//! No request is repeated inside the adapter: redirects are not followed and reqwest's own retry
//! policy is off, because every request counts against the sender's rate (design §1.4) and only
//! the engine knows whether a retry is allowed.

mod classify;
#[cfg(test)]
mod classify_test;
mod signature;

use std::fmt;
use std::time::Duration;

use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Client, Url};
use serde::Serialize;

use self::classify::classify;
pub use self::signature::verify_signature;
use crate::record::{MessageFields, rfc3339};
use crate::transport::{ClientError, Outcome, exchange, http_client};
use crate::{Accepted, Channel, OutgoingMessage, SendError};

/// Carries the message's idempotency key, so the receiver can deduplicate.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// Unix seconds when the request was made; part of the signed string.
pub const TIMESTAMP_HEADER: &str = "X-Herald-Timestamp";
/// `sha256=<hex>`, present when a secret is configured.
pub const SIGNATURE_HEADER: &str = "X-Herald-Signature";
/// A receiver's 503 with this header set to `1` means "not processed": safe to retry.
pub const NOT_PROCESSED_HEADER: &str = "X-Herald-Not-Processed";

/// Where and how to POST.
#[derive(Clone)]
pub struct WebhookConfig {
    /// An `http` or `https` URL.
    pub url: String,
    /// The HMAC key; without it requests are not signed.
    pub secret: Option<String>,
    /// The whole request, connect to last body byte. Past it the outcome is `Unknown` once the
    /// connection was open, so it should exceed the receiver's worst normal latency.
    pub timeout: Duration,
    /// Establishing the connection (DNS, TCP, TLS). Nothing has been sent when it expires, so
    /// expiry is `Retryable`. It must not exceed `timeout`, and should stay well below it: a
    /// connect still running when `timeout` fires cannot be told from a late answer and reads
    /// as `Unknown`.
    pub connect_timeout: Duration,
}

impl WebhookConfig {
    /// The default `timeout`: generous for a receiver that answers after storing the message.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default `connect_timeout`: a healthy receiver connects in well under a second.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

    /// A configuration for `url` with no secret and the default timeouts.
    pub fn new(url: impl Into<String>) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            secret: None,
            timeout: Self::DEFAULT_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Hides the secret, which must never reach a log.
impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// A webhook configuration that cannot work. The URL itself is never echoed: webhook URLs often
/// carry a token.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL does not parse.
    #[error("the webhook url is not a valid URL: {0}")]
    InvalidUrl(String),
    /// The URL is not `http` or `https`.
    #[error("the webhook url must be http or https, not {0:?}")]
    UnsupportedScheme(String),
    /// A timeout is zero, or the connect timeout exceeds the whole-request one (the request
    /// timeout would then cut connects short and a never-sent request would read as `Unknown`).
    #[error("webhook timeouts: {0}")]
    InvalidTimeouts(String),
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the webhook HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Sends messages as signed JSON POSTs; see the module docs for the contract.
pub struct Webhook {
    /// Pooled connections; cheap to share across tasks.
    client: Client,
    url: Url,
    secret: Option<String>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("host", &self.url.host_str())
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

/// The request body.
#[derive(Debug, Serialize)]
struct Body<'a> {
    sent_at: String,
    #[serde(flatten)]
    message: MessageFields<'a>,
}

impl Webhook {
    /// Checks `config` and builds the HTTP client.
    ///
    /// # Errors
    /// An invalid URL or scheme, inconsistent timeouts, or a client that cannot be built.
    pub fn new(config: WebhookConfig) -> Result<Webhook, WebhookError> {
        let url =
            Url::parse(&config.url).map_err(|error| WebhookError::InvalidUrl(error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookError::UnsupportedScheme(url.scheme().to_owned()));
        }
        let client =
            http_client(config.timeout, config.connect_timeout).map_err(|error| match error {
                ClientError::Timeouts(detail) => WebhookError::InvalidTimeouts(detail),
                ClientError::Client(error) => WebhookError::Client(error),
            })?;
        Ok(Webhook {
            client,
            url,
            secret: config.secret,
        })
    }

    /// Sends one request and reports what happened, without judging it.
    async fn post(&self, message: &OutgoingMessage) -> Outcome {
        let now = Utc::now();
        let body = Body {
            sent_at: rfc3339(now),
            message: MessageFields::of(message),
        };
        let body = match serde_json::to_vec(&body) {
            Ok(body) => body,
            Err(error) => {
                return Outcome::Unsendable(format!("cannot serialise the message: {error}"));
            }
        };
        let timestamp = now.timestamp().to_string();
        let headers = match self.headers(message, &timestamp, &body) {
            Ok(headers) => headers,
            Err(reason) => return Outcome::Unsendable(reason),
        };
        exchange(
            self.client
                .post(self.url.clone())
                .headers(headers)
                .body(body),
        )
        .await
    }

    fn headers(
        &self,
        message: &OutgoingMessage,
        timestamp: &str,
        body: &[u8],
    ) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // `from_bytes`, not `from_str`: non-ASCII ids travel as UTF-8 bytes (HTTP's obs-text)
        // instead of failing; only control characters are refused.
        let key = HeaderValue::from_bytes(message.idempotency_key.as_bytes())
            .map_err(|_| "the idempotency key contains a control character".to_owned())?;
        headers.insert(IDEMPOTENCY_KEY_HEADER, key);
        headers.insert(
            TIMESTAMP_HEADER,
            HeaderValue::from_str(timestamp).map_err(|error| error.to_string())?,
        );
        if let Some(secret) = &self.secret {
            let signature = signature::sign(secret, timestamp, body);
            headers.insert(
                SIGNATURE_HEADER,
                HeaderValue::from_str(&signature).map_err(|error| error.to_string())?,
            );
        }
        Ok(headers)
    }
}

impl Channel for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        classify(self.post(message).await)
    }
}
