//! The worker: takes what is due for its sender, decides each delivery at the moment of
//! claiming, claims it through the store (which grants the send slot and re-checks everything
//! the decision saw), sends it at its slot and records the outcome under its claim.
//!
//! At most once (design §1.3): the claim ([`herald_store::Deliveries::claim`]) records the
//! delivery `sending`, owned by this worker under a lease, before the request. A worker that
//! dies leaves its claims to expire; any worker's [`Worker::recover`] then ends them `unknown`
//! (or requeues them under `at_least_once`), so nothing that may have reached the provider is
//! sent again. A worker keeps its claims by renewing them every third of a lease; one that
//! cannot renew for a whole lease loses them as a dead one does.
//!
//! # Layout, one concern per file
//! - here: the [`Worker`] and its settings, [`Step`], [`Progress`], [`WorkerError`];
//! - `step`: one step, reading the due batch and deciding it;
//! - `claim`: the claim loop and what each [`herald_store::Refusal`] does;
//! - `send`: the request at its slot and the outcome it records;
//! - `effects`: what a provider's answer asks of the sender, the run or consent;
//! - `lease`: renewing held claims, recovering expired ones, recording outcomes;
//! - `runs`: the campaign of each run, registered or rebuilt from the store;
//! - `identity`: the worker's id for this process;
//! - [`metrics`]: what it records through the `metrics` facade, and the queue depth sample.

mod claim;
mod effects;
mod identity;
mod lease;
pub mod metrics;
mod runs;
mod send;
mod step;

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_channel::Channel;
use herald_core::clock::Clock;
use herald_core::{ConsentChannel, RunId};
use herald_store::{SenderState, Senders, StoreError, Stores, WorkScope, WorkerId};
use tokio::sync::Semaphore;

pub use identity::process_worker_id;

use crate::shutdown::Shutdown;

/// How long a claim stays a worker's without renewal, by default: much longer than a request
/// can take (the HTTP timeout is 10 s), so a live worker never loses a claim to a slow answer,
/// and short enough that a dead worker's claims are recovered within a minute.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How far ahead of the store's now a send slot may be granted: a claim is made only for a
/// request about to leave, so a crash leaves few claimed-but-unsent deliveries.
pub const SLOT_HORIZON: Duration = Duration::from_millis(50);

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Deliveries were looked at.
    Worked(usize),
    /// Nothing is due now; the next delivery is due then (if any is queued and its sender is
    /// not blocked).
    Idle(Option<DateTime<Utc>>),
}

/// Deliveries handled by this process, by what happened to them.
#[derive(Debug, Default)]
pub struct Progress {
    /// Sent.
    pub sent: AtomicU64,
    /// Deferred to a later instant.
    pub deferred: AtomicU64,
    /// Skipped or expired.
    pub skipped: AtomicU64,
    /// Failed or unknown.
    pub failed: AtomicU64,
    /// Requeued after back-pressure or a retryable error.
    pub retried: AtomicU64,
}

/// Why a step failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Processes due deliveries of one sender's active runs (all of them, or those its
/// [`WorkScope`] names) against one channel, sharing the sender's rate, tier, throttle and
/// block with every other worker of that sender through the store.
pub struct Worker<S: Stores, C: Channel> {
    stores: Arc<S>,
    channel: Arc<C>,
    clock: Arc<dyn Clock>,
    id: WorkerId,
    scope: WorkScope,
    /// The sender's rate; a run's campaign may ask for less.
    sender_rate: NonZeroU32,
    /// The messaging tier, when one is configured (enforced by the store at the claim).
    tier: Option<u64>,
    lease: Duration,
    batch: usize,
    claim_group: usize,
    /// Requests in flight at once (`--concurrency`).
    in_flight: Arc<Semaphore>,
    shutdown: Shutdown,
    runs: runs::RunContexts,
    held: lease::Held,
    last_recovery: Mutex<Option<DateTime<Utc>>>,
    /// When the queue depth was last sampled (see [`metrics::QUEUE_SAMPLE_EVERY`]).
    last_sample: Mutex<Option<DateTime<Utc>>>,
    /// What this worker was last told of its sender (a block, a throttle): its claims granted
    /// before then and still waiting for their slot are not sent (see `effects::Told`).
    told: Mutex<effects::Told>,
    /// Template errors per run; a few pause the run (one bad template must not burn the
    /// audience).
    template_errors: Mutex<HashMap<RunId, u32>>,
    progress: Progress,
    /// The channel consent is read and recorded on (see [`Worker::with_consent_channel`]).
    consent_channel: ConsentChannel,
}

