use std::collections::BTreeMap;

use herald_core::{Outcome, RunId, SkipReason};

use super::*;
use crate::{
    Change, ClaimAnswer, NewRun, Refusal, RunRecord, RunState, Terminal, WaitReason, WorkScope,
    WorkerId,
};

/// A run is created once; it reads back as written, and the list is newest first.
#[doc(hidden)]
pub async fn create_run_once<S: Stores>(stores: &Suite<S>) {
    let (runs, promo, ghost) = (stores.runs(), new_run("promo"), new_run("ghost").run);
    assert!(runs.create_run(&promo, t(0)).await.unwrap());
    assert!(
        !runs.create_run(&promo, t(5)).await.unwrap(),
        "a resubmission is not a new run"
    );
    let state = RunState::Active;
    let record = RunRecord {
        run: promo.clone(),
        created_at: t(0),
        total: None,
        state,
        state_reason: None,
        paused_by: None,
    };
    assert_eq!(runs.run(&promo.run).await.unwrap(), Some(record));
    assert!(runs.create_run(&new_run("later"), t(10)).await.unwrap());
    let listed: Vec<_> = runs
        .runs()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run)
        .collect();
    assert_eq!(listed, [new_run("later"), promo.clone()]);
    runs.finish_expansion(&promo.run, 42).await.unwrap();
    assert_eq!(runs.run(&promo.run).await.unwrap().unwrap().total, Some(42));
    assert_eq!(runs.run(&ghost).await.unwrap(), None);
    assert_err(runs.finish_expansion(&ghost, 1).await, "NotFound");
    assert_err(
        runs.set_run_state(&ghost, RunState::Paused).await,
        "NotFound",
    );
}

/// Re-inserting leaves existing rows untouched and counts only new ones.
#[doc(hidden)]
pub async fn insert_is_idempotent<S: Stores>(stores: &Suite<S>) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    let invalid = ended(
        &f.run,
        "line 7",
        Outcome::Skipped(SkipReason::InvalidRecipient),
    );
    let mut batch = vec![
        queued(&f.run, "a", 1, 0),
        queued(&f.run, "b", 2, 0),
        invalid,
    ];
    assert_eq!(d.insert_batch(&batch).await.unwrap(), 3);
    batch[0] = queued(&f.run, "a", 1, 500);
    batch.push(queued(&f.run, "c", 3, 0));
    assert_eq!(d.insert_batch(&batch).await.unwrap(), 1);
    assert_eq!(d.insert_batch(&[]).await.unwrap(), 0);
    let counts = f.counts().await;
    assert_eq!((counts.total(), counts.queued), (4, 3));
    assert_eq!(
        counts.skipped,
        BTreeMap::from([("invalid_recipient".into(), 1)])
    );
    assert_eq!(
        due(stores, 0, 10).await,
        f.keys(&["a", "b", "c"]),
        "`a` moved to t+500"
    );
    let ghost = queued(&new_run("ghost").run, "a", 1, 0);
    assert_err(d.insert_batch(&[ghost]).await, "NotFound");
}

/// `due` returns what is due at `now`, earliest first, up to `limit`, with the snapshot intact.
#[doc(hidden)]
pub async fn due_respects_time_and_order<S: Stores>(stores: &Suite<S>) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    f.insert(&[("e", 1, 30), ("b", 2, 10), ("d", 3, 20), ("a", 4, 40)])
        .await;
    let duplicate = ended(&f.run, "x", Outcome::Skipped(SkipReason::Duplicate));
    d.insert_batch(&[duplicate]).await.unwrap();
    assert_eq!(due(stores, 9, 10).await, []);
    assert_eq!(due(stores, 25, 10).await, f.keys(&["b", "d"]));
    assert_eq!(due(stores, 100, 2).await, f.keys(&["b", "d"]));
    assert_eq!(due(stores, 100, 10).await, f.keys(&["b", "d", "e", "a"]));
    let first = d.due(t(10), 1).await.unwrap().remove(0);
    let inserted = queued(&f.run, "b", 2, 10);
    assert_eq!(Some(first.recipient), inserted.recipient);
    assert_eq!(
        (first.scheduled_at, first.expires_at),
        (t(10), inserted.expires_at)
    );
    assert_eq!((first.due_at, first.attempts), (t(10), 0));
}

