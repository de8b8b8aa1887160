//! Either backend behind one type: the ports are generic (native async), so the two backends
//! are gathered in an enum that delegates every port method, as [`crate::channel::AnyChannel`]
//! does for channels, rather than boxed. `Stores` hands out its ports by reference, so each
//! port here is a handle on the one shared backend.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_core::{PastSend, PhoneNumber, RecordedConsent, RunId};
use herald_store::{
    CampaignProblem, CampaignVersion, Change, ClaimAnswer, ClaimGroup, ClaimRecord, Consents,
    Deliveries, Delivery, DeliveryKey, Feedback, FireRecord, Fires, NewDelivery, NewRun,
    QueueWaits, Recovered, RunCounts, RunRecord, RunState, Runs, SenderState, Senders, SentMessage,
    StatusReport, StatusVerdict, StoreResult, StoredConsent, Stores, Terminal, VersionChange,
    WaitReason, WorkScope, WorkerId,
};
use herald_store_redis::RedisStores;
use herald_store_sqlite::SqliteStores;

/// The backend a config names.
pub enum Backend {
    /// One SQLite file: the processes of one machine.
    Sqlite(SqliteStores),
    /// One Redis: processes on any number of machines.
    Redis(Box<RedisStores>),
}

/// Calls the same port method on whichever backend `$handle` holds.
macro_rules! on {
    ($handle:ident . $port:ident () . $method:ident ( $($arg:expr),* )) => {
        match &*$handle.0 {
            Backend::Sqlite(stores) => stores.$port().$method($($arg),*).await,
            Backend::Redis(stores) => stores.$port().$method($($arg),*).await,
        }
    };
}

/// Either store, as the app's one store type. Cloning shares the one backend (its
/// connections): the admin API and the worker of `herald serve` hold clones.
#[derive(Clone)]
pub struct AnyStores {
    backend: Arc<Backend>,
    runs: AnyRuns,
    deliveries: AnyDeliveries,
    consents: AnyConsents,
    senders: AnySenders,
    feedback: AnyFeedback,
    fires: AnyFires,
}

impl AnyStores {
    /// The ports of `backend`.
    pub fn new(backend: Backend) -> Self {
        let backend = Arc::new(backend);
        Self {
            runs: AnyRuns(Arc::clone(&backend)),
            deliveries: AnyDeliveries(Arc::clone(&backend)),
            consents: AnyConsents(Arc::clone(&backend)),
            senders: AnySenders(Arc::clone(&backend)),
            feedback: AnyFeedback(Arc::clone(&backend)),
            fires: AnyFires(Arc::clone(&backend)),
            backend,
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }
}

/// [`Runs`] of either backend.
#[derive(Clone)]
pub struct AnyRuns(Arc<Backend>);
/// [`Deliveries`] of either backend.
#[derive(Clone)]
pub struct AnyDeliveries(Arc<Backend>);
/// [`Consents`] of either backend.
#[derive(Clone)]
pub struct AnyConsents(Arc<Backend>);
/// [`Senders`] of either backend.
#[derive(Clone)]
pub struct AnySenders(Arc<Backend>);
/// [`Feedback`] of either backend.
#[derive(Clone)]
pub struct AnyFeedback(Arc<Backend>);
/// [`Fires`] of either backend.
#[derive(Clone)]
pub struct AnyFires(Arc<Backend>);

impl Stores for AnyStores {
    type Runs = AnyRuns;
    type Deliveries = AnyDeliveries;
    type Consents = AnyConsents;
    type Senders = AnySenders;
    type Feedback = AnyFeedback;
    type Fires = AnyFires;

    fn fires(&self) -> &AnyFires {
        &self.fires
    }

    fn senders(&self) -> &AnySenders {
        &self.senders
    }

    fn feedback(&self) -> &AnyFeedback {
        &self.feedback
    }

    async fn now(&self) -> StoreResult<DateTime<Utc>> {
        match &*self.backend {
            Backend::Sqlite(stores) => stores.now().await,
            Backend::Redis(stores) => stores.now().await,
        }
    }

    fn runs(&self) -> &AnyRuns {
        &self.runs
    }

    fn deliveries(&self) -> &AnyDeliveries {
        &self.deliveries
    }

    fn consents(&self) -> &AnyConsents {
        &self.consents
    }
}

impl Runs for AnyRuns {
    async fn create_run(&self, run: &NewRun, now: DateTime<Utc>) -> StoreResult<bool> {
        on!(self.runs().create_run(run, now))
    }

    async fn run(&self, run: &RunId) -> StoreResult<Option<RunRecord>> {
        on!(self.runs().run(run))
    }

    async fn runs(&self) -> StoreResult<Vec<RunRecord>> {
        on!(self.runs().runs())
    }

    async fn finish_expansion(&self, run: &RunId, total: u64) -> StoreResult<()> {
        on!(self.runs().finish_expansion(run, total))
    }

    async fn pause(&self, run: &RunId, by: &str, reason: &str) -> StoreResult<()> {
        on!(self.runs().pause(run, by, reason))
    }

