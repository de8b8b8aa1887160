//! A claim group is decided whole before anything is written (`scripts/claim.lua`), so its
//! later claims must see its earlier grants through the script's in-memory overlays exactly as
//! they would see them written: the same delivery twice is taken, a second send to one phone
//! changes the history the decision saw, the tier counts the group's own admissions. Likewise
//! `apply` (`scripts/change.lua`): a later change of a delivery sees the earlier one's state.
//! A real `redis-server` per test, the store's time driven by hand.

mod common;

use chrono::TimeDelta;
use herald_core::{Outcome, RunId};
use herald_store::conformance::{generous, new_run, queued, t, worker};
use herald_store::{
    Change, ClaimAnswer, Deliveries, Refusal, Runs, SenderLimits, Stores, Terminal, WaitReason,
};
use herald_store_redis::RedisStores;

use common::{fresh_claim, group, key, started_at};

/// Run `group@…` with recipients `r<i>` to the phones `phones[i]`, all due at `t(0)`.
async fn run_to(stores: &RedisStores, phones: &[u32]) -> RunId {
    let run = new_run("group");
    assert!(stores.runs().create_run(&run, t(0)).await.unwrap());
    let batch: Vec<_> = phones
        .iter()
        .enumerate()
        .map(|(i, &phone)| queued(&run.run, &format!("r{i}"), phone, 0))
        .collect();
    let inserted = stores.deliveries().insert_batch(&batch).await.unwrap();
    assert_eq!(inserted, batch.len() as u64);
    run.run
}

fn claimed(answer: &ClaimAnswer) -> bool {
    matches!(answer, ClaimAnswer::Claimed { .. })
}

#[tokio::test]
async fn the_same_delivery_twice_in_a_group_is_claimed_once() {
    let (_server, _clock, stores) = started_at(t(10)).await;
    let run = run_to(&stores, &[0]).await;
    let d = stores.deliveries();
    let claims = vec![
        fresh_claim(&run, "r0", t(10)),
        fresh_claim(&run, "r0", t(10)),
    ];
    let answers = d
        .claim(&group(worker(1), generous("main"), claims))
        .await
        .unwrap();
    assert!(claimed(&answers[0]), "{answers:?}");
    assert_eq!(answers[1], ClaimAnswer::Refused(Refusal::Taken));
    let counts = d.counts(&run).await.unwrap();
    assert_eq!((counts.queued, counts.sending), (0, 1));
    assert_eq!(d.in_flight().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_second_send_to_one_phone_in_a_group_is_a_changed_cap() {
    let (_server, _clock, stores) = started_at(t(10)).await;
    // Two recipients share phone 0: the second claim's decision saw no send, but the first
    // claim of the same group is one.
    let run = run_to(&stores, &[0, 0]).await;
    let d = stores.deliveries();
    let claims = vec![
        fresh_claim(&run, "r0", t(10)),
        fresh_claim(&run, "r1", t(10)),
    ];
    let answers = d
        .claim(&group(worker(1), generous("main"), claims))
        .await
        .unwrap();
    assert!(claimed(&answers[0]), "{answers:?}");
    assert_eq!(answers[1], ClaimAnswer::Refused(Refusal::CapChanged));
    let counts = d.counts(&run).await.unwrap();
    assert_eq!((counts.queued, counts.sending), (1, 1));
}

#[tokio::test]
async fn the_tier_counts_the_groups_own_admissions() {
    let (_server, _clock, stores) = started_at(t(10)).await;
    let run = run_to(&stores, &[0, 1, 2, 0]).await;
    let d = stores.deliveries();
    let limits = SenderLimits {
        tier: Some(2),
        ..generous("main")
    };
    // r3 is phone 0 again, admitted by r0 in this group: the tier does not refuse it (its
    // history does, as the decision saw no send).
    let mut r3 = fresh_claim(&run, "r3", t(10));
    r3.history.sends = 1;
    let claims = vec![
        fresh_claim(&run, "r0", t(10)),
        fresh_claim(&run, "r1", t(10)),
        fresh_claim(&run, "r2", t(10)),
        r3,
    ];
    let answers = d.claim(&group(worker(1), limits, claims)).await.unwrap();
    assert!(claimed(&answers[0]) && claimed(&answers[1]), "{answers:?}");
    // The oldest phone of the tier is r0's, admitted by this very group at t(10).
    assert_eq!(
        answers[2],
        ClaimAnswer::Refused(Refusal::TierFull {
            frees: t(10) + TimeDelta::days(1)
        })
    );
    assert!(claimed(&answers[3]), "{answers:?}");
    let counts = d.counts(&run).await.unwrap();
    assert_eq!((counts.queued, counts.sending), (1, 3));
}

#[tokio::test]
async fn a_later_change_of_one_delivery_in_an_apply_sees_the_earlier() {
    let (_server, _clock, stores) = started_at(t(10)).await;
    let run = run_to(&stores, &[0]).await;
    let d = stores.deliveries();
    let expired = Terminal {
        outcome: Outcome::Expired,
        detail: None,
    };
    let changes = [
        Change::Defer {
            key: key(&run, "r0"),
            until: t(100),
            reason: WaitReason::Window,
        },
        Change::Finish {
            key: key(&run, "r0"),
            terminal: expired.clone(),
            owner: None,
        },
        Change::Defer {
            key: key(&run, "r0"),
            until: t(200),
            reason: WaitReason::Window,
        },
    ];
    // The finish sees the deferred (still queued) state; the last defer sees it ended.
    assert_eq!(d.apply(&changes, t(10)).await.unwrap(), [true, true, false]);
    let counts = d.counts(&run).await.unwrap();
    assert_eq!((counts.queued, counts.expired), (0, 1));
    assert_eq!(d.due(t(1000), 10).await.unwrap(), []);
}
