//! Requests in flight: a request slower than the lease keeps its claim (the lease is renewed
//! while it is in flight, so no other worker recovers it), and `--concurrency` caps how many
//! are in flight at once. Tokio's clock is paused; the store is timed by it.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_channel::{Accepted, Channel, OutgoingMessage, SendError};
use herald_core::clock::Clock;
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, RunId, Scope};
use herald_engine::expand::{RunSource, expand};
use herald_engine::worker::{Step, Worker};
use herald_store::{Consents, Deliveries, StoreTime, StoredConsent, Stores, WorkScope, WorkerId};
use herald_store_sqlite::SqliteStores;
use herald_testkit::TokioClock;

/// Answers every request after `delay`, counting the requests in flight at once.
struct Slow {
    delay: Duration,
    in_flight: AtomicUsize,
    most: AtomicUsize,
    answered: AtomicUsize,
}

impl Slow {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            in_flight: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
        })
    }
}

impl Channel for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }

    async fn send(&self, _message: &OutgoingMessage) -> Result<Accepted, SendError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.answered.fetch_add(1, Ordering::SeqCst);
        Ok(Accepted::default())
    }
}

fn start() -> DateTime<Utc> {
    "2026-11-30T10:00:00Z".parse().unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    clock: Arc<TokioClock>,
    stores: Arc<SqliteStores>,
    run: RunId,
}

impl Setup {
    /// `n` opted-in recipients in UTC, a campaign due now (spread over a second), expanded.
    async fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let phone = |i: usize| format!("+7916{:07}", 6_000_000 + i);
        let mut csv = String::from("id,phone,timezone\n");
        for i in 0..n {
            csv.push_str(&format!("r{i},{},Etc/UTC\n", phone(i)));
        }
        std::fs::write(dir.path().join("people.csv"), csv).unwrap();
        let yaml = "id: slow\npurpose: marketing\naudience: { source: people.csv }\n\
                    template: { name: promo, language: en }\n\
                    schedule: { at: 2026-11-30T10:00, in: recipient }\n\
                    send_window: { hours: { daily: \"00:00-24:00\" } }\nspread: 1s\n";
        let file = dir.path().join("c.yaml");
        std::fs::write(&file, yaml).unwrap();
        let clock = Arc::new(TokioClock::new(start()));
        let stores = Arc::new(
            SqliteStores::open_with(&dir.path().join("h.db"), Self::time(&clock)).unwrap(),
        );
        let opt_ins: Vec<StoredConsent> = (0..n)
            .map(|i| StoredConsent {
                channel: "whatsapp".into(),
                phone: PhoneNumber::parse(&phone(i), None).unwrap(),
                event: ConsentEvent {
                    kind: ConsentKind::OptIn,
                    scope: Scope::All,
                    occurred_at: "2026-11-01T00:00:00Z".parse().unwrap(),
                    source: "form".into(),
                    proof: None,
                },
            })
            .collect();
        stores.consents().append(&opt_ins, start()).await.unwrap();
        let campaign = herald_campaign::load(&file, start()).unwrap();
        let path = file.display().to_string();
        let source = RunSource {
            path: &path,
            sender: "main",
            text: yaml,
        };
        let (run, _) = expand(&*stores, &campaign, source, start()).await.unwrap();
        Self {
            dir,
            clock,
            stores,
            run,
        }
    }

    fn time(clock: &Arc<TokioClock>) -> StoreTime {
        StoreTime::Clock(Arc::clone(clock) as Arc<dyn Clock>)
    }

    fn worker(
        &self,
        stores: &Arc<SqliteStores>,
        name: &str,
        channel: &Arc<Slow>,
    ) -> Worker<SqliteStores, Slow> {
        Worker::new(
            Arc::clone(stores),
            Arc::clone(channel),
            Arc::clone(&self.clock) as Arc<dyn Clock>,
            WorkerId::parse(&format!("test/{name}/0")).unwrap(),
            WorkScope {
                sender: "main".into(),
                runs: None,
            },
            NonZeroU32::new(1000).unwrap(),
            100,
        )
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_slower_than_the_lease_keeps_its_claim() {
    let s = Setup::new(1).await;
    let slow = Slow::new(Duration::from_secs(10));
    let worker = Arc::new(
        s.worker(&s.stores, "a", &slow)
            .with_lease(Duration::from_secs(3)),
    );
    let other_handle = Arc::new(
        SqliteStores::open_with(&s.dir.path().join("h.db"), Setup::time(&s.clock)).unwrap(),
    );
    let other = s.worker(&other_handle, "b", &Slow::new(Duration::ZERO));
    tokio::time::sleep(Duration::from_secs(2)).await; // past the spread
    let stepping = tokio::spawn({
        let worker = Arc::clone(&worker);
        async move { worker.step().await.unwrap() }
    });
    // Well past the 3 s lease, twice, while the request is still in flight: renewed, so the
    // other worker finds nothing to recover.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(slow.answered.load(Ordering::SeqCst), 0, "still in flight");
        assert!(other.recover().await.unwrap().is_empty());
    }
    assert_eq!(stepping.await.unwrap(), Step::Worked(1));
    let claims = s.stores.deliveries().claims(&s.run).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        (
            &claims[0].owner,
            claims[0].state.as_str(),
            claims[0].recovered
        ),
        (worker.id(), "sent", false)
    );
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_caps_requests_in_flight() {
    let s = Setup::new(6).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // past the spread
    let capped = Slow::new(Duration::from_millis(500));
    let worker = Arc::new(
        s.worker(&s.stores, "a", &capped)
            .with_concurrency(NonZeroUsize::new(2).unwrap()),
    );
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    assert_eq!(capped.answered.load(Ordering::SeqCst), 6);
    assert_eq!(capped.most.load(Ordering::SeqCst), 2);
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.sent, 6, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn without_a_cap_a_step_has_its_requests_in_flight_together() {
    let s = Setup::new(6).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // past the spread
    let uncapped = Slow::new(Duration::from_millis(500));
    let worker = Arc::new(s.worker(&s.stores, "a", &uncapped));
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    assert_eq!(uncapped.answered.load(Ordering::SeqCst), 6);
    assert!(
        uncapped.most.load(Ordering::SeqCst) > 2,
        "the cap above is what held"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_mid_step_finishes_what_is_in_flight_and_claims_nothing_more() {
    let s = Setup::new(6).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // past the spread
    let slow = Slow::new(Duration::from_secs(1));
    let signal = herald_engine::ShutdownSignal::new();
    let worker = Arc::new(
        s.worker(&s.stores, "a", &slow)
            .with_concurrency(NonZeroUsize::new(2).unwrap())
            .with_shutdown(signal.subscribe()),
    );
    let stepping = tokio::spawn({
        let worker = Arc::clone(&worker);
        async move { worker.step().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal.trigger();
    assert_eq!(stepping.await.unwrap(), Step::Worked(6));
    assert!(worker.is_stopping());
    assert_eq!(
        slow.answered.load(Ordering::SeqCst),
        2,
        "the two in flight finished"
    );
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(
        (counts.sent, counts.sending, counts.queued),
        (2, 0, 4),
        "{counts:?}"
    );
    assert_eq!(worker.step().await.unwrap(), Step::Idle(None));
}
