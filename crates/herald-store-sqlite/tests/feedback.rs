//! SQLite-only checks of provider feedback the conformance suite leaves to each backend:
//! the bound on kept early reports (filling it through the port would take 100 000 calls, so
//! the flood is written straight into the file), and that the bound frees once they expire.

use std::path::Path;

use herald_core::Outcome;
use herald_store::conformance::{Fixture, ManualClock, Suite, owner, t};
use herald_store::{
    Deliveries, Feedback, KEPT_STATUS_LIMIT, KEPT_STATUS_TTL, Progress, ReportedStatus,
    StatusReport, StatusVerdict, StoreTime, Stores, Terminal,
};
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

fn delivered(id: &str) -> StatusReport {
    StatusReport {
        provider_id: id.into(),
        callback: None,
        status: ReportedStatus::Reached(Progress::Delivered),
        at: t(30),
    }
}

#[tokio::test]
async fn past_the_limit_early_reports_are_dropped_until_the_kept_ones_expire() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let stores = suite(&path);
    let f = Fixture::new(&stores, "flood").await;
    f.insert(&[("a", 1, 0)]).await;
    assert!(f.claim("a", 10).await);
    let sent = Terminal {
        outcome: Outcome::Sent,
        detail: Some("wamid.REAL".into()),
    };
    stores
        .deliveries()
        .finish(&f.key("a"), &sent, Some(&owner()), t(20))
        .await
        .unwrap();

    // One report short of the limit, kept at t(0): the next one is still kept.
    let ttl = i64::try_from(KEPT_STATUS_TTL.as_millis()).unwrap();
    let flood = i64::try_from(KEPT_STATUS_LIMIT).unwrap() - 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO kept_statuses (provider_id, status, reported_at, expires_at)
             SELECT 'wamid.flood-' || i, 'delivered', ?2, ?2 + ?3 FROM n",
            (flood, t(0).timestamp_millis(), ttl),
        )
        .unwrap();
    let fb = stores.feedback();
    let verdict = |id: &'static str, at: i64| async move {
        fb.record_status(&delivered(id), t(at)).await.unwrap()
    };
    assert_eq!(verdict("wamid.LAST", 30).await, StatusVerdict::Kept);
    assert_eq!(verdict("wamid.OVER", 31).await, StatusVerdict::Dropped);
    assert_eq!(verdict("wamid.OVER", 32).await, StatusVerdict::Dropped);
    // A report for a message the store knows is never held back by the bound.
    let known = StatusVerdict::Applied {
        key: f.key("a"),
        phone: herald_store::conformance::phone(1),
    };
    assert_eq!(verdict("wamid.REAL", 33).await, known);
    // Once the flood expires, it is deleted and early reports are kept again.
    let after = 86_400 + 1;
    assert_eq!(verdict("wamid.LATER", after).await, StatusVerdict::Kept);
    let left: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM kept_statuses", [], |row| row.get(0))
        .unwrap();
    assert_eq!(left, 2, "wamid.LAST (kept at t(30)) and wamid.LATER");
}
