//! Meta's webhook notifications (`POST /webhooks/whatsapp`) as typed values: inbound messages
//! (text, template quick-reply buttons, interactive button replies) and message statuses.
//!
//! # Lenient where Meta evolves, strict where Herald decides
//! Meta adds fields to these payloads without notice (`pricing`, `conversation`, `referral`,
//! new message types), so unknown fields are ignored and unknown message types or statuses
//! become [`InboundContent::Other`] / [`StatusKind::Other`] (counted, then ignored by the
//! engine) rather than failing the whole notification: a refused notification is retried by
//! Meta for days. What Herald acts on is strict: the envelope (`object` must be
//! `whatsapp_business_account`), `metadata.phone_number_id`, message and status ids, senders,
//! and timestamps must be present and well formed, or the notification is a [`PayloadError`].
//!
//! # Bounds
//! A body over [`MAX_BODY_BYTES`] is not read; a notification with more than [`MAX_ENTRIES`]
//! entries, [`MAX_CHANGES`] changes or [`MAX_EVENTS`] messages and statuses in all is refused
//! (Meta batches at most a few hundred).

use chrono::{DateTime, Utc};

/// The largest body read (Meta's batches are a few KiB to a few hundred KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// At most this many `entry` items.
pub const MAX_ENTRIES: usize = 100;
/// At most this many `changes`, over all entries.
pub const MAX_CHANGES: usize = 200;
/// At most this many messages and statuses, over all changes.
pub const MAX_EVENTS: usize = 2000;
/// The longest text body kept (a keyword is a word; Meta allows 4096 characters).
pub const MAX_TEXT_CHARS: usize = 4096;

/// A notification Herald cannot use: names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON, or a field Herald uses has the wrong type or is missing.
    #[error("invalid WhatsApp notification at line {line} column {column}: {message}")]
    Invalid {
        /// serde's category: `syntax`, `data` (a wrong type or a missing field), `eof`.
        category: &'static str,
        /// Where in the body.
        line: usize,
        /// Where in the body.
        column: usize,
        /// serde's message, which can quote a value of the body (a phone number, a text):
        /// log it at debug only ([`PayloadError::category`] and [`PayloadError::location`]
        /// are safe at any level).
        message: String,
    },
    /// `object` is not `whatsapp_business_account`.
    #[error(
        "invalid WhatsApp notification: object is {0:?}, expected \"whatsapp_business_account\""
    )]
    Object(String),
    /// A list is longer than its bound.
    #[error("invalid WhatsApp notification: more than {limit} {field}")]
    TooMany {
        /// Which list.
        field: &'static str,
        /// Its bound.
        limit: usize,
    },
    /// A field is present but unusable (an empty id, a timestamp that is not unix seconds).
    #[error("invalid WhatsApp notification: {field}: {reason}")]
    Field {
        /// The field's path (`entry[0].changes[1].value.statuses[2].timestamp`).
        field: String,
        /// Why.
        reason: &'static str,
    },
}

impl PayloadError {
    /// What kind of problem, as a bounded label that quotes nothing from the body.
    pub fn category(&self) -> &'static str {
        match self {
            PayloadError::Invalid { category, .. } => category,
            PayloadError::Object(_) => "object",
            PayloadError::TooMany { .. } => "too_many",
            PayloadError::Field { .. } => "field",
        }
    }

    /// Where: the field's path, the list's name, or the line and column, without any value
    /// from the body (safe to log above debug; the `Display` form is not).
    pub fn location(&self) -> String {
        match self {
            PayloadError::Invalid { line, column, .. } => format!("line {line} column {column}"),
            PayloadError::Object(_) => "object".to_owned(),
            PayloadError::TooMany { field, .. } => (*field).to_owned(),
            PayloadError::Field { field, .. } => field.clone(),
        }
    }
}

/// One notification: the changes of every entry, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The `messages` changes (other fields, such as template status updates, are left out).
    pub changes: Vec<Change>,
}

impl Notification {
    /// Every distinct `phone_number_id` the notification names, sorted: each must belong to a
    /// configured sender whose app secret signs the body.
    pub fn phone_number_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .changes
            .iter()
            .map(|c| c.phone_number_id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// What happened on one business phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The business number's id (`metadata.phone_number_id`): which sender.
    pub phone_number_id: String,
    /// Inbound messages.
    pub messages: Vec<InboundMessage>,
    /// Status reports on sent messages.
    pub statuses: Vec<StatusUpdate>,
}

/// A message a user sent to the business number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// Its `wamid` (the proof of a keyword's consent event).
    pub id: String,
    /// The user's number, digits without `+` (as Meta writes it). Personal data: never log
    /// above debug, never a metric label.
    pub from: String,
    /// When the user sent it.
    pub timestamp: DateTime<Utc>,
    /// What it says.
    pub content: InboundContent,
}

