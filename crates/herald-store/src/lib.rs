//! The store ports. The engine sees only these traits; `herald-store-sqlite` implements them
//! now and `herald-store-redis` will implement the same, both passing the suite of
//! `conformance` (behind the cargo feature of that name).
//!
//! # Why the queue and the ledger are one port
//! At-most-once (design §1.3) needs "this delivery is now being sent" to be recorded *before*
//! the request and atomically with leaving the queue, and frequency caps need the send counted in
//! the same step. Splitting queue and ledger into separate stores would make that a distributed
//! transaction; [`Deliveries::claim`] is one atomic operation in every backend instead
//! (a SQLite transaction, a Redis Lua script).
//!
//! Methods that record a caller's decision take its `now`; claims, leases, rate slots and
//! throttles are timed by the store's own time ([`StoreTime`]), which workers share whatever
//! their clocks say.

mod claim;
#[cfg(feature = "conformance")]
pub mod conformance;
mod durability;
mod feedback;
mod fires;
mod sender;
mod types;

use std::future::Future;

use chrono::{DateTime, Utc};
use herald_core::{PastSend, PhoneNumber, RecordedConsent, RunId};

pub use claim::*;
pub use durability::Durability;
pub use feedback::*;
pub use fires::*;
pub use sender::*;
pub use types::*;

