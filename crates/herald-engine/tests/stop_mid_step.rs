//! A STOP recorded after a worker step read consent but before it claimed the delivery stops
//! that delivery: the claim carries what the decision saw and the store refuses it.

mod common;
use common::{main_scope, registered, store_time, test_worker_id};

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use herald_channel::{Accepted, Channel, OutgoingMessage, SendError};
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, RecordedConsent, Scope};
use herald_engine::expand::expand;
use herald_engine::worker::{Step, Worker};
use herald_store::{Consents, Deliveries, StoreResult, StoredConsent, Stores};
use herald_store_sqlite::{
    SqliteDeliveries, SqliteFeedback, SqliteRuns, SqliteSenders, SqliteStores,
};
use herald_testkit::TokioClock;

/// The SQLite store, except that the first consent read of a step is followed at once by the
/// given events: they arrive after the worker has read consent and before it claims.
struct StopAfterRead {
    inner: Arc<SqliteStores>,
    consents: ArrivingLate,
}

struct ArrivingLate {
    inner: Arc<SqliteStores>,
    late: Mutex<Vec<StoredConsent>>,
    at: DateTime<Utc>,
}

impl Consents for ArrivingLate {
    async fn append(&self, events: &[StoredConsent], now: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.consents().append(events, now).await
    }

    async fn events(
        &self,
        channel: &str,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<RecordedConsent>> {
        self.inner.consents().events(channel, phone).await
    }

    async fn events_for(
        &self,
        channel: &str,
        phones: &[PhoneNumber],
    ) -> StoreResult<Vec<Vec<RecordedConsent>>> {
        let read = self.inner.consents().events_for(channel, phones).await?;
        let late = std::mem::take(&mut *self.late.lock().unwrap());
        if !late.is_empty() {
            self.inner.consents().append(&late, self.at).await?;
        }
        Ok(read)
    }
}

impl Stores for StopAfterRead {
    type Runs = SqliteRuns;
    type Deliveries = SqliteDeliveries;
    type Consents = ArrivingLate;
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

    fn deliveries(&self) -> &SqliteDeliveries {
        self.inner.deliveries()
    }

    fn consents(&self) -> &ArrivingLate {
        &self.consents
    }
}

/// Records the recipients messages went to.
#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

impl Channel for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        self.0.lock().unwrap().push(message.recipient.clone());
        Ok(Accepted::default())
    }
}

fn consent(phone: &str, kind: ConsentKind, source: &str) -> StoredConsent {
    StoredConsent {
        channel: "whatsapp".into(),
        phone: PhoneNumber::parse(phone, None).unwrap(),
        event: ConsentEvent {
            kind,
            scope: Scope::All,
            occurred_at: "2026-11-30T09:00:00Z".parse().unwrap(),
            source: source.into(),
            proof: None,
        },
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_between_the_consent_read_and_the_claim_stops_the_delivery() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("people.csv"),
        "id,phone,timezone\nkept,+79162000001,Etc/UTC\nstopped,+79162000002,Etc/UTC\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.yaml"),
        "id: promo\npurpose: marketing\naudience: { source: people.csv }\n\
         template: { name: promo, language: en }\nschedule: { at: 2026-11-30T10:00, in: recipient }\n\
         send_window: { hours: { daily: \"00:00-24:00\" } }\nspread: 1s\n",
    )
    .unwrap();
    let now: DateTime<Utc> = "2026-11-30T10:00:05Z".parse().unwrap();
    let campaign = herald_campaign::load(&dir.path().join("c.yaml"), now).unwrap();
    let clock = Arc::new(TokioClock::new(now));
    let sqlite =
        Arc::new(SqliteStores::open_with(&dir.path().join("h.db"), store_time(&clock)).unwrap());
    let opted_in = [
        consent("+79162000001", ConsentKind::OptIn, "form"),
        consent("+79162000002", ConsentKind::OptIn, "form"),
    ];
    sqlite.consents().append(&opted_in, now).await.unwrap();
    let stores = Arc::new(StopAfterRead {
        inner: Arc::clone(&sqlite),
        consents: ArrivingLate {
            inner: Arc::clone(&sqlite),
            late: Mutex::new(vec![consent(
                "+79162000002",
                ConsentKind::OptOut,
                "keyword:STOP",
            )]),
            at: now,
        },
    });
    let channel = Arc::new(Recording::default());
    let worker = Arc::new(Worker::new(
        Arc::clone(&stores),
        Arc::clone(&channel),
        clock,
        test_worker_id(),
        main_scope(),
        NonZeroU32::new(100).unwrap(),
        10,
    ));
    let (run, _) = expand(&*stores, &campaign, registered("c.yaml"), now)
        .await
        .unwrap();
    worker.register(&run, campaign);

    // The step decided both with the opt-ins it read; the STOP recorded right after refuses
    // the second claim, and the next step decides that delivery again with the STOP in view.
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    assert_eq!(*channel.0.lock().unwrap(), ["kept"]);
    let counts = sqlite.deliveries().counts(&run).await.unwrap();
    assert_eq!(counts.sent, 1);
    assert_eq!(counts.skipped.get("opted_out"), Some(&1), "{counts:?}");
}
