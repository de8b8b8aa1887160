//! The queue index (`qruns`, `src/keys.rs`): `due` and `next_due` look only at runs that may
//! have queued work, every write that queues puts its run back, and `due` drops the runs it
//! finds drained or cancelled, so drained runs cost it nothing. A real `redis-server` per test,
//! the store's time driven by hand, the commands counted by the server's `commandstats`.

mod common;

use chrono::TimeDelta;
use herald_core::{Outcome, RunId};
use herald_store::conformance::{new_run, queued, t, worker};
use herald_store::{Change, ClaimAnswer, Deliveries, RunState, Runs, Stores, Terminal, WorkScope};
use herald_store_redis::RedisStores;
use herald_testkit::redis::RedisServer;

use common::{calls, claims_at, key, started_at};

/// A run of campaign `name` (fired at `fire`) with one queued delivery `r0`, due at t(0).
async fn run_of_one(stores: &RedisStores, name: &str, fire: &str, alo: bool) -> RunId {
    let mut run = new_run(name);
    run.run = RunId::parse(&format!("{name}@{fire}")).unwrap();
    run.at_least_once = alo;
    assert!(stores.runs().create_run(&run, t(0)).await.unwrap());
    let rows = [queued(&run.run, "r0", 0, 0)];
    assert_eq!(stores.deliveries().insert_batch(&rows).await.unwrap(), 1);
    run.run
}

/// The commands a `due`, a scoped `due_in` and a `next_due` cost together, by name.
async fn cost_of_due(server: &RedisServer, stores: &RedisStores) -> Vec<(&'static str, u64)> {
    let names = ["hget", "hmget", "zcard", "zrangebyscore", "zrange", "srem"];
    let before: Vec<u64> = names.iter().map(|n| calls(server, n)).collect();
    let d = stores.deliveries();
    assert_eq!(d.due(t(10), 100).await.unwrap(), []);
    let scope = WorkScope {
        sender: "main".into(),
        runs: None,
    };
    assert_eq!(d.due_in(&scope, t(10), 100).await.unwrap(), []);
    assert_eq!(d.next_due().await.unwrap(), None);
    names
        .iter()
        .zip(before)
        .map(|(n, b)| (*n, calls(server, n) - b))
        .filter(|(_, spent)| *spent > 0)
        .collect()
}

/// 300 runs whose deliveries all ended: the first `due` drops them from the index (one look
/// each), and from then on `due`, `due_in` and `next_due` spend no command on any of them.
#[tokio::test]
async fn drained_runs_cost_due_nothing() {
    let (server, _clock, stores) = started_at(t(10)).await;
    let mut changes = Vec::new();
    for i in 0..300 {
        let run = run_of_one(&stores, "cron", &format!("2026-11-27T10:{i:04}"), false).await;
        changes.push(Change::Finish {
            key: key(&run, "r0"),
            terminal: Terminal {
                outcome: Outcome::Expired,
                detail: None,
            },
            owner: None,
        });
    }
    assert_eq!(server.command(&["SCARD", "h:qruns"]), ":300");
    let applied = stores.deliveries().apply(&changes, t(10)).await.unwrap();
    assert!(applied.iter().all(|&ok| ok));
    let first = cost_of_due(&server, &stores).await;
    assert!(first.contains(&("srem", 300)), "{first:?}");
    assert_eq!(server.command(&["SCARD", "h:qruns"]), ":0");
    assert_eq!(cost_of_due(&server, &stores).await, []);
}

/// A run drained by its claim leaves the index at the next `due`; the requeue of the claim
/// brings it back, and so does the recovery of an at_least_once run's ended lease.
#[tokio::test]
async fn every_write_that_queues_again_indexes_the_run_again() {
    let (server, clock, stores) = started_at(t(10)).await;
    let d = stores.deliveries();
    for (name, alo) in [("requeued", false), ("recovered", true)] {
        let run = run_of_one(&stores, name, "2026-11-27T10:00", alo).await;
        let answers = d.claim(&claims_at(&run, &["r0"], t(10))).await.unwrap();
        assert!(matches!(answers[..], [ClaimAnswer::Claimed { .. }]));
        assert_eq!(d.due(t(10), 10).await.unwrap(), []);
        assert_eq!(server.command(&["SCARD", "h:qruns"]), ":0", "{name}");
        let now = if alo {
            let later = t(10) + TimeDelta::minutes(5);
            clock.set(later);
            assert_eq!(d.recover_expired(10).await.unwrap().len(), 1);
            later
        } else {
            d.requeue(&key(&run, "r0"), t(10), None, &worker(1))
                .await
                .unwrap();
            t(10)
        };
        let due: Vec<_> = d.due(now, 10).await.unwrap();
        assert_eq!(due.len(), 1, "{name} is due again");
        assert_eq!(d.next_due().await.unwrap(), Some(due[0].due_at));
        d.finish(
            &key(&run, "r0"),
            &Terminal {
                outcome: Outcome::Expired,
                detail: None,
            },
            None,
            now,
        )
        .await
        .unwrap();
    }
}

/// A paused run stays in the index (nothing of it is due until it is resumed, then all of it
/// is); a cancelled one leaves it.
#[tokio::test]
async fn a_paused_run_stays_indexed_and_a_cancelled_one_leaves() {
    let (server, _clock, stores) = started_at(t(10)).await;
    let (runs, d) = (stores.runs(), stores.deliveries());
    let run = run_of_one(&stores, "held", "2026-11-27T10:00", false).await;
    runs.pause(&run, "herald", "operator").await.unwrap();
    assert_eq!(d.due(t(10), 10).await.unwrap(), []);
    assert_eq!(d.next_due().await.unwrap(), None);
    assert_eq!(
        server.command(&["SISMEMBER", "h:qruns", run.as_str()]),
        ":1"
    );
    runs.set_run_state(&run, RunState::Active).await.unwrap();
    assert_eq!(d.due(t(10), 10).await.unwrap().len(), 1);
    runs.set_run_state(&run, RunState::Cancelled).await.unwrap();
    assert_eq!(d.due(t(10), 10).await.unwrap(), []);
    assert_eq!(
        server.command(&["SISMEMBER", "h:qruns", run.as_str()]),
        ":0"
    );
}
