//! A damaged delivery state stops every script that meets it with `Corrupt` and nothing
//! written (Redis has no rollback, so each script decodes everything before its first write):
//! the renewal of a group of leases and the read of a run's waits, beside the claim, apply,
//! cancel and recovery pinned down in `review.rs`. A real `redis-server` per test.

mod common;

use herald_core::RunId;
use herald_store::conformance::{ManualClock, generous, new_run, queued, t, worker};
use herald_store::{ClaimAnswer, Deliveries, Runs, StoreError, StoreTime, Stores};
use herald_store_redis::RedisStores;
use herald_testkit::redis::RedisServer;

use common::{LEASE, blocking_client, fresh_claim, group, key, open};

/// A store on `server` with run `damaged@…` of recipients `r0`, `r1` (due at `t(0)`, `t(1)`).
async fn store_with_run(
    server: &RedisServer,
    clock: &std::sync::Arc<ManualClock>,
) -> (RedisStores, RunId) {
    let stores = open(server, StoreTime::Clock(clock.clone())).await;
    let run = new_run("damaged");
    assert!(stores.runs().create_run(&run, t(0)).await.unwrap());
    let batch = [queued(&run.run, "r0", 0, 0), queued(&run.run, "r1", 1, 1)];
    assert_eq!(stores.deliveries().insert_batch(&batch).await.unwrap(), 2);
    (stores, run.run)
}

#[tokio::test]
async fn a_renewal_meeting_a_corrupt_state_renews_nothing() {
    let server = RedisServer::start();
    let clock = ManualClock::new(t(10));
    let (stores, run) = store_with_run(&server, &clock).await;
    let d = stores.deliveries();
    let group = group(
        worker(1),
        generous("main"),
        vec![
            fresh_claim(&run, "r0", t(10)),
            fresh_claim(&run, "r1", t(10)),
        ],
    );
    let answers = d.claim(&group).await.unwrap();
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, ClaimAnswer::Claimed { .. })),
        "{answers:?}"
    );
    let dl = format!("h:dl:{run}");
    assert_eq!(server.command(&["HSET", &dl, "r1", "{not json"]), ":0");
    let member = format!("{run}\u{1f}r0");
    let lease_of_r0 = || -> Option<i64> {
        redis::cmd("ZSCORE")
            .arg("h:leases")
            .arg(&member)
            .query(&mut blocking_client(&server))
            .unwrap()
    };
    let before = lease_of_r0();
    assert_eq!(before, Some(t(10).timestamp_millis() + 60_000));
    clock.set(t(20));
    let renewed = d
        .renew(&worker(1), &[key(&run, "r0"), key(&run, "r1")], LEASE)
        .await;
    assert!(
        matches!(renewed, Err(StoreError::Corrupt { .. })),
        "{renewed:?}"
    );
    assert_eq!(
        lease_of_r0(),
        before,
        "r0's lease was renewed by a call that failed"
    );
}

#[tokio::test]
async fn the_waits_of_a_run_with_a_corrupt_state_are_corrupt() {
    let server = RedisServer::start();
    let clock = ManualClock::new(t(0));
    let (stores, run) = store_with_run(&server, &clock).await;
    let dl = format!("h:dl:{run}");
    assert_eq!(server.command(&["HSET", &dl, "r1", "{not json"]), ":0");
    // At t(0) r1 (due at t(1)) waits: its reason is read from its state.
    let waits = stores.deliveries().waits(&run, t(0), None).await;
    assert!(
        matches!(waits, Err(StoreError::Corrupt { .. })),
        "{waits:?}"
    );
}
