//! Records the ports exchange.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::{
    AudienceId, CampaignId, ConsentEvent, Outcome, PhoneNumber, Purpose, RecipientKey, Region,
    RunId, TimeZone,
};

/// A run to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// `<campaign>@<fire>`.
    pub run: RunId,
    /// Its campaign.
    pub campaign: CampaignId,
    /// Its purpose.
    pub purpose: Purpose,
    /// The campaign file as given, for `status`.
    pub source: String,
    /// The sender the run sends through (`[senders.NAME]`); `None` only for a run stored
    /// before runs kept it, until it is submitted again.
    pub sender: Option<String>,
    /// The campaign file's text, so any worker rebuilds the campaign without the file (or its
    /// audience); `None` only for a run stored before runs kept it, until submitted again.
    pub campaign_text: Option<String>,
    /// `at_least_once` (unknown outcomes are retried) or not.
    pub at_least_once: bool,
    /// The SHA-256 of the audience file the run is expanded from, taken before its first row is
    /// read. An unfinished expansion resumes only from a file with the same hash, so a run never
    /// mixes rows of two versions of its audience. Every run this herald creates has one; `None`
    /// is a run created before stores recorded it (SQLite schema 5 and older), whose unfinished
    /// expansion is therefore not resumed.
    pub audience_sha256: Option<AudienceHash>,
}

/// The SHA-256 of an audience file's bytes. A cryptographic hash rather than a checksum: a file
/// edited on purpose to keep a checksum cannot pass for the one a run started from.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudienceHash([u8; 32]);

impl AudienceHash {
    /// The hash with these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The hash's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads the 64 lowercase hex digits `Display` writes; `None` for anything else.
    pub fn parse_hex(text: &str) -> Option<Self> {
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        let nibble = |d: u8| match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            _ => None,
        };
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Some(Self(bytes))
    }
}

impl std::fmt::Display for AudienceHash {
    /// 64 lowercase hex digits, as `sha256sum` prints them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl std::fmt::Debug for AudienceHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AudienceHash({self})")
    }
}

/// Whether a run's deliveries are being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Deliveries are processed.
    Active,
    /// Nothing is sent until resumed.
    Paused,
    /// Queued deliveries end `skipped(cancelled)`.
    Cancelled,
}

impl RunState {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Active => "active",
            RunState::Paused => "paused",
            RunState::Cancelled => "cancelled",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [RunState::Active, RunState::Paused, RunState::Cancelled]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The run.
    pub run: NewRun,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The audience size once expansion finished.
    pub total: Option<u64>,
    /// Active, paused or cancelled.
    pub state: RunState,
    /// Why the run was paused, when the pause came with a reason (a provider block, template
    /// errors); cleared when the run is resumed.
    pub state_reason: Option<String>,
    /// Who paused it (`herald`, `operator (cli)`, `operator (api)`), when paused by
    /// [`crate::Runs::pause`]; cleared when the run is resumed.
    pub paused_by: Option<String>,
}

/// What a delivery needs to be decided and sent later: a snapshot of the audience row, so a
/// resumed run does not depend on the audience file being unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientSnapshot {
    /// The recipient: the row's id, or its phone when it has none.
    pub id: AudienceId,
    /// The phone.
    pub phone: PhoneNumber,
    /// The zone, if known.
    pub zone: Option<TimeZone>,
    /// The locale, if known.
    pub locale: Option<String>,
    /// The row's `country` column.
    pub country: Option<Region>,
    /// Template attributes.
    pub attributes: BTreeMap<String, String>,
    /// The line in the audience file.
    pub line: u64,
}

/// Identifies a delivery: (run, recipient).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryKey {
    /// The run.
    pub run: RunId,
    /// The recipient: a recipient's id, or a synthetic key for a row that is not one
    /// ([`RecipientKey`]).
    pub recipient: RecipientKey,
}

/// A terminal outcome with an optional human detail (the bad row's message, the provider's
/// error text). For [`Outcome::Sent`] the detail is the provider's message id (the WhatsApp
/// `wamid`), which the store indexes for statuses and replies ([`crate::Feedback`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// The outcome.
    pub outcome: Outcome,
    /// Why, in words.
    pub detail: Option<String>,
}

/// How a new delivery starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initial {
    /// Queued, due at this instant.
    Queued {
        /// When to look at it first.
        due_at: DateTime<Utc>,
        /// Why not sooner; `None` when it is due at once.
        wait: Option<WaitReason>,
    },
    /// Already decided at expansion (a duplicate, an invalid row, no common window, …).
    Ended(Terminal),
}

