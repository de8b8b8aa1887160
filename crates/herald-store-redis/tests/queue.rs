//! What the conformance suite does not reach: expansion chunked across script calls, a cancel
//! bigger than one chunk, the moves from `sending` (set up in the layout of `keys.rs`, as a
//! claim leaves it) keeping the run's counters exact and the history, leases and `done` in step.

mod common;

use std::collections::BTreeMap;

use herald_core::{Outcome, SkipReason};
use herald_store::conformance::{ManualClock, new_run, owner, queued, t, worker};
use herald_store::{
    Change, Deliveries, DeliveryKey, RunCounts, RunState, Runs, StoreError, StoreTime, Stores,
    Terminal, WaitReason,
};
use herald_testkit::redis::RedisServer;

use common::{client, open};

fn rows(run: &herald_core::RunId, from: u32, to: u32) -> Vec<herald_store::NewDelivery> {
    (from..to)
        .map(|n| queued(run, &format!("r{n}"), n, i64::from(n % 100)))
        .collect()
}

fn total(counts: &RunCounts) -> u64 {
    counts.total()
}

/// A batch bigger than one script call's chunk goes in whole; a second batch overlapping the
/// first adds only its new rows, and the counts stay exact.
#[tokio::test]
async fn insert_batch_dedupes_across_batches_and_chunks() {
    let server = RedisServer::start();
    let stores = open(&server, StoreTime::Clock(ManualClock::new(t(0)))).await;
    let run = new_run("big");
    assert!(stores.runs().create_run(&run, t(0)).await.unwrap());
    let d = stores.deliveries();
    assert_eq!(
        d.insert_batch(&rows(&run.run, 0, 4_500)).await.unwrap(),
        4_500
    );
    assert_eq!(
        d.insert_batch(&rows(&run.run, 4_000, 6_000)).await.unwrap(),
        1_500
    );
    let counts = d.counts(&run.run).await.unwrap();
    assert_eq!((counts.queued, total(&counts)), (6_000, 6_000));
    // Every row is due within the first 100 s: one wave of all of them.
    assert_eq!(counts.next_wave, Some((t(0), 6_000)));
    let due = d.due(t(0), 10_000).await.unwrap();
    assert_eq!(due.len(), 60, "the rows due at t(0)");
    let due = d.due(t(1_000), 7_000).await.unwrap();
    assert_eq!(due.len(), 6_000);
    assert!(due.windows(2).all(|w| w[0].due_at <= w[1].due_at));
    assert_eq!(d.due(t(1_000), 5).await.unwrap().len(), 5);
    // A recipient twice in one batch keeps its first row, as across batches.
    let twice = [
        queued(&run.run, "twice", 1, 7),
        queued(&run.run, "twice", 1, 9),
    ];
    assert_eq!(d.insert_batch(&twice).await.unwrap(), 1);
    let due = d.due(t(7), 10_000).await.unwrap();
    assert!(
        due.iter()
            .any(|d| d.key == twice[0].key && d.due_at == t(7))
    );
    assert_eq!(d.counts(&run.run).await.unwrap().total(), 6_001);
    // A batch of several chunks naming an unknown run writes nothing; a queued row without a
    // recipient is refused, naming the field.
    let mut mixed = rows(&run.run, 10_000, 12_500);
    mixed.push(queued(&new_run("ghost").run, "g", 1, 0));
    assert!(matches!(
        d.insert_batch(&mixed).await,
        Err(StoreError::NotFound(_))
    ));
    let mut bare = queued(&run.run, "bare", 1, 0);
    bare.recipient = None;
    let refused = d.insert_batch(&[bare]).await.unwrap_err();
    assert!(refused.to_string().contains("recipient"), "{refused}");
    assert_eq!(d.counts(&run.run).await.unwrap().total(), 6_001);
}

