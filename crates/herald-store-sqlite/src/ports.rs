//! The port implementations: each method encodes its arguments into owned values on the caller's
//! task, then runs its `queries/` function on the blocking pool.

use chrono::{DateTime, Utc};
use herald_core::{PastSend, PhoneNumber, RecordedConsent, RunId};
use herald_store::{
    Change, ClaimAnswer, ClaimGroup, ClaimRecord, Consents, Deliveries, Delivery, DeliveryKey,
    NewDelivery, NewRun, QueueWaits, Recovered, RunCounts, RunRecord, RunState, Runs, StoreResult,
    StoreTime, StoredConsent, Terminal, WaitReason, WorkScope, WorkerId,
};

use crate::codec::{millis, secs, secs_ceil};
use crate::db::Db;
use crate::queries::{self, append_consent, insert_batch};

/// [`Runs`] on SQLite.
pub struct SqliteRuns {
    db: Db,
}

impl SqliteRuns {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }
}

impl Runs for SqliteRuns {
    async fn create_run(&self, run: &NewRun, now: DateTime<Utc>) -> StoreResult<bool> {
        let run = run.clone();
        self.db
            .call(move |conn| queries::create_run::create_run(conn, &run, secs(now)))
            .await
    }

    async fn run(&self, run: &RunId) -> StoreResult<Option<RunRecord>> {
        let run = run.clone();
        self.db
            .call(move |conn| queries::run::run(conn, &run))
            .await
    }

    async fn runs(&self) -> StoreResult<Vec<RunRecord>> {
        self.db.call(queries::runs::runs).await
    }

    async fn finish_expansion(&self, run: &RunId, total: u64) -> StoreResult<()> {
        let run = run.clone();
        self.db
            .call(move |conn| queries::finish_expansion::finish_expansion(conn, &run, total))
            .await
    }

    async fn pause(&self, run: &RunId, by: &str, reason: &str) -> StoreResult<()> {
        let (run, by, reason) = (run.clone(), by.to_owned(), reason.to_owned());
        self.db
            .call(move |conn| queries::set_run_state::pause(conn, &run, &by, &reason))
            .await
    }

    async fn set_run_state(&self, run: &RunId, state: RunState) -> StoreResult<()> {
        let run = run.clone();
        self.db
            .call(move |conn| queries::set_run_state::set_run_state(conn, &run, state))
            .await
    }
}

/// [`Deliveries`] on SQLite: the queue and the ledger, with claims timed by the store's time.
pub struct SqliteDeliveries {
    db: Db,
    time: StoreTime,
}

impl SqliteDeliveries {
    pub(crate) fn new(db: Db, time: StoreTime) -> Self {
        Self { db, time }
    }
}

impl Deliveries for SqliteDeliveries {
    async fn insert_batch(&self, batch: &[NewDelivery]) -> StoreResult<u64> {
        let rows = batch
            .iter()
            .map(insert_batch::Row::new)
            .collect::<StoreResult<Vec<_>>>()?;
        if rows.is_empty() {
            return Ok(0);
        }
        self.db
            .call(move |conn| insert_batch::insert_batch(conn, rows))
            .await
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<Delivery>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.db
            .call(move |conn| queries::due::due(conn, now, limit))
            .await
    }

    async fn defer(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: WaitReason,
    ) -> StoreResult<()> {
        let key = key.clone();
        self.db
            .call(move |conn| {
                queries::defer::defer(
                    conn,
                    &mut queries::RunIds::default(),
                    &key,
                    secs_ceil(until),
                    reason,
                )
            })
            .await
    }

    async fn finish(
        &self,
        key: &DeliveryKey,
        outcome: &Terminal,
        owner: Option<&WorkerId>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (key, outcome, owner) = (key.clone(), outcome.clone(), owner.cloned());
        self.db
            .call(move |conn| {
                queries::finish::finish(conn, &key, &outcome, owner.as_ref(), millis(now))
            })
            .await
    }

    async fn requeue(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: Option<WaitReason>,
        owner: &WorkerId,
    ) -> StoreResult<()> {
        let (key, owner) = (key.clone(), owner.clone());
        let wait = (secs_ceil(until), reason);
        self.db
            .call(move |conn| queries::requeue::requeue(conn, &key, wait, &owner))
            .await
    }

    async fn in_flight(&self) -> StoreResult<Vec<DeliveryKey>> {
        self.db.call(queries::in_flight::in_flight).await
    }

    async fn counts(&self, run: &RunId) -> StoreResult<RunCounts> {
        let run = run.clone();
        self.db
            .call(move |conn| queries::counts::counts(conn, &run))
            .await
    }

    async fn waits(
        &self,
        run: &RunId,
        now: DateTime<Utc>,
        before: Option<DateTime<Utc>>,
    ) -> StoreResult<QueueWaits> {
        let run = run.clone();
        self.db
            .call(move |conn| queries::waits::waits(conn, &run, now, before))
            .await
    }

