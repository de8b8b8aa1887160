//! What a Cloud API outcome means for the delivery, the sender and the campaign: pure functions,
//! so every row of the table has a test that needs no network.
//!
//! Meta's error codes, not HTTP statuses, decide (design §1.3): the same 400 can mean "slow
//! down", "this template is broken" or "this recipient opted out". [`classify_code`] holds the
//! table by code and serves both a synchronous error reply and an asynchronous `failed` status
//! (a status webhook's `errors[].code`); [`classify_response`] adds what only an HTTP answer
//! knows; `classify` adds what only the transport knows.
//!
//! | code | meaning | [`Classification`] |
//! | --- | --- | --- |
//! | 4, 80007, 130429 | app, account or number throughput | `Throttled { Sender }` |
//! | 131056 | pair rate (too many messages to one user) | `Throttled { Recipient }` |
//! | 131048, 368, 131042, 190 | spam rate, policy block, payment, token | `PauseSender` |
//! | 132000 to 132016 | template missing, paused, disabled, parameters wrong | `PauseCampaign` |
//! | 131050 | the user stopped marketing messages | `OptOut` |
//! | 131016 | service unavailable: not processed | `Retryable` |
//! | any other code, with a non-5xx answer or in a `failed` status | e.g. 100, 131026, 131047, 131049, 131051 | `Rejected { code }` |
//!
//! Without a recognised code, the HTTP answer decides:
//!
//! | what happened | [`Classification`] |
//! | --- | --- |
//! | 2xx | accepted, the id from `messages[0].id` |
//! | 429 | `Throttled { Sender }` |
//! | 5xx (with no code, or a code not in the table) | `Unknown` |
//! | 3xx, other 4xx without a code | `Rejected { http_<status> }` |
//! | 4xx with an unlisted code | `Rejected { <code> }` |
//! | no connection (DNS, refused, connect timeout, TLS) | `Retryable`: nothing was sent |
//! | a timeout after sending, a dropped connection | `Unknown` |
//!
//! `Retry-After` is honoured on every `Throttled` and `Retryable`, whichever row produced it, up
//! to [`MAX_RETRY_AFTER`] (15 minutes).

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::transport::{Outcome, retry_after};
use crate::{Accepted, MAX_RETRY_AFTER, ProviderAction, SendError, ThrottleScope};

/// How much of the provider's message is kept for the detail of a failure.
const DETAIL_CHARS: usize = 300;

/// What one outcome means. Richer than [`SendError`]: it also says when the sender or the whole
/// campaign must stop, and when the recipient opted out.
///
/// The engine sees it through [`SendError`] (see the `From` impl): the variants `SendError`
/// lacks become `SendError::Rejected` with Meta's code and a [`ProviderAction`]
/// (`BlockSender`, `TemplateError`, `OptOut`), which the engine acts on by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// Back-pressure: not accepted; slow down (the sender, or only this recipient) and retry.
    Throttled {
        /// Whom to slow down.
        scope: ThrottleScope,
        /// The provider's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The sender (phone number / account) cannot send until someone acts: spam rate limit,
    /// policy block, payment problem, invalid or expired token. Not accepted.
    PauseSender {
        /// Meta's error code.
        code: i64,
        /// What it means and what the provider said.
        reason: String,
    },
    /// The campaign's template cannot be sent (missing, paused, disabled, wrong parameters):
    /// every other recipient would fail the same way. Not accepted.
    PauseCampaign {
        /// Meta's error code.
        code: i64,
        /// What it means and what the provider said.
        reason: String,
    },
    /// The recipient stopped marketing messages: record an opt-out. Not accepted.
    OptOut {
        /// Meta's error code.
        code: i64,
        /// What the provider said.
        reason: String,
    },
    /// Rejected for this recipient: the delivery ends `failed(code)`.
    Rejected {
        /// Meta's error code as text, or `http_<status>` when the answer had none.
        code: String,
        /// What the provider said.
        reason: String,
    },
    /// Proven not accepted (no connection, a documented "not processed" code): retryable even
    /// under at-most-once.
    Retryable {
        /// When to retry, if the provider said.
        retry_after: Option<Duration>,
        /// Why.
        reason: String,
    },
    /// The request may have been accepted: the delivery ends `unknown` under at-most-once.
    Unknown {
        /// What happened.
        reason: String,
    },
}