/// A cancel of more queued deliveries than one chunk ends all of them, leaves the counts adding
/// up, and records each in `done` for compaction.
#[tokio::test]
async fn cancel_ends_more_than_one_chunk() {
    let server = RedisServer::start();
    let stores = open(&server, StoreTime::Clock(ManualClock::new(t(0)))).await;
    let run = new_run("cancelled");
    assert!(stores.runs().create_run(&run, t(0)).await.unwrap());
    let d = stores.deliveries();
    for from in (0..12_000).step_by(3_000) {
        d.insert_batch(&rows(&run.run, from, from + 3_000))
            .await
            .unwrap();
    }
    let waits = d.waits(&run.run, t(0), None).await.unwrap();
    assert_eq!(waits.total(), 12_000, "the walk goes past one chunk");
    stores
        .runs()
        .set_run_state(&run.run, RunState::Cancelled)
        .await
        .unwrap();
    let counts = d.counts(&run.run).await.unwrap();
    assert_eq!(counts.queued, 0);
    assert_eq!(
        counts.skipped,
        BTreeMap::from([(SkipReason::Cancelled.as_str().to_owned(), 12_000)])
    );
    assert_eq!(counts.next_wave, None);
    assert!(d.due(t(1_000), 10).await.unwrap().is_empty());
    let mut conn = client(&server).await;
    let done: u64 = redis::cmd("ZCARD")
        .arg("h:done")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(done, 12_000);
    // A row expanded after the cancel goes in ended, as the cancel would have ended it.
    assert_eq!(
        d.insert_batch(&rows(&run.run, 12_000, 12_001))
            .await
            .unwrap(),
        1
    );
    let counts = d.counts(&run.run).await.unwrap();
    assert_eq!((counts.queued, total(&counts)), (0, 12_001));
    assert!(matches!(
        stores
            .runs()
            .set_run_state(&run.run, RunState::Active)
            .await,
        Err(StoreError::Conflict(_))
    ));
}

/// Puts `key` in the `sending` state a claim leaves (owner, lease, slot in µs, phone), with its
/// history entry and lease, and moves its count: what `claims.rs` writes.
async fn as_claimed(server: &RedisServer, key: &DeliveryKey, phone: &str, slot_us: i64) {
    let mut conn = client(server).await;
    let (run, rcpt) = (key.run.as_str(), key.recipient.to_string());
    let member = format!("{run}\u{1f}{rcpt}");
    let state = format!(
        r#"{{"s":"s","a":1,"o":"{}","l":{},"t":{slot_us},"p":"{phone}"}}"#,
        owner(),
        t(60).timestamp_millis()
    );
    redis::pipe()
        .atomic()
        .cmd("HSET")
        .arg(format!("h:dl:{run}"))
        .arg(&rcpt)
        .arg(state)
        .cmd("ZREM")
        .arg(format!("h:due:{run}"))
        .arg(&rcpt)
        .cmd("ZADD")
        .arg("h:leases")
        .arg(t(60).timestamp_millis())
        .arg(&member)
        .cmd("ZADD")
        .arg(format!("h:hist:{phone}"))
        .arg(slot_us / 1000)
        .arg(&member)
        .cmd("HINCRBY")
        .arg(format!("h:run:{run}"))
        .arg("c:queued")
        .arg(-1)
        .cmd("HINCRBY")
        .arg(format!("h:run:{run}"))
        .arg("c:sending")
        .arg(1)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
}

async fn zcard(server: &RedisServer, key: &str) -> u64 {
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut client(server).await)
        .await
        .unwrap()
}

