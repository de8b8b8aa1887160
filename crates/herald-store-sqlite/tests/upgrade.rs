//! A store written by an older Herald upgrades and keeps working: `fixtures/schema-v5.db` is a
//! file written at schema version 5 (see `fixtures/README.md`: a partly sent demo run and two
//! consent events). Each test works on a copy in a temporary directory, never on the fixture.
//!
//! Its run was created before runs recorded their audience's hash: after the upgrade it has
//! none. Its expansion finished, so nothing ever needs the hash (a finished run never reads its
//! file again); an unfinished run without one is not resumed (the engine's tests show both).

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use herald_core::{
    AudienceId, CampaignId, ConsentKind, Outcome, PastSend, PhoneNumber, Purpose, RecipientId,
    RecipientKey, RunId, Scope, SkipReason,
};
use herald_store::conformance::{ManualClock, ended, generous, new_run, queued, worker};
use herald_store::{
    AudienceHash, Claim, ClaimAnswer, ClaimGroup, ConsentSeen, Consents, Deliveries, DeliveryKey,
    HistorySeen, NewRun, RunRecord, RunState, Runs, StoreTime, Stores, Terminal, WorkScope,
};
use herald_store_sqlite::SqliteStores;
use tempfile::TempDir;

const RUN: &str = "demo-welcome@2026-11-01T08:00";

/// A copy of the fixture, opened (and so upgraded) by this Herald.
fn upgraded() -> (TempDir, SqliteStores) {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v5.db");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    std::fs::copy(&fixture, &path).unwrap();
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 5, "the fixture is a schema 5 file");
    let clock = ManualClock::new(at("2026-12-31T00:00:00Z"));
    let stores = SqliteStores::open_with(&path, StoreTime::Clock(clock)).unwrap();
    (dir, stores)
}

/// The scope of a worker of the `main` sender.
fn main_sender(runs: &[RunId]) -> WorkScope {
    WorkScope {
        sender: "main".into(),
        runs: Some(runs.to_vec()),
    }
}