impl Classification {
    /// The same classification with its reason text passed through `f` (a throttle has none).
    pub(crate) fn map_reason(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Self::PauseSender { code, reason } => Self::PauseSender {
                code,
                reason: f(reason),
            },
            Self::PauseCampaign { code, reason } => Self::PauseCampaign {
                code,
                reason: f(reason),
            },
            Self::OptOut { code, reason } => Self::OptOut {
                code,
                reason: f(reason),
            },
            Self::Rejected { code, reason } => Self::Rejected {
                code,
                reason: f(reason),
            },
            Self::Retryable {
                retry_after,
                reason,
            } => Self::Retryable {
                retry_after,
                reason: f(reason),
            },
            Self::Unknown { reason } => Self::Unknown { reason: f(reason) },
            throttled @ Self::Throttled { .. } => throttled,
        }
    }
}

impl From<Classification> for SendError {
    fn from(classification: Classification) -> SendError {
        match classification {
            Classification::Throttled { scope, retry_after } => {
                SendError::Throttled { retry_after, scope }
            }
            Classification::PauseSender { code, reason } => SendError::Rejected {
                code: code.to_string(),
                detail: reason,
                action: Some(ProviderAction::BlockSender),
            },
            Classification::PauseCampaign { code, reason } => SendError::Rejected {
                code: code.to_string(),
                detail: reason,
                action: Some(ProviderAction::TemplateError),
            },
            Classification::OptOut { code, reason } => SendError::Rejected {
                code: code.to_string(),
                detail: reason,
                action: Some(ProviderAction::OptOut),
            },
            Classification::Rejected { code, reason } => SendError::Rejected {
                code,
                detail: reason,
                action: None,
            },
            Classification::Retryable {
                retry_after,
                reason,
            } => SendError::Retryable {
                retry_after,
                reason,
            },
            Classification::Unknown { reason } => SendError::Unknown(reason),
        }
    }
}

/// Classifies Meta's error `code` per the table in the module docs. An unlisted code is
/// `Rejected`: right for an asynchronous `failed` status and a 4xx reply; the HTTP wrapper
/// [`classify_response`] turns an unlisted code in a 5xx into `Unknown`. The reason names the
/// code's meaning; the wrapper appends the provider's message.
pub fn classify_code(code: i64, retry_after: Option<Duration>) -> Classification {
    let retry_after = retry_after.map(|after| after.min(MAX_RETRY_AFTER));
    listed(code, retry_after).unwrap_or_else(|| Classification::Rejected {
        code: code.to_string(),
        reason: format!("WhatsApp error {code}"),
    })
}

/// The table's row for `code`, if it has one.
fn listed(code: i64, retry_after: Option<Duration>) -> Option<Classification> {
    let throttled = |scope| Classification::Throttled { scope, retry_after };
    let pause_sender = |what: &str| Classification::PauseSender {
        code,
        reason: what.to_owned(),
    };
    Some(match code {
        4 | 80007 | 130429 => throttled(ThrottleScope::Sender),
        131056 => throttled(ThrottleScope::Recipient),
        131048 => pause_sender("spam rate limit hit"),
        368 => pause_sender("temporarily blocked for policy violations"),
        131042 => pause_sender("business eligibility: payment issue"),
        190 => pause_sender("access token expired or invalid"),
        132000..=132016 => Classification::PauseCampaign {
            code,
            reason: match code {
                132000 => "template parameter count mismatch",
                132001 => "template does not exist in this language",
                132015 => "template paused",
                132016 => "template disabled",
                _ => "template error",
            }
            .to_owned(),
        },
        131050 => Classification::OptOut {
            code,
            reason: "the user stopped marketing messages".to_owned(),
        },
        131016 => Classification::Retryable {
            retry_after,
            reason: "service unavailable (131016), not processed".to_owned(),
        },
        _ => return None,
    })
}

/// The body of a Graph API error reply.
#[derive(Debug, Deserialize)]
struct ErrorReply {
    error: ApiError,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    code: Option<i64>,
    message: Option<String>,
    error_subcode: Option<i64>,
    error_data: Option<ErrorData>,
}

#[derive(Debug, Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// The body of a success reply.
#[derive(Debug, Deserialize)]
struct SuccessReply {
    #[serde(default)]
    messages: Vec<SentMessage>,
}