/// What went wrong in a store. The engine retries on the variant, never on message text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or is busy; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The operation conflicts with the current state (e.g. a second `herald run` on one file).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Stored data cannot be read back.
    #[error("corrupt data at {key}: {reason}")]
    Corrupt {
        /// Where.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store's location, as configured, cannot be used: a directory where the file should
    /// be, a file that is not a store, no permission, a read-only file system. The user's to fix
    /// (their config names the location), unlike [`StoreError::Backend`].
    #[error("cannot use the store at {location}: {source}")]
    Unusable {
        /// The file (or its lock file), as the system was asked for it.
        location: String,
        /// What the system said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Any other backend failure.
    #[error("store error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// Runs: one row per (campaign, fire time), created once.
pub trait Runs: Send + Sync {
    /// Records a run; `Ok(false)` if it already exists (a second submission is not a new run,
    /// and changes nothing of the stored one, its audience hash, sender and campaign text
    /// included), with one exception: a run stored before runs kept their sender and campaign
    /// text (SQLite schema 7 and older) adopts `run.sender` and `run.campaign_text` the first
    /// time it is submitted again, which is how such a run becomes workable by any worker.
    fn create_run(
        &self,
        run: &NewRun,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// One run.
    fn run(&self, run: &RunId) -> impl Future<Output = StoreResult<Option<RunRecord>>> + Send;
    /// Every run, newest first.
    fn runs(&self) -> impl Future<Output = StoreResult<Vec<RunRecord>>> + Send;
    /// Marks the audience fully expanded with its row count.
    fn finish_expansion(
        &self,
        run: &RunId,
        total: u64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Pauses the run and records who paused it (`herald` for the engine's own pauses, such as
    /// template errors; `operator (cli)` or `operator (api)` for a person) and why, for `status`
    /// and the admin API. Resuming with [`Runs::set_run_state`] clears both. A cancelled run
    /// stays cancelled (`Conflict`). A paused run stays paused, across restarts of every
    /// process, until someone resumes it.
    fn pause(
        &self,
        run: &RunId,
        by: &str,
        reason: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Pauses (without a reason: `paused_by` and `state_reason` are cleared), resumes (clearing
    /// who paused and why) or cancels.
    fn set_run_state(
        &self,
        run: &RunId,
        state: RunState,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Deliveries: the queue (queued rows with a due instant) and the ledger (terminal outcomes).
pub trait Deliveries: Send + Sync {
    /// Inserts a batch; rows whose (run, recipient) exists are left untouched. Returns how many
    /// were new. Idempotent, so re-expanding after a crash creates no second delivery.
    fn insert_batch(&self, batch: &[NewDelivery]) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Up to `limit` queued deliveries with `due_at <= now`, earliest first, of runs that are
    /// neither paused nor cancelled.
    fn due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<Delivery>>> + Send;
    /// Moves a queued delivery to a later due instant, recording why it waits.
    fn defer(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: WaitReason,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Ends a delivery with its outcome: with `owner`, one `sending` under that owner's claim
    /// (the first terminal write wins: a claim recovered or ended meanwhile is a `Conflict`);
    /// without, one still queued (`Conflict` otherwise).
    fn finish(
        &self,
        key: &DeliveryKey,
        outcome: &Terminal,
        owner: Option<&WorkerId>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// A sending delivery of `owner` whose request proved not accepted goes back to the queue
    /// at `until` (waiting for `reason`, or `None` when it is due again at once); its history
    /// entry is removed (nothing was sent). `Conflict` if it is not `owner`'s claim any more.
    /// If its run was cancelled meanwhile it ends `skipped(cancelled)` instead (history entry
    /// removed all the same) and the call succeeds as a requeue does: a cancelled run is never
    /// claimed again, so a queued delivery of it would wait for ever and the run's counts would
    /// never add up to ended. The same holds for a [`Change::Requeue`] in [`Deliveries::apply`].
    fn requeue(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: Option<WaitReason>,
        owner: &WorkerId,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Every delivery now `sending`, whoever holds it (for `status`).
    fn in_flight(&self) -> impl Future<Output = StoreResult<Vec<DeliveryKey>>> + Send;
    /// Counts by state and reason, and the next deferred wave.
    fn counts(&self, run: &RunId) -> impl Future<Output = StoreResult<RunCounts>> + Send;
    /// The run's queued deliveries as of `now`: how many are due, and the rest by why they
    /// wait with the earliest due instant per reason (all of them [`WaitReason::Pause`] while
    /// the run is paused). With `before`, only deliveries due before it are looked at: a
    /// bounded read for a caller that cares about the near future only.
    fn waits(
        &self,
        run: &RunId,
        now: DateTime<Utc>,
        before: Option<DateTime<Utc>>,
    ) -> impl Future<Output = StoreResult<QueueWaits>> + Send;
    /// Past sends to `phone` at or after `since`, for frequency caps.
    fn history(
        &self,
        phone: &PhoneNumber,
        since: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<PastSend>>> + Send;
    /// The earliest due instant of any queued delivery of an active run.
    fn next_due(&self) -> impl Future<Output = StoreResult<Option<DateTime<Utc>>>> + Send;
    /// [`Deliveries::due`] restricted to `scope`: runs of its sender (and only its runs, when
    /// it names some), none while the sender is blocked.
    fn due_in(
        &self,
        scope: &WorkScope,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<Delivery>>> + Send;
    /// [`Deliveries::next_due`] restricted to `scope` (`None` while its sender is blocked).
    fn next_due_in(
        &self,
        scope: &WorkScope,
    ) -> impl Future<Output = StoreResult<Option<DateTime<Utc>>>> + Send;
    /// The claim (see [`ClaimGroup`]): for each claim in order, atomically with the others,
    /// either queued → sending (owner, lease until the store's now + `lease`, attempts + 1, the
    /// send recorded in the phone's history at its granted slot, the slot counted in the
    /// sender's rate and the phone in its tier) or a [`Refusal`] that changes nothing. Checked,
    /// in this order: the run is active, the sender is neither blocked nor throttled, the
    /// delivery is queued and due at the store's now, the consent log and the send history
    /// still hold what the claim says the decision saw, the tier admits the phone, a rate slot
    /// is free within the horizon. Timed by the store ([`StoreTime`]).
    fn claim(
        &self,
        group: &ClaimGroup,
    ) -> impl Future<Output = StoreResult<Vec<ClaimAnswer>>> + Send;
    /// Extends, to the store's now + `lease`, the leases `owner` holds on `keys` (those still
    /// `sending` and its own). Returns how many were renewed; a claim already recovered by
    /// another worker is not renewed.
    fn renew(
        &self,
        owner: &WorkerId,
        keys: &[DeliveryKey],
        lease: std::time::Duration,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Up to `limit` `sending` deliveries whose lease has ended by the store's now, each ended
    /// `unknown` (its request may have reached the provider) or, for an `at_least_once` run,
    /// requeued due at once with its history entry removed; atomically per delivery with the
    /// check, so a late outcome from the owner is refused (the first terminal write wins). An
    /// `at_least_once` delivery whose run was cancelled meanwhile is not requeued (nothing would
    /// ever claim it) but ends `skipped(cancelled)`, its history entry removed likewise, and is
    /// reported with [`Recovered::requeued`] `false`. A delivery of a cancelled run that is not
    /// `at_least_once` still ends `unknown`: its request may have reached the provider.
    fn recover_expired(
        &self,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<Recovered>>> + Send;
    /// Every delivery of `run` that was ever claimed, with its last owner and slot.
    fn claims(&self, run: &RunId) -> impl Future<Output = StoreResult<Vec<ClaimRecord>>> + Send;
    /// Several changes in one atomic step (one transaction, one script): the worker's batch of
    /// defers, claims and outcomes, so a step costs one commit instead of one per delivery. Each
    /// change succeeds or not on its own, exactly as the single-change method would: the result
    /// says which did (`false` where the single method returns `Ok(false)` or `Conflict`);
    /// any other error leaves nothing applied.
    fn apply(
        &self,
        changes: &[Change],
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<bool>>> + Send;
    /// [`Deliveries::history`] for several phones at once, in the same order.
    fn history_for(
        &self,
        phones: &[PhoneNumber],
        since: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<Vec<PastSend>>>> + Send;
    /// Every phone sent to (claimed) at or after `since`, with its latest send: the unique
    /// recipients a messaging tier counts over a moving window.
    fn recent_recipients(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<(PhoneNumber, DateTime<Utc>)>>> + Send;
}

/// One change for [`Deliveries::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// As [`Deliveries::defer`].
    Defer {
        /// The delivery.
        key: DeliveryKey,
        /// The new due instant.
        until: DateTime<Utc>,
        /// Why it waits.
        reason: WaitReason,
    },
    /// As [`Deliveries::finish`].
    Finish {
        /// The delivery.
        key: DeliveryKey,
        /// Its outcome.
        terminal: Terminal,
        /// The claim's owner when it ends a `sending` delivery; `None` for a queued one.
        owner: Option<WorkerId>,
    },
    /// As [`Deliveries::requeue`] (ending it `skipped(cancelled)` if its run was cancelled).
    Requeue {
        /// The delivery.
        key: DeliveryKey,
        /// The new due instant.
        until: DateTime<Utc>,
        /// Why it waits; `None` when it is due again at once.
        reason: Option<WaitReason>,
        /// The claim's owner.
        owner: WorkerId,
    },
}

/// What a decision to send knew of the recipient's consent log: how many events it held on
/// `channel`. The log is append-only, so a different number when the claim is made means an
/// event arrived in between (a STOP, say): the claim is refused in the same transaction that
/// would have made it, and the delivery, still queued, is decided again with the new event.
/// An opt-out recorded before a claim can therefore never be sent past, however short the gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentSeen {
    /// The channel consent was read on.
    pub channel: String,
    /// The number of events the decision saw.
    pub events: u64,
}

/// The consent log: append-only events per (channel, phone).
pub trait Consents: Send + Sync {
    /// Appends events; an event identical to a stored one (same phone, channel, kind, scope,
    /// instant and source) is not stored twice, so re-importing a file is harmless.
    fn append(
        &self,
        events: &[StoredConsent],
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Every event of a phone on a channel, in the order they happened, each with the instant
    /// it was recorded (the `now` of the `append` that first stored it): the fold needs both to
    /// judge an event dated ahead of its recording.
    fn events(
        &self,
        channel: &str,
        phone: &PhoneNumber,
    ) -> impl Future<Output = StoreResult<Vec<RecordedConsent>>> + Send;
    /// [`Consents::events`] for several phones at once, in the same order.
    fn events_for(
        &self,
        channel: &str,
        phones: &[PhoneNumber],
    ) -> impl Future<Output = StoreResult<Vec<Vec<RecordedConsent>>>> + Send;
}

/// Senders' shared state: throttles and blocks the provider asked for, seen by every worker.
pub trait Senders: Send + Sync {
    /// One sender's state (a sender never throttled nor blocked has an empty one).
    fn sender(&self, name: &str) -> impl Future<Output = StoreResult<SenderState>> + Send;
    /// Every sender with a recorded throttle or block.
    fn senders(&self) -> impl Future<Output = StoreResult<Vec<SenderState>>> + Send;
    /// The provider asked the sender to hold back for `hold` (at most [`MAX_THROTTLE`]) from
    /// the store's now; a later throttle already recorded is kept. Returns the throttle's end.
    fn throttle(
        &self,
        name: &str,
        hold: std::time::Duration,
    ) -> impl Future<Output = StoreResult<DateTime<Utc>>> + Send;
    /// The provider blocked the sender; the first block recorded is kept until a resume.
    fn block(
        &self,
        name: &str,
        code: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Clears a block (and any throttle); `Ok(false)` if the sender was not blocked.
    fn resume(&self, name: &str) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// The stores a backend provides, bundled so the engine has one type parameter.
pub trait Stores: Send + Sync + 'static {
    /// Runs.
    type Runs: Runs;
    /// Deliveries.
    type Deliveries: Deliveries;
    /// Consent.
    type Consents: Consents;
    /// Senders.
    type Senders: Senders;
    /// Provider feedback.
    type Feedback: Feedback;
    /// Campaign versions and fire records of recurring campaigns.
    type Fires: Fires;
    /// Campaign versions and fire records.
    fn fires(&self) -> &Self::Fires;
    /// Provider feedback: statuses, the message-id index, stored tags.
    fn feedback(&self) -> &Self::Feedback;
    /// Senders.
    fn senders(&self) -> &Self::Senders;
    /// The store's now ([`StoreTime`]): what leases and rate slots are timed by.
    fn now(&self) -> impl Future<Output = StoreResult<DateTime<Utc>>> + Send;
    /// Runs.
    fn runs(&self) -> &Self::Runs;
    /// Deliveries.
    fn deliveries(&self) -> &Self::Deliveries;
    /// Consent.
    fn consents(&self) -> &Self::Consents;
}