/// Of concurrent claims of one delivery, by workers on both handles, exactly one wins, and
/// only it is recorded; an ended delivery is not claimed again.
#[doc(hidden)]
pub async fn claim_is_at_most_once<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "promo").await;
    let names: Vec<String> = (0..8).map(|n| format!("r{n}")).collect();
    let rows: Vec<_> = (0..).zip(&names).map(|(n, r)| (r.as_str(), n, 0)).collect();
    f.insert(&rows).await;
    let workers: Vec<WorkerId> = (1..=4).map(worker).collect();
    for r in &names {
        let claims = workers
            .iter()
            .zip([&stores.stores, &stores.other].into_iter().cycle())
            .map(|(w, handle)| f.claim_as(handle, w, r, 1))
            .collect();
        let won = join_all(claims)
            .await
            .into_iter()
            .filter(|answer| matches!(answer, ClaimAnswer::Claimed { .. }))
            .count();
        assert_eq!(won, 1, "{r}");
    }
    let counts = f.counts().await;
    assert_eq!((counts.queued, counts.sending), (0, 8));
    assert_eq!(due(stores, 100, 10).await, []);
    assert_eq!(history(stores, 3, 0).await, [f.send(1)]);
    let winner = stores
        .deliveries()
        .claims(&f.run)
        .await
        .expect("claims")
        .into_iter()
        .find(|c| c.key == f.key("r0"))
        .expect("r0 was claimed")
        .owner;
    let sent = Terminal {
        outcome: Outcome::Sent,
        detail: None,
    };
    let d = stores.deliveries();
    d.finish(&f.key("r0"), &sent, Some(&winner), t(2))
        .await
        .unwrap();
    assert!(!f.claim("r0", 3).await);
    assert_eq!(
        f.claim_as(stores, &owner(), "r0", 3).await,
        ClaimAnswer::Refused(Refusal::Taken)
    );
}

/// A claim records the send in the phone's history, and only a successful claim does.
#[doc(hidden)]
pub async fn claim_records_history<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "promo").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 1, 0)]).await;
    assert!(f.claim("a", 100).await);
    assert_eq!(history(stores, 1, 0).await, [f.send(100)]);
    assert_eq!(history(stores, 1, 101).await, []);
    assert_eq!(history(stores, 2, 0).await, []);
    assert!(!f.claim("a", 150).await);
    assert!(f.claim("c", 200).await);
    assert_eq!(history(stores, 1, 0).await, [f.send(100), f.send(200)]);
}

/// A requeued delivery leaves the history, comes back when due, and keeps its attempt count.
#[doc(hidden)]
pub async fn requeue_removes_history<S: Stores>(stores: &Suite<S>) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    f.insert(&[("a", 1, 0)]).await;
    let retry = Some(WaitReason::Retry);
    let me = owner();
    assert_err(d.requeue(&f.key("a"), t(600), retry, &me).await, "Conflict");
    assert!(f.claim("a", 1).await);
    let not_mine = d.requeue(&f.key("a"), t(600), retry, &worker(2)).await;
    assert_err(not_mine, "Conflict");
    d.requeue(&f.key("a"), t(600), retry, &me).await.unwrap();
    assert_eq!(history(stores, 1, 0).await, []);
    let counts = f.counts().await;
    assert_eq!((counts.queued, counts.sending), (1, 0));
    assert_eq!(due(stores, 599, 10).await, []);
    let back = d.due(t(600), 10).await.unwrap();
    let back: Vec<_> = back
        .into_iter()
        .map(|x| (x.key, x.due_at, x.attempts))
        .collect();
    assert_eq!(back, [(f.key("a"), t(600), 1)]);
    assert!(f.claim("a", 601).await);
    assert_eq!(history(stores, 1, 0).await, [f.send(601)]);
}

