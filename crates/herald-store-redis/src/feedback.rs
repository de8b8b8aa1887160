//! The feedback port ([`herald_store::Feedback`]): status reports on the ladder, the
//! provider-id index, kept early reports and stored tags. The keys are in [`crate::keys`]
//! ("Provider feedback"); the ladder itself is `scripts/feedback.lua`, shared by
//! `record_status.lua`, `change.lua` (a finish `sent` indexes its provider id and applies the
//! reports kept for it) and `recover_expired.lua` (a delivery ended `unknown` applies those kept
//! for its key), so a report and the write it waits for are atomic whichever comes first.
//!
//! Decisions the port leaves to the store:
//! - A kept report expires [`KEPT_STATUS_TTL`] after it was *received* (the `now` of the call
//!   that kept it), not after the provider's instant: a report Meta retried for days is still
//!   kept a full TTL. A retry of a kept report (the same text) is not kept twice and keeps its
//!   first expiry.
//! - Several kept reports for one message are applied in the order they arrived (as the
//!   conformance suite fixes it; the provider's instant, then the rung, break ties within a
//!   millisecond), each under the ladder: `failed` then `delivered` ends `failed`, `delivered`
//!   then `failed` ends `delivered`.
//! - A status never changes the send history (`hist:<phone>`): a message the provider accepted
//!   and then reported `failed` still counts toward frequency caps, the conservative side (it
//!   may have reached the phone's operator).
//! - Stored tags are kept for as long as the store (tags are the marketer's data, not the
//!   delivery's): compaction leaves them.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use herald_core::PhoneNumber;
use herald_store::{
    Feedback, KEPT_STATUS_LIMIT, KEPT_STATUS_TTL, MAX_TAG_BYTES, MAX_TAGS_PER_PHONE, Progress,
    ReportedStatus, SentMessage, StatusReport, StatusVerdict, StoreError, StoreResult,
};
use redis::Script;
use serde::Serialize;

use crate::codec::{Snap, StateJson, corrupt, delivery_name, ms, parse_key};
use crate::conn::{Conn, map_err};
use crate::scripts::{invocation, run as run_script, script};

/// How many expired kept reports one call of `record_status.lua` or `recover_expired.lua`
/// drops: each report kept adds one, so a bounded trim per call keeps up, and no call is long.
pub(crate) const KEPT_TRIM_PER_CALL: usize = 100;

/// The longest provider message id accepted (a WhatsApp `wamid` is about 60 bytes): it is a
/// hash field and part of key names, so it is bounded.
pub(crate) const MAX_PROVIDER_ID_BYTES: usize = 256;

/// The longest provider error code accepted in a `failed` report.
pub(crate) const MAX_CODE_BYTES: usize = 64;

/// How many phones one pipeline of [`Feedback::tags_for`] reads.
const TAGS_CHUNK: usize = 1_000;

static RECORD: LazyLock<Script> = LazyLock::new(|| {
    crate::claims::state_script(&format!(
        "{}\n{}",
        include_str!("../scripts/feedback.lua"),
        include_str!("../scripts/record_status.lua")
    ))
});
static MESSAGE: LazyLock<Script> = LazyLock::new(|| script(include_str!("../scripts/message.lua")));
static ADD_TAG: LazyLock<Script> = LazyLock::new(|| script(include_str!("../scripts/add_tag.lua")));

/// Provider feedback in Redis.
#[derive(Clone)]
pub struct RedisFeedback {
    conn: Conn,
}

impl RedisFeedback {
    pub(crate) fn new(conn: Conn) -> Self {
        Self { conn }
    }
}

/// A report as the kept zset's member holds it (`scripts/feedback.lua` reads it): built here
/// once, field order fixed, so a retried report is the same text and is not kept twice.
#[derive(Serialize)]
struct Kept<'a> {
    /// The provider id.
    i: &'a str,
    /// The callback's delivery as a member (`<run>` SEP `<rcpt>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<String>,
    /// `sent`, `delivered`, `read` or `failed`.
    s: &'a str,
    /// A failure's code.
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<&'a str>,
    /// The provider's instant (ms).
    a: i64,
}

/// A report that cannot be stored, naming its field.
fn invalid(field: &str, why: &str) -> StoreError {
    StoreError::Conflict(format!("status report: {field} {why}"))
}

