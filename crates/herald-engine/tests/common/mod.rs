//! What the worker tests share: a campaign in Moscow over a real SQLite file timed by the
//! test's (paused tokio) clock, a recording channel, and the helpers to drive them.
#![allow(dead_code)]

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use herald_channel::{Accepted, Channel, OutgoingMessage, SendError};
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, Scope};
use herald_engine::expand::expand;
use herald_engine::worker::{Step, Worker};
use herald_store::{Consents, StoredConsent, Stores};
use herald_store_sqlite::SqliteStores;
use herald_testkit::TokioClock;

/// Records what would have been sent, with the manual clock's reading at the request.
pub(crate) struct Recording {
    pub(crate) clock: Arc<TokioClock>,
    pub(crate) sent: Mutex<Vec<(String, DateTime<Utc>)>>,
}

impl Channel for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        use herald_core::clock::Clock;
        self.sent
            .lock()
            .unwrap()
            .push((message.recipient.clone(), self.clock.now()));
        Ok(Accepted::default())
    }
}

pub(crate) fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub(crate) struct Setup {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) stores: Arc<SqliteStores>,
    pub(crate) clock: Arc<TokioClock>,
    pub(crate) channel: Arc<Recording>,
    pub(crate) worker: Arc<Worker<SqliteStores, Recording>>,
    pub(crate) run: herald_core::RunId,
}

/// `n` recipients in Moscow, a marketing campaign at 10:00 local on Monday 2026-11-30 with the
/// window mon-fri 09:00-20:00 and `extra` YAML appended; everyone opted in.
pub(crate) async fn setup(n: usize, extra: &str, start: DateTime<Utc>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..n {
        csv.push_str(&format!("r{i},+7916{:07},Europe/Moscow\n", 2_000_000 + i));
    }
    std::fs::write(dir.path().join("people.csv"), csv).unwrap();
    let yaml = format!(
        "id: promo\npurpose: marketing\naudience: {{ source: people.csv }}\ntemplate: {{ name: promo, language: en }}\n\
         schedule: {{ at: 2026-11-30T10:00, in: recipient, expires_after: 48h }}\n\
         send_window:\n  hours: {{ mon-fri: \"09:00-20:00\" }}\n{extra}"
    );
    std::fs::write(dir.path().join("c.yaml"), yaml).unwrap();
    let campaign = herald_campaign::load(&dir.path().join("c.yaml"), start).unwrap();
    let clock = Arc::new(TokioClock::new(start));
    let stores =
        Arc::new(SqliteStores::open_with(&dir.path().join("h.db"), store_time(&clock)).unwrap());
    let opt_ins: Vec<StoredConsent> = (0..n)
        .map(|i| StoredConsent {
            channel: "whatsapp".into(),
            phone: PhoneNumber::parse(&format!("+7916{:07}", 2_000_000 + i), None).unwrap(),
            event: ConsentEvent {
                kind: ConsentKind::OptIn,
                scope: Scope::Marketing,
                occurred_at: at("2026-01-01T00:00:00Z"),
                source: "test".into(),
                proof: None,
            },
        })
        .collect();
    stores.consents().append(&opt_ins, start).await.unwrap();
    let channel = Arc::new(Recording {
        clock: Arc::clone(&clock),
        sent: Mutex::new(Vec::new()),
    });
    let worker = Arc::new(Worker::new(
        Arc::clone(&stores),
        Arc::clone(&channel),
        clock.clone(),
        test_worker_id(),
        main_scope(),
        NonZeroU32::new(10_000).unwrap(),
        500,
    ));
    let (run, _) = expand(&*stores, &campaign, registered("c.yaml"), start)
        .await
        .unwrap();
    worker.register(&run, campaign);
    Setup {
        _dir: dir,
        stores,
        clock,
        channel,
        worker,
        run,
    }
}

pub(crate) async fn drain(s: &Setup) {
    while let Step::Worked(_) = s.worker.step().await.unwrap() {}
}

pub(crate) trait NowExt {
    fn now_(&self) -> DateTime<Utc>;
}

impl NowExt for TokioClock {
    fn now_(&self) -> DateTime<Utc> {
        herald_core::clock::Clock::now(self)
    }
}

/// A second worker on `s`'s store and run, sending through `channel`.
pub(crate) fn worker_for<C: Channel + 'static>(
    s: &Setup,
    channel: Arc<C>,
) -> Arc<Worker<SqliteStores, C>> {
    let worker = Arc::new(Worker::new(
        Arc::clone(&s.stores),
        channel,
        s.clock.clone(),
        test_worker_id(),
        main_scope(),
        NonZeroU32::new(10_000).unwrap(),
        500,
    ));
    worker.register(
        &s.run,
        herald_campaign::load(&s._dir.path().join("c.yaml"), s.clock.now_()).unwrap(),
    );
    worker
}

/// The run's source for a campaign the test holds itself (registered with its worker, or only
/// expanded): the stored campaign text is never read back here, so none is stored.
pub(crate) fn registered(path: &str) -> herald_engine::expand::RunSource<'_> {
    herald_engine::expand::RunSource {
        path,
        sender: "main",
        text: "",
    }
}

pub(crate) fn test_worker_id() -> herald_store::WorkerId {
    herald_store::WorkerId::parse("test/1/0").unwrap()
}

/// Every run of the sender `main`, which the tests' runs are stored under.
pub(crate) fn main_scope() -> herald_store::WorkScope {
    herald_store::WorkScope {
        sender: "main".into(),
        runs: None,
    }
}

/// The store's time is the test's clock: leases, slots, the tier and the throttle move with it.
pub(crate) fn store_time(clock: &Arc<herald_testkit::TokioClock>) -> herald_store::StoreTime {
    herald_store::StoreTime::Clock(Arc::clone(clock) as Arc<dyn herald_core::clock::Clock>)
}

/// Moves the paused tokio clock (and so the test's clock) forward to `to`.
pub(crate) async fn set(clock: &herald_testkit::TokioClock, to: DateTime<Utc>) {
    let now = herald_core::clock::Clock::now(clock);
    tokio::time::advance((to - now).to_std().expect("the clock only moves forward")).await;
}
