//! Why queued deliveries wait, as the worker records it, and how it handles a long throttle:
//! against a real SQLite file, with a manual clock and channels that answer as a provider would.

mod common;
use common::{at, main_scope, registered, set, store_time, test_worker_id};

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_channel::{
    Accepted, Channel, OutgoingMessage, ProviderAction, SendError, ThrottleScope,
};
use herald_core::clock::Clock;
use herald_engine::expand::expand;
use herald_engine::worker::{Step, Worker};
use herald_store::{Deliveries, QueueWaits, Stores, WaitReason};
use herald_store_sqlite::SqliteStores;
use herald_testkit::TokioClock;

/// Answers every request with `answer`, counting them.
struct Answering {
    answer: fn() -> Result<Accepted, SendError>,
    requests: AtomicUsize,
}

impl Channel for Answering {
    fn name(&self) -> &'static str {
        "answering"
    }

    async fn send(&self, _message: &OutgoingMessage) -> Result<Accepted, SendError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        (self.answer)()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    stores: Arc<SqliteStores>,
    clock: Arc<TokioClock>,
    run: herald_core::RunId,
    campaign: herald_campaign::Campaign,
}

/// `n` recipients in UTC; a transactional campaign at `at` (UTC) with `extra` YAML, expanded
/// at `now`.
async fn setup(n: usize, at_: &str, extra: &str, now: DateTime<Utc>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..n {
        csv.push_str(&format!("r{i},+7916{:07},Etc/UTC\n", 4_000_000 + i));
    }
    std::fs::write(dir.path().join("people.csv"), csv).unwrap();
    let yaml = format!(
        "id: waits\npurpose: transactional\naudience: {{ source: people.csv }}\n\
         template: {{ name: notice, language: en }}\nschedule: {{ at: {at_}, in: Etc/UTC }}\n{extra}"
    );
    std::fs::write(dir.path().join("c.yaml"), yaml).unwrap();
    let campaign = herald_campaign::load(
        &dir.path().join("c.yaml"),
        "2026-11-30T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let clock = Arc::new(TokioClock::new(now));
    let stores =
        Arc::new(SqliteStores::open_with(&dir.path().join("h.db"), store_time(&clock)).unwrap());
    let (run, _) = expand(&*stores, &campaign, registered("c.yaml"), now)
        .await
        .unwrap();
    Setup {
        _dir: dir,
        stores,
        clock,
        run,
        campaign,
    }
}

impl Setup {
    fn worker<C: Channel + 'static>(&self, channel: Arc<C>) -> Arc<Worker<SqliteStores, C>> {
        let worker = Arc::new(Worker::new(
            Arc::clone(&self.stores),
            channel,
            self.clock.clone(),
            test_worker_id(),
            main_scope(),
            NonZeroU32::new(50).unwrap(),
            500,
        ));
        worker.register(&self.run, self.campaign.clone());
        worker
    }

    async fn waits(&self) -> QueueWaits {
        self.stores
            .deliveries()
            .waits(&self.run, self.clock.now(), None)
            .await
            .unwrap()
    }
}

fn reasons(waits: &QueueWaits) -> Vec<(WaitReason, u64)> {
    waits.waiting.iter().map(|(r, w)| (*r, w.count)).collect()
}

/// Issue 10, item 10: a `Retry-After` of a day was slept inside the permit wait (capped at 24
/// hours), so a step, and `run --until-idle` with it, hung. Now the throttle is capped at 15
/// minutes and never slept in a step: what the step still holds waits for it in the queue,
/// where `status` and `--until-idle` see it.
#[tokio::test(start_paused = true)]
async fn a_day_long_retry_after_is_waited_for_in_the_queue_not_in_the_step() {
    let now = at("2026-11-30T10:00:00Z");
    let s = setup(6, "2026-11-30T09:00", "spread: 1s\n", now).await;
    let channel = Arc::new(Answering {
        answer: || {
            Err(SendError::Throttled {
                retry_after: Some(Duration::from_secs(86_400)),
                scope: ThrottleScope::Sender,
            })
        },
        requests: AtomicUsize::new(0),
    });
    let worker = s.worker(Arc::clone(&channel));
    let began = tokio::time::Instant::now();
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    // Tokio's clock is paused: a sleep in the step would show here as (virtual) elapsed time.
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "the step slept {:?}",
        began.elapsed()
    );
    // Recorded for every worker of the sender, capped at 15 minutes from the answer (which
    // came at the first request's slot, within the first second).
    let until = worker
        .throttled_until()
        .await
        .unwrap()
        .expect("the sender is throttled");
    let capped = now + TimeDelta::minutes(15);
    assert!(
        until >= capped && until < capped + TimeDelta::seconds(1),
        "{until}"
    );
    assert_eq!(
        channel.requests.load(Ordering::SeqCst),
        1,
        "no request after the throttle was known"
    );
    // Everything waits for the throttle in the queue, the claims granted before the answer
    // came (within the slot horizon) included: they were not sent.
    let waits = s.waits().await;
    assert_eq!(
        (waits.due, reasons(&waits)),
        (0, vec![(WaitReason::Throttle, 6)])
    );
    let next = waits.waiting[&WaitReason::Throttle].next;
    assert_eq!(next, until);
    assert_eq!(worker.step().await.unwrap(), Step::Idle(Some(next)));
    set(&s.clock, until).await;
    assert_eq!(worker.throttled_until().await.unwrap(), None);
}

