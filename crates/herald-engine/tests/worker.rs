//! The worker step against a real SQLite file, with a manual clock and a recording channel.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use herald_channel::{Accepted, Channel, OutgoingMessage, ProviderAction, SendError};
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, Scope};
use herald_engine::expand::expand;
use herald_engine::worker::{Step, Worker};
use herald_store::{Consents, Deliveries, Senders, StoredConsent, Stores};
use herald_store_sqlite::SqliteStores;
use herald_testkit::TokioClock;

/// Records what would have been sent, with the manual clock's reading at the request.
struct Recording {
    clock: Arc<TokioClock>,
    sent: Mutex<Vec<(String, DateTime<Utc>)>>,
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

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    stores: Arc<SqliteStores>,
    clock: Arc<TokioClock>,
    channel: Arc<Recording>,
    worker: Arc<Worker<SqliteStores, Recording>>,
    run: herald_core::RunId,
}

/// `n` recipients in Moscow, a marketing campaign at 10:00 local on Monday 2026-11-30 with the
/// window mon-fri 09:00-20:00 and `extra` YAML appended; everyone opted in.
async fn setup(n: usize, extra: &str, start: DateTime<Utc>) -> Setup {
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

async fn drain(s: &Setup) {
    while let Step::Worked(_) = s.worker.step().await.unwrap() {}
}

#[tokio::test(start_paused = true)]
async fn deferred_deliveries_go_out_when_the_window_opens_spread_over_the_spread() {
    let s = setup(300, "", at("2026-11-30T03:00:00Z")).await; // 06:00 MSK: before the window
    assert_eq!(
        s.worker.step().await.unwrap(),
        Step::Idle(Some(
            s.stores.deliveries().next_due().await.unwrap().unwrap()
        ))
    );
    assert!(
        s.channel.sent.lock().unwrap().is_empty(),
        "nothing before the window"
    );
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.queued, 300);
    let (wave, _) = counts.next_wave.unwrap();
    assert!(
        wave >= at("2026-11-30T07:00:00Z") && wave < at("2026-11-30T07:10:00Z"),
        "{wave}"
    );
    // Walk the clock through 10:00-10:10 MSK a minute at a time.
    let mut per_minute = BTreeMap::new();
    for minute in 0..=10 {
        s.clock
            .set(at("2026-11-30T07:00:00Z") + TimeDelta::minutes(minute));
        let before = s.channel.sent.lock().unwrap().len();
        drain(&s).await;
        per_minute.insert(minute, s.channel.sent.lock().unwrap().len() - before);
    }
    let total: usize = per_minute.values().sum();
    assert_eq!(total, 300, "{per_minute:?}");
    assert!(
        per_minute.values().all(|n| *n < 60),
        "a thundering minute: {per_minute:?}"
    );
    assert!(
        per_minute.values().filter(|n| **n > 0).count() >= 9,
        "{per_minute:?}"
    );
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.sent, 300);
}

