//! Checks of the claim: leases and their recovery, every refusal reason, and the limits the
//! store enforces over every worker (caps, tier, rate) through two handles on one store.

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::TimeDelta;
use herald_core::Outcome;

use super::*;
use crate::{NewRun, Recovered, Refusal, RunState, Senders, Terminal, WaitReason};

/// Claims `recipients` of `f` as one group of `owner` for `limits` through `handle`, at the
/// store's time `t(0) + at_ms` milliseconds, each decided with the store as it is just before.
#[doc(hidden)]
pub async fn claim_group<S: Stores>(
    f: &Fixture<'_, S>,
    handle: &S,
    (owner, limits): (&WorkerId, &SenderLimits),
    recipients: &[&str],
    at_ms: i64,
) -> Vec<ClaimAnswer> {
    let mut claims = Vec::new();
    for r in recipients {
        claims.push(f.decided(handle, r, at_ms.div_euclid(1000)).await);
    }
    let group = ClaimGroup {
        owner: owner.clone(),
        lease: LEASE,
        sender: limits.clone(),
        claims,
    };
    f.stores.at_ms(at_ms);
    handle.deliveries().claim(&group).await.expect("claim")
}

/// The refusal of a one-claim answer, `None` when claimed.
#[doc(hidden)]
pub fn refusal(answers: &[ClaimAnswer]) -> Option<Refusal> {
    match answers {
        [ClaimAnswer::Claimed { .. }] => None,
        [ClaimAnswer::Refused(refusal)] => Some(refusal.clone()),
        other => panic!("expected one answer, got {other:?}"),
    }
}

fn sent() -> Terminal {
    Terminal {
        outcome: Outcome::Sent,
        detail: None,
    }
}

/// A lease holds until it ends unless its owner renews it (another worker's renewal does
/// nothing); only ended leases are recovered, `unknown`, and the late outcome of the worker
/// whose lease ended is refused: the first terminal write wins. `claims` shows who held what.
#[doc(hidden)]
pub async fn leases_are_renewed_by_their_owner_and_recovered_once_ended<S: Stores>(
    stores: &Suite<S>,
) {
    let (f, d) = (Fixture::new(stores, "lease").await, stores.deliveries());
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    let (one, two) = (worker(1), worker(2));
    assert!(matches!(
        f.claim_as(stores, &one, "a", 10).await,
        ClaimAnswer::Claimed { .. }
    ));
    assert!(matches!(
        f.claim_as(&stores.other, &two, "b", 10).await,
        ClaimAnswer::Claimed { .. }
    ));
    // Leases of 60 s end at t(70). At t(50) worker one renews a's until t(110); worker two's
    // renewal of a (not its claim) and of a ghost renew nothing.
    stores.at(50);
    let (a, b) = (f.key("a"), f.key("b"));
    assert_eq!(
        d.renew(&one, std::slice::from_ref(&a), LEASE)
            .await
            .unwrap(),
        1
    );
    let ghost = f.key("ghost");
    let not_theirs = [a.clone(), ghost];
    let theirs = stores.other.deliveries().renew(&two, &not_theirs, LEASE);
    assert_eq!(theirs.await.unwrap(), 0);
    stores.at_ms(69_999);
    assert_eq!(
        d.recover_expired(10).await.unwrap(),
        [],
        "no lease ended yet"
    );
    stores.at(70);
    let recovered = stores.other.deliveries().recover_expired(10).await.unwrap();
    assert_eq!(
        recovered,
        [Recovered {
            key: b.clone(),
            owner: two.clone(),
            requeued: false,
        }]
    );
    assert_eq!(d.recover_expired(10).await.unwrap(), [], "recovered once");
    // Worker two comes back too late: its outcome, its requeue and its renewal are refused.
    assert_err(d.finish(&b, &sent(), Some(&two), t(71)).await, "Conflict");
    assert_err(d.requeue(&b, t(80), None, &two).await, "Conflict");
    assert_eq!(
        d.renew(&two, std::slice::from_ref(&b), LEASE)
            .await
            .unwrap(),
        0
    );
    let counts = f.counts().await;
    assert_eq!((counts.unknown, counts.sending, counts.sent), (1, 1, 0));
    assert_eq!(
        history(stores, 2, 0).await.len(),
        1,
        "unknown may have been sent"
    );
    let records = d.claims(&f.run).await.unwrap();
    let mut shown: Vec<_> = records
        .iter()
        .map(|c| {
            (
                c.key.clone(),
                c.owner.clone(),
                c.slot,
                c.state.as_str(),
                c.recovered,
            )
        })
        .collect();
    shown.sort();
    assert_eq!(
        shown,
        [
            (a.clone(), one.clone(), t(10), "sending", false),
            (b, two, t(10), "unknown", true),
        ]
    );
    // The renewed lease ends at t(110), and then a is recovered too; before, its owner ends it.
    stores.at(109);
    assert_eq!(d.recover_expired(10).await.unwrap(), []);
    d.finish(&a, &sent(), Some(&one), t(109)).await.unwrap();
    stores.at(200);
    assert_eq!(d.recover_expired(10).await.unwrap(), []);
    assert_eq!(f.counts().await.sent, 1);
}

