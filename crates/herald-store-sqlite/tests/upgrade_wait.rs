//! Upgrading a file written by schema version 5 (`tests/fixtures/schema-v5.db`, see its
//! README): the migration that stores why a queued delivery waits (`0007_wait_reason.sql`).
//!
//! The fixture's run `demo-welcome@2026-11-01T08:00` has 7 deliveries queued for their window,
//! 10 sent and 2 skipped. A version-5 file never said why a delivery waits; the migration labels
//! a queued delivery with no request behind it `window` (it was deferred for its window, its
//! schedule, its spread or the tier, and only the window, or the schedule it subsumes, holds a
//! delivery for long) and one with a request behind it `retry` (it came back after the provider
//! did not take it). The next worker that reaches either decides again and stores the real one.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use herald_core::{Outcome, PastSend, Purpose, RunId};
use herald_store::conformance::{ManualClock, generous, worker};
use herald_store::{
    Change, Claim, ClaimAnswer, ClaimGroup, ConsentSeen, Consents, Deliveries, DeliveryKey,
    HistorySeen, QueueWaits, Runs, StoreTime, Stores, Terminal, WaitReason, Waiting,
};
use herald_store_sqlite::SqliteStores;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schema-v5.db");

/// A copy of the fixture in a temporary directory (the fixture itself is never opened for
/// writing).
fn copy_of_fixture(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("herald.db");
    std::fs::copy(FIXTURE, &path).unwrap();
    path
}

fn version(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

fn secs(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn key(run: &RunId, recipient: &str) -> DeliveryKey {
    DeliveryKey {
        run: run.clone(),
        recipient: herald_core::RecipientKey::parse(recipient).unwrap(),
    }
}

/// The fixture's queued deliveries and their due instants, earliest first.
const QUEUED: [(&str, i64); 7] = [
    ("c-1009", 1_796_130_027),
    ("c-1010", 1_796_140_853),
    ("c-1011", 1_796_148_049),
    ("c-1017", 1_796_151_625),
    ("c-1008", 1_796_160_607),
    ("c-1003", 1_796_162_449),
    ("c-1004", 1_796_191_238),
];

#[tokio::test]
async fn a_version_5_file_upgrades_and_its_queue_says_it_waits_for_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of_fixture(&dir);
    assert_eq!(
        version(&path),
        5,
        "the fixture is what herald wrote at version 5"
    );
    let stores = SqliteStores::open(&path).unwrap();
    assert!(version(&path) > 5, "upgraded");
    assert_eq!(stores.schema_version().unwrap(), version(&path));
    let run = RunId::parse("demo-welcome@2026-11-01T08:00").unwrap();
    let record = stores.runs().run(&run).await.unwrap().unwrap();
    assert_eq!(record.total, Some(19));
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!((counts.queued, counts.sent, counts.total()), (7, 10, 19));

    // Just after the fixture's run (12:45 UTC): all seven wait for their window.
    let written = secs(1_796_129_110);
    let waits = stores
        .deliveries()
        .waits(&run, written, None)
        .await
        .unwrap();
    assert_eq!(
        waits,
        QueueWaits {
            due: 0,
            waiting: [(
                WaitReason::Window,
                Waiting {
                    count: 7,
                    next: secs(QUEUED[0].1),
                },
            )]
            .into(),
        }
    );
}

/// The upgraded queue keeps working: due in order, claimed and ended, deferred with a new reason,
/// requeued, and the counts still add up.
#[tokio::test]
async fn the_upgraded_queue_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    // The store's time: when the third queued delivery is due.
    let clock = ManualClock::new(secs(QUEUED[2].1));
    let stores = SqliteStores::open_with(&copy_of_fixture(&dir), StoreTime::Clock(clock)).unwrap();
    let run = RunId::parse("demo-welcome@2026-11-01T08:00").unwrap();
    let d = stores.deliveries();

    // At the first due instant exactly that delivery is due, with its recipient snapshot.
    let first = secs(QUEUED[0].1);
    let due = d.due(first, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].key, key(&run, QUEUED[0].0));
    assert_eq!(due[0].attempts, 0);
    let waits = d.waits(&run, first, None).await.unwrap();
    assert_eq!(
        (waits.due, waits.waiting[&WaitReason::Window].count),
        (1, 6)
    );

    // Claim and send it; defer the next for its spread; throttle the one after.
    let send = PastSend {
        at: first,
        campaign: herald_core::CampaignId::parse("demo-welcome").unwrap(),
        purpose: Purpose::Transactional,
    };
    let sent = Terminal {
        outcome: Outcome::Sent,
        detail: None,
    };
    let defer = [Change::Defer {
        key: key(&run, QUEUED[1].0),
        until: first + chrono::TimeDelta::seconds(40),
        reason: WaitReason::Spread,
    }];
    assert_eq!(d.apply(&defer, first).await.unwrap(), [true]);
    let mut claims = Vec::new();
    let due = d.due(secs(QUEUED[2].1), 10).await.unwrap();
    // The deferred one is due again 40 s after the first, before the third: not claimed here.
    let deferred = key(&run, QUEUED[1].0);
    for delivery in due.into_iter().filter(|d| d.key != deferred) {
        let phone = &delivery.recipient.phone;
        let events = stores.consents().events("whatsapp", phone).await.unwrap();
        let history = d.history(phone, first).await.unwrap();
        claims.push(Claim {
            key: delivery.key,
            send: send.clone(),
            consent: ConsentSeen {
                channel: "whatsapp".into(),
                events: events.len() as u64,
            },
            history: HistorySeen {
                since: first,
                sends: history.len() as u64,
            },
        });
    }
    let claimed: Vec<_> = claims.iter().map(|c| c.key.clone()).collect();
    assert_eq!(claimed, [key(&run, QUEUED[0].0), key(&run, QUEUED[2].0)]);
    let group = ClaimGroup {
        owner: worker(1),
        lease: std::time::Duration::from_secs(60),
        sender: generous("main"),
        claims,
    };
    let answers = d.claim(&group).await.unwrap();
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, ClaimAnswer::Claimed { .. })),
        "{answers:?}"
    );
    let outcomes = [
        Change::Finish {
            key: key(&run, QUEUED[0].0),
            terminal: sent,
            owner: Some(worker(1)),
        },
        Change::Requeue {
            key: key(&run, QUEUED[2].0),
            until: first + chrono::TimeDelta::minutes(15),
            reason: Some(WaitReason::Throttle),
            owner: worker(1),
        },
    ];
    assert_eq!(d.apply(&outcomes, first).await.unwrap(), [true, true]);

    let waits = d.waits(&run, first, None).await.unwrap();
    assert_eq!(waits.due, 0);
    let count = |reason| waits.waiting.get(&reason).map(|w| w.count);
    assert_eq!(
        (
            count(WaitReason::Window),
            count(WaitReason::Spread),
            count(WaitReason::Throttle)
        ),
        (Some(4), Some(1), Some(1)),
        "{waits:?}"
    );
    assert_eq!(
        waits.waiting[&WaitReason::Spread].next,
        first + chrono::TimeDelta::seconds(40)
    );
    let counts = d.counts(&run).await.unwrap();
    assert_eq!(
        (counts.sent, counts.queued, counts.sending, counts.total()),
        (11, 6, 0, 19)
    );
    // Every instant of the old queue is still reached, in order.
    let last = secs(QUEUED[6].1);
    let due: Vec<_> = d
        .due(last, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|delivery| delivery.key.recipient.to_string())
        .collect();
    assert_eq!(
        due,
        ["c-1010", "c-1011", "c-1017", "c-1008", "c-1003", "c-1004"]
    );
}
