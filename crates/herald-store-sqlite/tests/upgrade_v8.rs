//! A store written at schema version 8 (`fixtures/schema-v8.db`, see `fixtures/README.md`: a run
//! with two sent deliveries whose details are their message ids, one failed by the provider's
//! answer and one queued; a second run paused with a reason) upgrades to schema 9: the sent
//! deliveries are found by their message id, statuses move them along the ladder, the counts
//! follow, and the paused run stays paused, by no one recorded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use herald_core::{Outcome, PastSend, RecipientKey, RunId};
use herald_store::conformance::{ManualClock, generous, new_run, phone, t, worker};
use herald_store::{
    Claim, ClaimAnswer, ClaimGroup, ConsentSeen, Deliveries, DeliveryKey, Feedback, HistorySeen,
    Progress, ReportedStatus, RunState, Runs, SentMessage, StatusReport, StatusVerdict, StoreTime,
    Stores, Terminal,
};
use herald_store_sqlite::SqliteStores;
use tempfile::TempDir;

/// A copy of the fixture, opened (and so upgraded) with the store's time at `t(100)`.
fn upgraded() -> (TempDir, SqliteStores, Arc<ManualClock>) {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v8.db");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    std::fs::copy(&fixture, &path).unwrap();
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 8, "the fixture is a schema 8 file");
    let clock = ManualClock::new(t(100));
    let stores = SqliteStores::open_with(&path, StoreTime::Clock(clock.clone())).unwrap();
    (dir, stores, clock)
}

fn run_id() -> RunId {
    new_run("legacy8").run
}

fn key(recipient: &str) -> DeliveryKey {
    DeliveryKey {
        run: run_id(),
        recipient: RecipientKey::parse(recipient).unwrap(),
    }
}

fn report(id: &str, status: ReportedStatus, at: i64) -> StatusReport {
    StatusReport {
        provider_id: id.into(),
        callback: None,
        status,
        at: t(at),
    }
}

fn reached(rung: Progress) -> ReportedStatus {
    ReportedStatus::Reached(rung)
}

#[tokio::test]
async fn sent_deliveries_are_found_by_their_message_id_and_climb_the_ladder() {
    let (_dir, stores, _clock) = upgraded();
    assert_eq!(stores.schema_version().unwrap(), 10);
    let fb = stores.feedback();
    assert_eq!(
        fb.message("wamid.LEGACY-A").await.unwrap(),
        Some(SentMessage {
            key: key("a"),
            phone: phone(1),
            progress: Some(Progress::Sent),
        })
    );
    assert_eq!(
        fb.message("Message undeliverable").await.unwrap(),
        None,
        "a failed row's detail is no message id"
    );
    let before = stores.deliveries().counts(&run_id()).await.unwrap();
    assert_eq!(
        (before.sent, before.delivered, before.read, before.queued),
        (2, 0, 0, 1)
    );
    let applied = |r: &str, n| StatusVerdict::Applied {
        key: key(r),
        phone: phone(n),
    };
    let delivered = report("wamid.LEGACY-A", reached(Progress::Delivered), 200);
    assert_eq!(
        fb.record_status(&delivered, t(200)).await.unwrap(),
        applied("a", 1)
    );
    assert_eq!(
        fb.record_status(&delivered, t(201)).await.unwrap(),
        StatusVerdict::Unchanged { key: key("a") }
    );
    let read = report("wamid.LEGACY-B", reached(Progress::Read), 200);
    assert_eq!(
        fb.record_status(&read, t(200)).await.unwrap(),
        applied("b", 2)
    );
    let late = report(
        "wamid.LEGACY-B",
        ReportedStatus::Failed {
            code: "131026".into(),
        },
        210,
    );
    assert_eq!(
        fb.record_status(&late, t(210)).await.unwrap(),
        StatusVerdict::Unchanged { key: key("b") }
    );
    let counts = stores.deliveries().counts(&run_id()).await.unwrap();
    assert_eq!((counts.sent, counts.delivered, counts.read), (2, 2, 1));
    assert_eq!(counts.failed, BTreeMap::from([("131026".into(), 1)]));
    assert_eq!((counts.queued, counts.total()), (1, 4));
}

#[tokio::test]
async fn the_paused_run_stays_paused_and_new_sends_use_the_new_tables() {
    let (_dir, stores, clock) = upgraded();
    let paused = stores
        .runs()
        .run(&new_run("paused8").run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paused.state, RunState::Paused);
    assert_eq!(
        (paused.paused_by, paused.state_reason.as_deref()),
        (None, Some("provider code 131048: spam rate limit")),
        "who paused it before schema 9 is not known"
    );

    // A report before the send is kept, then applied by the finish that records it.
    let fb = stores.feedback();
    let early = report("wamid.NEW-D", reached(Progress::Delivered), 3600);
    assert_eq!(
        fb.record_status(&early, t(3600)).await.unwrap(),
        StatusVerdict::Kept
    );
    let d = stores.deliveries();
    let claim = Claim {
        key: key("d"),
        send: PastSend {
            at: t(3600),
            campaign: new_run("legacy8").campaign,
            purpose: new_run("legacy8").purpose,
        },
        consent: ConsentSeen {
            channel: "whatsapp".into(),
            events: 0,
        },
        history: HistorySeen {
            since: t(0),
            sends: 0,
        },
    };
    let group = ClaimGroup {
        owner: worker(2),
        lease: Duration::from_secs(60),
        sender: generous("main"),
        claims: vec![claim],
    };
    clock.set(t(3600));
    let answers = d.claim(&group).await.unwrap();
    assert!(
        matches!(answers[..], [ClaimAnswer::Claimed { .. }]),
        "{answers:?}"
    );
    let sent = Terminal {
        outcome: Outcome::Sent,
        detail: Some("wamid.NEW-D".into()),
    };
    d.finish(&key("d"), &sent, Some(&worker(2)), t(3601))
        .await
        .unwrap();
    assert_eq!(
        fb.message("wamid.NEW-D").await.unwrap().map(|m| m.progress),
        Some(Some(Progress::Delivered))
    );
    assert!(fb.add_tag(&phone(4), "vip", t(3602)).await.unwrap());
    assert_eq!(fb.tags_for(&[phone(4)]).await.unwrap()[0].len(), 1);
    let counts = d.counts(&run_id()).await.unwrap();
    assert_eq!((counts.sent, counts.delivered, counts.queued), (3, 1, 0));
}
