//! A store written at schema version 9 (`fixtures/schema-v9.db`, see `fixtures/README.md`: a run
//! with one delivery sent and reported delivered, one sent and read, one queued; a tag for phone
//! 1; a second run paused by an operator) upgrades to schema 10: its runs, deliveries, statuses
//! and tags read back as written, and the new `Fires` port works on the upgraded file.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use herald_core::{RecipientKey, RunId};
use herald_store::conformance::{ManualClock, new_run, phone, t};
use herald_store::{
    CampaignVersion, Deliveries, DeliveryKey, Feedback, FireOutcome, FireRecord, FireSkip, Fires,
    Progress, RunState, Runs, SentMessage, StoreTime, Stores, VersionChange,
};
use herald_store_sqlite::SqliteStores;
use tempfile::TempDir;

/// A copy of the fixture, opened (and so upgraded) with the store's time at `t(100)`.
fn upgraded() -> (TempDir, SqliteStores, Arc<ManualClock>) {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v9.db");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    std::fs::copy(&fixture, &path).unwrap();
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 9, "the fixture is a schema 9 file");
    let clock = ManualClock::new(t(100));
    let stores = SqliteStores::open_with(&path, StoreTime::Clock(clock.clone())).unwrap();
    (dir, stores, clock)
}

fn run_id() -> RunId {
    new_run("legacy9").run
}

fn key(recipient: &str) -> DeliveryKey {
    DeliveryKey {
        run: run_id(),
        recipient: RecipientKey::parse(recipient).unwrap(),
    }
}

#[tokio::test]
async fn runs_deliveries_statuses_and_tags_survive_the_upgrade() {
    let (_dir, stores, _clock) = upgraded();
    assert_eq!(stores.schema_version().unwrap(), 10);
    let counts = stores.deliveries().counts(&run_id()).await.unwrap();
    assert_eq!(
        (counts.sent, counts.delivered, counts.read, counts.queued),
        (2, 2, 1, 1)
    );
    assert_eq!(counts.total(), 3);
    let fb = stores.feedback();
    assert_eq!(
        fb.message("wamid.LEGACY9-A").await.unwrap(),
        Some(SentMessage {
            key: key("a"),
            phone: phone(1),
            progress: Some(Progress::Delivered),
        })
    );
    assert_eq!(
        fb.message("wamid.LEGACY9-B").await.unwrap(),
        Some(SentMessage {
            key: key("b"),
            phone: phone(2),
            progress: Some(Progress::Read),
        })
    );
    let due = stores.deliveries().due(t(3600), 10).await.unwrap();
    let due: Vec<_> = due.into_iter().map(|d| d.key).collect();
    assert_eq!(due, [key("c")], "the queued delivery is still due");
    assert_eq!(
        fb.tags_for(&[phone(1), phone(2)]).await.unwrap(),
        [BTreeSet::from(["vip".to_owned()]), BTreeSet::new()]
    );
    let paused = stores
        .runs()
        .run(&new_run("paused9").run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paused.state, RunState::Paused);
    assert_eq!(
        (paused.paused_by.as_deref(), paused.state_reason.as_deref()),
        (Some("operator (cli)"), Some("waiting for legal"))
    );
}

#[tokio::test]
async fn fires_work_on_the_upgraded_file() {
    let (_dir, stores, _clock) = upgraded();
    let fires = stores.fires();
    assert_eq!(fires.campaigns().await.unwrap(), []);
    let version = CampaignVersion {
        campaign: "legacy9".into(),
        hash: "ab".repeat(32),
        text: "id: legacy9\nsender: main\n".into(),
        source: "campaigns/legacy9.yaml".into(),
        stored_at: t(100),
    };
    assert_eq!(
        fires.put_campaign(&version).await.unwrap(),
        VersionChange::Added
    );
    assert_eq!(
        fires.campaigns().await.unwrap(),
        std::slice::from_ref(&version)
    );
    let ran = FireRecord {
        campaign: "legacy9".into(),
        fire: t(0),
        outcome: FireOutcome::Run(run_id()),
        hash: version.hash.clone(),
        recorded_at: t(100),
    };
    assert_eq!(fires.record_fire(&ran).await.unwrap(), (true, ran.clone()));
    let again = FireRecord {
        outcome: FireOutcome::Skipped(FireSkip::Missed),
        ..ran.clone()
    };
    assert_eq!(
        fires.record_fire(&again).await.unwrap(),
        (false, ran.clone())
    );
    assert_eq!(fires.fires("legacy9", 10).await.unwrap(), [ran]);
}