/// The report's kept text, after checking what the store keys by.
fn encode(report: &StatusReport) -> StoreResult<String> {
    let id = report.provider_id.as_str();
    if id.is_empty() {
        return Err(invalid("provider_id", "is empty"));
    }
    if id.len() > MAX_PROVIDER_ID_BYTES {
        return Err(invalid(
            "provider_id",
            &format!("is longer than {MAX_PROVIDER_ID_BYTES} bytes"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(invalid("provider_id", "holds a control character"));
    }
    let (s, c) = match &report.status {
        ReportedStatus::Reached(progress) => (progress.as_str(), None),
        ReportedStatus::Failed { code } => {
            if code.is_empty() || code.len() > MAX_CODE_BYTES || code.chars().any(char::is_control)
            {
                return Err(invalid(
                    "status.code",
                    &format!("must be 1 to {MAX_CODE_BYTES} bytes without control characters"),
                ));
            }
            ("failed", Some(code.as_str()))
        }
    };
    let kept = Kept {
        i: id,
        k: report
            .callback
            .as_ref()
            .map(|key| crate::keys::Keys::member(key.run.as_str(), &key.recipient.to_string())),
        s,
        c,
        a: ms(report.at),
    };
    serde_json::to_string(&kept).map_err(|e| StoreError::Backend(Box::new(e)))
}

/// Text of one reply element.
fn text(value: &redis::Value) -> StoreResult<String> {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone())
            .map_err(|_| corrupt("record_status".into(), "reply is not UTF-8")),
        redis::Value::SimpleString(s) => Ok(s.clone()),
        other => Err(corrupt(
            "record_status".into(),
            format!("expected text, got {other:?}"),
        )),
    }
}

/// The phone of a delivery from its stored snapshot.
fn phone_of(run: &str, recipient: &str, snap: &str) -> StoreResult<PhoneNumber> {
    let name = || format!("snap:{run}/{recipient}");
    if snap.is_empty() {
        return Err(corrupt(name(), "a sent delivery without its snapshot"));
    }
    Snap::decode(snap, &name)?.phone(&name)
}

impl Feedback for RedisFeedback {
    async fn record_status(
        &self,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> StoreResult<StatusVerdict> {
        let kept = encode(report)?;
        let mut call = invocation(&self.conn, &RECORD);
        let (run, recipient) = match &report.callback {
            Some(key) => (key.run.as_str().to_owned(), key.recipient.to_string()),
            None => (String::new(), String::new()),
        };
        call.arg(&report.provider_id)
            .arg(run)
            .arg(recipient)
            .arg(&kept)
            .arg(ms(now))
            .arg(i64::try_from(KEPT_STATUS_TTL.as_millis()).unwrap_or(i64::MAX))
            .arg(KEPT_STATUS_LIMIT)
            .arg(KEPT_TRIM_PER_CALL);
        let reply: Vec<redis::Value> = run_script(&self.conn, &call).await?;
        let fields = reply.iter().map(text).collect::<StoreResult<Vec<_>>>()?;
        let key = |run: &str, recipient: &str| parse_key(run, recipient);
        let verdict = match fields.as_slice() {
            [v, run, recipient, snap] if v == "applied" => StatusVerdict::Applied {
                key: key(run, recipient)?,
                phone: phone_of(run, recipient, snap)?,
            },
            [v, run, recipient] if v == "unchanged" => StatusVerdict::Unchanged {
                key: key(run, recipient)?,
            },
            [v, run, recipient] if v == "refused" => StatusVerdict::Refused {
                key: key(run, recipient)?,
            },
            [v] if v == "kept" => StatusVerdict::Kept,
            [v] if v == "dropped" => {
                tracing::warn!(
                    limit = KEPT_STATUS_LIMIT,
                    "a status report for an unknown message was dropped: the kept reports are at their limit"
                );
                StatusVerdict::Dropped
            }
            other => {
                return Err(corrupt(
                    "record_status".into(),
                    format!("unexpected answer {other:?}"),
                ));
            }
        };
        Ok(verdict)
    }

    async fn message(&self, provider_id: &str) -> StoreResult<Option<SentMessage>> {
        if provider_id.is_empty() || provider_id.len() > MAX_PROVIDER_ID_BYTES {
            return Ok(None);
        }
        let mut call = invocation(&self.conn, &MESSAGE);
        call.arg(provider_id);
        let found: Vec<String> = run_script(&self.conn, &call).await?;
        let [run, recipient, state, snap] = found.as_slice() else {
            return Ok(None);
        };
        if state.is_empty() {
            // Compaction deletes the index entry with the state; a lone entry names nothing.
            return Ok(None);
        }
        let name = || delivery_name(run, recipient);
        let json = StateJson::decode(state, &name)?;
        let progress = match json.s.as_str() {
            "sent" => Some(match json.g.as_deref() {
                None => Progress::Sent,
                Some(rung) => Progress::parse(rung)
                    .ok_or_else(|| corrupt(name(), format!("unknown rung {rung:?}")))?,
            }),
            _ => None,
        };
        Ok(Some(SentMessage {
            key: parse_key(run, recipient)?,
            phone: phone_of(run, recipient, snap)?,
            progress,
        }))
    }

    async fn add_tag(
        &self,
        phone: &PhoneNumber,
        tag: &str,
        _now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        if tag.is_empty() || tag.len() > MAX_TAG_BYTES || tag.chars().any(char::is_control) {
            return Err(StoreError::Conflict(format!(
                "tag: must be 1 to {MAX_TAG_BYTES} bytes without control characters"
            )));
        }
        let mut call = invocation(&self.conn, &ADD_TAG);
        call.arg(phone.expose_e164())
            .arg(tag)
            .arg(MAX_TAGS_PER_PHONE);
        let answer: i64 = run_script(&self.conn, &call).await?;
        match answer {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(StoreError::Conflict(format!(
                "tag: the phone holds {MAX_TAGS_PER_PHONE} tags already"
            ))),
        }
    }

    async fn tags_for(&self, phones: &[PhoneNumber]) -> StoreResult<Vec<BTreeSet<String>>> {
        let mut all = Vec::with_capacity(phones.len());
        for chunk in phones.chunks(TAGS_CHUNK) {
            let mut pipe = redis::pipe();
            for phone in chunk {
                pipe.cmd("SMEMBERS")
                    .arg(self.conn.keys.tags(phone.expose_e164()));
            }
            let mut manager = self.conn.manager.clone();
            let sets: Vec<BTreeSet<String>> =
                pipe.query_async(&mut manager).await.map_err(map_err)?;
            all.extend(sets);
        }
        Ok(all)
    }
}
