//! A store written at schema version 7 (`fixtures/schema-v7.db`, see `fixtures/README.md`: one
//! run with a sent, a sending and two queued deliveries, and two consent events) upgrades to
//! the shared-state schema: its history and counts survive, the claim an older herald left
//! `sending` is recovered `unknown` by the first `recover_expired` (as the old crash recovery
//! ended it), and the run, once submitted again, adopts a sender and campaign text and is worked
//! through claims.

use std::path::PathBuf;
use std::time::Duration;

use herald_core::{Outcome, RunId};
use herald_store::conformance::{ManualClock, generous, new_run, phone, t, worker};
use herald_store::{
    Claim, ClaimAnswer, ClaimGroup, ConsentSeen, Consents, Deliveries, DeliveryKey, HistorySeen,
    NewRun, Recovered, Runs, StoreTime, Stores, Terminal, WorkScope, WorkerId,
};
use herald_store_sqlite::SqliteStores;
use tempfile::TempDir;

/// A copy of the fixture, opened (and so upgraded) with the store's time at `t(60)`.
fn upgraded() -> (TempDir, SqliteStores) {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v7.db");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    std::fs::copy(&fixture, &path).unwrap();
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 7, "the fixture is a schema 7 file");
    let clock = ManualClock::new(t(60));
    let stores = SqliteStores::open_with(&path, StoreTime::Clock(clock)).unwrap();
    (dir, stores)
}

fn run_id() -> RunId {
    new_run("legacy").run
}

fn key(recipient: &str) -> DeliveryKey {
    DeliveryKey {
        run: run_id(),
        recipient: herald_core::RecipientKey::parse(recipient).unwrap(),
    }
}

#[tokio::test]
async fn history_counts_and_consent_survive_and_the_old_claim_is_recovered_unknown() {
    let (dir, stores) = upgraded();
    assert_eq!(stores.schema_version().unwrap(), 10);
    let d = stores.deliveries();
    let record = stores.runs().run(&run_id()).await.unwrap().unwrap();
    assert_eq!((record.run.sender, record.run.campaign_text), (None, None));
    assert_eq!(record.total, Some(4));
    let counts = d.counts(&run_id()).await.unwrap();
    assert_eq!(
        (counts.sent, counts.sending, counts.queued, counts.total()),
        (1, 1, 2, 4)
    );
    let sends = |n| async move { d.history(&phone(n), t(0)).await };
    assert_eq!(sends(1).await.unwrap().len(), 1);
    assert_eq!(
        sends(2).await.unwrap()[0].at,
        t(20),
        "the claim in flight counts"
    );
    let events = stores.consents().events("whatsapp", &phone(3)).await;
    assert_eq!(events.unwrap().len(), 1);

    // The old claim shows its owner and is recovered at once, ending unknown as before.
    let claims = d.claims(&run_id()).await.unwrap();
    let before = WorkerId::parse("before-schema-8").unwrap();
    assert_eq!(
        claims
            .iter()
            .map(|c| (c.key.clone(), c.owner.clone(), c.slot, c.recovered))
            .collect::<Vec<_>>(),
        [(key("b"), before.clone(), t(20), false)]
    );
    let recovered = d.recover_expired(10).await.unwrap();
    assert_eq!(
        recovered,
        [Recovered {
            key: key("b"),
            owner: before,
            requeued: false,
        }]
    );
    assert_eq!(d.recover_expired(10).await.unwrap(), []);
    let counts = d.counts(&run_id()).await.unwrap();
    assert_eq!((counts.unknown, counts.sending), (1, 0));
    assert_eq!(
        sends(2).await.unwrap().len(),
        1,
        "an unknown outcome still counts toward caps"
    );
    let claims = d.claims(&run_id()).await.unwrap();
    assert_eq!(
        (claims[0].state.as_str(), claims[0].recovered),
        ("unknown", true)
    );
    let detail: String = rusqlite::Connection::open(dir.path().join("herald.db"))
        .unwrap()
        .query_row(
            "SELECT detail FROM deliveries WHERE recipient = 'b'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        detail,
        "interrupted while its request may have been in flight (the lease of before-schema-8 \
         ended)"
    );
}

#[tokio::test]
async fn the_old_run_adopts_sender_and_text_when_submitted_again_and_is_worked() {
    let (_dir, stores) = upgraded();
    let d = stores.deliveries();
    let scope = WorkScope {
        sender: "main".into(),
        runs: None,
    };
    assert_eq!(d.due_in(&scope, t(60), 10).await.unwrap(), []);
    assert_eq!(d.next_due_in(&scope).await.unwrap(), None);

    let stored = stores.runs().run(&run_id()).await.unwrap().unwrap();
    let submitted = NewRun {
        source: "campaigns/legacy-renamed.yaml".into(),
        ..new_run("legacy")
    };
    assert!(!stores.runs().create_run(&submitted, t(50)).await.unwrap());
    let adopted = stores.runs().run(&run_id()).await.unwrap().unwrap();
    assert_eq!(adopted.run.sender, submitted.sender);
    assert_eq!(adopted.run.campaign_text, submitted.campaign_text);
    assert_eq!(
        (
            adopted.run.source,
            adopted.run.audience_sha256,
            adopted.created_at
        ),
        (
            stored.run.source,
            stored.run.audience_sha256,
            stored.created_at
        ),
        "nothing else changes"
    );
    // Adopted once: a later submission with other values changes nothing.
    let other = NewRun {
        sender: Some("other".into()),
        ..submitted.clone()
    };
    assert!(!stores.runs().create_run(&other, t(55)).await.unwrap());
    let kept = stores.runs().run(&run_id()).await.unwrap().unwrap();
    assert_eq!(kept.run.sender, submitted.sender);

    let due = d.due_in(&scope, t(60), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|x| x.key.clone()).collect::<Vec<_>>(),
        [key("c")]
    );
    assert_eq!(d.next_due_in(&scope).await.unwrap(), Some(t(0)));
    let claim = Claim {
        key: key("c"),
        send: herald_core::PastSend {
            at: t(60),
            campaign: submitted.campaign.clone(),
            purpose: submitted.purpose,
        },
        consent: ConsentSeen {
            channel: "whatsapp".into(),
            events: 1,
        },
        history: HistorySeen {
            since: t(0),
            sends: 0,
        },
    };
    let group = ClaimGroup {
        owner: worker(1),
        lease: Duration::from_secs(30),
        sender: generous("main"),
        claims: vec![claim],
    };
    let answers = d.claim(&group).await.unwrap();
    assert_eq!(
        answers,
        [ClaimAnswer::Claimed {
            slot: t(60),
            wait: Duration::ZERO
        }]
    );
    let sent = Terminal {
        outcome: Outcome::Sent,
        detail: None,
    };
    d.finish(&key("c"), &sent, Some(&worker(1)), t(61))
        .await
        .unwrap();
    let counts = d.counts(&run_id()).await.unwrap();
    assert_eq!((counts.sent, counts.queued), (2, 1));
    assert_eq!(d.history(&phone(3), t(0)).await.unwrap()[0].at, t(60));
}