impl<S: Stores, C: Channel + 'static> Worker<S, C> {
    /// A worker `id` for the deliveries of `scope`, sending at most `sender_rate` requests per
    /// second summed over every worker of the sender (a campaign may ask for less), looking at
    /// up to `batch` deliveries per step. Requests in flight are capped at `batch` until
    /// [`Worker::with_concurrency`] says otherwise; the lease is [`DEFAULT_LEASE`].
    pub fn new(
        stores: Arc<S>,
        channel: Arc<C>,
        clock: Arc<dyn Clock>,
        id: WorkerId,
        scope: WorkScope,
        sender_rate: NonZeroU32,
        batch: usize,
    ) -> Self {
        // A step reads consent once; at most about a second of sends per step keeps what it
        // acts on at most that old.
        let batch = batch.clamp(1, sender_rate.get() as usize);
        Self {
            stores,
            channel,
            clock,
            id,
            scope,
            sender_rate,
            tier: None,
            lease: DEFAULT_LEASE,
            batch,
            // As many claims as the rate allows in ~20 ms: one at 20/s, 20 at 1,000/s.
            claim_group: (sender_rate.get() as usize / 50).clamp(1, batch),
            in_flight: Arc::new(Semaphore::new(batch)),
            shutdown: Shutdown::never(),
            runs: runs::RunContexts::default(),
            held: lease::Held::default(),
            last_recovery: Mutex::new(None),
            last_sample: Mutex::new(None),
            told: Mutex::new(effects::Told::default()),
            template_errors: Mutex::new(HashMap::new()),
            progress: Progress::default(),
            consent_channel: ConsentChannel::whatsapp(),
        }
    }

    /// The channel consent is looked up under (and opt-outs the provider reports are recorded
    /// on). A WhatsApp sender checks `whatsapp`, the default; the outbox and webhook channels
    /// stand in for the messaging channel a recipient actually consented on, which their
    /// sender's `consent_channel` names.
    pub fn with_consent_channel(mut self, channel: ConsentChannel) -> Self {
        self.consent_channel = channel;
        self
    }

    /// Limits the unique recipients messaged in any moving 24 hours (WhatsApp's messaging tier:
    /// 250, 2,000, 10,000, 100,000), counted by the store over every worker of the sender.
    /// Hitting it has no error code, so it is enforced at the claim; recipients over it are
    /// deferred until a slot frees, never failed.
    pub fn with_tier(mut self, unique_per_24h: u64) -> Self {
        self.tier = Some(unique_per_24h);
        self
    }

    /// How long a claim stays this worker's without renewal ([`DEFAULT_LEASE`] otherwise). It
    /// is renewed every third of it while the claim is held.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// At most `requests` requests in flight at once (`--concurrency`).
    pub fn with_concurrency(mut self, requests: NonZeroUsize) -> Self {
        self.in_flight = Arc::new(Semaphore::new(requests.get()));
        self.claim_group = self.claim_group.min(requests.get());
        self
    }

    /// Stops the worker when `shutdown` fires: nothing more is claimed, requests already made
    /// finish and are recorded, claims whose request has not left go back to the queue.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Who this worker is: the owner of its claims.
    pub fn id(&self) -> &WorkerId {
        &self.id
    }

    /// The deliveries it works.
    pub fn scope(&self) -> &WorkScope {
        &self.scope
    }

    /// Counters of this process.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Whether its shutdown began: it takes nothing more.
    pub fn is_stopping(&self) -> bool {
        self.shutdown.is_shutdown()
    }

    /// The sender's shared state (throttle, block), as every worker of it sees it.
    pub async fn sender_state(&self) -> Result<SenderState, WorkerError> {
        Ok(self.stores.senders().sender(&self.scope.sender).await?)
    }

    /// Until when the provider has asked the sender to hold back (any worker of it was told),
    /// if that is still ahead.
    pub async fn throttled_until(&self) -> Result<Option<DateTime<Utc>>, WorkerError> {
        let now = self.clock.now();
        Ok(self
            .sender_state()
            .await?
            .throttled_until
            .filter(|until| *until > now))
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (counters, caches).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