/// Outcomes that prove nothing was sent free the history entry; `sent` and `unknown` keep it.
#[doc(hidden)]
pub async fn failed_send_leaves_no_history<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "promo").await;
    f.insert(&[("a", 1, 0), ("b", 1, 0), ("c", 1, 0), ("d", 1, 0)])
        .await;
    let failed = Outcome::Failed {
        code: "131026".into(),
    };
    let outcomes = [failed, Outcome::Sent, Outcome::Unknown, Outcome::Expired];
    for ((r, at), outcome) in ["a", "b", "c", "d"].into_iter().zip(1..).zip(outcomes) {
        assert!(f.claim(r, at).await);
        f.finish(r, outcome).await.unwrap();
    }
    assert_eq!(history(stores, 1, 0).await, [f.send(2), f.send(3)]);
}

/// `in_flight` lists exactly the claimed, unfinished deliveries.
#[doc(hidden)]
pub async fn in_flight_after_claim<S: Stores>(stores: &Suite<S>) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    assert_eq!(d.in_flight().await.unwrap(), []);
    assert!(f.claim("c", 1).await && f.claim("a", 1).await);
    let mut in_flight = d.in_flight().await.unwrap();
    in_flight.sort();
    assert_eq!(in_flight, f.keys(&["a", "c"]));
    f.finish("a", Outcome::Unknown).await.unwrap();
    assert_eq!(d.in_flight().await.unwrap(), f.keys(&["c"]));
}

/// A paused run's deliveries are neither due nor claimable until it resumes.
#[doc(hidden)]
pub async fn paused_runs_are_not_due<S: Stores>(stores: &Suite<S>) {
    let (p, q) = (
        Fixture::new(stores, "paused").await,
        Fixture::new(stores, "other").await,
    );
    let (runs, d) = (stores.runs(), stores.deliveries());
    p.insert(&[("a", 1, 0)]).await;
    q.insert(&[("b", 2, 10)]).await;
    runs.set_run_state(&p.run, RunState::Paused).await.unwrap();
    assert_eq!(
        runs.run(&p.run).await.unwrap().unwrap().state,
        RunState::Paused
    );
    assert_eq!(due(stores, 100, 10).await, q.keys(&["b"]));
    assert_eq!(d.next_due().await.unwrap(), Some(t(10)));
    assert!(
        !p.claim("a", 20).await,
        "a paused run's delivery was claimed"
    );
    runs.set_run_state(&p.run, RunState::Active).await.unwrap();
    assert_eq!(due(stores, 100, 10).await, [p.key("a"), q.key("b")]);
    assert_eq!(d.next_due().await.unwrap(), Some(t(0)));
}

/// Cancelling ends the queued deliveries `skipped(cancelled)`, also ones inserted afterwards, and
/// is final; claimed ones are left to their worker.
#[doc(hidden)]
pub async fn cancel_ends_queued_deliveries<S: Stores>(stores: &Suite<S>) {
    let (f, runs) = (Fixture::new(stores, "promo").await, stores.runs());
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    assert!(f.claim("c", 1).await);
    runs.set_run_state(&f.run, RunState::Cancelled)
        .await
        .unwrap();
    assert_eq!(due(stores, 100, 10).await, []);
    assert_eq!(stores.deliveries().next_due().await.unwrap(), None);
    assert_err(
        runs.set_run_state(&f.run, RunState::Active).await,
        "Conflict",
    );
    f.finish("c", Outcome::Sent).await.unwrap();
    assert_eq!(f.insert(&[("d", 4, 0)]).await, 1);
    let counts = f.counts().await;
    assert_eq!((counts.queued, counts.sending, counts.sent), (0, 0, 1));
    assert_eq!(counts.skipped, BTreeMap::from([("cancelled".into(), 3)]));
}