/// An ended lease of an `at_least_once` run's claim queues the delivery again, due at once,
/// with its history entry removed; `limit` bounds each recovery.
#[doc(hidden)]
pub async fn an_ended_lease_of_an_at_least_once_run_queues_it_again<S: Stores>(stores: &Suite<S>) {
    let retried = NewRun {
        at_least_once: true,
        ..new_run("retried")
    };
    let (f, d) = (Fixture::create(stores, retried).await, stores.deliveries());
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    assert!(f.claim("a", 10).await && f.claim("b", 10).await);
    stores.at(100);
    let first = d.recover_expired(1).await.unwrap();
    let second = d.recover_expired(10).await.unwrap();
    assert_eq!((first.len(), second.len()), (1, 1));
    assert!(
        first
            .iter()
            .chain(&second)
            .all(|r| r.requeued && r.owner == owner())
    );
    assert_eq!(
        history(stores, 1, 0).await,
        [],
        "nothing proves it was sent"
    );
    let counts = f.counts().await;
    assert_eq!((counts.queued, counts.sending, counts.unknown), (2, 0, 0));
    assert_eq!(due(stores, 100, 10).await.len(), 2, "due at once");
    assert_err(f.finish("a", Outcome::Sent).await, "Conflict");
    let records = d.claims(&f.run).await.unwrap();
    assert!(records.iter().all(|c| c.recovered && c.state == "queued"));
    // Claimed again by another worker, it is that worker's claim.
    let again = f.claim_as(&stores.other, &worker(2), "a", 101).await;
    assert!(matches!(again, ClaimAnswer::Claimed { .. }), "{again:?}");
    let record = d.claims(&f.run).await.unwrap();
    let a = record.iter().find(|c| c.key == f.key("a")).unwrap();
    assert_eq!((&a.owner, a.recovered, a.slot), (&worker(2), false, t(101)));
}

/// `Taken`: the delivery is not queued and due any more (another worker claimed, deferred or
/// ended it) or not yet due; the refusal changes nothing.
#[doc(hidden)]
pub async fn a_claim_of_a_delivery_moved_meanwhile_is_taken<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "taken").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0), ("d", 4, 500)])
        .await;
    let limits = generous(SENDER);
    let me = (&owner(), &limits);
    // Decided by this worker; meanwhile another claims a, defers b and ends c.
    let mut decided = Vec::new();
    for r in ["a", "b", "c"] {
        decided.push(f.decided(stores, r, 5).await);
    }
    assert!(matches!(
        f.claim_as(&stores.other, &worker(2), "a", 4).await,
        ClaimAnswer::Claimed { .. }
    ));
    let other = stores.other.deliveries();
    other
        .defer(&f.key("b"), t(60), WaitReason::Spread)
        .await
        .unwrap();
    other
        .finish(&f.key("c"), &sent(), None, t(4))
        .await
        .unwrap();
    let group = ClaimGroup {
        owner: owner(),
        lease: LEASE,
        sender: limits.clone(),
        claims: decided,
    };
    stores.at(5);
    let answers = stores.deliveries().claim(&group).await.unwrap();
    assert_eq!(answers, vec![ClaimAnswer::Refused(Refusal::Taken); 3]);
    assert_eq!(
        refusal(&claim_group(&f, stores, me, &["d"], 5_000).await),
        Some(Refusal::Taken),
        "not due yet"
    );
    let counts = f.counts().await;
    assert_eq!((counts.sending, counts.queued, counts.sent), (1, 2, 1));
    assert_eq!(history(stores, 2, 0).await, []);
}

