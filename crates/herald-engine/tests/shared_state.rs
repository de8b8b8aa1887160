//! Two workers on two store handles of one real SQLite file, sharing one sender: the rate, the
//! provider's throttle and block, consent, caps and leases hold across both. Time is tokio's
//! paused clock, read by both workers and by the store (`StoreTime::Clock`): sleeps jump, the
//! store's leases and slots move with them, nothing waits in real time.

mod common;
use common::at;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_channel::{
    Accepted, Channel, OutgoingMessage, ProviderAction, SendError, ThrottleScope,
};
use herald_core::clock::Clock;
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, RunId, Scope};
use herald_engine::expand::{RunSource, expand};
use herald_engine::worker::{Step, Worker};
use herald_store::{
    Consents, Deliveries, DeliveryKey, RunState, Runs, Senders, StoreTime, StoredConsent, Stores,
    WaitReason, WorkScope, WorkerId,
};
use herald_store_sqlite::SqliteStores;
use herald_testkit::TokioClock;

const SENDER: &str = "main";

/// 2026-11-30 07:00 UTC: 10:00 in Moscow, a Monday, when the campaigns below start.
fn start() -> DateTime<Utc> {
    at("2026-11-30T07:00:00Z")
}

fn phone_text(i: usize) -> String {
    format!("+7916{:07}", 3_000_000 + i)
}

fn phone(i: usize) -> PhoneNumber {
    PhoneNumber::parse(&phone_text(i), None).unwrap()
}

fn consent(i: usize, kind: ConsentKind, occurred_at: DateTime<Utc>) -> StoredConsent {
    StoredConsent {
        channel: "whatsapp".into(),
        phone: phone(i),
        event: ConsentEvent {
            kind,
            scope: Scope::Marketing,
            occurred_at,
            source: "test".into(),
            proof: None,
        },
    }
}

/// What one fake provider does with one request.
type Answer = Box<dyn FnMut(&OutgoingMessage) -> Result<Accepted, SendError> + Send>;

/// An in-process provider for one worker: records every request with the clock's reading and
/// answers as told (accepted unless told otherwise).
struct Fake {
    clock: Arc<TokioClock>,
    received: Mutex<Vec<(String, DateTime<Utc>)>>,
    answer: Mutex<Answer>,
    /// Never answers (a worker killed mid-request), after saying it received the request.
    hang: Option<Arc<tokio::sync::Notify>>,
}

impl Fake {
    fn new(clock: &Arc<TokioClock>) -> Arc<Self> {
        Self::answering(clock, Box::new(|_| Ok(Accepted::default())))
    }

    fn answering(clock: &Arc<TokioClock>, answer: Answer) -> Arc<Self> {
        Arc::new(Self {
            clock: Arc::clone(clock),
            received: Mutex::new(Vec::new()),
            answer: Mutex::new(answer),
            hang: None,
        })
    }

    fn received(&self) -> Vec<(String, DateTime<Utc>)> {
        self.received.lock().unwrap().clone()
    }
}

impl Channel for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        self.received
            .lock()
            .unwrap()
            .push((message.to.clone(), self.clock.now()));
        if let Some(arrived) = &self.hang {
            arrived.notify_one();
            std::future::pending::<()>().await;
        }
        (self.answer.lock().unwrap())(message)
    }
}

/// One SQLite file, opened once per worker (as two processes would), timed by `clock`.
struct Cluster {
    dir: tempfile::TempDir,
    clock: Arc<TokioClock>,
    a: Arc<SqliteStores>,
    b: Arc<SqliteStores>,
}

