//! Expansion against a real SQLite file: reading the audience on several threads stores exactly
//! what one thread stores, duplicates and broken rows included, and a second expansion adds
//! nothing.

mod common;
use common::registered;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_engine::expand::expand_with_readers;
use herald_store::{Deliveries, Stores};
use herald_store_sqlite::SqliteStores;

const ROWS: usize = 12_345;

/// An audience of `ROWS` rows (more than two write batches) where some rows repeat an earlier
/// phone, some an earlier id, some have a broken phone, some lie outside the segment, and blank
/// lines sit in between.
fn write_campaign(dir: &std::path::Path) -> std::path::PathBuf {
    let mut csv = String::from("id,phone,timezone,tier\n");
    for i in 0..ROWS {
        let phone = if i % 97 == 5 {
            format!("+7916{:07}", 2_000_000 + i - 5)
        } else {
            format!("+7916{:07}", 2_000_000 + i)
        };
        let id = if i % 101 == 7 {
            format!("r{}", i - 7)
        } else {
            format!("r{i}")
        };
        let phone = if i % 89 == 3 { "12".to_owned() } else { phone };
        let tier = if i % 13 == 0 { "bronze" } else { "gold" };
        csv.push_str(&format!("{id},{phone},Europe/Moscow,{tier}\n"));
        if i % 1000 == 999 {
            csv.push('\n');
        }
    }
    std::fs::write(dir.join("people.csv"), csv).unwrap();
    let yaml = "id: promo\npurpose: marketing\n\
                audience: { source: people.csv, where: { tier: gold } }\n\
                template: { name: promo, language: en }\n\
                schedule: { at: 2026-11-30T10:00, in: recipient }\n\
                send_window: { hours: { mon-fri: \"09:00-20:00\" } }\n";
    std::fs::write(dir.join("c.yaml"), yaml).unwrap();
    dir.join("c.yaml")
}

async fn stored(readers: usize) -> (herald_store::RunCounts, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
    let campaign = herald_campaign::load(&write_campaign(dir.path()), now).unwrap();
    let stores = SqliteStores::open(&dir.path().join("h.db")).unwrap();
    let (run, first) = expand_with_readers(&stores, &campaign, registered("c.yaml"), now, readers)
        .await
        .unwrap();
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!(first.inserted, counts.total(), "{readers} readers");
    let far: DateTime<Utc> = "2027-01-01T00:00:00Z".parse().unwrap();
    let mut queued: Vec<String> = stores
        .deliveries()
        .due(far, ROWS)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.key.recipient.to_string())
        .collect();
    queued.sort();
    // Idempotent: the same run again reads nothing and stores nothing.
    let (_, again) = expand_with_readers(&stores, &campaign, registered("c.yaml"), now, readers)
        .await
        .unwrap();
    assert!(again.already_expanded && again.inserted == 0);
    (counts, queued)
}

#[tokio::test]
async fn several_readers_store_what_one_reader_stores() {
    let (one, one_queued) = stored(1).await;
    // Broken rows are stored whatever their tier: the segment cannot be checked without a row.
    let outside = (0..ROWS).filter(|i| i % 13 == 0 && i % 89 != 3).count() as u64;
    assert_eq!(one.total(), ROWS as u64 - outside);
    let skipped: BTreeMap<_, _> = one.skipped.clone();
    assert!(
        skipped.get("duplicate").is_some_and(|n| *n > 200),
        "{skipped:?}"
    );
    assert!(
        skipped.get("invalid_recipient").is_some_and(|n| *n > 100),
        "{skipped:?}"
    );
    assert_eq!(one.queued as usize, one_queued.len());
    for readers in [2, 3, 4] {
        let (several, queued) = stored(readers).await;
        assert_eq!(several, one, "{readers} readers");
        assert_eq!(queued, one_queued, "{readers} readers");
    }
}
