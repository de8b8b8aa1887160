//! What the provider tells Herald after a send: delivery statuses (found by the provider's
//! message id, or by the delivery key the request carried as callback data), replies to a
//! message (found by the replied-to message id), and the tags a reply stores for a phone.
//!
//! # The ladder
//! A delivery's outcome is terminal once written by the worker, with exactly these exceptions,
//! all made by [`Feedback::record_status`] and nothing else:
//! - `sent` climbs [`Progress`]: `sent` → `delivered` → `read`, never down. A report of a rung
//!   at or below the current one changes nothing (Meta retries a webhook for days, and `read`
//!   may arrive before `delivered`).
//! - `sent` still at [`Progress::Sent`] becomes `failed(code)` on a `failed` report (a
//!   delivered or read message stays so: a later `failed` for it changes nothing).
//! - `unknown` (the worker crashed after the provider may have accepted the request) becomes
//!   `sent` at the reported rung, or `failed(code)`: the report proves what happened.
//!
//! Nothing ever goes back to `queued`, and `skipped`, `expired` and a `failed` from the
//! provider's synchronous answer never change.
//!
//! # Early reports
//! A report can arrive before the worker records the send it is about (the provider answered,
//! the webhook came, and the worker's `finish` is still on its way; or the worker crashed and
//! the lease has not expired). Such a report is [`StatusVerdict::Kept`] for
//! [`KEPT_STATUS_TTL`] and applied, atomically with it, by the write that makes the delivery
//! `sent` (a `finish` whose [`crate::Terminal`] is `sent`, its `detail` being the provider's
//! message id) or `unknown` (a lease recovered), under the same ladder rules.
//!
//! # Message ids
//! For `sent`, a delivery's [`crate::Terminal::detail`] is the provider's message id (the
//! WhatsApp `wamid`). Every store indexes it when the delivery ends `sent`, for as long as it
//! keeps the delivery (compaction drops both together), so statuses and replies find the
//! delivery; a report that resolves an `unknown` by its callback key indexes the id it names.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::PhoneNumber;

use crate::{DeliveryKey, StoreResult};

/// How long a report for a message the store does not know yet is kept.
pub const KEPT_STATUS_TTL: Duration = Duration::from_secs(24 * 3600);

/// At most this many early reports are kept at once; past it a new one is
/// [`StatusVerdict::Dropped`], so a flood of reports for unknown ids cannot fill the store.
pub const KEPT_STATUS_LIMIT: u64 = 100_000;

/// A tag is at most this many bytes (and non-empty, without control characters).
pub const MAX_TAG_BYTES: usize = 64;

/// A phone holds at most this many stored tags; adding past it is refused (`Conflict`).
pub const MAX_TAGS_PER_PHONE: usize = 100;

/// How far a sent message got: a one-way ladder, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Progress {
    /// Accepted by the provider (the outcome `sent` itself).
    Sent,
    /// Delivered to the phone.
    Delivered,
    /// Read by the recipient (implies delivered).
    Read,
}

impl Progress {
    /// Every rung, bottom first.
    pub const ALL: [Progress; 3] = [Progress::Sent, Progress::Delivered, Progress::Read];

    /// Stable name (stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Progress::Sent => "sent",
            Progress::Delivered => "delivered",
            Progress::Read => "read",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// What a provider's status report says of one message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReportedStatus {
    /// Reached a rung of the ladder.
    Reached(Progress),
    /// Not delivered, with the provider's error code.
    Failed {
        /// The provider's error code (`131050`, …).
        code: String,
    },
}

/// One status report, as the webhook parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The provider's message id (`wamid`).
    pub provider_id: String,
    /// The delivery the request named in its callback data, when it did (and the data parsed
    /// as a key). The message id, when indexed, wins over it.
    pub callback: Option<DeliveryKey>,
    /// What happened.
    pub status: ReportedStatus,
    /// When it happened, by the provider's clock.
    pub at: DateTime<Utc>,
}

/// What [`Feedback::record_status`] did with a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusVerdict {
    /// The delivery moved (a rung up, `sent` → `failed`, or `unknown` → `sent`/`failed`).
    Applied {
        /// The delivery.
        key: DeliveryKey,
        /// Its phone (a `failed` 131050 opts it out).
        phone: PhoneNumber,
    },
    /// The delivery is already at or past what the report says (a duplicate, an out-of-order
    /// report, a `failed` after delivery): nothing changed.
    Unchanged {
        /// The delivery.
        key: DeliveryKey,
    },
    /// The delivery is in a state no report may change (queued, skipped, expired, failed by
    /// the provider's answer): nothing changed.
    Refused {
        /// The delivery.
        key: DeliveryKey,
    },
    /// No delivery is known for it yet (or the one its callback names is still being sent):
    /// kept for [`KEPT_STATUS_TTL`] and applied when the send is recorded. A second report
    /// for the same message is kept beside the first; what is applied is what the ladder
    /// makes of all of them.
    Kept,
    /// Nothing known for it and [`KEPT_STATUS_LIMIT`] early reports are already kept: dropped.
    Dropped,
}

/// A sent message found by its provider id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The delivery.
    pub key: DeliveryKey,
    /// Its phone.
    pub phone: PhoneNumber,
    /// Where it is on the ladder (`None` when the delivery is no longer `sent`: failed after).
    pub progress: Option<Progress>,
}

/// Provider feedback: statuses, the message-id index, stored tags.
pub trait Feedback: Send + Sync {
    /// Applies one status report under the ladder rules (module doc), atomically: two reports
    /// for one delivery at once end as if applied one after the other. Kept reports older than
    /// [`KEPT_STATUS_TTL`] as of `now` are dropped (by this call or another, within one TTL).
    fn record_status(
        &self,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<StatusVerdict>> + Send;
    /// The delivery a provider message id was recorded for (replies name the message they
    /// answer), while the store keeps it.
    fn message(
        &self,
        provider_id: &str,
    ) -> impl Future<Output = StoreResult<Option<SentMessage>>> + Send;
    /// Stores `tag` for `phone` (a button reply's `{ tag: x }`); `Ok(false)` if it was stored
    /// already. A tag that is empty, longer than [`MAX_TAG_BYTES`] or holds a control character
    /// is `Conflict`, and so is a phone that holds [`MAX_TAGS_PER_PHONE`] tags already.
    fn add_tag(
        &self,
        phone: &PhoneNumber,
        tag: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// The stored tags of each phone, in the same order.
    fn tags_for(
        &self,
        phones: &[PhoneNumber],
    ) -> impl Future<Output = StoreResult<Vec<BTreeSet<String>>>> + Send;
}