#[tokio::test(start_paused = true)]
async fn an_opt_out_while_deferred_stops_the_delivery_and_an_old_opt_in_cannot_undo_it() {
    let s = setup(3, "", at("2026-11-30T03:00:00Z")).await;
    drain(&s).await;
    let phone = PhoneNumber::parse("+79162000001", None).unwrap();
    let event = |kind, at_: &str| StoredConsent {
        channel: "whatsapp".into(),
        phone: phone.clone(),
        event: ConsentEvent {
            kind,
            scope: Scope::All,
            occurred_at: at(at_),
            source: "cli".into(),
            proof: None,
        },
    };
    s.stores
        .consents()
        .append(
            &[event(ConsentKind::OptOut, "2026-11-30T04:00:00Z")],
            s.clock.now_(),
        )
        .await
        .unwrap();
    // An opt-in that happened earlier but arrives later.
    s.stores
        .consents()
        .append(
            &[event(ConsentKind::OptIn, "2026-11-29T00:00:00Z")],
            s.clock.now_(),
        )
        .await
        .unwrap();
    set(&s.clock, at("2026-11-30T08:00:00Z")).await;
    drain(&s).await;
    let sent: Vec<String> = s
        .channel
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(r, _)| r.clone())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(!sent.contains(&"r1".to_owned()));
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.skipped.get("opted_out"), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn deliveries_that_cannot_go_out_before_expiry_end_expired() {
    let s = setup(5, "", at("2026-11-30T03:00:00Z")).await;
    // Nobody runs the worker until Wednesday evening: past the 48 h expiry.
    set(&s.clock, at("2026-12-02T08:00:00Z")).await;
    drain(&s).await;
    assert!(s.channel.sent.lock().unwrap().is_empty());
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.expired, 5, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn frequency_caps_count_sends_made_meanwhile() {
    let s = setup(
        2,
        "frequency_cap:\n  - { max: 1, per: 7d, scope: purpose }\n",
        at("2026-11-30T07:30:00Z"),
    )
    .await;
    drain(&s).await;
    assert_eq!(s.channel.sent.lock().unwrap().len(), 2);
    // A second campaign of the same purpose to the same people, an hour later: capped.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        s._dir.path().join("people.csv"),
        dir.path().join("people.csv"),
    )
    .unwrap();
    let yaml = std::fs::read_to_string(s._dir.path().join("c.yaml"))
        .unwrap()
        .replace("id: promo", "id: promo-two");
    std::fs::write(dir.path().join("c.yaml"), yaml).unwrap();
    let second = herald_campaign::load(&dir.path().join("c.yaml"), s.clock.now_()).unwrap();
    set(&s.clock, at("2026-11-30T08:30:00Z")).await;
    let (run2, _) = expand(&*s.stores, &second, registered("c.yaml"), s.clock.now_())
        .await
        .unwrap();
    s.worker.register(&run2, second);
    drain(&s).await;
    assert_eq!(s.channel.sent.lock().unwrap().len(), 2, "the cap must hold");
    let counts = s.stores.deliveries().counts(&run2).await.unwrap();
    assert_eq!(
        counts.skipped.get("frequency_capped"),
        Some(&2),
        "{counts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn expanding_twice_creates_no_second_delivery() {
    let s = setup(20, "", at("2026-11-30T07:30:00Z")).await;
    let campaign = herald_campaign::load(&s._dir.path().join("c.yaml"), s.clock.now_()).unwrap();
    let (run, again) = expand(&*s.stores, &campaign, registered("c.yaml"), s.clock.now_())
        .await
        .unwrap();
    assert_eq!(run, s.run);
    assert!(again.already_expanded);
    assert_eq!(again.total, 20);
    drain(&s).await;
    assert_eq!(s.channel.sent.lock().unwrap().len(), 20);
}

trait NowExt {
    fn now_(&self) -> DateTime<Utc>;
}

impl NowExt for TokioClock {
    fn now_(&self) -> DateTime<Utc> {
        herald_core::clock::Clock::now(self)
    }
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_recipient_id_is_counted_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("people.csv"),
        "id,phone,timezone\nsame,+79163000001,Europe/Moscow\nsame,+79163000002,Europe/Moscow\n",
    )
    .unwrap();
    let yaml = "id: dup\npurpose: transactional\naudience: { source: people.csv }\ntemplate: { name: t, language: en }\n\
                schedule: { at: 2026-11-30T10:00, in: recipient }\n";
    std::fs::write(dir.path().join("c.yaml"), yaml).unwrap();
    let campaign =
        herald_campaign::load(&dir.path().join("c.yaml"), at("2026-11-30T08:00:00Z")).unwrap();
    let stores = SqliteStores::open(&dir.path().join("h.db")).unwrap();
    let (run, expansion) = expand(
        &stores,
        &campaign,
        registered("c.yaml"),
        at("2026-11-30T08:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(expansion.total, 2, "both rows are deliveries of the run");
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!(counts.skipped.get("duplicate"), Some(&1), "{counts:?}");
    assert_eq!(counts.queued, 1);
}

#[tokio::test(start_paused = true)]
async fn a_worker_never_sends_another_runs_deliveries() {
    let s = setup(3, "", at("2026-11-30T07:30:00Z")).await;
    // A second worker on the same store, for another sender: it must not touch `promo`.
    let other = Arc::new(Recording {
        clock: Arc::clone(&s.clock),
        sent: Mutex::new(Vec::new()),
    });
    let stranger = Arc::new(Worker::new(
        Arc::clone(&s.stores),
        Arc::clone(&other),
        s.clock.clone(),
        herald_store::WorkerId::parse("test/2/0").unwrap(),
        herald_store::WorkScope {
            sender: "other".into(),
            runs: None,
        },
        NonZeroU32::new(10_000).unwrap(),
        500,
    ));
    set(&s.clock, at("2026-11-30T08:00:00Z")).await;
    assert_eq!(stranger.step().await.unwrap(), Step::Idle(None));
    assert!(other.sent.lock().unwrap().is_empty());
    drain(&s).await;
    assert_eq!(s.channel.sent.lock().unwrap().len(), 3);
}

/// Answers like a provider that refuses some recipients with a given code and action.
struct Refusing {
    refuse: BTreeMap<String, (String, Option<ProviderAction>)>,
    sent: Mutex<Vec<String>>,
}

impl Channel for Refusing {
    fn name(&self) -> &'static str {
        "refusing"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        if let Some((code, action)) = self.refuse.get(&message.recipient) {
            return Err(SendError::Rejected {
                code: code.clone(),
                detail: "refused by the test".into(),
                action: *action,
            });
        }
        self.sent.lock().unwrap().push(message.recipient.clone());
        Ok(Accepted::default())
    }
}

fn refusing(refuse: &[(&str, &str, Option<ProviderAction>)]) -> Arc<Refusing> {
    let refuse = refuse
        .iter()
        .map(|(r, c, a)| ((*r).to_owned(), ((*c).to_owned(), *a)))
        .collect();
    Arc::new(Refusing {
        refuse,
        sent: Mutex::new(Vec::new()),
    })
}

#[tokio::test(start_paused = true)]
async fn a_provider_opt_out_is_recorded_and_later_marketing_skips_the_phone() {
    let s = setup(3, "", at("2026-11-30T07:30:00Z")).await;
    let channel = refusing(&[("r1", "131050", Some(ProviderAction::OptOut))]);
    let worker = worker_for(&s, Arc::clone(&channel));
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.failed.get("131050"), Some(&1), "{counts:?}");
    let phone = PhoneNumber::parse("+79162000001", None).unwrap();
    let events = s
        .stores
        .consents()
        .events("whatsapp", &phone)
        .await
        .unwrap();
    let last = &events.last().unwrap().event;
    assert_eq!(
        (last.kind, last.scope, last.source.as_str()),
        (ConsentKind::OptOut, Scope::Marketing, "webhook:131050")
    );
    // A later marketing campaign to the same people skips that phone.
    let yaml = std::fs::read_to_string(s._dir.path().join("c.yaml"))
        .unwrap()
        .replace("id: promo", "id: promo-later");
    std::fs::write(s._dir.path().join("later.yaml"), yaml).unwrap();
    let later = herald_campaign::load(&s._dir.path().join("later.yaml"), s.clock.now_()).unwrap();
    let (run2, _) = expand(&*s.stores, &later, registered("later.yaml"), s.clock.now_())
        .await
        .unwrap();
    s.worker.register(&run2, later);
    drain(&s).await;
    let counts = s.stores.deliveries().counts(&run2).await.unwrap();
    assert_eq!(counts.skipped.get("opted_out"), Some(&1), "{counts:?}");
    assert_eq!(counts.sent, 2);
}