/// Issue 10, item 12: each way a delivery comes to wait is stored with it.
#[tokio::test(start_paused = true)]
async fn every_deferral_records_why_it_waits() {
    // Starting now with a spread: the offsets ahead wait for the spread, not "their window".
    let now = at("2026-11-30T10:00:00Z");
    let s = setup(30, "2026-11-30T10:00", "", now).await;
    let waits = s.waits().await;
    assert_eq!(
        waits.waiting.keys().copied().collect::<Vec<_>>(),
        [WaitReason::Spread]
    );
    assert!(waits.waiting[&WaitReason::Spread].count > 20, "{waits:?}");
    assert!(waits.waiting[&WaitReason::Spread].next < now + TimeDelta::minutes(10));

    // Planned for later the same day, window open then: the schedule.
    let s = setup(3, "2026-11-30T15:00", "spread: 1s\n", now).await;
    assert_eq!(reasons(&s.waits().await), [(WaitReason::Schedule, 3)]);

    // Planned inside a closed window: the window, until its opening.
    let window = "send_window: { hours: { daily: \"12:00-13:00\" } }\nspread: 1s\n";
    let s = setup(3, "2026-11-30T10:00", window, now).await;
    let waits = s.waits().await;
    assert_eq!(reasons(&waits), [(WaitReason::Window, 3)]);
    assert_eq!(waits.next(), Some(at("2026-11-30T12:00:00Z")));

    // Not taken by the provider (no connection): a retry after the back-off.
    let s = setup(2, "2026-11-30T09:00", "spread: 1s\n", now).await;
    let refused = Arc::new(Answering {
        answer: || {
            Err(SendError::Retryable {
                retry_after: None,
                reason: "connection refused".into(),
            })
        },
        requests: AtomicUsize::new(0),
    });
    let worker = s.worker(refused);
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    assert_eq!(reasons(&s.waits().await), [(WaitReason::Retry, 2)]);

    // Over the messaging tier: the tier, until a slot frees.
    let s = setup(3, "2026-11-30T09:00", "spread: 1s\n", now).await;
    let accepting = Arc::new(Answering {
        answer: || Ok(Accepted::default()),
        requests: AtomicUsize::new(0),
    });
    let worker = Arc::new(
        Worker::new(
            Arc::clone(&s.stores),
            accepting,
            s.clock.clone(),
            test_worker_id(),
            main_scope(),
            NonZeroU32::new(50).unwrap(),
            500,
        )
        .with_tier(2),
    );
    worker.register(&s.run, s.campaign.clone());
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    let waits = s.waits().await;
    assert_eq!(reasons(&waits), [(WaitReason::Tier, 1)]);
    assert_eq!(waits.next(), Some(now + TimeDelta::hours(24)));

    // A sender block: an operator must act. It is the sender's state (every worker of it
    // stops), not the run's: the queue stays as it was, nothing is sent or failed.
    let s = setup(3, "2026-11-30T09:00", "spread: 1s\n", now).await;
    let blocked = Arc::new(Answering {
        answer: || {
            Err(SendError::Rejected {
                code: "131048".into(),
                detail: "spam rate limit hit".into(),
                action: Some(ProviderAction::BlockSender),
            })
        },
        requests: AtomicUsize::new(0),
    });
    let worker = s.worker(Arc::clone(&blocked));
    // At 50/s a slot is 20 ms: the three claims fit in the 50 ms horizon before the first
    // answer; the two still waiting for their slot when the block came are not sent.
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    assert_eq!(worker.step().await.unwrap(), Step::Idle(None));
    let block = worker
        .sender_state()
        .await
        .unwrap()
        .blocked
        .expect("blocked");
    assert_eq!(block.code, "131048");
    assert_eq!(s.waits().await.total(), 3);
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!((counts.queued, counts.sending), (3, 0), "{counts:?}");
    assert_eq!(blocked.requests.load(Ordering::SeqCst), 1);
}

/// A throttle that one request of a claim group reports holds back the rest of the group and
/// the step at once; nothing claimed is left `sending`.
#[tokio::test(start_paused = true)]
async fn a_throttle_leaves_nothing_claimed() {
    let now = at("2026-11-30T10:00:00Z");
    let s = setup(5, "2026-11-30T09:00", "spread: 1s\n", now).await;
    let first = Mutex::new(true);
    let first = Arc::new(first);
    struct FirstThrottled(Arc<Mutex<bool>>);
    impl Channel for FirstThrottled {
        fn name(&self) -> &'static str {
            "first-throttled"
        }
        async fn send(&self, _message: &OutgoingMessage) -> Result<Accepted, SendError> {
            if std::mem::replace(&mut *self.0.lock().unwrap(), false) {
                return Err(SendError::Throttled {
                    retry_after: Some(Duration::from_secs(30)),
                    scope: ThrottleScope::Sender,
                });
            }
            Ok(Accepted::default())
        }
    }
    let worker = s.worker(Arc::new(FirstThrottled(Arc::clone(&first))));
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.sending, 0, "{counts:?}");
    assert_eq!(counts.sent + counts.queued, 5, "{counts:?}");
    let waits = s.waits().await;
    assert_eq!(
        waits.waiting[&WaitReason::Throttle].next,
        now + TimeDelta::seconds(30)
    );
    // Once it has passed, the rest goes.
    set(&s.clock, now + TimeDelta::seconds(30)).await;
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!((counts.sent, counts.queued), (5, 0), "{counts:?}");
}
