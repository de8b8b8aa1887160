//! The claim, leases and compaction on a real `redis-server` per test: a group is one script
//! call, concurrent handles never both win, leases follow the store's time, compaction keeps
//! counts and history.

mod common;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta};
use herald_core::{Outcome, RunId};
use herald_store::conformance::{ManualClock, generous, new_run, phone, queued, t, worker};
use herald_store::{
    ClaimAnswer, Deliveries, Refusal, Runs, SenderLimits, StoreError, StoreTime, Stores, Terminal,
};
use herald_store_redis::RedisStores;
use herald_testkit::redis::RedisServer;

use common::{LEASE, client, fresh_claim, group, key, open, started_at};

/// A run of `name` with `n` recipients `r0..` to phones `0..n`, all due at `t(0)`.
async fn run_with(stores: &RedisStores, name: &str, n: u32) -> (RunId, Vec<String>) {
    let run = new_run(name);
    assert!(stores.runs().create_run(&run, t(0)).await.unwrap());
    let names: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    let batch: Vec<_> = (0..n)
        .zip(&names)
        .map(|(i, r)| queued(&run.run, r, i, 0))
        .collect();
    assert_eq!(
        stores.deliveries().insert_batch(&batch).await.unwrap(),
        u64::from(n)
    );
    (run.run, names)
}

/// How many scripts the server has run by `EVALSHA` or `EVAL`.
async fn scripts_run(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Redis's `TIME` in microseconds.
async fn redis_time(conn: &mut redis::aio::MultiplexedConnection) -> i64 {
    let (s, us): (i64, i64) = redis::cmd("TIME").query_async(conn).await.unwrap();
    s * 1_000_000 + us
}

/// 500 claims are one script call and get 500 slots one interval (1 / per_second) apart, in
/// the group's order, from the store's now.
#[tokio::test]
async fn a_group_of_500_is_one_call_with_spaced_slots() {
    let (server, _clock, stores) = started_at(t(10)).await;
    let (run, names) = run_with(&stores, "big", 500).await;
    let limits = SenderLimits {
        per_second: NonZeroU32::new(100).unwrap(),
        horizon: Duration::from_secs(10),
        ..generous("main")
    };
    let claims = names.iter().map(|r| fresh_claim(&run, r, t(10))).collect();
    let mut redis = client(&server).await;
    // A claim of nothing stored (`Taken`, nothing written) loads the script, so the count
    // below is of the group alone.
    let ghost = group(
        worker(1),
        limits.clone(),
        vec![fresh_claim(&run, "ghost", t(10))],
    );
    let warm = stores.deliveries().claim(&ghost).await.unwrap();
    assert_eq!(warm, [ClaimAnswer::Refused(Refusal::Taken)]);
    let before = scripts_run(&mut redis).await;
    let answers = stores
        .deliveries()
        .claim(&group(worker(1), limits, claims))
        .await
        .unwrap();
    assert_eq!(scripts_run(&mut redis).await - before, 1, "one call");
    assert_eq!(answers.len(), 500);
    for (i, answer) in (0..).zip(&answers) {
        let slot = t(10) + TimeDelta::milliseconds(10 * i);
        let wait = Duration::from_millis(10 * i as u64);
        assert_eq!(*answer, ClaimAnswer::Claimed { slot, wait }, "claim {i}");
    }
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!((counts.queued, counts.sending), (0, 500));
}

/// Two handles (two workers' connections) claiming the same deliveries at once from two tasks:
/// each delivery is won exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_never_both_win() {
    let server = RedisServer::start();
    let one = Arc::new(open(&server, StoreTime::Backend).await);
    let two = Arc::new(open(&server, StoreTime::Backend).await);
    let (run, names) = run_with(&one, "race", 200).await;
    let now = one.now().await.unwrap();
    let tasks: Vec<_> = [(Arc::clone(&one), 1), (Arc::clone(&two), 2)]
        .into_iter()
        .map(|(stores, n)| {
            let claims = names.iter().map(|r| fresh_claim(&run, r, now)).collect();
            let group = group(worker(n), generous("main"), claims);
            tokio::spawn(async move { stores.deliveries().claim(&group).await.unwrap() })
        })
        .collect();
    let mut won = vec![0; names.len()];
    for task in tasks {
        for (i, answer) in task.await.unwrap().iter().enumerate() {
            if matches!(answer, ClaimAnswer::Claimed { .. }) {
                won[i] += 1;
            }
        }
    }
    assert!(won.iter().all(|&w| w == 1), "{won:?}");
    let counts = one.deliveries().counts(&run).await.unwrap();
    assert_eq!((counts.queued, counts.sending), (0, 200));
    let claimed = one.deliveries().claims(&run).await.unwrap();
    assert_eq!(claimed.len(), 200);
}