#[tokio::test(start_paused = true)]
async fn a_sender_block_blocks_the_sender_not_the_run_and_keeps_deliveries_queued() {
    let s = setup(5, "", at("2026-11-30T07:30:00Z")).await;
    let block = Some(ProviderAction::BlockSender);
    let channel = refusing(&[
        ("r0", "131048", block),
        ("r1", "131048", block),
        ("r2", "131048", block),
        ("r3", "131048", block),
        ("r4", "131048", block),
    ]);
    let worker = worker_for(&s, Arc::clone(&channel));
    let _ = worker.step().await.unwrap();
    assert_eq!(
        worker.step().await.unwrap(),
        Step::Idle(None),
        "a blocked sender takes nothing more"
    );
    let state = s.stores.senders().sender("main").await.unwrap();
    let blocked = state.blocked.expect("the sender is blocked in the store");
    assert_eq!(blocked.code, "131048");
    let record = herald_store::Runs::run(s.stores.runs(), &s.run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, herald_store::RunState::Active);
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(
        (counts.queued, counts.sending, counts.sent),
        (5, 0, 0),
        "{counts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn recipients_over_the_messaging_tier_are_deferred_not_failed() {
    let s = setup(251, "", at("2026-11-30T07:30:00Z")).await;
    let channel = Arc::new(Recording {
        clock: Arc::clone(&s.clock),
        sent: Mutex::new(Vec::new()),
    });
    let worker = Arc::new(
        Worker::new(
            Arc::clone(&s.stores),
            Arc::clone(&channel),
            s.clock.clone(),
            test_worker_id(),
            main_scope(),
            NonZeroU32::new(10_000).unwrap(),
            500,
        )
        .with_tier(250),
    );
    let campaign = herald_campaign::load(&s._dir.path().join("c.yaml"), s.clock.now_()).unwrap();
    worker.register(&s.run, campaign);
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    assert_eq!(
        channel.sent.lock().unwrap().len(),
        250,
        "the 251st unique recipient within 24 h waits"
    );
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!((counts.sent, counts.queued), (250, 1), "{counts:?}");
    let (wave, _) = counts.next_wave.unwrap();
    assert!(
        wave >= at("2026-12-01T07:30:00Z"),
        "deferred until the first send leaves the window: {wave}"
    );
}

/// Refuses one recipient with the pair-rate limit (WhatsApp 131056), accepts the others.
struct PairRate {
    limited: String,
    sent: Mutex<Vec<String>>,
}

impl Channel for PairRate {
    fn name(&self) -> &'static str {
        "pair-rate"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        if message.recipient == self.limited {
            return Err(SendError::Throttled {
                retry_after: Some(std::time::Duration::from_secs(60)),
                scope: herald_channel::ThrottleScope::Recipient,
            });
        }
        self.sent.lock().unwrap().push(message.recipient.clone());
        Ok(Accepted::default())
    }
}