/// Counts cover every delivery once, by state, reason and code, and only of the run asked about.
#[doc(hidden)]
pub async fn counts_add_up<S: Stores>(stores: &Suite<S>) {
    let (f, other) = (
        Fixture::new(stores, "promo").await,
        Fixture::new(stores, "other").await,
    );
    f.insert(&[
        ("q1", 1, 100),
        ("q2", 2, 100),
        ("q3", 3, 1000),
        ("q4", 4, 3699),
        ("q5", 5, 3700),
    ])
    .await;
    let claimed = ["s", "sent", "f1", "f2", "f3", "u", "e"];
    let rows: Vec<_> = claimed.iter().zip(10..).map(|(r, n)| (*r, n, 0)).collect();
    f.insert(&rows).await;
    f.insert(&[("k", 20, 0)]).await;
    let duplicate = ended(&f.run, "line:9", Outcome::Skipped(SkipReason::Duplicate));
    stores
        .deliveries()
        .insert_batch(&[duplicate])
        .await
        .unwrap();
    other.insert(&[("q1", 99, 50)]).await;
    for r in claimed {
        assert!(f.claim(r, 1).await);
    }
    let failed = |code: &str| Outcome::Failed { code: code.into() };
    let endings = [
        ("sent", Outcome::Sent),
        ("f1", failed("131026")),
        ("f2", failed("131026")),
    ];
    let more = [
        ("f3", failed("131049")),
        ("u", Outcome::Unknown),
        ("e", Outcome::Expired),
    ];
    for (r, outcome) in endings.into_iter().chain(more) {
        f.finish(r, outcome).await.unwrap();
    }
    f.end("k", Outcome::Skipped(SkipReason::OptedOut))
        .await
        .unwrap();
    let expected = RunCounts {
        queued: 5,
        sending: 1,
        sent: 1,
        delivered: 0,
        read: 0,
        failed: BTreeMap::from([("131026".into(), 2), ("131049".into(), 1)]),
        unknown: 1,
        expired: 1,
        skipped: BTreeMap::from([("duplicate".into(), 1), ("opted_out".into(), 1)]),
        next_wave: Some((t(100), 4)),
    };
    assert_eq!(f.counts().await, expected);
    assert_eq!(expected.total(), 14);
    assert_eq!(other.counts().await.next_wave, Some((t(50), 1)));
    assert_err(
        stores.deliveries().counts(&new_run("ghost").run).await,
        "NotFound",
    );
}

/// `defer` moves a queued delivery's due instant, and only a queued one's.
#[doc(hidden)]
pub async fn defer_moves_due<S: Stores>(stores: &Suite<S>) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    assert_eq!(d.next_due().await.unwrap(), None);
    f.insert(&[("a", 1, 0), ("b", 2, 50)]).await;
    assert_eq!(d.next_due().await.unwrap(), Some(t(0)));
    d.defer(&f.key("a"), t(100), WaitReason::Window)
        .await
        .unwrap();
    assert_eq!(d.next_due().await.unwrap(), Some(t(50)));
    assert_eq!(due(stores, 60, 10).await, f.keys(&["b"]));
    let due = d.due(t(100), 10).await.unwrap();
    let due: Vec<_> = due.into_iter().map(|x| (x.key, x.due_at)).collect();
    assert_eq!(due, [(f.key("b"), t(50)), (f.key("a"), t(100))]);
    assert!(f.claim("b", 100).await);
    let window = WaitReason::Window;
    assert_err(d.defer(&f.key("b"), t(200), window).await, "Conflict");
    assert_err(d.defer(&f.key("ghost"), t(200), window).await, "NotFound");
}

