//! What the conformance suite cannot see through the port: the `fires` table of the file holds
//! at most `FIRES_KEPT` rows per campaign, and a row no port call could have written (an unknown
//! kind, a run id that does not parse, a kind with or without a run against its rule) is read as
//! `Corrupt` naming the row, never as some other outcome.

use std::path::Path;

use herald_store::conformance::t;
use herald_store::{FIRES_KEPT, FireOutcome, FireRecord, FireSkip, Fires, StoreError, Stores};
use herald_store_sqlite::SqliteStores;
use rusqlite::Connection;

fn record(campaign: &str, fire: i64) -> FireRecord {
    FireRecord {
        campaign: campaign.into(),
        fire: t(fire),
        outcome: FireOutcome::Skipped(FireSkip::Missed),
        hash: "0".repeat(64),
        recorded_at: t(fire),
    }
}

fn rows(path: &Path, campaign: &str) -> (i64, i64) {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT count(*), min(fire) FROM fires WHERE campaign = ?1",
            [campaign],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

#[tokio::test]
async fn the_file_holds_at_most_the_kept_fires_per_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let stores = SqliteStores::open(&path).unwrap();
    let kept = i64::try_from(FIRES_KEPT).unwrap();
    for n in 0..kept + 3 {
        assert!(
            stores
                .fires()
                .record_fire(&record("busy", n))
                .await
                .unwrap()
                .0
        );
    }
    assert!(
        stores
            .fires()
            .record_fire(&record("quiet", 0))
            .await
            .unwrap()
            .0
    );
    assert_eq!(rows(&path, "busy"), (kept, t(3).timestamp()));
    assert_eq!(rows(&path, "quiet"), (1, t(0).timestamp()));
    // An old fire recorded now is stored and dropped at once: the table stays in bounds.
    let (stored, back) = stores
        .fires()
        .record_fire(&record("busy", 0))
        .await
        .unwrap();
    assert!(stored);
    assert_eq!(back, record("busy", 0));
    assert_eq!(rows(&path, "busy"), (kept, t(3).timestamp()));
}

/// Writes a row straight into the file, past the table's CHECK constraints (as a damaged file
/// or a foreign writer could hold it).
fn write_row(path: &Path, fire: i64, kind: &str, run: Option<&str>) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA ignore_check_constraints = ON")
        .unwrap();
    conn.execute(
        "INSERT INTO fires (campaign, fire, kind, run, hash, recorded_at)
         VALUES ('weekly', ?1, ?2, ?3, ?4, 0)",
        (t(fire).timestamp(), kind, run, "0".repeat(64)),
    )
    .unwrap();
}

#[tokio::test]
async fn rows_no_call_could_write_are_corrupt() {
    let cases: [(&str, Option<&str>, &str); 5] = [
        ("exploded", None, "unknown kind"),
        ("run", Some("not a run id"), "invalid run id"),
        ("overlap", Some("weekly@ has spaces"), "invalid run id"),
        ("run", None, "without a run"),
        ("missed", Some("weekly@2026-11-27T10:00"), "with a run"),
    ];
    for (n, (kind, run, reason)) in cases.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.db");
        let stores = SqliteStores::open(&path).unwrap();
        write_row(&path, 60, kind, run);
        let expected_key = format!("fires/weekly/{}", t(60).timestamp());
        let read = stores.fires().fires("weekly", 10).await;
        let recorded = stores.fires().record_fire(&record("weekly", 60)).await;
        for result in [read.map(drop), recorded.map(drop)] {
            match result {
                Err(StoreError::Corrupt { key, reason: why }) => {
                    assert_eq!(key, expected_key, "case {n}");
                    assert!(why.contains(reason), "case {n}: {why}");
                }
                other => panic!("case {n}: expected Corrupt, got {other:?}"),
            }
        }
    }
}