fn run_id() -> RunId {
    RunId::parse(RUN).unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn phone(e164: &str) -> PhoneNumber {
    PhoneNumber::parse(e164, None).unwrap()
}

#[tokio::test]
async fn the_old_run_its_counts_and_consent_survive_the_upgrade() {
    let (_dir, stores) = upgraded();
    assert_eq!(stores.schema_version().unwrap(), 10);

    let runs = stores.runs().runs().await.unwrap();
    let [record] = runs.as_slice() else {
        panic!("expected the one run, got {runs:?}");
    };
    let RunRecord {
        run,
        total,
        state,
        state_reason,
        ..
    } = record;
    assert_eq!(run.run, run_id());
    assert_eq!(run.campaign, CampaignId::parse("demo-welcome").unwrap());
    assert_eq!(run.purpose, Purpose::Transactional);
    assert_eq!(run.source, "campaigns/demo-welcome.yaml");
    assert_eq!(run.audience_sha256, None, "the old run has no hash");
    assert_eq!(
        (*total, *state, state_reason),
        (Some(19), RunState::Active, &None)
    );

    let counts = stores.deliveries().counts(&run_id()).await.unwrap();
    assert_eq!((counts.total(), counts.queued, counts.sent), (19, 7, 10));
    assert_eq!(
        counts.skipped,
        BTreeMap::from([("duplicate".into(), 1), ("invalid_recipient".into(), 1)])
    );

    let opted_in = stores
        .consents()
        .events("whatsapp", &phone("+79161234501"))
        .await
        .unwrap();
    assert_eq!(
        opted_in
            .iter()
            .map(|e| (e.event.kind, e.event.scope, e.event.source.as_str()))
            .collect::<Vec<_>>(),
        [(ConsentKind::OptIn, Scope::Marketing, "cli")]
    );
    let opted_out = stores
        .consents()
        .events("whatsapp", &phone("+79161234502"))
        .await
        .unwrap();
    assert_eq!(
        opted_out
            .iter()
            .map(|e| (e.event.kind, e.event.scope))
            .collect::<Vec<_>>(),
        [(ConsentKind::OptOut, Scope::All)]
    );
    // The sends made before the upgrade still count toward frequency caps.
    let history = stores
        .deliveries()
        .history(&phone("+79161234501"), at("2026-11-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
}

/// The old run's queued deliveries, stored under keys this version reads as recipient ids,
/// are due, claimed and ended as before; its old synthetic keys (`line:13`, `c-1018#line19`)
/// read back as plain ids and change nothing.
#[tokio::test]
async fn the_old_runs_deliveries_keep_being_worked() {
    let (_dir, stores) = upgraded();
    let d = stores.deliveries();
    let later = at("2026-12-31T00:00:00Z");
    let scope = main_sender(&[run_id()]);
    assert_eq!(
        d.due_in(&scope, later, 100).await.unwrap(),
        [],
        "a run without a sender is nobody's"
    );
    // Submitted again, it adopts the sender and the campaign's text, and nothing else changes.
    let stored = stores.runs().run(&run_id()).await.unwrap().unwrap().run;
    let again = NewRun {
        sender: Some("main".into()),
        campaign_text: Some("id: demo-welcome\n".into()),
        audience_sha256: Some(AudienceHash::from_bytes([7; 32])),
        ..stored.clone()
    };
    assert!(!stores.runs().create_run(&again, later).await.unwrap());
    let adopted = stores.runs().run(&run_id()).await.unwrap().unwrap().run;
    assert_eq!(
        adopted,
        NewRun {
            audience_sha256: None,
            ..again
        }
    );
    let due = d.due_in(&scope, later, 100).await.unwrap();
    assert_eq!(due.len(), 7);
    let first = &due[0];
    let RecipientKey::Recipient(AudienceId::Given(id)) = &first.key.recipient else {
        panic!("an old key read back as {:?}", first.key.recipient);
    };
    assert_eq!(first.recipient.id, AudienceId::Given(id.clone()));
    assert!(id.as_str().starts_with("c-10"), "{id}");

    let send = PastSend {
        at: later,
        campaign: CampaignId::parse("demo-welcome").unwrap(),
        purpose: Purpose::Transactional,
    };
    let consent = stores
        .consents()
        .events("whatsapp", &first.recipient.phone)
        .await
        .unwrap();
    let since = at("2026-12-01T00:00:00Z");
    let sends = d.history(&first.recipient.phone, since).await.unwrap();
    let group = ClaimGroup {
        owner: worker(1),
        lease: std::time::Duration::from_secs(60),
        sender: generous("main"),
        claims: vec![Claim {
            key: first.key.clone(),
            send,
            consent: ConsentSeen {
                channel: "whatsapp".into(),
                events: consent.len() as u64,
            },
            history: HistorySeen {
                since,
                sends: sends.len() as u64,
            },
        }],
    };
    let answers = d.claim(&group).await.unwrap();
    assert!(
        matches!(answers[..], [ClaimAnswer::Claimed { .. }]),
        "{answers:?}"
    );
    let sent = Terminal {
        outcome: Outcome::Sent,
        detail: None,
    };
    d.finish(&first.key, &sent, Some(&worker(1)), later)
        .await
        .unwrap();
    let counts = d.counts(&run_id()).await.unwrap();
    assert_eq!((counts.total(), counts.queued, counts.sent), (19, 6, 11));

    // Re-inserting the old synthetic keys as they were stored adds nothing.
    let old = [
        ended(
            &run_id(),
            "line:13",
            Outcome::Skipped(SkipReason::InvalidRecipient),
        ),
        ended(
            &run_id(),
            "c-1018#line19",
            Outcome::Skipped(SkipReason::Duplicate),
        ),
    ];
    assert_eq!(d.insert_batch(&old).await.unwrap(), 0);
}

/// New runs on the upgraded file record their audience's hash and use the new key forms.
#[tokio::test]
async fn new_runs_on_the_upgraded_file_record_their_hash() {
    let (_dir, stores) = upgraded();
    let fresh = new_run("promo");
    assert!(fresh.audience_sha256.is_some());
    assert!(
        stores
            .runs()
            .create_run(&fresh, at("2026-12-02T00:00:00Z"))
            .await
            .unwrap()
    );
    let record = stores.runs().run(&fresh.run).await.unwrap().unwrap();
    assert_eq!(record.run, fresh);
    let hash = record.run.audience_sha256.unwrap();
    assert_eq!(AudienceHash::parse_hex(&hash.to_string()), Some(hash));

    let long = "x".repeat(128);
    let batch = [
        queued(&fresh.run, &long, 1, 0),
        ended(
            &fresh.run,
            &format!("{long} dup line 3"),
            Outcome::Skipped(SkipReason::Duplicate),
        ),
        ended(
            &fresh.run,
            "line 4",
            Outcome::Skipped(SkipReason::InvalidRecipient),
        ),
    ];
    assert_eq!(stores.deliveries().insert_batch(&batch).await.unwrap(), 3);
    let counts = stores.deliveries().counts(&fresh.run).await.unwrap();
    assert_eq!((counts.total(), counts.queued), (3, 1));
    let key = DeliveryKey {
        run: fresh.run.clone(),
        recipient: RecipientKey::recipient(RecipientId::parse(&long).unwrap()),
    };
    let due = stores
        .deliveries()
        .due_in(
            &main_sender(std::slice::from_ref(&fresh.run)),
            at("2030-01-01T00:00:00Z"),
            10,
        )
        .await
        .unwrap();
    assert_eq!(due.iter().map(|d| &d.key).collect::<Vec<_>>(), [&key]);
    // The old run is untouched by the new one.
    let old = stores.deliveries().counts(&run_id()).await.unwrap();
    assert_eq!(old.total(), 19);
}