/// `apply` does what the single methods do, change by change, in one step: a lost claim or a
/// change in the wrong state is `false` and leaves the others applied.
#[doc(hidden)]
pub async fn apply_is_per_change_and_at_most_once<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "apply").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    let d = stores.deliveries();
    assert!(f.claim("a", 5).await && f.claim("b", 5).await);
    let sent = Terminal {
        outcome: Outcome::Sent,
        detail: None,
    };
    let finish = |r: &str, owner: Option<WorkerId>| Change::Finish {
        key: f.key(r),
        terminal: sent.clone(),
        owner,
    };
    let defer = |r: &str| Change::Defer {
        key: f.key(r),
        until: t(50),
        reason: WaitReason::Spread,
    };
    // Deferring a claimed delivery is in the wrong state; c defers; another worker cannot end
    // a's claim, nor can a claim's end apply to a queued delivery.
    let again = d
        .apply(
            &[
                defer("b"),
                defer("c"),
                finish("a", Some(worker(2))),
                finish("c", Some(owner())),
            ],
            t(6),
        )
        .await
        .expect("apply");
    assert_eq!(again, [false, true, false, false]);
    assert_eq!(
        history(stores, 1, 0).await.len(),
        1,
        "one claim, one history entry"
    );
    let requeue = Change::Requeue {
        key: f.key("b"),
        until: t(60),
        reason: Some(WaitReason::Throttle),
        owner: owner(),
    };
    let ends = d
        .apply(
            &[
                finish("a", Some(owner())),
                requeue,
                finish("a", Some(owner())),
            ],
            t(7),
        )
        .await
        .expect("apply");
    assert_eq!(ends, [true, true, false], "the first terminal write wins");
    assert_eq!(
        history(stores, 2, 0).await,
        [],
        "requeue removed b's history"
    );
    let counts = f.counts().await;
    assert_eq!((counts.sent, counts.queued, counts.sending), (1, 2, 0));
    assert_eq!(due(stores, 55, 10).await, f.keys(&["c"]));
    assert_eq!(d.apply(&[], t(8)).await.expect("apply"), Vec::<bool>::new());
}

/// `due_in` and `next_due_in` see only the runs of the scope's sender, and of those only the
/// runs the scope names when it names some.
#[doc(hidden)]
pub async fn due_in_only_the_given_runs<S: Stores>(stores: &Suite<S>) {
    let p = Fixture::new(stores, "mine").await;
    let q = Fixture::new(stores, "theirs").await;
    let elsewhere = NewRun {
        sender: Some("other".into()),
        ..new_run("elsewhere")
    };
    let r = Fixture::create(stores, elsewhere).await;
    p.insert(&[("a", 1, 20)]).await;
    q.insert(&[("b", 2, 10)]).await;
    r.insert(&[("c", 3, 5)]).await;
    let d = stores.deliveries();
    let scope = |runs: Option<Vec<RunId>>| WorkScope {
        sender: SENDER.into(),
        runs,
    };
    let keys = |due: Vec<crate::Delivery>| due.into_iter().map(|x| x.key).collect::<Vec<_>>();
    let only_mine = scope(Some(vec![p.run.clone()]));
    let mine = d.due_in(&only_mine, t(100), 10).await.expect("due_in");
    assert_eq!(keys(mine), p.keys(&["a"]));
    assert_eq!(d.next_due_in(&only_mine).await.expect("next"), Some(t(20)));
    let both = scope(Some(vec![p.run.clone(), q.run.clone(), r.run.clone()]));
    assert_eq!(
        d.next_due_in(&both).await.expect("next"),
        Some(t(10)),
        "another sender's run is not in the scope even when named"
    );
    let first = d.due_in(&both, t(100), 1).await.expect("due_in");
    assert_eq!(keys(first), q.keys(&["b"]), "earliest first, limited");
    let all = d.due_in(&scope(None), t(100), 10).await.expect("due_in");
    assert_eq!(
        keys(all),
        [q.key("b"), p.key("a")],
        "every run of the sender"
    );
    let theirs = WorkScope {
        sender: "other".into(),
        runs: None,
    };
    let other = d.due_in(&theirs, t(100), 10).await.expect("due_in");
    assert_eq!(keys(other), r.keys(&["c"]));
    assert_eq!(d.next_due_in(&theirs).await.expect("next"), Some(t(5)));
    let none = scope(Some(Vec::new()));
    assert!(
        d.due_in(&none, t(100), 10)
            .await
            .expect("due_in")
            .is_empty()
    );
    assert_eq!(d.next_due_in(&none).await.expect("next"), None);
}
