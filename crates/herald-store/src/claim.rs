//! Claims with an owner and a lease, the claim of a group of deliveries that re-checks
//! everything its decision saw, and the answers it gives.
//!
//! # Why the claim re-checks in the store
//! Several workers share one queue. A worker decides a delivery from what it read (consent,
//! the phone's send history, the run's state, the sender's state) and then claims it; between
//! the read and the claim another worker may have sent to the same phone, an operator may have
//! paused the run, a STOP may have arrived, the provider may have throttled or blocked the
//! sender on another worker. The claim therefore carries what the decision saw and the store
//! refuses it, atomically with taking it, when any of it moved. The rate (GCRA send slots), the
//! messaging tier, the throttle and the block are decided in the same atomic step, so their sum
//! over every worker holds.
//!
//! # Store time
//! Leases and rate slots are timed by the store, not by the worker asking: workers' clocks
//! differ (on Redis the scripts use `TIME`). Every backend takes a [`StoreTime`] so tests and the
//! conformance suite drive that time by hand.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::PastSend;
use herald_core::clock::Clock;

use crate::{ConsentSeen, DeliveryKey};

/// Who holds a claim: `host/pid/random`, unique per worker process and start. At most 128
/// printable ASCII characters, no spaces (it is stored with every claim and shown by `status`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(String);

impl WorkerId {
    /// Checks `text`: 1 to 128 printable ASCII characters without spaces.
    pub fn parse(text: &str) -> Option<Self> {
        let ok =
            !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(text.to_owned()))
    }

    /// `host/pid/random` for this process: `random` (8 hex digits from the process's start
    /// instant and a counter) makes a restarted worker with a reused pid a different owner.
    pub fn for_process(host: &str, pid: u32, random: u32) -> Self {
        let host: String = host
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '/')
            .take(96)
            .collect();
        let host = if host.is_empty() {
            "host".to_owned()
        } else {
            host
        };
        Self(format!("{host}/{pid}/{random:08x}"))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a store's own time comes from: leases and rate slots are timed by it.
#[derive(Clone, Default)]
pub enum StoreTime {
    /// The backend's own clock: the system clock of the SQLite process, Redis's `TIME`.
    #[default]
    Backend,
    /// A clock the caller drives (tests, the conformance suite).
    Clock(Arc<dyn Clock>),
}

impl std::fmt::Debug for StoreTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreTime::Backend => f.write_str("Backend"),
            StoreTime::Clock(_) => f.write_str("Clock(..)"),
        }
    }
}

/// What the decision to send knew of the phone's send history: how many sends to it were
/// recorded at or after `since` (the start of the longest cap period it checked). A different
/// number at the claim means another worker sent to the phone in between: the claim is refused
/// ([`Refusal::CapChanged`]) and the delivery decided again with that send counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySeen {
    /// The horizon the decision read from.
    pub since: DateTime<Utc>,
    /// How many sends it saw.
    pub sends: u64,
}

/// The sender a group of claims is made for, with the limits the store enforces at the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderLimits {
    /// The sender's name, as configured (`[senders.NAME]`); runs store it.
    pub name: String,
    /// Requests per second, summed over every worker: GCRA with a burst of one, one slot per
    /// request, every `1 / per_second` seconds.
    pub per_second: NonZeroU32,
    /// Unique recipients per moving 24 hours (the messaging tier), when one is configured.
    pub tier: Option<u64>,
    /// How far ahead of the store's now a slot may be granted. A claim is made only for a slot
    /// this close, so a crash leaves few claimed-but-unsent deliveries (tens of milliseconds).
    pub horizon: Duration,
}

impl SenderLimits {
    /// The GCRA emission interval in microseconds: `1 / per_second`, rounded up, so
    /// `per_second` slots never fit in less than a second. Every store spaces slots by it.
    pub fn interval_us(&self) -> i64 {
        let per_second = i64::from(self.per_second.get());
        (1_000_000 + per_second - 1) / per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_second: u32) -> SenderLimits {
        SenderLimits {
            name: "main".into(),
            per_second: NonZeroU32::new(per_second).unwrap(),
            tier: None,
            horizon: Duration::ZERO,
        }
    }

    #[test]
    fn the_interval_is_rounded_up_to_the_microsecond() {
        assert_eq!(limits(1).interval_us(), 1_000_000);
        assert_eq!(limits(3).interval_us(), 333_334);
        assert_eq!(limits(80).interval_us(), 12_500);
        assert_eq!(limits(3_000_000).interval_us(), 1);
        assert!(3 * limits(3).interval_us() > 1_000_000);
    }
}