/// A paused run's claims are refused `RunPaused`, a cancelled run's `RunCancelled`, whichever
/// handle paused it; resumed, the delivery is claimed.
#[doc(hidden)]
pub async fn a_claim_of_a_paused_or_cancelled_run_is_refused<S: Stores>(stores: &Suite<S>) {
    let (p, c) = (
        Fixture::new(stores, "paused").await,
        Fixture::new(stores, "cancelled").await,
    );
    p.insert(&[("a", 1, 0)]).await;
    c.insert(&[("b", 2, 0)]).await;
    let limits = generous(SENDER);
    let me = (&owner(), &limits);
    let runs = stores.other.runs();
    runs.pause(&p.run, "herald", "operator").await.unwrap();
    runs.set_run_state(&c.run, RunState::Cancelled)
        .await
        .unwrap();
    let paused = claim_group(&p, stores, me, &["a"], 1_000).await;
    assert_eq!(refusal(&paused), Some(Refusal::RunPaused));
    // Cancelling ended b `skipped(cancelled)`; the refusal names the run's state first.
    let cancelled = claim_group(&c, stores, me, &["b"], 1_000).await;
    assert_eq!(refusal(&cancelled), Some(Refusal::RunCancelled));
    runs.set_run_state(&p.run, RunState::Active).await.unwrap();
    assert_eq!(
        refusal(&claim_group(&p, stores, me, &["a"], 2_000).await),
        None
    );
}

/// A send to the phone recorded by another worker after this decision read the history is
/// `CapChanged`, and nothing is recorded; decided again with that send in view, it is claimed.
#[doc(hidden)]
pub async fn a_claim_blind_to_another_workers_send_is_refused<S: Stores>(stores: &Suite<S>) {
    let (f, g) = (
        Fixture::new(stores, "first").await,
        Fixture::new(stores, "second").await,
    );
    f.insert(&[("a", 1, 0)]).await;
    g.insert(&[("a", 1, 0)]).await;
    let stale = g.decided(stores, "a", 5).await;
    assert_eq!(stale.history.sends, 0);
    assert!(matches!(
        f.claim_as(&stores.other, &worker(2), "a", 4).await,
        ClaimAnswer::Claimed { .. }
    ));
    let group = ClaimGroup {
        owner: owner(),
        lease: LEASE,
        sender: generous(SENDER),
        claims: vec![stale],
    };
    stores.at(5);
    let answers = stores.deliveries().claim(&group).await.unwrap();
    assert_eq!(refusal(&answers), Some(Refusal::CapChanged));
    assert_eq!(history(stores, 1, 0).await.len(), 1);
    assert_eq!(g.counts().await.queued, 1);
    let fresh = g.decided(stores, "a", 6).await;
    assert_eq!(fresh.history.sends, 1);
    let group = ClaimGroup {
        claims: vec![fresh],
        ..group
    };
    stores.at(6);
    let answers = stores.deliveries().claim(&group).await.unwrap();
    assert_eq!(refusal(&answers), None);
    assert_eq!(history(stores, 1, 0).await.len(), 2);
}