impl Cluster {
    /// `n` recipients in Moscow, all opted in.
    async fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("id,phone,timezone\n");
        for i in 0..n {
            csv.push_str(&format!("r{i},{},Europe/Moscow\n", phone_text(i)));
        }
        std::fs::write(dir.path().join("people.csv"), csv).unwrap();
        let clock = Arc::new(TokioClock::new(start()));
        let open = |clock: &Arc<TokioClock>| {
            let time = StoreTime::Clock(Arc::clone(clock) as Arc<dyn Clock>);
            Arc::new(SqliteStores::open_with(&dir.path().join("h.db"), time).unwrap())
        };
        let (a, b) = (open(&clock), open(&clock));
        let opt_ins: Vec<StoredConsent> = (0..n)
            .map(|i| consent(i, ConsentKind::OptIn, at("2026-01-01T00:00:00Z")))
            .collect();
        a.consents().append(&opt_ins, start()).await.unwrap();
        Self { dir, clock, a, b }
    }

    /// Writes campaign `id` (marketing, at 10:00 Moscow time, spread over a second, `extra`
    /// YAML appended) and expands it for the sender.
    async fn campaign(&self, id: &str, extra: &str) -> RunId {
        let yaml = format!(
            "id: {id}\npurpose: marketing\naudience: {{ source: people.csv }}\n\
             template: {{ name: promo, language: en }}\n\
             schedule: {{ at: 2026-11-30T10:00, in: recipient, expires_after: 12h }}\n\
             send_window:\n  hours: {{ daily: \"00:00-24:00\" }}\nspread: 1s\n{extra}"
        );
        let file = self.dir.path().join(format!("{id}.yaml"));
        std::fs::write(&file, &yaml).unwrap();
        let campaign = herald_campaign::load(&file, start()).unwrap();
        let path = file.display().to_string();
        let source = RunSource {
            path: &path,
            sender: SENDER,
            text: &yaml,
        };
        let (run, _) = expand(&*self.a, &campaign, source, start()).await.unwrap();
        run
    }

    /// A worker on one handle; it rebuilds every campaign from the store (none is registered).
    fn worker(
        &self,
        stores: &Arc<SqliteStores>,
        name: &str,
        channel: &Arc<Fake>,
        per_second: u32,
        runs: Option<Vec<RunId>>,
    ) -> Arc<Worker<SqliteStores, Fake>> {
        Arc::new(Worker::new(
            Arc::clone(stores),
            Arc::clone(channel),
            Arc::clone(&self.clock) as Arc<dyn Clock>,
            WorkerId::parse(&format!("test/{name}/0")).unwrap(),
            WorkScope {
                sender: SENDER.into(),
                runs,
            },
            NonZeroU32::new(per_second).unwrap(),
            100,
        ))
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// Steps `worker` until nothing is due before `until` (sleeping to each next due instant).
async fn work_until(
    worker: Arc<Worker<SqliteStores, Fake>>,
    clock: Arc<TokioClock>,
    until: DateTime<Utc>,
) {
    loop {
        match worker.step().await.unwrap() {
            Step::Worked(_) => {}
            Step::Idle(Some(next)) if next < until => {
                let wait = (next - clock.now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
            }
            Step::Idle(_) => return,
        }
    }
}

/// Both workers concurrently until nothing is due within the hour.
async fn work_both(
    c: &Cluster,
    a: &Arc<Worker<SqliteStores, Fake>>,
    b: &Arc<Worker<SqliteStores, Fake>>,
) {
    let until = c.now() + TimeDelta::hours(1);
    let first = tokio::spawn(work_until(Arc::clone(a), Arc::clone(&c.clock), until));
    let second = tokio::spawn(work_until(Arc::clone(b), Arc::clone(&c.clock), until));
    first.await.unwrap();
    second.await.unwrap();
}

/// The granted slots of `run`, in order.
async fn slots(stores: &SqliteStores, run: &RunId) -> Vec<DateTime<Utc>> {
    let mut slots: Vec<_> = stores
        .deliveries()
        .claims(run)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.slot)
        .collect();
    slots.sort();
    slots
}

/// The most slots in any window `[t, t + 1 s)`.
fn busiest_second(slots: &[DateTime<Utc>]) -> usize {
    (0..slots.len())
        .map(|i| {
            slots[i..]
                .iter()
                .take_while(|s| **s < slots[i] + TimeDelta::seconds(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn requests_per_phone(channels: &[&Arc<Fake>]) -> BTreeMap<String, usize> {
    let mut per_phone = BTreeMap::new();
    for channel in channels {
        for (to, _) in channel.received() {
            *per_phone.entry(to).or_default() += 1;
        }
    }
    per_phone
}

#[tokio::test(start_paused = true)]
async fn the_summed_rate_of_two_workers_never_exceeds_the_senders() {
    let c = Cluster::new(40).await;
    let run = c.campaign("promo", "").await;
    let (fa, fb) = (Fake::new(&c.clock), Fake::new(&c.clock));
    let (a, b) = (
        c.worker(&c.a, "a", &fa, 5, None),
        c.worker(&c.b, "b", &fb, 5, None),
    );
    work_both(&c, &a, &b).await;

    let counts = c.a.deliveries().counts(&run).await.unwrap();
    assert_eq!(counts.sent, 40, "{counts:?}");
    let per_phone = requests_per_phone(&[&fa, &fb]);
    assert_eq!(per_phone.len(), 40);
    assert!(per_phone.values().all(|n| *n == 1), "{per_phone:?}");
    assert!(
        !fa.received().is_empty() && !fb.received().is_empty(),
        "both workers sent: {} and {}",
        fa.received().len(),
        fb.received().len()
    );
    let slots = slots(&c.a, &run).await;
    assert_eq!(slots.len(), 40);
    assert!(busiest_second(&slots) <= 5, "{slots:?}");
    // Every request left at its slot: the receipts keep the rate too.
    let mut receipts: Vec<_> = [&fa, &fb]
        .iter()
        .flat_map(|f| f.received().into_iter().map(|(_, t)| t))
        .collect();
    receipts.sort();
    assert!(busiest_second(&receipts) <= 5, "{receipts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_429_answered_to_one_worker_holds_every_worker_until_the_throttle_ends() {
    let c = Cluster::new(20).await;
    let run = c.campaign("promo", "").await;
    let mut first = true;
    let fa = Fake::answering(
        &c.clock,
        Box::new(move |_| {
            if std::mem::take(&mut first) {
                Err(SendError::Throttled {
                    retry_after: Some(Duration::from_secs(30)),
                    scope: ThrottleScope::Sender,
                })
            } else {
                Ok(Accepted::default())
            }
        }),
    );
    let fb = Fake::new(&c.clock);
    let (a, b) = (
        c.worker(&c.a, "a", &fa, 5, None),
        c.worker(&c.b, "b", &fb, 5, None),
    );
    work_both(&c, &a, &b).await;

    let throttled_at = fa.received()[0].1;
    let until =
        c.b.senders()
            .sender(SENDER)
            .await
            .unwrap()
            .throttled_until
            .expect("the throttle is the sender's, in the store");
    // The store keeps milliseconds.
    let off = until - (throttled_at + TimeDelta::seconds(30));
    assert!(
        off.num_milliseconds().abs() <= 1,
        "{until} vs {throttled_at}"
    );
    let slots = slots(&c.a, &run).await;
    let during: Vec<_> = slots
        .iter()
        .filter(|s| **s > throttled_at && **s < until)
        .collect();
    assert!(
        during.is_empty(),
        "slots granted while throttled: {during:?}"
    );
    let b_during: Vec<_> = fb
        .received()
        .into_iter()
        .filter(|(_, t)| *t > throttled_at && *t < until)
        .collect();
    assert!(b_during.is_empty(), "{b_during:?}");
    assert!(slots.iter().any(|s| *s >= until), "work resumed after it");
    let counts = c.a.deliveries().counts(&run).await.unwrap();
    assert_eq!(counts.sent, 20, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_block_answered_to_one_worker_stops_both_until_the_sender_is_resumed() {
    let c = Cluster::new(20).await;
    let run = c.campaign("promo", "").await;
    let mut requests = 0;
    let fa = Fake::answering(
        &c.clock,
        Box::new(move |_| {
            requests += 1;
            if requests == 3 {
                Err(SendError::Rejected {
                    code: "131048".into(),
                    detail: "spam rate limit hit".into(),
                    action: Some(ProviderAction::BlockSender),
                })
            } else {
                Ok(Accepted::default())
            }
        }),
    );
    let fb = Fake::new(&c.clock);
    let (a, b) = (
        c.worker(&c.a, "a", &fa, 5, None),
        c.worker(&c.b, "b", &fb, 5, None),
    );
    work_both(&c, &a, &b).await;

    let blocked_at = fa.received()[2].1;
    let state = c.b.senders().sender(SENDER).await.unwrap();
    let block = state.blocked.expect("the block is the sender's");
    assert_eq!(block.code, "131048");
    let after: Vec<_> = [&fa, &fb]
        .iter()
        .flat_map(|f| f.received())
        .filter(|(_, t)| *t > blocked_at)
        .collect();
    assert!(after.is_empty(), "requests after the block: {after:?}");
    let counts = c.a.deliveries().counts(&run).await.unwrap();
    assert!(counts.queued > 0 && counts.sent < 20, "{counts:?}");
    // A block is the sender's state, not the run's: the run stays active.
    let record = c.a.runs().run(&run).await.unwrap().unwrap();
    assert_eq!(record.state, RunState::Active);
    // An hour later both still take nothing.
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(a.step().await.unwrap(), Step::Idle(None));
    assert_eq!(b.step().await.unwrap(), Step::Idle(None));

    assert!(c.a.senders().resume(SENDER).await.unwrap());
    work_both(&c, &a, &b).await;
    let counts = c.a.deliveries().counts(&run).await.unwrap();
    assert_eq!(counts.sent, 20, "{counts:?}");
    let per_phone = requests_per_phone(&[&fa, &fb]);
    // The blocked request was not accepted: its recipient was asked twice, everyone else once.
    assert_eq!(
        per_phone.values().filter(|n| **n == 2).count(),
        1,
        "{per_phone:?}"
    );
    assert_eq!(
        per_phone.values().filter(|n| **n == 1).count(),
        19,
        "{per_phone:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_opt_out_recorded_while_both_drain_ends_those_deliveries_skipped() {
    let c = Cluster::new(30).await;
    let run = c.campaign("promo", "").await;
    // Recipients 0..5 are due later than the rest, so the opt-outs land before their claims.
    let later = start() + TimeDelta::seconds(20);
    for i in 0..5 {
        let key = DeliveryKey {
            run: run.clone(),
            recipient: herald_core::RecipientKey::parse(&format!("r{i}")).unwrap(),
        };
        c.a.deliveries()
            .defer(&key, later, WaitReason::Schedule)
            .await
            .unwrap();
    }
    let (fa, fb) = (Fake::new(&c.clock), Fake::new(&c.clock));
    let (a, b) = (
        c.worker(&c.a, "a", &fa, 5, None),
        c.worker(&c.b, "b", &fb, 5, None),
    );
    // A third handle records the opt-outs two seconds into the drain, as `herald consent`
    // would from another process.
    let third = SqliteStores::open_with(
        &c.dir.path().join("h.db"),
        StoreTime::Clock(Arc::clone(&c.clock) as Arc<dyn Clock>),
    )
    .unwrap();
    let clock = Arc::clone(&c.clock);
    let opt_outs = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = clock.now();
        let events: Vec<_> = (0..5)
            .map(|i| consent(i, ConsentKind::OptOut, now))
            .collect();
        third.consents().append(&events, now).await.unwrap();
    });
    work_both(&c, &a, &b).await;
    opt_outs.await.unwrap();

    let counts = c.a.deliveries().counts(&run).await.unwrap();
    assert_eq!(counts.sent, 25, "{counts:?}");
    assert_eq!(counts.skipped.get("opted_out"), Some(&5), "{counts:?}");
    let per_phone = requests_per_phone(&[&fa, &fb]);
    for i in 0..5 {
        assert!(!per_phone.contains_key(&phone_text(i)), "{i} was sent to");
    }
}

#[tokio::test(start_paused = true)]
async fn two_campaigns_of_one_purpose_on_two_workers_never_exceed_a_cap_of_one_per_day() {
    let c = Cluster::new(20).await;
    let cap = "frequency_cap: [ { max: 1, per: 1d, scope: purpose } ]\n";
    let first = c.campaign("promo-a", cap).await;
    let second = c.campaign("promo-b", cap).await;
    let (fa, fb) = (Fake::new(&c.clock), Fake::new(&c.clock));
    let (a, b) = (
        c.worker(&c.a, "a", &fa, 50, Some(vec![first.clone()])),
        c.worker(&c.b, "b", &fb, 50, Some(vec![second.clone()])),
    );
    work_both(&c, &a, &b).await;

    let per_phone = requests_per_phone(&[&fa, &fb]);
    assert_eq!(per_phone.len(), 20, "{per_phone:?}");
    assert!(per_phone.values().all(|n| *n == 1), "{per_phone:?}");
    let (x, y) = (
        c.a.deliveries().counts(&first).await.unwrap(),
        c.a.deliveries().counts(&second).await.unwrap(),
    );
    assert_eq!(x.sent + y.sent, 20, "{x:?} {y:?}");
    let capped = |c: &herald_store::RunCounts| c.skipped.get("frequency_capped").copied();
    assert_eq!(
        capped(&x).unwrap_or(0) + capped(&y).unwrap_or(0),
        20,
        "{x:?} {y:?}"
    );
    assert_eq!(x.queued + y.queued + x.sending + y.sending, 0);
}

#[tokio::test(start_paused = true)]
async fn a_killed_workers_claims_are_recovered_only_after_its_lease_by_the_other() {
    let c = Cluster::new(1).await;
    let run = c.campaign("promo", "").await;
    let arrived = Arc::new(tokio::sync::Notify::new());
    let fa = Arc::new(Fake {
        clock: Arc::clone(&c.clock),
        received: Mutex::new(Vec::new()),
        answer: Mutex::new(Box::new(|_| Ok(Accepted::default()))),
        hang: Some(Arc::clone(&arrived)),
    });
    let fb = Fake::new(&c.clock);
    let (a, b) = (
        c.worker(&c.a, "a", &fa, 5, None),
        c.worker(&c.b, "b", &fb, 5, None),
    );
    // Let the campaign's spread pass, then worker a claims and sends, and is killed while its
    // request is in flight: nothing recorded, its lease no longer renewed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stepping = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.step().await }
    });
    arrived.notified().await;
    let claimed_at = c.now();
    stepping.abort();
    assert!(stepping.await.unwrap_err().is_cancelled());
    let claims = c.b.deliveries().claims(&run).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        (&claims[0].owner, claims[0].state.as_str()),
        (a.id(), "sending")
    );

    // Within the lease (60 s) the other worker leaves it alone.
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(b.recover().await.unwrap().is_empty());
    assert_eq!(b.step().await.unwrap(), Step::Idle(None));
    let counts = c.b.deliveries().counts(&run).await.unwrap();
    assert_eq!(counts.sending, 1, "{counts:?}");

    // Past it, the claim is recovered, owned by the dead worker, and not sent again.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(c.now() > claimed_at + TimeDelta::seconds(60));
    let recovered = b.recover().await.unwrap();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(&recovered[0].owner, a.id());
    assert!(!recovered[0].requeued);
    let claims = c.b.deliveries().claims(&run).await.unwrap();
    assert_eq!(claims[0].state, "unknown");
    assert!(claims[0].recovered);
    assert_eq!(&claims[0].owner, a.id());
    assert_eq!(b.step().await.unwrap(), Step::Idle(None));
    assert!(fb.received().is_empty(), "at most once: never sent again");
    assert_eq!(fa.received().len(), 1);
}

#[test]
fn the_fixture_campaign_parses() {
    // Guards the YAML above, which every test here builds on.
    let dir = tempfile::tempdir().unwrap();
    let yaml = "id: promo\npurpose: marketing\naudience: { source: people.csv }\n\
                template: { name: promo, language: en }\n\
                schedule: { at: 2026-11-30T10:00, in: recipient, expires_after: 12h }\n\
                send_window:\n  hours: { daily: \"00:00-24:00\" }\nspread: 1s\n";
    let campaign = herald_campaign::parse_stored("c.yaml", Path::new(dir.path()), yaml, start());
    assert!(campaign.is_ok(), "{campaign:?}");
}