/// The parts of an inbound message Herald acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundContent {
    /// A text message (`text.body`).
    Text(String),
    /// A tap on a template's quick-reply button (`button.payload`) or an interactive button
    /// (`interactive.button_reply.id`).
    Button {
        /// The button's payload (or the interactive reply's id).
        payload: String,
        /// The message the button belonged to (`context.id`); absent when Meta omitted it.
        replied_to: Option<String>,
    },
    /// Any other type (image, reaction, …), by its `type`: ignored.
    Other(String),
}

impl InboundContent {
    /// Bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            InboundContent::Text(_) => "text",
            InboundContent::Button { .. } => "button",
            InboundContent::Other(_) => "other_message",
        }
    }
}

/// A status report on a message the business sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The message's `wamid`.
    pub id: String,
    /// What happened.
    pub status: StatusKind,
    /// When, by Meta's clock.
    pub timestamp: DateTime<Utc>,
    /// The recipient's number, digits without `+`. Personal data.
    pub recipient_id: String,
    /// The first error's code, for `failed`.
    pub error_code: Option<i64>,
    /// `biz_opaque_callback_data` as sent with the request (see `callback`).
    pub callback_data: Option<String>,
}

/// A status value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusKind {
    /// Accepted by WhatsApp.
    Sent,
    /// Delivered to the phone.
    Delivered,
    /// Read.
    Read,
    /// Not delivered (`errors[0].code` says why).
    Failed,
    /// A value Herald does not act on (`deleted`, `warning`, future ones).
    Other(String),
}

/// Parses a notification body (already size-checked and signature-verified by the caller).
///
/// # Errors
/// See [`PayloadError`]; the module docs say what is strict and what is ignored.
pub fn parse_notification(body: &[u8]) -> Result<Notification, PayloadError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(PayloadError::TooMany {
            field: "body bytes",
            limit: MAX_BODY_BYTES,
        });
    }
    let raw: raw::Notification =
        serde_json::from_slice(body).map_err(|error| PayloadError::Invalid {
            category: match error.classify() {
                serde_json::error::Category::Io => "io",
                serde_json::error::Category::Syntax => "syntax",
                serde_json::error::Category::Data => "data",
                serde_json::error::Category::Eof => "eof",
            },
            line: error.line(),
            column: error.column(),
            message: error.to_string(),
        })?;
    if raw.object != "whatsapp_business_account" {
        return Err(PayloadError::Object(raw.object));
    }
    if raw.entry.len() > MAX_ENTRIES {
        return Err(PayloadError::TooMany {
            field: "entries",
            limit: MAX_ENTRIES,
        });
    }
    let mut changes = Vec::new();
    let mut events = 0usize;
    for (e, entry) in raw.entry.into_iter().enumerate() {
        for (c, change) in entry.changes.into_iter().enumerate() {
            if changes.len() >= MAX_CHANGES {
                return Err(PayloadError::TooMany {
                    field: "changes",
                    limit: MAX_CHANGES,
                });
            }
            if change.field != "messages" {
                continue;
            }
            let path = format!("entry[{e}].changes[{c}].value");
            let value = change.value.ok_or_else(|| PayloadError::Field {
                field: path.clone(),
                reason: "missing",
            })?;
            events += value.messages.len() + value.statuses.len();
            if events > MAX_EVENTS {
                return Err(PayloadError::TooMany {
                    field: "messages and statuses",
                    limit: MAX_EVENTS,
                });
            }
            let phone_number_id =
                value
                    .metadata
                    .map(|m| m.phone_number_id)
                    .ok_or_else(|| PayloadError::Field {
                        field: format!("{path}.metadata"),
                        reason: "missing",
                    })?;
            non_empty(&phone_number_id, || {
                format!("{path}.metadata.phone_number_id")
            })?;
            let messages = value
                .messages
                .into_iter()
                .enumerate()
                .map(|(i, m)| message(m, &format!("{path}.messages[{i}]")))
                .collect::<Result<_, _>>()?;
            let statuses = value
                .statuses
                .into_iter()
                .enumerate()
                .map(|(i, s)| status(s, &format!("{path}.statuses[{i}]")))
                .collect::<Result<_, _>>()?;
            changes.push(Change {
                phone_number_id,
                messages,
                statuses,
            });
        }
    }
    Ok(Notification { changes })
}

fn non_empty(value: &str, field: impl FnOnce() -> String) -> Result<(), PayloadError> {
    if value.trim().is_empty() {
        return Err(PayloadError::Field {
            field: field(),
            reason: "empty",
        });
    }
    Ok(())
}

/// Meta's timestamps are unix seconds as a decimal string.
fn timestamp(value: &str, field: impl FnOnce() -> String) -> Result<DateTime<Utc>, PayloadError> {
    value
        .parse::<i64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| PayloadError::Field {
            field: field(),
            reason: "not unix seconds",
        })
}

