//! The WhatsApp Cloud API channel: one template message per `POST /messages`.
//!
//! # The request
//! `POST {base_url}/{api_version}/{phone_number_id}/messages` with `Authorization: Bearer
//! <token>` and a template message as JSON (the shape is in `request`). A 2xx carrying
//! `{"messages": [{"id": "wamid…"}]}` accepts the message, the id becoming the provider id.
//!
//! # The answer
//! Meta's error code in the body decides, not the HTTP status: see [`classify_code`] and
//! [`classify_response`] for the table, and [`Classification`] for how the outcomes the
//! [`SendError`] port lacks (pause the sender, pause the campaign, opt-out) reach the engine.
//!
//! No request is repeated inside the adapter: redirects are not followed and reqwest's retry
//! policy is off, because every request counts against the sender's rate (design §1.4) and only
//! the engine knows whether a retry is allowed. The token never appears in `Debug` output, in
//! an error, or in a failure's detail (a provider message echoing it is redacted).

mod callback;
mod classify;
#[cfg(test)]
mod classify_test;
pub mod inbound;
mod redact;
mod request;
mod signature;

use std::fmt;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Url};

pub use self::callback::{MAX_CALLBACK_CHARS, callback_data, parse_callback_data};
use self::classify::classify;
pub use self::classify::{Classification, classify_code, classify_response};
pub use self::signature::{hub_signature, verify_hub_signature};
use crate::transport::{ClientError, Outcome, exchange, http_client};
use crate::{Accepted, Channel, OutgoingMessage, SendError};

/// Where and as whom to send.
#[derive(Clone)]
pub struct WhatsAppConfig {
    /// The Graph API root, `http` or `https` (a fake API in tests).
    pub base_url: String,
    /// The Graph API version, e.g. `v21.0`.
    pub api_version: String,
    /// The sending phone number's id (not the phone number).
    pub phone_number_id: String,
    /// The access token's value (the caller reads it from the environment). Never logged.
    pub token: String,
    /// The whole request, connect to last body byte. Past it the outcome is `Unknown` once the
    /// connection was open.
    pub timeout: Duration,
    /// Establishing the connection. Nothing has been sent when it expires, so expiry is
    /// `Retryable`. It must not exceed `timeout`.
    pub connect_timeout: Duration,
}

impl WhatsAppConfig {
    /// The default `base_url`.
    pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
    /// The default `api_version`.
    pub const DEFAULT_API_VERSION: &str = "v21.0";
    /// The default `timeout`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
    /// The default `connect_timeout`.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

