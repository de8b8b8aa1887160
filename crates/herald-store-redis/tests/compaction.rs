//! Compaction keeps the (run, recipient) dedupe: a compacted delivery of an unfinished
//! expansion is a tombstone in `dl:<run>` that no path turns into a delivery again, and a run
//! whose expansion is finished (sealed, no tombstone needed) takes no new row. Compaction also trims `recent` to the tier's needs. A real `redis-server`
//! per test, the store's time driven by hand.

mod common;

use chrono::TimeDelta;
use herald_core::{Outcome, RunId, SkipReason};
use herald_store::conformance::{ended, new_run, phone, queued, t, worker};
use herald_store::{ClaimAnswer, Deliveries, Runs, StoreError, Stores, Terminal};
use herald_store_redis::{RedisDeliveries, RedisStores};
use herald_testkit::redis::RedisServer;

use common::{claims_at, client, key, started_at};

fn terminal(outcome: Outcome) -> Terminal {
    Terminal {
        outcome,
        detail: Some("a detail compaction drops".into()),
    }
}

/// Run `name` from `new_run`, created at `t(0)` with no delivery yet.
async fn created(stores: &RedisStores, name: &str) -> RunId {
    let run = new_run(name);
    assert!(stores.runs().create_run(&run, t(0)).await.unwrap());
    run.run
}

/// `worker(1)` claims `r0` at `t(10)` and it is sent at `t(11)`.
async fn claim_and_send_r0(d: &RedisDeliveries, run: &RunId) {
    let answers = d.claim(&claims_at(run, &["r0"], t(10))).await.unwrap();
    assert!(matches!(answers[..], [ClaimAnswer::Claimed { .. }]));
    d.finish(
        &key(run, "r0"),
        &terminal(Outcome::Sent),
        Some(&worker(1)),
        t(11),
    )
    .await
    .unwrap();
}

async fn states(server: &RedisServer, run: &RunId, recipients: &[&str]) -> Vec<Option<String>> {
    redis::cmd("HMGET")
        .arg(format!("h:dl:{run}"))
        .arg(recipients)
        .query_async(&mut client(server).await)
        .await
        .unwrap()
}