/// A handle timed by the backend takes slots and leases from Redis's `TIME`; a handle whose
/// clock is far away sees those leases by its own clock, so the lease end is `TIME` + lease.
#[tokio::test]
async fn leases_and_slots_come_from_the_store_clock() {
    let server = RedisServer::start();
    let backend = open(&server, StoreTime::Backend).await;
    let (run, _) = run_with(&backend, "clock", 1).await;
    let mut redis = client(&server).await;
    let before = redis_time(&mut redis).await;
    let decided = fresh_claim(&run, "r0", t(0));
    let answers = backend
        .deliveries()
        .claim(&group(worker(1), generous("main"), vec![decided]))
        .await
        .unwrap();
    let after = redis_time(&mut redis).await;
    let [ClaimAnswer::Claimed { slot, .. }] = answers[..] else {
        panic!("{answers:?}")
    };
    let slot = slot.timestamp_micros();
    assert!(
        before <= slot && slot <= after,
        "{before} <= {slot} <= {after}"
    );
    assert_eq!(backend.deliveries().recover_expired(10).await.unwrap(), []);
    // The lease ends `LEASE` after the claim's `TIME`, read by clocks set around it.
    let at = |us: i64| DateTime::from_timestamp_micros(us).unwrap();
    let lease = TimeDelta::from_std(LEASE).unwrap();
    let clock = ManualClock::new(at(before) + lease - TimeDelta::milliseconds(1));
    let early = open(&server, StoreTime::Clock(clock.clone())).await;
    assert_eq!(early.deliveries().recover_expired(10).await.unwrap(), []);
    clock.set(at(after) + lease + TimeDelta::milliseconds(1));
    let recovered = early.deliveries().recover_expired(10).await.unwrap();
    assert_eq!(recovered.len(), 1);
    // A handle whose clock is far in the past recovers nothing of a lease taken by `TIME`.
    let past = ManualClock::new(t(-86_400 * 365));
    let stale = open(&server, StoreTime::Clock(past)).await;
    assert_eq!(stale.deliveries().recover_expired(10).await.unwrap(), []);
}

/// Compaction deletes the snapshot of deliveries ended longer than the retention ago and
/// reduces their state to a tombstone, and keeps the run's counts, the phones' send history and
/// what ended recently.
#[tokio::test]
async fn compaction_keeps_counts_and_history_and_removes_the_rows() {
    let (server, clock, stores) = started_at(t(10)).await;
    let (run, _) = run_with(&stores, "compact", 4).await;
    let d = stores.deliveries();
    let claims = ["r0", "r1"]
        .iter()
        .map(|r| fresh_claim(&run, r, t(10)))
        .collect();
    let answers = d
        .claim(&group(worker(1), generous("main"), claims))
        .await
        .unwrap();
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, ClaimAnswer::Claimed { .. }))
    );
    let sent = Terminal {
        outcome: Outcome::Sent,
        detail: None,
    };
    d.finish(&key(&run, "r0"), &sent, Some(&worker(1)), t(11))
        .await
        .unwrap();
    let expired = Terminal {
        outcome: Outcome::Expired,
        detail: None,
    };
    d.finish(&key(&run, "r2"), &expired, None, t(12))
        .await
        .unwrap();
    // r1's lease ends: `unknown` at t(100).
    clock.set(t(100));
    assert_eq!(d.recover_expired(10).await.unwrap().len(), 1);
    let counts = d.counts(&run).await.unwrap();
    assert_eq!(
        (counts.sent, counts.unknown, counts.expired, counts.queued),
        (1, 1, 1, 1)
    );
    // A week and a bit later r3 ends too, recently: it stays.
    let week = TimeDelta::days(7);
    clock.set(t(200) + week);
    d.finish(&key(&run, "r3"), &expired, None, t(200) + week)
        .await
        .unwrap();
    assert_eq!(d.recover_expired(10).await.unwrap(), []);
    let counts = d.counts(&run).await.unwrap();
    let kept = (counts.sent, counts.unknown, counts.expired, counts.queued);
    assert_eq!(kept, (1, 1, 2, 0), "counts outlive compaction");
    let dl = format!("h:dl:{run}");
    let snap = format!("h:snap:{run}");
    assert_eq!(
        server.command(&["HLEN", &snap]),
        ":1",
        "only r3's snapshot stays"
    );
    assert_eq!(server.command(&["HEXISTS", &snap, "r3"]), ":1");
    // The others keep a tombstone, the (run, recipient) dedupe (src/claims/compact.rs).
    let states: Vec<String> = redis::cmd("HMGET")
        .arg(&dl)
        .arg(&["r0", "r1", "r2", "r3"])
        .query_async(&mut client(&server).await)
        .await
        .unwrap();
    assert_eq!(
        states[..3],
        [
            r#"{"s":"sent"}"#,
            r#"{"s":"unknown"}"#,
            r#"{"s":"expired"}"#
        ]
    );
    assert!(states[3].contains(r#""f":"#), "r3 keeps its whole state");
    let sent_to = d.history(&phone(0), t(0)).await.unwrap();
    assert_eq!(sent_to.len(), 1, "sent stays counted");
    let unknown_to = d.history(&phone(1), t(0)).await.unwrap();
    assert_eq!(unknown_to.len(), 1, "unknown stays counted");
    assert_eq!(
        d.claims(&run).await.unwrap(),
        [],
        "compacted claims are not listed"
    );
}

/// A state that does not read back stops the claim with `Corrupt` naming the delivery, and
/// nothing of it is claimed; renewals and recovery read it the same way.
#[tokio::test]
async fn a_corrupt_state_is_corrupt_not_claimed() {
    let (server, _clock, stores) = started_at(t(10)).await;
    let (run, _) = run_with(&stores, "broken", 1).await;
    let dl = format!("h:dl:{run}");
    assert_eq!(server.command(&["HSET", &dl, "r0", "{not json"]), ":0");
    let claims = vec![fresh_claim(&run, "r0", t(10))];
    let answer = stores
        .deliveries()
        .claim(&group(worker(1), generous("main"), claims))
        .await;
    let Err(StoreError::Corrupt { key: named, .. }) = answer else {
        panic!("{answer:?}")
    };
    assert!(named.contains("r0"), "{named}");
    let renewed = stores
        .deliveries()
        .renew(&worker(1), &[key(&run, "r0")], LEASE)
        .await;
    assert!(
        matches!(renewed, Err(StoreError::Corrupt { .. })),
        "{renewed:?}"
    );
    assert_eq!(stores.deliveries().counts(&run).await.unwrap().sending, 0);
}