/// Why a queued delivery is not due yet. Stored with every deferral, so `status` can say what
/// the queue waits for and `run --until-idle` can tell what is worth waiting for (the spread)
/// from what is not (a window, a throttle, an operator).
///
/// Frequency caps have no variant: a capped delivery ends `skipped(frequency_capped)` at the
/// moment of sending (design §1.5), it never waits for a cap to free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WaitReason {
    /// The planned instant (the campaign's `at` in the recipient's zone) is still ahead.
    Schedule,
    /// The send window is closed in the recipient's zone until its next opening.
    Window,
    /// Released into an open window at its spread offset (design §1.6): due within `spread`.
    Spread,
    /// Provider back-pressure (HTTP 429, throughput or pair-rate codes, `Retry-After`).
    Throttle,
    /// The provider proved it did not take the request (no connection, "not processed"), or an
    /// `at_least_once` outcome was unknown: tried again after a back-off.
    Retry,
    /// The sender's messaging tier (unique recipients per moving 24 hours) is used up until a
    /// slot frees.
    Tier,
    /// An operator must act: the provider blocked the sender or the run was paused. Every
    /// queued delivery of a paused run is reported as waiting for this, whatever it was
    /// deferred for; the engine does not store it on a delivery, so that a resumed run's
    /// deliveries are simply due again.
    Pause,
}

impl WaitReason {
    /// Every reason, in the order `status` lists them.
    pub const ALL: [WaitReason; 7] = [
        WaitReason::Schedule,
        WaitReason::Window,
        WaitReason::Spread,
        WaitReason::Throttle,
        WaitReason::Retry,
        WaitReason::Tier,
        WaitReason::Pause,
    ];

    /// Stable name (stored, and shown by `status`).
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Schedule => "schedule",
            WaitReason::Window => "window",
            WaitReason::Spread => "spread",
            WaitReason::Throttle => "throttle",
            WaitReason::Retry => "retry",
            WaitReason::Tier => "tier",
            WaitReason::Pause => "pause",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl From<herald_core::DeferReason> for WaitReason {
    fn from(reason: herald_core::DeferReason) -> Self {
        match reason {
            herald_core::DeferReason::Schedule => WaitReason::Schedule,
            herald_core::DeferReason::Window => WaitReason::Window,
            herald_core::DeferReason::Spread => WaitReason::Spread,
        }
    }
}

/// The queued deliveries of one run as of an instant: those due by then, and the others by
/// why they wait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueWaits {
    /// Due now: a worker takes them next (none while the run is paused).
    pub due: u64,
    /// The others, by reason, each with how many and the earliest due instant.
    pub waiting: BTreeMap<WaitReason, Waiting>,
}

impl QueueWaits {
    /// Every queued delivery counted.
    pub fn total(&self) -> u64 {
        self.due + self.waiting.values().map(|w| w.count).sum::<u64>()
    }

    /// The earliest due instant among the waiting ones.
    pub fn next(&self) -> Option<DateTime<Utc>> {
        self.waiting.values().map(|w| w.next).min()
    }
}

/// Queued deliveries waiting for one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// How many.
    pub count: u64,
    /// The earliest of their due instants.
    pub next: DateTime<Utc>,
}

/// A delivery to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// (run, recipient).
    pub key: DeliveryKey,
    /// The recipient. For rows that could not be parsed there is no phone: those start `Ended`
    /// and carry only the key ([`RecipientKey::Unreadable`], `line <n>`).
    pub recipient: Option<RecipientSnapshot>,
    /// The planned instant (the campaign's `at` in the recipient's zone).
    pub scheduled_at: Option<DateTime<Utc>>,
    /// No send at or after this.
    pub expires_at: Option<DateTime<Utc>>,
    /// How it starts.
    pub initial: Initial,
}

/// A queued delivery as the worker reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// (run, recipient).
    pub key: DeliveryKey,
    /// The recipient.
    pub recipient: RecipientSnapshot,
    /// The planned instant.
    pub scheduled_at: DateTime<Utc>,
    /// No send at or after this.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it became due.
    pub due_at: DateTime<Utc>,
    /// Requests made so far.
    pub attempts: u32,
}

/// Counts of one run. `queued + sending + terminal` equals the audience.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Waiting (deferred or due).
    pub queued: u64,
    /// Claimed, request in flight.
    pub sending: u64,
    /// Sent (whatever the provider reported since: `delivered` and `read` are part of it).
    pub sent: u64,
    /// Of `sent`, those the provider reported delivered (or read, which implies it).
    pub delivered: u64,
    /// Of `delivered`, those the provider reported read.
    pub read: u64,
    /// Failed, by provider code.
    pub failed: BTreeMap<String, u64>,
    /// Outcome unknown.
    pub unknown: u64,
    /// Expired.
    pub expired: u64,
    /// Skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// The earliest due instant of a queued delivery and how many are due within the hour after it.
    pub next_wave: Option<(DateTime<Utc>, u64)>,
}

impl RunCounts {
    /// Every delivery of the run.
    pub fn total(&self) -> u64 {
        self.queued
            + self.sending
            + self.sent
            + self.failed.values().sum::<u64>()
            + self.unknown
            + self.expired
            + self.skipped.values().sum::<u64>()
    }
}

/// A consent event with the key it is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConsent {
    /// The consent channel: a [`herald_core::ConsentChannel`] name (`whatsapp`, `sms`, …), the
    /// messaging channel the recipient gave or withdrew consent on, not Herald's transport.
    pub channel: String,
    /// The phone.
    pub phone: PhoneNumber,
    /// The event.
    pub event: ConsentEvent,
}