    async fn set_run_state(&self, run: &RunId, state: RunState) -> StoreResult<()> {
        on!(self.runs().set_run_state(run, state))
    }
}

impl Deliveries for AnyDeliveries {
    async fn insert_batch(&self, batch: &[NewDelivery]) -> StoreResult<u64> {
        on!(self.deliveries().insert_batch(batch))
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<Delivery>> {
        on!(self.deliveries().due(now, limit))
    }

    async fn defer(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: WaitReason,
    ) -> StoreResult<()> {
        on!(self.deliveries().defer(key, until, reason))
    }

    async fn finish(
        &self,
        key: &DeliveryKey,
        outcome: &Terminal,
        owner: Option<&WorkerId>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on!(self.deliveries().finish(key, outcome, owner, now))
    }

    async fn requeue(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: Option<WaitReason>,
        owner: &WorkerId,
    ) -> StoreResult<()> {
        on!(self.deliveries().requeue(key, until, reason, owner))
    }

    async fn in_flight(&self) -> StoreResult<Vec<DeliveryKey>> {
        on!(self.deliveries().in_flight())
    }

    async fn counts(&self, run: &RunId) -> StoreResult<RunCounts> {
        on!(self.deliveries().counts(run))
    }

    async fn waits(
        &self,
        run: &RunId,
        now: DateTime<Utc>,
        before: Option<DateTime<Utc>>,
    ) -> StoreResult<QueueWaits> {
        on!(self.deliveries().waits(run, now, before))
    }

    async fn history(
        &self,
        phone: &PhoneNumber,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<PastSend>> {
        on!(self.deliveries().history(phone, since))
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        on!(self.deliveries().next_due())
    }

    async fn due_in(
        &self,
        scope: &WorkScope,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        on!(self.deliveries().due_in(scope, now, limit))
    }

    async fn next_due_in(&self, scope: &WorkScope) -> StoreResult<Option<DateTime<Utc>>> {
        on!(self.deliveries().next_due_in(scope))
    }

    async fn claim(&self, group: &ClaimGroup) -> StoreResult<Vec<ClaimAnswer>> {
        on!(self.deliveries().claim(group))
    }

    async fn renew(
        &self,
        owner: &WorkerId,
        keys: &[DeliveryKey],
        lease: std::time::Duration,
    ) -> StoreResult<u64> {
        on!(self.deliveries().renew(owner, keys, lease))
    }

    async fn recover_expired(&self, limit: usize) -> StoreResult<Vec<Recovered>> {
        on!(self.deliveries().recover_expired(limit))
    }

    async fn claims(&self, run: &RunId) -> StoreResult<Vec<ClaimRecord>> {
        on!(self.deliveries().claims(run))
    }

    async fn apply(&self, changes: &[Change], now: DateTime<Utc>) -> StoreResult<Vec<bool>> {
        on!(self.deliveries().apply(changes, now))
    }

    async fn history_for(
        &self,
        phones: &[PhoneNumber],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<Vec<PastSend>>> {
        on!(self.deliveries().history_for(phones, since))
    }

    async fn recent_recipients(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(PhoneNumber, DateTime<Utc>)>> {
        on!(self.deliveries().recent_recipients(since))
    }
}

impl Consents for AnyConsents {
    async fn append(&self, events: &[StoredConsent], now: DateTime<Utc>) -> StoreResult<u64> {
        on!(self.consents().append(events, now))
    }

    async fn events(
        &self,
        channel: &str,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<RecordedConsent>> {
        on!(self.consents().events(channel, phone))
    }

    async fn events_for(
        &self,
        channel: &str,
        phones: &[PhoneNumber],
    ) -> StoreResult<Vec<Vec<RecordedConsent>>> {
        on!(self.consents().events_for(channel, phones))
    }
}

impl Senders for AnySenders {
    async fn sender(&self, name: &str) -> StoreResult<SenderState> {
        on!(self.senders().sender(name))
    }

    async fn senders(&self) -> StoreResult<Vec<SenderState>> {
        on!(self.senders().senders())
    }

    async fn throttle(&self, name: &str, hold: std::time::Duration) -> StoreResult<DateTime<Utc>> {
        on!(self.senders().throttle(name, hold))
    }

    async fn block(
        &self,
        name: &str,
        code: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on!(self.senders().block(name, code, reason, now))
    }

    async fn resume(&self, name: &str) -> StoreResult<bool> {
        on!(self.senders().resume(name))
    }
}

impl Feedback for AnyFeedback {
    async fn record_status(
        &self,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> StoreResult<StatusVerdict> {
        on!(self.feedback().record_status(report, now))
    }

    async fn message(&self, provider_id: &str) -> StoreResult<Option<SentMessage>> {
        on!(self.feedback().message(provider_id))
    }

    async fn add_tag(
        &self,
        phone: &PhoneNumber,
        tag: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        on!(self.feedback().add_tag(phone, tag, now))
    }

    async fn tags_for(&self, phones: &[PhoneNumber]) -> StoreResult<Vec<BTreeSet<String>>> {
        on!(self.feedback().tags_for(phones))
    }
}

impl Fires for AnyFires {
    async fn put_campaign(&self, version: &CampaignVersion) -> StoreResult<VersionChange> {
        on!(self.fires().put_campaign(version))
    }

    async fn campaign(&self, campaign: &str) -> StoreResult<Option<CampaignVersion>> {
        on!(self.fires().campaign(campaign))
    }

    async fn campaigns(&self) -> StoreResult<Vec<CampaignVersion>> {
        on!(self.fires().campaigns())
    }

    async fn record_fire(&self, record: &FireRecord) -> StoreResult<(bool, FireRecord)> {
        on!(self.fires().record_fire(record))
    }

    async fn fires(&self, campaign: &str, limit: usize) -> StoreResult<Vec<FireRecord>> {
        on!(self.fires().fires(campaign, limit))
    }

    async fn set_problem(
        &self,
        source: &str,
        problem: Option<&CampaignProblem>,
    ) -> StoreResult<()> {
        on!(self.fires().set_problem(source, problem))
    }

    async fn problems(&self) -> StoreResult<Vec<CampaignProblem>> {
        on!(self.fires().problems())
    }
}