/// One delivery to claim, with what its decision saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The delivery.
    pub key: DeliveryKey,
    /// The send to record in the phone's history; the store records it at the granted slot,
    /// not at `send.at`.
    pub send: PastSend,
    /// The consent log as the decision saw it.
    pub consent: ConsentSeen,
    /// The send history as the decision saw it.
    pub history: HistorySeen,
}

/// Claims of one worker for one sender, made in one atomic step (a transaction, a script).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimGroup {
    /// Who claims.
    pub owner: WorkerId,
    /// How long a claim stays the owner's without a renewal ([`crate::Deliveries::renew`]).
    pub lease: Duration,
    /// The sender and its limits.
    pub sender: SenderLimits,
    /// The deliveries, in the order their slots are handed out.
    pub claims: Vec<Claim>,
}

/// The store's answer to one [`Claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimAnswer {
    /// Claimed: `sending`, owned by the group's owner until its lease ends, its send recorded
    /// in the phone's history at `slot`. The request must leave at `slot`: `wait` after the
    /// answer (the slot less the store's now, zero if already past), measured on the store's
    /// clock so a worker whose clock differs still keeps the rate.
    Claimed {
        /// The granted send slot.
        slot: DateTime<Utc>,
        /// How long to wait before the request.
        wait: Duration,
    },
    /// Not claimed; the delivery is unchanged.
    Refused(Refusal),
}

/// Why a claim was refused. The delivery was not claimed and nothing was recorded: the worker
/// defers it, ends it or leaves it for the next step according to the reason, never sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not queued and due any more: another worker claimed, deferred or ended it.
    Taken,
    /// Its run is paused.
    RunPaused,
    /// Its run is cancelled.
    RunCancelled,
    /// The recipient's consent log has events the decision did not see.
    ConsentChanged,
    /// The phone's send history has sends the decision did not see.
    CapChanged,
    /// The sender's tier is used up until `frees` (the oldest recipient of the window leaves
    /// it).
    TierFull {
        /// When a slot of the tier frees.
        frees: DateTime<Utc>,
    },
    /// The provider asked the sender to hold back until then (any worker saw it).
    Throttled {
        /// Until when.
        until: DateTime<Utc>,
    },
    /// The provider blocked the sender; an operator must resume it.
    Blocked {
        /// Why, as recorded with the block.
        reason: String,
    },
    /// No send slot is free within the horizon: the next one is at `next`. Later claims of the
    /// same group get the same answer.
    RateAhead {
        /// The next free slot.
        next: DateTime<Utc>,
    },
}

impl Refusal {
    /// Stable name (logs, tests).
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::Taken => "taken",
            Refusal::RunPaused => "run_paused",
            Refusal::RunCancelled => "run_cancelled",
            Refusal::ConsentChanged => "consent_changed",
            Refusal::CapChanged => "cap_changed",
            Refusal::TierFull { .. } => "tier_full",
            Refusal::Throttled { .. } => "sender_throttled",
            Refusal::Blocked { .. } => "sender_blocked",
            Refusal::RateAhead { .. } => "rate_ahead",
        }
    }
}

/// A delivery whose lease expired, as [`crate::Deliveries::recover_expired`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The delivery.
    pub key: DeliveryKey,
    /// The worker whose lease expired.
    pub owner: WorkerId,
    /// `true`: requeued (`at_least_once`); `false`: ended, `unknown` or, for an `at_least_once`
    /// run cancelled meanwhile, `skipped(cancelled)` (the engine only counts and logs this, so
    /// the two ends share `false` rather than a new field every caller would have to build).
    pub requeued: bool,
}

/// Who claimed a delivery last and how it stands: status and tests tell whose claim ended how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    /// The delivery.
    pub key: DeliveryKey,
    /// The worker that claimed it last.
    pub owner: WorkerId,
    /// The slot its last claim was granted.
    pub slot: DateTime<Utc>,
    /// Its state name now (`sending`, `sent`, `unknown`, `queued` after a requeue, …).
    pub state: String,
    /// Whether another worker recovered it after this owner's lease expired.
    pub recovered: bool,
}

/// Which deliveries a worker works: one sender's, optionally only some runs (`herald run FILE`
/// steps only its own campaign's runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkScope {
    /// The sender.
    pub sender: String,
    /// Only these runs, when given.
    pub runs: Option<Vec<herald_core::RunId>>,
}