/// The tier counts unique phones per moving 24 hours of store time over both handles: a phone
/// already messaged is admitted, a new one only while the count is below the tier, else
/// `TierFull` until the oldest phone leaves the window.
#[doc(hidden)]
pub async fn the_tier_admits_known_phones_and_frees_when_the_oldest_leaves<S: Stores>(
    stores: &Suite<S>,
) {
    let f = Fixture::new(stores, "tier").await;
    f.insert(&[
        ("a", 1, 0),
        ("b", 2, 0),
        ("c", 3, 0),
        ("a2", 1, 0),
        ("a3", 1, 0),
    ])
    .await;
    let limits = SenderLimits {
        tier: Some(2),
        ..generous(SENDER)
    };
    let (one, two) = ((&worker(1), &limits), (&worker(2), &limits));
    let ok = |answers: Vec<ClaimAnswer>| assert_eq!(refusal(&answers), None);
    ok(claim_group(&f, stores, one, &["a"], 0).await);
    ok(claim_group(&f, &stores.other, two, &["b"], 100_000).await);
    let full = claim_group(&f, stores, one, &["c"], 200_000).await;
    let day = TimeDelta::days(1);
    assert_eq!(
        refusal(&full),
        Some(Refusal::TierFull { frees: t(0) + day })
    );
    // Phone 1 is in the window: admitted, and now its latest send is at t(300).
    ok(claim_group(&f, &stores.other, two, &["a2"], 300_000).await);
    let full = claim_group(&f, stores, one, &["c"], 400_000).await;
    assert_eq!(
        refusal(&full),
        Some(Refusal::TierFull {
            frees: t(100) + day
        })
    );
    assert_eq!(f.counts().await.queued, 2, "refusals change nothing");
    // Phone 2 leaves the window at t(100) + 24 h; then phone 3 takes its place.
    let at = (t(100) + day - t(0)).num_milliseconds();
    let full = claim_group(&f, stores, one, &["c"], at - 1).await;
    assert!(matches!(refusal(&full), Some(Refusal::TierFull { .. })));
    ok(claim_group(&f, stores, one, &["c"], at).await);
    ok(claim_group(&f, &stores.other, two, &["a3"], at + 1).await);
}

/// A throttle or a block recorded through the other handle refuses the claim (`Throttled` until
/// its end, `Blocked` with its reason until a resume); nothing is claimed meanwhile.
#[doc(hidden)]
pub async fn a_throttle_or_block_from_another_worker_refuses_the_claim<S: Stores>(
    stores: &Suite<S>,
) {
    let f = Fixture::new(stores, "held").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    let limits = generous(SENDER);
    let me = (&owner(), &limits);
    let theirs = stores.other.senders();
    stores.at(10);
    let until = theirs
        .throttle(SENDER, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(until, t(40));
    let held = claim_group(&f, stores, me, &["a"], 39_999).await;
    assert_eq!(refusal(&held), Some(Refusal::Throttled { until: t(40) }));
    assert_eq!(
        refusal(&claim_group(&f, stores, me, &["a"], 40_000).await),
        None
    );
    let reason = "131048: spam rate limit hit";
    theirs.block(SENDER, "131048", reason, t(41)).await.unwrap();
    let blocked = claim_group(&f, stores, me, &["b"], 50_000).await;
    let expected = Refusal::Blocked {
        reason: reason.into(),
    };
    assert_eq!(refusal(&blocked), Some(expected));
    assert_eq!(f.counts().await.queued, 1);
    // Another sender is not held back.
    let elsewhere = (&owner(), &generous("elsewhere"));
    assert_eq!(
        refusal(&claim_group(&f, stores, elsewhere, &["b"], 50_000).await),
        None
    );
}

/// With no slot within the horizon the claim is `RateAhead` with the next slot, and so is the
/// rest of its group; a claim made closer to that slot gets it, and waits for it.
#[doc(hidden)]
pub async fn a_claim_with_no_slot_within_the_horizon_is_rate_ahead<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "rate").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    let limits = SenderLimits {
        per_second: NonZeroU32::new(1).unwrap(),
        tier: None,
        horizon: Duration::from_millis(500),
        name: SENDER.into(),
    };
    let me = (&owner(), &limits);
    let answers = claim_group(&f, stores, me, &["a", "b", "c"], 0).await;
    let ahead = ClaimAnswer::Refused(Refusal::RateAhead { next: t(1) });
    let first = ClaimAnswer::Claimed {
        slot: t(0),
        wait: Duration::ZERO,
    };
    assert_eq!(answers, [first, ahead.clone(), ahead]);
    assert_eq!(f.counts().await.queued, 2);
    let answers = claim_group(&f, &stores.other, me, &["b"], 500).await;
    let second = ClaimAnswer::Claimed {
        slot: t(1),
        wait: Duration::from_millis(500),
    };
    assert_eq!(answers, [second]);
    assert_eq!(
        history(stores, 2, 0).await,
        [f.send(1)],
        "recorded at its slot"
    );
}