    /// A configuration for `phone_number_id` with the default URL, version and timeouts.
    pub fn new(phone_number_id: impl Into<String>, token: impl Into<String>) -> WhatsAppConfig {
        WhatsAppConfig {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            api_version: Self::DEFAULT_API_VERSION.to_owned(),
            phone_number_id: phone_number_id.into(),
            token: token.into(),
            timeout: Self::DEFAULT_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Hides the token.
impl fmt::Debug for WhatsAppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppConfig")
            .field("base_url", &self.base_url)
            .field("api_version", &self.api_version)
            .field("phone_number_id", &self.phone_number_id)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// A WhatsApp configuration that cannot work. Never carries the token.
#[derive(Debug, thiserror::Error)]
pub enum WhatsAppError {
    /// The base URL does not parse, or cannot take a path.
    #[error("the WhatsApp base url is not a valid URL: {0}")]
    InvalidUrl(String),
    /// The base URL is not `http` or `https`.
    #[error("the WhatsApp base url must be http or https, not {0:?}")]
    UnsupportedScheme(String),
    /// The API version or phone number id is empty or not a single path segment.
    #[error("WhatsApp {0} must be a non-empty path segment")]
    InvalidSegment(&'static str),
    /// The token is empty or not a valid header value.
    #[error("the WhatsApp token is empty or contains characters a header cannot carry")]
    InvalidToken,
    /// The token is too short to be an access token (and to be told apart from provider text
    /// when it is redacted).
    #[error("the WhatsApp token has {0} characters; an access token has at least {min}", min = redact::MIN_TOKEN_CHARS)]
    TokenTooShort(usize),
    /// A timeout is zero, or the connect timeout exceeds the whole-request one.
    #[error("WhatsApp timeouts: {0}")]
    InvalidTimeouts(String),
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the WhatsApp HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Sends template messages through the Cloud API; see the module docs.
pub struct WhatsApp {
    client: Client,
    /// `{base_url}/{api_version}/{phone_number_id}/messages`.
    url: Url,
    /// `Bearer <token>`, marked sensitive.
    authorization: HeaderValue,
    /// Only to redact it from failure details.
    token: String,
}

impl fmt::Debug for WhatsApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsApp")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl WhatsApp {
    /// Checks `config` and builds the HTTP client.
    ///
    /// # Errors
    /// An invalid URL, scheme, version, phone number id or token (a token shorter than 16
    /// characters included), inconsistent timeouts, or a client that cannot be built.
    pub fn new(config: WhatsAppConfig) -> Result<WhatsApp, WhatsAppError> {
        let mut url = Url::parse(&config.base_url)
            .map_err(|error| WhatsAppError::InvalidUrl(error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WhatsAppError::UnsupportedScheme(url.scheme().to_owned()));
        }
        let segment = |value: &str| !value.is_empty() && !value.contains(['/', '?', '#']);
        if !segment(&config.api_version) {
            return Err(WhatsAppError::InvalidSegment("api_version"));
        }
        if !segment(&config.phone_number_id) {
            return Err(WhatsAppError::InvalidSegment("phone_number_id"));
        }
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| WhatsAppError::InvalidUrl("the url cannot take a path".into()))?
            .pop_if_empty()
            .extend([
                config.api_version.as_str(),
                config.phone_number_id.as_str(),
                "messages",
            ]);
        if config.token.trim().is_empty() {
            return Err(WhatsAppError::InvalidToken);
        }
        let length = config.token.chars().count();
        if length < redact::MIN_TOKEN_CHARS {
            return Err(WhatsAppError::TokenTooShort(length));
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", config.token))
            .map_err(|_| WhatsAppError::InvalidToken)?;
        authorization.set_sensitive(true);
        let client =
            http_client(config.timeout, config.connect_timeout).map_err(|error| match error {
                ClientError::Timeouts(detail) => WhatsAppError::InvalidTimeouts(detail),
                ClientError::Client(error) => WhatsAppError::Client(error),
            })?;
        Ok(WhatsApp {
            client,
            url,
            authorization,
            token: config.token,
        })
    }

    /// Sends one message and classifies the outcome in full; [`Channel::send`] is this, mapped
    /// to [`SendError`]. One request at most, never repeated.
    ///
    /// # Errors
    /// Every outcome but an acceptance, classified.
    pub async fn deliver(&self, message: &OutgoingMessage) -> Result<Accepted, Classification> {
        classify(self.post(message).await).map_err(|classification| self.redact(classification))
    }

    /// Sends one request and reports what happened, without judging it.
    async fn post(&self, message: &OutgoingMessage) -> Outcome {
        let body = match request::body(message).and_then(|body| {
            serde_json::to_vec(&body).map_err(|error| format!("cannot serialise: {error}"))
        }) {
            Ok(body) => body,
            Err(reason) => return Outcome::Unsendable(reason),
        };
        let request = self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        exchange(request).await
    }

    /// Removes the token from a failure's text, should the provider or a library echo it.
    fn redact(&self, classification: Classification) -> Classification {
        classification.map_reason(|text| redact::redact(&text, &self.token))
    }
}

impl Channel for WhatsApp {
    fn name(&self) -> &'static str {
        "whatsapp"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        self.deliver(message).await.map_err(SendError::from)
    }
}
