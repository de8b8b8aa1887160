//! A late outcome: a worker whose lease lapsed while its request was in flight (here: a store
//! handle that never renews) has its claim recovered by another worker; the answer that comes
//! afterwards is not recorded (the first terminal write wins) and does not fail its step.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_channel::{Accepted, Channel, OutgoingMessage, SendError};
use herald_core::clock::Clock;
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, Scope};
use herald_engine::expand::{RunSource, expand};
use herald_engine::worker::{Step, Worker};
use herald_store::{
    Change, ClaimAnswer, ClaimGroup, ClaimRecord, Consents, Deliveries, Delivery, DeliveryKey,
    NewDelivery, Recovered, RunCounts, StoreResult, StoreTime, StoredConsent, Stores, Terminal,
    WorkScope, WorkerId,
};
use herald_store_sqlite::{
    SqliteConsents, SqliteFeedback, SqliteRuns, SqliteSenders, SqliteStores,
};
use herald_testkit::TokioClock;

/// The SQLite store, except that leases are never renewed.
struct Unrenewed {
    inner: Arc<SqliteStores>,
    deliveries: NoRenewal,
}

struct NoRenewal {
    inner: Arc<SqliteStores>,
}

impl Stores for Unrenewed {
    type Runs = SqliteRuns;
    type Deliveries = NoRenewal;
    type Consents = SqliteConsents;
    type Senders = SqliteSenders;

    fn senders(&self) -> &SqliteSenders {
        self.inner.senders()
    }

    type Feedback = SqliteFeedback;
    type Fires = herald_store_sqlite::SqliteFires;

    fn fires(&self) -> &herald_store_sqlite::SqliteFires {
        self.inner.fires()
    }

    fn feedback(&self) -> &SqliteFeedback {
        self.inner.feedback()
    }

    async fn now(&self) -> StoreResult<DateTime<Utc>> {
        self.inner.now().await
    }

    fn runs(&self) -> &SqliteRuns {
        self.inner.runs()
    }

    fn deliveries(&self) -> &NoRenewal {
        &self.deliveries
    }

    fn consents(&self) -> &SqliteConsents {
        self.inner.consents()
    }
}

impl Deliveries for NoRenewal {
    async fn insert_batch(&self, batch: &[NewDelivery]) -> StoreResult<u64> {
        self.inner.deliveries().insert_batch(batch).await
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.inner.deliveries().due(now, limit).await
    }

    async fn defer(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: herald_store::WaitReason,
    ) -> StoreResult<()> {
        self.inner.deliveries().defer(key, until, reason).await
    }

    async fn finish(
        &self,
        key: &DeliveryKey,
        outcome: &Terminal,
        owner: Option<&WorkerId>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner
            .deliveries()
            .finish(key, outcome, owner, now)
            .await
    }

    async fn requeue(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: Option<herald_store::WaitReason>,
        owner: &WorkerId,
    ) -> StoreResult<()> {
        self.inner
            .deliveries()
            .requeue(key, until, reason, owner)
            .await
    }

    async fn claim(&self, group: &ClaimGroup) -> StoreResult<Vec<ClaimAnswer>> {
        self.inner.deliveries().claim(group).await
    }

    /// Renews nothing: the worker's leases lapse as if it had lost the store.
    async fn renew(
        &self,
        _owner: &WorkerId,
        _keys: &[DeliveryKey],
        _lease: std::time::Duration,
    ) -> StoreResult<u64> {
        Ok(0)
    }

    async fn recover_expired(&self, limit: usize) -> StoreResult<Vec<Recovered>> {
        self.inner.deliveries().recover_expired(limit).await
    }

    async fn claims(&self, run: &herald_core::RunId) -> StoreResult<Vec<ClaimRecord>> {
        self.inner.deliveries().claims(run).await
    }

    async fn waits(
        &self,
        run: &herald_core::RunId,
        now: DateTime<Utc>,
        before: Option<DateTime<Utc>>,
    ) -> StoreResult<herald_store::QueueWaits> {
        self.inner.deliveries().waits(run, now, before).await
    }

    async fn in_flight(&self) -> StoreResult<Vec<DeliveryKey>> {
        self.inner.deliveries().in_flight().await
    }

    async fn counts(&self, run: &herald_core::RunId) -> StoreResult<RunCounts> {
        self.inner.deliveries().counts(run).await
    }