/// Deliveries compacted a week after they ended (sent, skipped at the queue, ended at
/// expansion) keep only their state name and reason; re-inserting them, claiming them or ending
/// them again changes nothing, and the run's counts stay what they were.
#[tokio::test]
async fn a_compacted_delivery_is_never_created_again() {
    let (server, clock, stores) = started_at(t(10)).await;
    let run = created(&stores, "kept").await;
    let broken = ended(
        &run,
        "line 7",
        Outcome::Skipped(SkipReason::InvalidRecipient),
    );
    let rows = [queued(&run, "r0", 0, 0), queued(&run, "r1", 1, 0), broken];
    let d = stores.deliveries();
    assert_eq!(d.insert_batch(&rows).await.unwrap(), 3);
    claim_and_send_r0(d, &run).await;
    let opted_out = terminal(Outcome::Skipped(SkipReason::OptedOut));
    d.finish(&key(&run, "r1"), &opted_out, None, t(11))
        .await
        .unwrap();
    let before = d.counts(&run).await.unwrap();
    clock.set(t(11) + TimeDelta::days(8));
    d.recover_expired(10).await.unwrap();
    assert_eq!(
        states(&server, &run, &["r0", "r1", "line 7"]).await,
        [
            Some(r#"{"s":"sent"}"#.to_owned()),
            Some(r#"{"s":"skipped","x":"opted_out"}"#.to_owned()),
            Some(r#"{"s":"skipped","x":"invalid_recipient"}"#.to_owned()),
        ]
    );
    assert_eq!(server.command(&["EXISTS", &format!("h:snap:{run}")]), ":0");
    // Every way back in is closed.
    assert_eq!(d.insert_batch(&rows).await.unwrap(), 0, "no row is new");
    let now = t(11) + TimeDelta::days(8);
    assert_eq!(d.due(now, 10).await.unwrap(), []);
    let answers = d.claim(&claims_at(&run, &["r0", "r1"], now)).await.unwrap();
    assert!(
        answers
            .iter()
            .all(|a| !matches!(a, ClaimAnswer::Claimed { .. })),
        "{answers:?}"
    );
    let again = d
        .finish(&key(&run, "r1"), &terminal(Outcome::Expired), None, now)
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(d.counts(&run).await.unwrap(), before);
    assert_eq!(
        d.claims(&run).await.unwrap(),
        [],
        "a tombstone has no claim"
    );
}

/// A run whose expansion is finished needs no tombstone: compaction deletes the state, and
/// the seal refuses the row if it comes again (`Conflict`), so it is never queued again either.
#[tokio::test]
async fn a_sealed_run_keeps_no_tombstone_and_refuses_the_row_again() {
    let (server, clock, stores) = started_at(t(10)).await;
    let run = created(&stores, "sealed").await;
    let rows = [queued(&run, "r0", 0, 0), queued(&run, "r1", 1, 0)];
    let d = stores.deliveries();
    assert_eq!(d.insert_batch(&rows).await.unwrap(), 2);
    stores.runs().finish_expansion(&run, 2).await.unwrap();
    claim_and_send_r0(d, &run).await;
    clock.set(t(11) + TimeDelta::days(8));
    d.recover_expired(10).await.unwrap();
    assert_eq!(states(&server, &run, &["r0", "r1"]).await[0], None);
    let again = d.insert_batch(&rows[..1]).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let now = t(11) + TimeDelta::days(8);
    let answers = d.claim(&claims_at(&run, &["r0"], now)).await.unwrap();
    assert!(!matches!(answers[..], [ClaimAnswer::Claimed { .. }]));
    let due: Vec<_> = d.due(now, 10).await.unwrap();
    assert_eq!(due.len(), 1, "only r1");
    assert_eq!(d.counts(&run).await.unwrap().total(), 2);
}

/// Once the expansion is finished (its total set), a row the run does not have is refused
/// with `Conflict`, and nothing of its chunk is written, another run's rows included; rows
/// the run has are left as they are, as ever.
#[tokio::test]
async fn a_finished_expansion_takes_no_new_row() {
    let (server, _clock, stores) = started_at(t(10)).await;
    let (sealed, open_run) = (new_run("sealed"), new_run("open"));
    assert!(stores.runs().create_run(&sealed, t(0)).await.unwrap());
    assert!(stores.runs().create_run(&open_run, t(0)).await.unwrap());
    let (sealed, open_run) = (sealed.run, open_run.run);
    let d = stores.deliveries();
    let rows = [queued(&sealed, "r0", 0, 0), queued(&sealed, "r1", 1, 0)];
    assert_eq!(d.insert_batch(&rows).await.unwrap(), 2);
    stores.runs().finish_expansion(&sealed, 2).await.unwrap();
    assert_eq!(d.insert_batch(&rows).await.unwrap(), 0);
    let late = [queued(&open_run, "a", 5, 0), queued(&sealed, "r2", 2, 0)];
    let refused = d.insert_batch(&late).await;
    let Err(StoreError::Conflict(why)) = refused else {
        panic!("{refused:?}")
    };
    assert!(why.contains(sealed.as_str()) && why.contains("r2"), "{why}");
    assert_eq!(d.counts(&sealed).await.unwrap().total(), 2);
    assert_eq!(
        d.counts(&open_run).await.unwrap().total(),
        0,
        "all or nothing"
    );
    assert_eq!(states(&server, &sealed, &["r2"]).await, [None]);
    assert_eq!(d.due(t(10), 10).await.unwrap().len(), 2);
}

/// Compaction forgets the phones of `recent` whose latest send is older than 48 h (the tier
/// looks back 24 h) and keeps the others.
#[tokio::test]
async fn compaction_trims_recent_to_two_days() {
    let (_server, clock, stores) = started_at(t(10)).await;
    let run = created(&stores, "tier").await;
    let d = stores.deliveries();
    let rows = [queued(&run, "r0", 0, 0), queued(&run, "r1", 1, 0)];
    assert_eq!(d.insert_batch(&rows).await.unwrap(), 2);
    let answers = d.claim(&claims_at(&run, &["r0"], t(10))).await.unwrap();
    assert!(matches!(answers[..], [ClaimAnswer::Claimed { .. }]));
    // A day and a half later: both phones are within 48 h.
    let later = t(10) + TimeDelta::hours(36);
    clock.set(later);
    let answers = d.claim(&claims_at(&run, &["r1"], later)).await.unwrap();
    assert!(matches!(answers[..], [ClaimAnswer::Claimed { .. }]));
    d.recover_expired(10).await.unwrap();
    assert_eq!(d.recent_recipients(t(0)).await.unwrap().len(), 2);
    // 49 h after the first claim, 13 h after the second.
    clock.set(t(10) + TimeDelta::hours(49));
    d.recover_expired(10).await.unwrap();
    assert_eq!(
        d.recent_recipients(t(0)).await.unwrap(),
        [(phone(1), later)]
    );
}