/// One rate over both handles: interleaved claims get slots at least one interval apart, never
/// more than `per_second` in any second, and `RateAhead` once the slots run past the horizon.
#[doc(hidden)]
pub async fn one_rate_is_shared_by_two_handles<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "shared").await;
    let names: Vec<String> = (0..24).map(|n| format!("r{n}")).collect();
    let rows: Vec<_> = (0..).zip(&names).map(|(n, r)| (r.as_str(), n, 0)).collect();
    f.insert(&rows).await;
    let limits = SenderLimits {
        per_second: NonZeroU32::new(10).unwrap(),
        tier: None,
        horizon: Duration::from_secs(1),
        name: SENDER.into(),
    };
    let (one, two) = ((&worker(1), &limits), (&worker(2), &limits));
    let mut slots = Vec::new();
    let mut ahead = 0;
    for (i, r) in (0..).zip(&names) {
        // Every 30 ms a claim, alternately from each handle: three times the rate.
        let handle = if i % 2 == 0 {
            (&stores.stores, one)
        } else {
            (&stores.other, two)
        };
        let now = i * 30;
        match claim_group(&f, handle.0, handle.1, &[r], now).await[..] {
            [ClaimAnswer::Claimed { slot, wait }] => {
                let now = t(0) + TimeDelta::milliseconds(now);
                assert_eq!(wait, (slot - now).to_std().unwrap_or_default());
                assert!(slot - now <= TimeDelta::seconds(1), "within the horizon");
                slots.push(slot);
            }
            [ClaimAnswer::Refused(Refusal::RateAhead { next })] => {
                ahead += 1;
                assert!(next > t(0) + TimeDelta::milliseconds(now + 1000));
            }
            ref other => panic!("unexpected {other:?}"),
        }
    }
    assert!(ahead > 0, "the claims outran the rate");
    assert!(slots.len() >= 10, "{slots:?}");
    for pair in slots.windows(2) {
        assert!(
            pair[1] - pair[0] >= TimeDelta::milliseconds(100),
            "{pair:?}"
        );
    }
    for start in &slots {
        let within = slots
            .iter()
            .filter(|s| **s >= *start && **s < *start + TimeDelta::seconds(1))
            .count();
        assert!(within <= 10, "{within} slots in the second from {start}");
    }
    // Concurrent groups from both handles at one instant still get distinct, spaced slots.
    let g = Fixture::new(stores, "burst").await;
    g.insert(&[("x", 50, 0), ("y", 51, 0)]).await;
    let later = 60_000;
    let both = join_all(vec![
        claim_group(&g, &stores.stores, one, &["x"], later),
        claim_group(&g, &stores.other, two, &["y"], later),
    ])
    .await;
    let (x, y) = (&both[0], &both[1]);
    let slot = |answers: &[ClaimAnswer]| match answers {
        [ClaimAnswer::Claimed { slot, .. }] => *slot,
        other => panic!("expected a slot, got {other:?}"),
    };
    let gap = (slot(x) - slot(y)).abs();
    assert!(gap >= TimeDelta::milliseconds(100), "{gap}");
}

/// The store's now is its [`crate::StoreTime`], to the millisecond: the slot a claim gets and
/// the end of its lease are measured on it, not on the instants callers pass.
#[doc(hidden)]
pub async fn claims_and_leases_are_timed_by_the_store<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "timed").await;
    f.insert(&[("a", 1, 0)]).await;
    stores.at_ms(1_234);
    let now = t(0) + TimeDelta::milliseconds(1_234);
    assert_eq!(stores.now().await.unwrap(), now);
    assert_eq!(stores.other.now().await.unwrap(), now, "both handles");
    let limits = generous(SENDER);
    let answers = claim_group(&f, stores, (&owner(), &limits), &["a"], 1_234).await;
    let claimed = ClaimAnswer::Claimed {
        slot: now,
        wait: Duration::ZERO,
    };
    assert_eq!(answers, [claimed]);
    let d = stores.deliveries();
    // The lease of 60 s ends at 61.234 s of store time, whatever `finish` is told.
    stores.at_ms(61_233);
    assert_eq!(d.recover_expired(10).await.unwrap(), []);
    stores.at_ms(61_234);
    assert_eq!(d.recover_expired(10).await.unwrap().len(), 1);
    let late = d.finish(&f.key("a"), &sent(), Some(&owner()), t(0)).await;
    assert_err(late, "Conflict");
}