#[derive(Debug, Deserialize)]
struct SentMessage {
    id: Option<String>,
}

/// Classifies one HTTP answer of `POST /messages` per the tables in the module docs: by the
/// error code in the body when it is listed, otherwise by the status. `retry_after` is the
/// answer's `Retry-After`, already read; like [`classify_code`], it caps it at
/// [`MAX_RETRY_AFTER`].
///
/// # Errors
/// Every answer but a 2xx, classified.
pub fn classify_response(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Accepted, Classification> {
    let retry_after = retry_after.map(|after| after.min(MAX_RETRY_AFTER));
    if (200..300).contains(&status) {
        let provider_id = serde_json::from_slice::<SuccessReply>(body)
            .ok()
            .and_then(|reply| reply.messages.into_iter().next())
            .and_then(|message| message.id)
            .filter(|id| !id.is_empty());
        return Ok(Accepted { provider_id });
    }
    let error = serde_json::from_slice::<ErrorReply>(body)
        .ok()
        .map(|reply| reply.error);
    let said = error.as_ref().map_or_else(
        || fallback_detail(status, body),
        |error| error_detail(status, error),
    );
    if let Some(code) = error.as_ref().and_then(|error| error.code) {
        if let Some(classification) = listed(code, retry_after) {
            return Err(with_detail(classification, &said));
        }
        if status >= 500 {
            return Err(Classification::Unknown {
                reason: format!("WhatsApp error {code}: {said}"),
            });
        }
        if status != 429 {
            return Err(Classification::Rejected {
                code: code.to_string(),
                reason: said,
            });
        }
    }
    Err(match status {
        429 => Classification::Throttled {
            scope: ThrottleScope::Sender,
            retry_after,
        },
        500.. => Classification::Unknown { reason: said },
        _ => Classification::Rejected {
            code: format!("http_{status}"),
            reason: said,
        },
    })
}

/// Appends the provider's words to the table's reason.
fn with_detail(classification: Classification, said: &str) -> Classification {
    match classification {
        // The table lists no rejections or unknown outcomes (those are built with the
        // provider's words), and a throttle has no reason to extend.
        kept @ (Classification::Rejected { .. }
        | Classification::Unknown { .. }
        | Classification::Throttled { .. }) => kept,
        other => other.map_reason(|reason| format!("{reason}: {said}")),
    }
}

/// `HTTP <status>, code <c>/<subcode>: <message> (<details>)`, cut to [`DETAIL_CHARS`].
fn error_detail(status: u16, error: &ApiError) -> String {
    let mut text = format!("HTTP {status}");
    if let Some(code) = error.code {
        text.push_str(&format!(", code {code}"));
    }
    if let Some(subcode) = error.error_subcode {
        text.push_str(&format!(", subcode {subcode}"));
    }
    if let Some(message) = error.message.as_deref().map(str::trim) {
        text.push_str(": ");
        text.push_str(message);
    }
    if let Some(details) = error
        .error_data
        .as_ref()
        .and_then(|data| data.details.as_deref())
    {
        text.push_str(&format!(" ({})", details.trim()));
    }
    text.chars().take(DETAIL_CHARS).collect()
}

/// `HTTP <status>: <body>` for an answer that is not a Graph API error.
fn fallback_detail(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let text = if text.is_empty() {
        StatusCode::from_u16(status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or_default()
    } else {
        text
    };
    format!("HTTP {status}: {text}")
        .chars()
        .take(DETAIL_CHARS)
        .collect()
}

/// Classifies `outcome` per the tables in the module docs.
pub(super) fn classify(outcome: Outcome) -> Result<Accepted, Classification> {
    match outcome {
        Outcome::Unsendable(reason) => Err(Classification::Rejected {
            code: "invalid_request".into(),
            reason,
        }),
        Outcome::NotConnected(reason) => Err(Classification::Retryable {
            retry_after: None,
            reason: format!("no connection: {reason}"),
        }),
        Outcome::TimedOut(reason) => Err(Classification::Unknown {
            reason: format!("no answer in time after sending: {reason}"),
        }),
        Outcome::Dropped(reason) => Err(Classification::Unknown {
            reason: format!("connection lost after sending: {reason}"),
        }),
        Outcome::Answered(answer) => classify_response(
            answer.status.as_u16(),
            retry_after(&answer.headers, answer.received_at),
            &answer.body,
        ),
    }
}
