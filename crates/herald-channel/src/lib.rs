//! The channel port and its adapters.
//!
//! A channel answers one question per request: did the provider accept the message, prove it
//! did not, or leave us unable to tell? [`SendError`] encodes exactly that, because the engine's
//! at-most-once rule (design §1.3) depends on it: only a failure that proves the message was not
//! accepted may be retried under `at_most_once`; anything after the request was written that is
//! not a clear answer is `Unknown`.
//!
//! # Layout
//! - the port, here: [`Channel`], [`OutgoingMessage`], [`Accepted`], [`SendError`].
//! - [`outbox`]: appends one JSON line per message to a file; the dry-run and demo channel.
//! - [`webhook`]: POSTs one signed JSON document per message to a URL.
//! - [`whatsapp`]: sends template messages through the WhatsApp Cloud API, classifying Meta's
//!   error codes (including sender blocks, template errors and opt-outs, carried to the engine
//!   as a [`ProviderAction`], see [`whatsapp::Classification`]).
//! - `record` (private): the JSON shape both adapters write, so an outbox line and a webhook
//!   body describe a message with the same fields.
//!
//! Adapters never retry internally: every request counts against the sender's rate (design
//! §1.4), so retrying is the engine's decision, made on the [`SendError`] variant.

pub mod outbox;
mod record;
mod sha256_mac;
mod transport;
pub mod webhook;
pub mod whatsapp;

pub use outbox::Outbox;
pub use webhook::{Webhook, WebhookConfig, WebhookError};
pub use whatsapp::{WhatsApp, WhatsAppConfig, WhatsAppError};

use std::future::Future;
use std::time::Duration;

/// The longest `Retry-After` Herald obeys: 15 minutes. A provider asking for more is capped to
/// this (the adapters cap what they read, the engine caps what it is given), so a sender never
/// waits longer than this between two looks at its queue. A day-long back-off is a
/// misconfigured or hostile endpoint, not back-pressure, and would leave `herald run` asleep;
/// a sender that is really throttled for longer simply gets throttled again on the next try.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// One template message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// `<run>/<recipient>`: stable across retries, so a receiver can deduplicate.
    pub idempotency_key: String,
    /// The run id.
    pub run: String,
    /// The recipient id.
    pub recipient: String,
    /// The delivery's recipient key as stores write it (`RecipientKey`'s text: `cust-17`, or
    /// `phone +79161234567` for a row without an id). With `run` it names the delivery; the
    /// WhatsApp channel sends both back to Herald as callback data (`whatsapp::callback`).
    pub recipient_key: String,
    /// The full E.164 phone (the provider needs it; never log it above debug).
    pub to: String,
    /// The template name.
    pub template: String,
    /// The template language.
    pub language: String,
    /// A media header: (kind `image`|`video`|`document`, https link).
    pub header_media: Option<(String, String)>,
    /// A text header parameter.
    pub header_text: Option<String>,
    /// Named body parameters, in order.
    pub params: Vec<(String, String)>,
    /// Quick-reply payloads, in button order.
    pub buttons: Vec<String>,
}

/// The provider accepted the message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// The provider's message id, if it gave one.
    pub provider_id: Option<String>,
}

/// Whom back-pressure applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleScope {
    /// The whole sender (throughput limits).
    Sender,
    /// Only this recipient (pair rate limits).
    Recipient,
}

/// Why a message was not (known to be) accepted.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Back-pressure: not accepted; slow down and retry later.
    #[error("throttled ({scope:?}), retry after {retry_after:?}")]
    Throttled {
        /// The provider's `Retry-After`, if any, at most [`MAX_RETRY_AFTER`].
        retry_after: Option<Duration>,
        /// Sender or recipient.
        scope: ThrottleScope,
    },
    /// Proven not accepted (the connection never opened, a documented "not processed" code):
    /// safe to retry even under at-most-once.
    #[error("not accepted, retryable: {reason}")]
    Retryable {
        /// When to retry, if the provider said; at most [`MAX_RETRY_AFTER`].
        retry_after: Option<Duration>,
        /// Why.
        reason: String,
    },
    /// Rejected for good: the delivery ends `failed(code)`, and `action`, when given, says
    /// what else the answer asks of the engine (the sender, the run or the recipient's consent).
    #[error("rejected with code {code}: {detail}")]
    Rejected {
        /// The provider's code.
        code: String,
        /// Its message.
        detail: String,
        /// What the answer asks beyond ending this delivery, typed so the engine never reads
        /// it back out of the code's text.
        action: Option<ProviderAction>,
    },
    /// The request may have reached the provider (timeout after writing, dropped connection,
    /// a 5xx without a "not processed" code): the delivery ends `unknown` unless the campaign
    /// opted into at-least-once.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// What a rejection asks of the engine beyond ending the delivery `failed(code)`.
///
/// Why a type: the engine must block a sender, pause a run or record an opt-out on these
/// answers, and a decision made on a code's text breaks silently when a prefix or a code moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderAction {
    /// The recipient stopped marketing messages: record an opt-out of marketing. The message
    /// was not accepted.
    OptOut,
    /// The sender cannot send until someone acts (spam rate limit, policy block, payment,
    /// token): every worker of the sender stops claiming until an operator resumes it. The
    /// message was not accepted, so the delivery goes back to the queue rather than failing.
    BlockSender,
    /// The campaign's template cannot be sent (missing, paused, disabled, wrong parameters):
    /// repeated, it pauses the run. The message was not accepted.
    TemplateError,
}

impl ProviderAction {
    /// Stable name (logs, tests).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderAction::OptOut => "opt_out",
            ProviderAction::BlockSender => "block_sender",
            ProviderAction::TemplateError => "template_error",
        }
    }
}

/// A way of delivering messages.
pub trait Channel: Send + Sync {
    /// Short name (`outbox`, `webhook`, `whatsapp`), also the consent channel key.
    fn name(&self) -> &'static str;
    /// Sends one message. Must not retry internally: every request counts against the rate.
    fn send(
        &self,
        message: &OutgoingMessage,
    ) -> impl Future<Output = Result<Accepted, SendError>> + Send;
}