    async fn history(
        &self,
        phone: &herald_core::PhoneNumber,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<herald_core::PastSend>> {
        self.inner.deliveries().history(phone, since).await
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.inner.deliveries().next_due().await
    }

    async fn due_in(
        &self,
        scope: &WorkScope,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        self.inner.deliveries().due_in(scope, now, limit).await
    }

    async fn next_due_in(&self, scope: &WorkScope) -> StoreResult<Option<DateTime<Utc>>> {
        self.inner.deliveries().next_due_in(scope).await
    }

    async fn apply(&self, changes: &[Change], now: DateTime<Utc>) -> StoreResult<Vec<bool>> {
        self.inner.deliveries().apply(changes, now).await
    }

    async fn history_for(
        &self,
        phones: &[herald_core::PhoneNumber],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<Vec<herald_core::PastSend>>> {
        self.inner.deliveries().history_for(phones, since).await
    }

    async fn recent_recipients(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(herald_core::PhoneNumber, DateTime<Utc>)>> {
        self.inner.deliveries().recent_recipients(since).await
    }
}

/// Answers only when told to, after saying the request arrived.
struct Held {
    arrived: tokio::sync::Notify,
    answer: tokio::sync::Notify,
}

impl Channel for Held {
    fn name(&self) -> &'static str {
        "held"
    }

    async fn send(&self, _message: &OutgoingMessage) -> Result<Accepted, SendError> {
        self.arrived.notify_one();
        self.answer.notified().await;
        Ok(Accepted::default())
    }
}

fn start() -> DateTime<Utc> {
    "2026-11-30T10:00:00Z".parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_outcome_after_the_claim_was_recovered_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("people.csv"),
        "id,phone,timezone
late,+79167000001,Etc/UTC
",
    )
    .unwrap();
    let yaml = "id: late\npurpose: marketing\naudience: { source: people.csv }\n\
                template: { name: promo, language: en }\n\
                schedule: { at: 2026-11-30T10:00, in: recipient }\n\
                send_window: { hours: { daily: \"00:00-24:00\" } }\nspread: 1s\n";
    let file = dir.path().join("c.yaml");
    std::fs::write(&file, yaml).unwrap();
    let clock = Arc::new(TokioClock::new(start()));
    let open = || {
        let time = StoreTime::Clock(Arc::clone(&clock) as Arc<dyn Clock>);
        Arc::new(SqliteStores::open_with(&dir.path().join("h.db"), time).unwrap())
    };
    let (sqlite, other_handle) = (open(), open());
    let opt_in = StoredConsent {
        channel: "whatsapp".into(),
        phone: PhoneNumber::parse("+79167000001", None).unwrap(),
        event: ConsentEvent {
            kind: ConsentKind::OptIn,
            scope: Scope::All,
            occurred_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            source: "form".into(),
            proof: None,
        },
    };
    sqlite.consents().append(&[opt_in], start()).await.unwrap();
    let campaign = herald_campaign::load(&file, start()).unwrap();
    let path = file.display().to_string();
    let source = RunSource {
        path: &path,
        sender: "main",
        text: yaml,
    };
    let (run, _) = expand(&*sqlite, &campaign, source, start()).await.unwrap();
    let worker = |stores, name: &str, channel| {
        Worker::new(
            stores,
            channel,
            Arc::clone(&clock) as Arc<dyn Clock>,
            WorkerId::parse(&format!("test/{name}/0")).unwrap(),
            WorkScope {
                sender: "main".into(),
                runs: None,
            },
            NonZeroU32::new(100).unwrap(),
            10,
        )
        .with_lease(Duration::from_secs(3))
    };
    let held = Arc::new(Held {
        arrived: tokio::sync::Notify::new(),
        answer: tokio::sync::Notify::new(),
    });
    let unrenewed = Arc::new(Unrenewed {
        inner: Arc::clone(&sqlite),
        deliveries: NoRenewal {
            inner: Arc::clone(&sqlite),
        },
    });
    let slow = Arc::new(worker(unrenewed, "slow", Arc::clone(&held)));
    // The other worker only recovers (its own renewals play no part).
    let other = Arc::new(Unrenewed {
        inner: Arc::clone(&other_handle),
        deliveries: NoRenewal {
            inner: other_handle,
        },
    });
    let recovering = worker(other, "other", Arc::clone(&held));

    tokio::time::sleep(Duration::from_secs(2)).await; // past the spread
    let stepping = tokio::spawn({
        let slow = Arc::clone(&slow);
        async move { slow.step().await }
    });
    held.arrived.notified().await;
    tokio::time::sleep(Duration::from_secs(4)).await; // past the unrenewed 3 s lease
    let recovered = recovering.recover().await.unwrap();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(&recovered[0].owner, slow.id());
    // The provider answers now: too late, the first terminal write (unknown) stands, and the
    // slow worker's step still ends well.
    held.answer.notify_one();
    assert_eq!(stepping.await.unwrap().unwrap(), Step::Worked(1));
    let counts = sqlite.deliveries().counts(&run).await.unwrap();
    assert_eq!(
        (counts.unknown, counts.sent, counts.sending),
        (1, 0, 0),
        "{counts:?}"
    );
    let claims = sqlite.deliveries().claims(&run).await.unwrap();
    assert_eq!(
        (
            &claims[0].owner,
            claims[0].state.as_str(),
            claims[0].recovered
        ),
        (slow.id(), "unknown", true)
    );
}
