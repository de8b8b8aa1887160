//! The store's now is read once SQLite's write lock is held. A claim that waited for another
//! process's transaction must be timed when it runs: timed when it was asked for, its slot
//! would already be past when granted (requests leaving in a burst behind the wait, above the
//! rate) and its lease shorter than configured by as long as it waited.

use std::future::Future;
use std::path::Path;
use std::task::Poll;
use std::time::Duration;

use herald_store::conformance::{Fixture, ManualClock, Suite, generous, owner, t};
use herald_store::{ClaimAnswer, ClaimGroup, Deliveries, StoreTime, Stores};
use herald_store_sqlite::SqliteStores;

fn suite(path: &Path) -> Suite<SqliteStores> {
    let clock = ManualClock::new(t(0));
    let open = || SqliteStores::open_with(path, StoreTime::Clock(clock.clone())).unwrap();
    Suite {
        stores: open(),
        other: open(),
        clock,
    }
}

#[tokio::test]
async fn a_claim_that_waited_for_the_write_lock_is_timed_when_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let suite = suite(&path);
    let f = Fixture::new(&suite, "promo").await;
    f.insert(&[("a", 1, 0)]).await;
    suite.at(10);
    let group = ClaimGroup {
        owner: owner(),
        lease: Duration::from_secs(60),
        sender: generous("main"),
        claims: vec![f.decided(&suite.stores, "a", 10).await],
    };

    // Another process holds the write lock.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The claim is asked for at t(10) and waits for the lock ...
    let mut claim = std::pin::pin!(suite.stores.deliveries().claim(&group));
    let ready = std::future::poll_fn(|cx| Poll::Ready(claim.as_mut().poll(cx).is_ready())).await;
    assert!(!ready, "the claim cannot finish while the lock is held");
    // Give the claim's thread time to reach the lock. This sleep never makes the test fail with
    // a correct store (the lock is held, so the claim can only read the time after the COMMIT
    // below); it only lets the test catch a store that reads the time before taking the lock.
    std::thread::sleep(Duration::from_millis(300));
    // ... which is released 20 seconds later.
    suite.at(30);
    other.execute_batch("COMMIT").unwrap();
    let answers = claim.await.unwrap();
    assert!(
        matches!(answers.as_slice(), [ClaimAnswer::Claimed { slot, .. }] if *slot == t(30)),
        "{answers:?}"
    );
    let records = suite.stores.deliveries().claims(&f.run).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].slot, t(30));
    // The lease runs from t(30): expired at t(30) + 60 s, not at t(10) + 60 s.
    suite.at(80);
    assert_eq!(
        suite.stores.deliveries().recover_expired(10).await.unwrap(),
        []
    );
    suite.at(91);
    assert_eq!(
        suite
            .stores
            .deliveries()
            .recover_expired(10)
            .await
            .unwrap()
            .len(),
        1
    );
}