fn message(raw: raw::Message, path: &str) -> Result<InboundMessage, PayloadError> {
    non_empty(&raw.id, || format!("{path}.id"))?;
    non_empty(&raw.from, || format!("{path}.from"))?;
    let timestamp = timestamp(&raw.timestamp, || format!("{path}.timestamp"))?;
    let replied_to = raw.context.and_then(|c| c.id).filter(|id| !id.is_empty());
    let content = match raw.kind.as_str() {
        "text" => {
            let body = raw
                .text
                .map(|t| t.body)
                .ok_or_else(|| PayloadError::Field {
                    field: format!("{path}.text"),
                    reason: "missing",
                })?;
            InboundContent::Text(body.chars().take(MAX_TEXT_CHARS).collect())
        }
        "button" => {
            let payload =
                raw.button
                    .and_then(|b| b.payload)
                    .ok_or_else(|| PayloadError::Field {
                        field: format!("{path}.button.payload"),
                        reason: "missing",
                    })?;
            InboundContent::Button {
                payload,
                replied_to,
            }
        }
        "interactive" => match raw.interactive.and_then(|i| i.button_reply) {
            Some(reply) => InboundContent::Button {
                payload: reply.id,
                replied_to,
            },
            // A list reply or a future interactive kind: not a button Herald defined.
            None => InboundContent::Other("interactive".to_owned()),
        },
        other => InboundContent::Other(other.to_owned()),
    };
    Ok(InboundMessage {
        id: raw.id,
        from: raw.from,
        timestamp,
        content,
    })
}

fn status(raw: raw::Status, path: &str) -> Result<StatusUpdate, PayloadError> {
    non_empty(&raw.id, || format!("{path}.id"))?;
    let timestamp = timestamp(&raw.timestamp, || format!("{path}.timestamp"))?;
    let status = match raw.status.as_str() {
        "sent" => StatusKind::Sent,
        "delivered" => StatusKind::Delivered,
        "read" => StatusKind::Read,
        "failed" => StatusKind::Failed,
        other => StatusKind::Other(other.to_owned()),
    };
    let error_code = raw.errors.first().map(|e| e.code);
    if status == StatusKind::Failed && error_code.is_none() {
        return Err(PayloadError::Field {
            field: format!("{path}.errors"),
            reason: "a failed status without an error code",
        });
    }
    Ok(StatusUpdate {
        id: raw.id,
        status,
        timestamp,
        recipient_id: raw.recipient_id,
        error_code,
        callback_data: raw.biz_opaque_callback_data.filter(|d| !d.is_empty()),
    })
}

/// Meta's shapes, as far as Herald reads them. No `deny_unknown_fields`: see the module docs.
mod raw {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub(super) struct Notification {
        pub(super) object: String,
        #[serde(default)]
        pub(super) entry: Vec<Entry>,
    }

    #[derive(Deserialize)]
    pub(super) struct Entry {
        #[serde(default)]
        pub(super) changes: Vec<Change>,
    }

    #[derive(Deserialize)]
    pub(super) struct Change {
        pub(super) field: String,
        pub(super) value: Option<Value>,
    }

    #[derive(Deserialize)]
    pub(super) struct Value {
        pub(super) metadata: Option<Metadata>,
        #[serde(default)]
        pub(super) messages: Vec<Message>,
        #[serde(default)]
        pub(super) statuses: Vec<Status>,
    }

    #[derive(Deserialize)]
    pub(super) struct Metadata {
        pub(super) phone_number_id: String,
    }

    #[derive(Deserialize)]
    pub(super) struct Message {
        pub(super) id: String,
        pub(super) from: String,
        pub(super) timestamp: String,
        #[serde(rename = "type")]
        pub(super) kind: String,
        pub(super) text: Option<Text>,
        pub(super) button: Option<Button>,
        pub(super) interactive: Option<Interactive>,
        pub(super) context: Option<Context>,
    }

    #[derive(Deserialize)]
    pub(super) struct Text {
        pub(super) body: String,
    }

    #[derive(Deserialize)]
    pub(super) struct Button {
        pub(super) payload: Option<String>,
    }

    #[derive(Deserialize)]
    pub(super) struct Interactive {
        pub(super) button_reply: Option<ButtonReply>,
    }

    #[derive(Deserialize)]
    pub(super) struct ButtonReply {
        pub(super) id: String,
    }

    #[derive(Deserialize)]
    pub(super) struct Context {
        pub(super) id: Option<String>,
    }

    #[derive(Deserialize)]
    pub(super) struct Status {
        pub(super) id: String,
        pub(super) status: String,
        pub(super) timestamp: String,
        #[serde(default)]
        pub(super) recipient_id: String,
        #[serde(default)]
        pub(super) errors: Vec<Error>,
        pub(super) biz_opaque_callback_data: Option<String>,
    }

    #[derive(Deserialize)]
    pub(super) struct Error {
        pub(super) code: i64,
    }
}

#[cfg(test)]
#[path = "inbound_test.rs"]
mod tests;