    async fn history(
        &self,
        phone: &PhoneNumber,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<PastSend>> {
        let phone = phone.clone();
        self.db
            .call(move |conn| queries::history::history(conn, &phone, since))
            .await
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.db.call(queries::next_due::next_due).await
    }

    async fn due_in(
        &self,
        scope: &WorkScope,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let scope = scope.clone();
        self.db
            .call(move |conn| {
                queries::in_one_read(conn, |conn| {
                    let runs = queries::due::scope_runs(conn, &scope)?;
                    queries::due::due_in(conn, &runs, now, limit)
                })
            })
            .await
    }

    async fn next_due_in(&self, scope: &WorkScope) -> StoreResult<Option<DateTime<Utc>>> {
        let scope = scope.clone();
        self.db
            .call(move |conn| {
                queries::in_one_read(conn, |conn| {
                    let runs = queries::due::scope_runs(conn, &scope)?;
                    queries::due::next_due_in(conn, &runs)
                })
            })
            .await
    }

    async fn claim(&self, group: &ClaimGroup) -> StoreResult<Vec<ClaimAnswer>> {
        if group.claims.is_empty() {
            return Ok(Vec::new());
        }
        let group = group.clone();
        let time = self.time.clone();
        self.db
            // The store's now is read inside the claim, once the write lock is held.
            .call(move |conn| queries::claim::claim(conn, &group, &time))
            .await
    }

    async fn renew(
        &self,
        owner: &WorkerId,
        keys: &[DeliveryKey],
        lease: std::time::Duration,
    ) -> StoreResult<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let (owner, keys, time) = (owner.clone(), keys.to_vec(), self.time.clone());
        self.db
            .call(move |conn| queries::lease::renew(conn, &owner, &keys, &time, lease))
            .await
    }

    async fn recover_expired(&self, limit: usize) -> StoreResult<Vec<Recovered>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let time = self.time.clone();
        self.db
            .call(move |conn| queries::lease::recover_expired(conn, &time, limit))
            .await
    }

    async fn claims(&self, run: &RunId) -> StoreResult<Vec<ClaimRecord>> {
        let run = run.clone();
        self.db
            .call(move |conn| queries::lease::claims(conn, &run))
            .await
    }

    async fn apply(&self, changes: &[Change], now: DateTime<Utc>) -> StoreResult<Vec<bool>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let changes = changes.to_vec();
        self.db
            .call(move |conn| queries::apply::apply(conn, &changes, millis(now)))
            .await
    }

    async fn recent_recipients(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(PhoneNumber, DateTime<Utc>)>> {
        self.db
            .call(move |conn| queries::history::recent_recipients(conn, since))
            .await
    }

    async fn history_for(
        &self,
        phones: &[PhoneNumber],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<Vec<PastSend>>> {
        let phones = phones.to_vec();
        self.db
            .call(move |conn| {
                queries::in_one_read(conn, |conn| {
                    phones
                        .iter()
                        .map(|phone| queries::history::history(conn, phone, since))
                        .collect()
                })
            })
            .await
    }
}

/// [`Consents`] on SQLite: the append-only consent log.
pub struct SqliteConsents {
    db: Db,
}

impl SqliteConsents {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }
}

impl Consents for SqliteConsents {
    async fn append(&self, events: &[StoredConsent], now: DateTime<Utc>) -> StoreResult<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        let rows: Vec<append_consent::Row> = events
            .iter()
            .map(|stored| append_consent::Row {
                channel: stored.channel.clone(),
                phone: stored.phone.expose_e164().to_owned(),
                occurred_at: secs(stored.event.occurred_at),
                kind: queries::consent_events::kind_name(stored.event.kind),
                scope: stored.event.scope.as_str(),
                source: stored.event.source.clone(),
                proof: stored.event.proof.clone(),
            })
            .collect();
        self.db
            .call(move |conn| append_consent::append_consent(conn, &rows, secs(now)))
            .await
    }

    async fn events(
        &self,
        channel: &str,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<RecordedConsent>> {
        let (channel, phone) = (channel.to_owned(), phone.clone());
        self.db
            .call(move |conn| queries::consent_events::consent_events(conn, &channel, &phone))
            .await
    }

    async fn events_for(
        &self,
        channel: &str,
        phones: &[PhoneNumber],
    ) -> StoreResult<Vec<Vec<RecordedConsent>>> {
        let (channel, phones) = (channel.to_owned(), phones.to_vec());
        self.db
            .call(move |conn| {
                queries::in_one_read(conn, |conn| {
                    phones
                        .iter()
                        .map(|phone| queries::consent_events::consent_events(conn, &channel, phone))
                        .collect()
                })
            })
            .await
    }
}