#[tokio::test(start_paused = true)]
async fn a_pair_rate_limit_slows_only_that_recipient() {
    let s = setup(4, "", at("2026-11-30T07:30:00Z")).await;
    let channel = Arc::new(PairRate {
        limited: "r1".into(),
        sent: Mutex::new(Vec::new()),
    });
    let worker = worker_for(&s, Arc::clone(&channel));
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    assert_eq!(channel.sent.lock().unwrap().len(), 3);
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!((counts.sent, counts.queued), (3, 1), "{counts:?}");
    let (retry, _) = counts.next_wave.unwrap();
    assert!(
        retry >= at("2026-11-30T07:31:00Z"),
        "r1 waits its Retry-After: {retry}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_131050_in_a_later_status_opts_the_phone_out_of_later_marketing() {
    let s = setup(2, "", at("2026-11-30T07:30:00Z")).await;
    drain(&s).await;
    assert_eq!(s.channel.sent.lock().unwrap().len(), 2);
    // The status arrives after the send: the message reached nobody, the user stopped promotions.
    let phone = PhoneNumber::parse("+79162000000", None).unwrap();
    let class = herald_engine::statuses::record_failed_status(
        &*s.stores,
        "whatsapp",
        &phone,
        131050,
        at("2026-11-30T07:45:00Z"),
    )
    .await
    .unwrap();
    assert!(
        matches!(
            class,
            herald_channel::whatsapp::Classification::OptOut { .. }
        ),
        "{class:?}"
    );
    let other = herald_engine::statuses::record_failed_status(
        &*s.stores,
        "whatsapp",
        &phone,
        131026,
        at("2026-11-30T07:46:00Z"),
    )
    .await
    .unwrap();
    assert!(!matches!(
        other,
        herald_channel::whatsapp::Classification::OptOut { .. }
    ));
    let yaml = std::fs::read_to_string(s._dir.path().join("c.yaml"))
        .unwrap()
        .replace("id: promo", "id: promo-next");
    std::fs::write(s._dir.path().join("next.yaml"), yaml).unwrap();
    let next = herald_campaign::load(&s._dir.path().join("next.yaml"), s.clock.now_()).unwrap();
    set(&s.clock, at("2026-11-30T09:00:00Z")).await;
    let (run2, _) = expand(&*s.stores, &next, registered("next.yaml"), s.clock.now_())
        .await
        .unwrap();
    s.worker.register(&run2, next);
    drain(&s).await;
    let counts = s.stores.deliveries().counts(&run2).await.unwrap();
    assert_eq!(counts.skipped.get("opted_out"), Some(&1), "{counts:?}");
    assert_eq!(counts.sent, 1);
}

#[tokio::test(start_paused = true)]
async fn repeated_template_errors_pause_the_run_with_the_reason() {
    let s = setup(5, "", at("2026-11-30T07:30:00Z")).await;
    let all: Vec<(String, (String, Option<ProviderAction>))> = (0..5)
        .map(|i| {
            let error = ("132001".to_owned(), Some(ProviderAction::TemplateError));
            (format!("r{i}"), error)
        })
        .collect();
    let channel = Arc::new(Refusing {
        refuse: all.into_iter().collect(),
        sent: Mutex::new(Vec::new()),
    });
    let worker = worker_for(&s, Arc::clone(&channel));
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    let record = herald_store::Runs::run(s.stores.runs(), &s.run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, herald_store::RunState::Paused);
    assert!(
        record
            .state_reason
            .unwrap_or_default()
            .contains("(code 132001)")
    );
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(
        (counts.queued, counts.sent),
        (5, 0),
        "nothing is lost while paused: {counts:?}"
    );
}

/// A second worker on `s`'s store and run, sending through `channel`.
fn worker_for<C: Channel + 'static>(s: &Setup, channel: Arc<C>) -> Arc<Worker<SqliteStores, C>> {
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
fn registered(path: &str) -> herald_engine::expand::RunSource<'_> {
    herald_engine::expand::RunSource {
        path,
        sender: "main",
        text: "",
    }
}

fn test_worker_id() -> herald_store::WorkerId {
    herald_store::WorkerId::parse("test/1/0").unwrap()
}

/// Every run of the sender `main`, which the tests' runs are stored under.
fn main_scope() -> herald_store::WorkScope {
    herald_store::WorkScope {
        sender: "main".into(),
        runs: None,
    }
}

/// The store's time is the test's clock: leases, slots, the tier and the throttle move with it.
fn store_time(clock: &Arc<herald_testkit::TokioClock>) -> herald_store::StoreTime {
    herald_store::StoreTime::Clock(Arc::clone(clock) as Arc<dyn herald_core::clock::Clock>)
}

/// Moves the paused tokio clock (and so the test's clock) forward to `to`.
async fn set(clock: &herald_testkit::TokioClock, to: DateTime<Utc>) {
    let now = herald_core::clock::Clock::now(clock);
    tokio::time::advance((to - now).to_std().expect("the clock only moves forward")).await;
}
