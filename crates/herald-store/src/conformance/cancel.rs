//! Checks of a cancel racing a claim in flight: a delivery `sending` when its run is cancelled
//! may come back through a requeue (single, in `apply`, or an `at_least_once` lease recovery).
//! A cancelled run is never claimed again, so each of these ends it `skipped(cancelled)` rather
//! than queued: "all end skipped(cancelled) after cancel, counts add up" holds for every store.

use std::collections::BTreeMap;

use herald_core::Outcome;

use super::*;
use crate::{Change, NewRun, RunState};

fn cancelled(n: u64) -> BTreeMap<String, u64> {
    BTreeMap::from([("cancelled".to_owned(), n)])
}

/// A claim requeued after its run was cancelled ends `skipped(cancelled)`: the requeue succeeds,
/// its history entry is gone, nothing is due, and a second requeue or a late finish conflicts.
#[doc(hidden)]
pub async fn a_requeue_after_cancel_ends_skipped<S: Stores>(stores: &Suite<S>) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    assert!(f.claim("a", 1).await && f.claim("b", 2).await);
    stores
        .runs()
        .set_run_state(&f.run, RunState::Cancelled)
        .await
        .unwrap();
    let me = owner();
    d.requeue(&f.key("a"), t(600), Some(WaitReason::Retry), &me)
        .await
        .expect("a requeue of a cancelled run succeeds");
    assert_eq!(history(stores, 1, 0).await, [], "nothing was sent");
    assert_eq!(
        history(stores, 2, 0).await,
        [f.send(2)],
        "b is still in flight"
    );
    let counts = f.counts().await;
    assert_eq!((counts.queued, counts.sending), (0, 1));
    assert_eq!(
        counts.skipped,
        cancelled(2),
        "c by the cancel, a by the requeue"
    );
    assert_eq!(counts.total(), 3);
    assert_eq!(due(stores, 700, 10).await, []);
    assert_eq!(d.next_due().await.unwrap(), None);
    let again = d.requeue(&f.key("a"), t(600), None, &me).await;
    assert_err(again, "Conflict");
    assert_err(f.finish("a", Outcome::Sent).await, "Conflict");
    f.finish("b", Outcome::Sent).await.unwrap();
    let counts = f.counts().await;
    assert_eq!((counts.queued, counts.sending, counts.sent), (0, 0, 1));
    assert_eq!(counts.skipped, cancelled(2));
    assert_eq!(counts.total(), 3);
}

/// The same through `apply`: a `Requeue` of a cancelled run ends it `skipped(cancelled)` and
/// answers `true`, and a later change of it in the same batch is refused.
#[doc(hidden)]
pub async fn a_requeue_in_apply_after_cancel_ends_skipped<S: Stores>(stores: &Suite<S>) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    assert!(f.claim("a", 1).await && f.claim("b", 2).await);
    stores
        .runs()
        .set_run_state(&f.run, RunState::Cancelled)
        .await
        .unwrap();
    let requeue = |r: &str| Change::Requeue {
        key: f.key(r),
        until: t(60),
        reason: Some(WaitReason::Throttle),
        owner: owner(),
    };
    let sent = Change::Finish {
        key: f.key("b"),
        terminal: Terminal {
            outcome: Outcome::Sent,
            detail: None,
        },
        owner: Some(owner()),
    };
    let ends = d
        .apply(&[requeue("a"), sent, requeue("a")], t(7))
        .await
        .expect("apply");
    assert_eq!(ends, [true, true, false], "a ended by the first requeue");
    assert_eq!(history(stores, 1, 0).await, [], "nothing was sent to a");
    assert_eq!(history(stores, 2, 0).await, [f.send(2)]);
    let counts = f.counts().await;
    assert_eq!((counts.queued, counts.sending, counts.sent), (0, 0, 1));
    assert_eq!(counts.skipped, cancelled(2));
    assert_eq!(counts.total(), 3);
    assert_eq!(due(stores, 100, 10).await, []);
    assert_eq!(d.next_due().await.unwrap(), None);
}

/// An `at_least_once` claim whose lease ends after its run was cancelled ends
/// `skipped(cancelled)` (reported not requeued) instead of queued; one of a run that is not
/// `at_least_once` still ends `unknown`, as its request may have reached the provider.
#[doc(hidden)]
pub async fn an_ended_lease_after_cancel_ends_skipped<S: Stores>(stores: &Suite<S>) {
    let retried = NewRun {
        at_least_once: true,
        ..new_run("retried")
    };
    let (f, d) = (Fixture::create(stores, retried).await, stores.deliveries());
    let once = Fixture::new(stores, "once").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    once.insert(&[("x", 4, 0)]).await;
    assert!(f.claim("a", 10).await && f.claim("b", 10).await);
    assert!(once.claim("x", 10).await);
    for run in [&f.run, &once.run] {
        stores
            .runs()
            .set_run_state(run, RunState::Cancelled)
            .await
            .unwrap();
    }
    stores.at(100);
    let recovered = d.recover_expired(10).await.unwrap();
    assert_eq!(recovered.len(), 3);
    assert!(
        recovered.iter().all(|r| !r.requeued && r.owner == owner()),
        "{recovered:?}"
    );
    assert_eq!(
        history(stores, 1, 0).await,
        [],
        "nothing proves it was sent"
    );
    assert_eq!(history(stores, 2, 0).await, []);
    let counts = f.counts().await;
    assert_eq!(
        (counts.queued, counts.sending, counts.unknown),
        (0, 0, 0),
        "none queued under a cancelled run"
    );
    assert_eq!(counts.skipped, cancelled(3));
    assert_eq!(counts.total(), 3);
    let counts = once.counts().await;
    assert_eq!((counts.sending, counts.unknown, counts.total()), (0, 1, 1));
    assert_eq!(due(stores, 100, 10).await, []);
    assert_eq!(d.next_due().await.unwrap(), None);
    assert_err(f.finish("a", Outcome::Sent).await, "Conflict");
    let records = d.claims(&f.run).await.unwrap();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|c| c.recovered), "{records:?}");
    assert!(d.recover_expired(10).await.unwrap().is_empty());
}