/// Finishing and requeueing a claimed delivery: only its owner may, the history entry goes
/// where SQLite drops it, the lease goes, terminal writes reach `done`, the counts stay exact,
/// and the slot in µs survives a requeue to the digit.
#[tokio::test]
async fn moves_from_sending_keep_counts_history_and_leases() {
    let server = RedisServer::start();
    let stores = open(&server, StoreTime::Clock(ManualClock::new(t(0)))).await;
    let run = new_run("moves");
    assert!(stores.runs().create_run(&run, t(0)).await.unwrap());
    let d = stores.deliveries();
    let batch = rows(&run.run, 0, 4);
    d.insert_batch(&batch).await.unwrap();
    let key = |n: usize| batch[n].key.clone();
    let phone = |n: usize| {
        batch[n]
            .recipient
            .as_ref()
            .unwrap()
            .phone
            .expose_e164()
            .to_owned()
    };
    let slot = t(1).timestamp_micros() + 123_457;
    for n in 0..3 {
        as_claimed(&server, &key(n), &phone(n), slot).await;
    }
    assert_eq!(d.in_flight().await.unwrap().len(), 3);
    let failed = Terminal {
        outcome: Outcome::Failed {
            code: "131026".into(),
        },
        detail: Some("undeliverable".into()),
    };
    // Not the owner's, not queued: conflicts; an unknown delivery is not found.
    assert!(matches!(
        d.finish(&key(0), &failed, Some(&worker(9)), t(5)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        d.finish(&key(0), &failed, None, t(5)).await,
        Err(StoreError::Conflict(_))
    ));
    let mut ghost = key(0);
    ghost.run = new_run("ghost").run;
    assert!(matches!(
        d.finish(&ghost, &failed, None, t(5)).await,
        Err(StoreError::NotFound(_))
    ));
    // A failure proves nothing was sent: its history entry goes. A send keeps its entry.
    d.finish(&key(0), &failed, Some(&owner()), t(5))
        .await
        .unwrap();
    assert_eq!(zcard(&server, &format!("h:hist:{}", phone(0))).await, 0);
    let sent = Terminal {
        outcome: Outcome::Sent,
        detail: None,
    };
    let changes = [
        Change::Finish {
            key: key(1),
            terminal: sent.clone(),
            owner: Some(owner()),
        },
        Change::Finish {
            key: key(1),
            terminal: sent,
            owner: Some(owner()),
        },
        Change::Requeue {
            key: key(2),
            until: t(30),
            reason: Some(WaitReason::Throttle),
            owner: owner(),
        },
        Change::Defer {
            key: key(3),
            until: t(40),
            reason: WaitReason::Window,
        },
    ];
    assert_eq!(
        d.apply(&changes, t(6)).await.unwrap(),
        [true, false, true, true]
    );
    assert_eq!(zcard(&server, &format!("h:hist:{}", phone(1))).await, 1);
    assert_eq!(zcard(&server, &format!("h:hist:{}", phone(2))).await, 0);
    assert_eq!(zcard(&server, "h:leases").await, 0);
    assert_eq!(zcard(&server, "h:done").await, 2);
    assert!(d.in_flight().await.unwrap().is_empty());
    // The requeued delivery keeps its last claim's slot exactly (a double holds 16 digits only
    // if nothing prints it with fewer).
    let state: String = redis::cmd("HGET")
        .arg(format!("h:dl:{}", run.run))
        .arg(key(2).recipient.to_string())
        .query_async(&mut client(&server).await)
        .await
        .unwrap();
    assert!(state.contains(&format!("\"t\":{slot}")), "{state}");
    let counts = d.counts(&run.run).await.unwrap();
    assert_eq!((counts.queued, counts.sending, counts.sent), (2, 0, 1));
    assert_eq!(counts.failed, BTreeMap::from([("131026".to_owned(), 1)]));
    assert_eq!(counts.total(), 4);
    let waits = d.waits(&run.run, t(10), None).await.unwrap();
    assert_eq!(
        (waits.due, waits.waiting.keys().copied().collect::<Vec<_>>()),
        (0, vec![WaitReason::Window, WaitReason::Throttle])
    );
    let due = d.due(t(100), 10).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.key.clone(), d.attempts))
            .collect::<Vec<_>>(),
        [(key(2), 1), (key(3), 0)]
    );
}
