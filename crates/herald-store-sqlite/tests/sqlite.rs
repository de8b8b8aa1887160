//! What only the SQLite backend has: the run lock, the migrations, durability across reopening,
//! and its error mapping.

use std::path::{Path, PathBuf};

use herald_core::{
    ConsentEvent, ConsentKind, Outcome, RecipientId, RecipientKey, Scope, SkipReason,
};
use herald_store::conformance::{
    Fixture, ManualClock, Suite, ended, new_run, owner, phone, queued, t,
};
use herald_store::{
    Change, Consents, Deliveries, DeliveryKey, RunState, Runs, StoreError, StoreTime,
    StoredConsent, Stores, Terminal, WaitReason,
};
use herald_store_sqlite::SqliteStores;
use tempfile::TempDir;

fn db_in(dir: &TempDir) -> PathBuf {
    dir.path().join("herald.db")
}

/// Two handles on the file at `path`, timed by one manual clock, for the conformance fixtures.
fn suite(path: &Path) -> Suite<SqliteStores> {
    let clock = ManualClock::new(t(0));
    let open = || SqliteStores::open_with(path, StoreTime::Clock(clock.clone())).unwrap();
    Suite {
        stores: open(),
        other: open(),
        clock,
    }
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn a_second_run_lock_on_the_same_file_is_a_conflict_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let first = SqliteStores::open(&path).unwrap();
    // A second handle on the same file stands in for a second process: the lock is per open file,
    // not per handle.
    let second = SqliteStores::open(&path).unwrap();
    let lock = first.lock_exclusive().unwrap();
    assert_eq!(lock.path(), dir.path().join("herald.db.lock"));
    match second.lock_exclusive() {
        Err(StoreError::Conflict(message)) => {
            assert_eq!(
                message,
                format!("another herald run is using {}", path.display())
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        first.lock_exclusive(),
        Err(StoreError::Conflict(_))
    ));
    drop(lock);
    let relocked = second.lock_exclusive().unwrap();
    assert!(matches!(
        first.lock_exclusive(),
        Err(StoreError::Conflict(_))
    ));
    drop(relocked);
}

/// The lock holds across processes: util-linux's `flock(1)` takes the same kind of lock.
#[test]
fn the_run_lock_excludes_other_processes() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    if Command::new("flock").arg("--version").output().is_err() {
        eprintln!("flock(1) not installed; skipping the cross-process check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stores = SqliteStores::open(&db_in(&dir)).unwrap();
    let lock_file = dir.path().join("herald.db.lock");
    let lock = stores.lock_exclusive().unwrap();
    let status = Command::new("flock")
        .arg("--nonblock")
        .arg(&lock_file)
        .arg("true")
        .status()
        .unwrap();
    assert!(!status.success(), "another process took the lock we hold");
    drop(lock);
    // Now the other process holds it (until its stdin closes) and we are refused.
    let mut child = Command::new("flock")
        .arg(&lock_file)
        .args(["sh", "-c", "echo held; cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "held");
    assert!(matches!(
        stores.lock_exclusive(),
        Err(StoreError::Conflict(_))
    ));
    drop(child.stdin.take());
    child.wait().unwrap();
    drop(stores.lock_exclusive().unwrap());
}

#[tokio::test]
async fn opening_again_applies_no_migration_twice_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let stores = SqliteStores::open(&path).unwrap();
    assert_eq!(stores.schema_version().unwrap(), 10);
    assert!(
        stores
            .runs()
            .create_run(&new_run("promo"), t(0))
            .await
            .unwrap()
    );
    drop(stores);
    let again = SqliteStores::open(&path).unwrap();
    assert_eq!(again.schema_version().unwrap(), 10);
    assert_eq!(again.runs().runs().await.unwrap().len(), 1);
}

#[test]
fn a_file_from_a_newer_herald_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    drop(SqliteStores::open(&path).unwrap());
    raw(&path)
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    match SqliteStores::open(&path) {
        Err(StoreError::Conflict(message)) => assert!(message.contains("99"), "{message}"),
        Err(other) => panic!("expected a conflict, got {other:?}"),
        Ok(_) => panic!("a schema from the future was accepted"),
    }
}

#[tokio::test]
async fn runs_deliveries_history_and_consent_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let stop = ConsentEvent {
        kind: ConsentKind::OptOut,
        scope: Scope::All,
        occurred_at: t(-60),
        source: "keyword:STOP".into(),
        proof: Some("STOP".into()),
    };
    let consent = StoredConsent {
        channel: "whatsapp".into(),
        phone: phone(1),
        event: stop,
    };
    let run = {
        let stores = suite(&path);
        let f = Fixture::new(&stores, "promo").await;
        stores.runs().finish_expansion(&f.run, 3).await.unwrap();
        f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 90)]).await;
        assert!(f.claim("a", 5).await && f.claim("b", 6).await);
        f.finish("b", Outcome::Sent).await.unwrap();
        stores
            .runs()
            .set_run_state(&f.run, RunState::Paused)
            .await
            .unwrap();
        let appended = stores
            .consents()
            .append(std::slice::from_ref(&consent), t(8))
            .await;
        assert_eq!(appended.unwrap(), 1);
        f.run
    };
    let stores = SqliteStores::open(&path).unwrap();
    let record = stores.runs().run(&run).await.unwrap().unwrap();
    let expected = (new_run("promo"), t(0), Some(3), RunState::Paused);
    assert_eq!(
        (record.run, record.created_at, record.total, record.state),
        expected
    );
    stores
        .runs()
        .set_run_state(&run, RunState::Active)
        .await
        .unwrap();
    let d = stores.deliveries();
    // The claim outlived the "crash": `a` is still in flight and still counts toward caps.
    let a = DeliveryKey {
        run: run.clone(),
        recipient: RecipientKey::recipient(RecipientId::parse("a").unwrap()),
    };
    assert_eq!(d.in_flight().await.unwrap(), [a]);
    assert_eq!(d.history(&phone(1), t(0)).await.unwrap().len(), 1);
    let counts = d.counts(&run).await.unwrap();
    assert_eq!(
        (counts.queued, counts.sending, counts.sent, counts.total()),
        (1, 1, 1, 3)
    );
    assert_eq!(counts.next_wave, Some((t(90), 1)));
    let due = d.due(t(90), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        Some(&due[0].recipient),
        queued(&run, "c", 3, 90).recipient.as_ref()
    );
    let events = stores
        .consents()
        .events("whatsapp", &phone(1))
        .await
        .unwrap();
    assert_eq!(
        events.into_iter().map(|r| r.event).collect::<Vec<_>>(),
        [consent.event]
    );
}

/// `run_counts` is kept by the writes themselves, once per transaction; after every kind of
/// transition, one at a time or batched by `apply`, it must equal a recount of the ledger.
#[tokio::test]
async fn kept_counts_equal_a_recount_of_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let stores = suite(&path);
    let (f, g) = (
        Fixture::new(&stores, "promo").await,
        Fixture::new(&stores, "other").await,
    );
    let rows: Vec<(String, u32)> = (0..40).map(|n| (format!("r{n}"), n)).collect();
    let rows: Vec<_> = rows
        .iter()
        .map(|(r, n)| (r.as_str(), *n, i64::from(*n % 3)))
        .collect();
    f.insert(&rows).await;
    g.insert(&rows[..10]).await;
    let failed = |code: &str| Outcome::Failed { code: code.into() };
    for (i, (r, _, _)) in rows.iter().enumerate().take(30) {
        assert!(f.claim(r, 5).await);
        match i % 6 {
            0 => f.finish(r, Outcome::Sent).await.unwrap(),
            1 => f
                .finish(r, failed(if i % 4 == 1 { "131026" } else { "131049" }))
                .await
                .unwrap(),
            2 => f.finish(r, Outcome::Unknown).await.unwrap(),
            3 => stores
                .deliveries()
                .requeue(&f.key(r), t(900), Some(WaitReason::Retry), &owner())
                .await
                .unwrap(),
            4 => f.finish(r, Outcome::Expired).await.unwrap(),
            _ => {}
        }
    }
    stores
        .runs()
        .set_run_state(&f.run, RunState::Cancelled)
        .await
        .unwrap();
    // Inserts count too: one decided at expansion, one queued into the cancelled run.
    let duplicate = ended(
        &f.run,
        "r-3 dup line 3",
        Outcome::Skipped(SkipReason::Duplicate),
    );
    stores
        .deliveries()
        .insert_batch(&[duplicate])
        .await
        .unwrap();
    f.insert(&[("late", 99, 0)]).await;

    // The other run as the worker does it: claims (one lost), then skips from queued through
    // `apply`, then outcomes, a requeue and an end that does not apply, in one more batch.
    for r in ["r0", "r1", "r2", "r3"] {
        assert!(g.claim(r, 5).await);
    }
    assert!(!g.claim("r1", 5).await, "a claim is made once");
    let end = |r: &str, outcome, owner| Change::Finish {
        key: g.key(r),
        terminal: Terminal {
            outcome,
            detail: None,
        },
        owner,
    };
    let won = stores
        .deliveries()
        .apply(
            &[
                end("r4", Outcome::Skipped(SkipReason::NoConsent), None),
                end("r5", Outcome::Expired, None),
            ],
            t(5),
        )
        .await
        .unwrap();
    assert_eq!(won, [true, true]);
    let mine = Some(owner());
    let won = stores
        .deliveries()
        .apply(
            &[
                end("r0", Outcome::Sent, mine.clone()),
                end("r1", failed("131049"), mine.clone()),
                end("r2", Outcome::Unknown, mine.clone()),
                Change::Requeue {
                    key: g.key("r3"),
                    until: t(60),
                    reason: Some(WaitReason::Throttle),
                    owner: owner(),
                },
                end("r4", Outcome::Sent, mine),
            ],
            t(6),
        )
        .await
        .unwrap();
    assert_eq!(won, [true, true, true, true, false]);

    // Recovered claims: ended unknown in f (the five left sending) and g, queued again in an
    // at-least-once run.
    let retried = herald_store::NewRun {
        at_least_once: true,
        ..new_run("retried")
    };
    let h = Fixture::create(&stores, retried).await;
    h.insert(&rows[..4]).await;
    assert!(g.claim("r6", 10).await);
    for (r, _, _) in &rows[..3] {
        assert!(h.claim(r, 10).await);
    }
    stores.at(200);
    let recovered = stores.deliveries().recover_expired(100).await.unwrap();
    let requeued = recovered.iter().filter(|r| r.requeued).count();
    assert_eq!((recovered.len(), requeued), (9, 3));
    assert_eq!(
        (f.counts().await.sending, f.counts().await.unknown),
        (0, 10)
    );
    let again = h.counts().await;
    assert_eq!((again.queued, again.sending, again.total()), (4, 0, 4));

    for fixture in [&f, &g, &h] {
        let counts = fixture.counts().await;
        assert_eq!(
            kept(&counts),
            recount(&path, &fixture.run),
            "{}",
            fixture.run
        );
    }
    assert_eq!(f.counts().await.total(), 42);
    let other = g.counts().await;
    assert_eq!(
        (other.queued, other.sent, other.unknown, other.total()),
        (4, 1, 2, 10)
    );
}

/// The counts as (state, label, n) rows, sorted, for comparing with [`recount`].
fn kept(counts: &herald_store::RunCounts) -> Vec<(String, String, i64)> {
    let plain = [
        ("queued", counts.queued),
        ("sending", counts.sending),
        ("sent", counts.sent),
        ("unknown", counts.unknown),
        ("expired", counts.expired),
    ];
    let mut kept: Vec<(String, String, i64)> = plain
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| (s.into(), String::new(), n as i64))
        .collect();
    kept.extend(
        counts
            .failed
            .iter()
            .map(|(c, n)| ("failed".into(), c.clone(), *n as i64)),
    );
    kept.extend(
        counts
            .skipped
            .iter()
            .map(|(r, n)| ("skipped".into(), r.clone(), *n as i64)),
    );
    kept.sort();
    kept
}

/// The run's deliveries counted from the ledger itself.
fn recount(path: &Path, run: &herald_core::RunId) -> Vec<(String, String, i64)> {
    raw(path)
        .prepare(
            "SELECT d.state, coalesce(d.reason, d.code, ''), count(*) FROM deliveries AS d
             JOIN runs AS r ON r.id = d.run WHERE r.run_id = ?1 GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .unwrap()
        .query_map([run.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn an_undecodable_row_is_corrupt_with_its_key_and_without_the_phone() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let stores = suite(&path);
    Fixture::new(&stores, "promo")
        .await
        .insert(&[("a", 1, 0)])
        .await;
    raw(&path)
        .execute("UPDATE deliveries SET phone = '+4915112345678999'", [])
        .unwrap();
    match stores.deliveries().due(t(0), 10).await {
        Err(error @ StoreError::Corrupt { .. }) => {
            let shown = error.to_string();
            assert!(shown.contains("promo@2026-11-27T10:00/a"), "{shown}");
            assert!(!shown.contains("12345678"), "the phone leaked: {shown}");
        }
        other => panic!("expected corrupt data, got {other:?}"),
    }
}

/// Another connection holding the write lock longer than the busy timeout (5 s) is a retryable
/// condition, not a failure.
#[tokio::test]
async fn a_locked_database_is_unavailable_not_broken() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let stores = SqliteStores::open(&path).unwrap();
    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let result = stores.runs().create_run(&new_run("promo"), t(0)).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    other.execute_batch("ROLLBACK").unwrap();
    assert!(
        stores
            .runs()
            .create_run(&new_run("promo"), t(0))
            .await
            .unwrap()
    );
    // Reads go on while a writer holds the lock (WAL).
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(stores.runs().runs().await.unwrap().len(), 1);
}

/// A file written before the send history moved into the ledger (schema 4, with a `sends`
/// table) keeps its history when opened: a claimed-and-sent delivery still counts toward caps,
/// with its run's campaign and purpose, and one whose send failed (no history row) does not.
#[tokio::test]
async fn a_schema_4_file_keeps_its_send_history_when_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let conn = raw(&path);
    for sql in [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_phone_region.sql"),
        include_str!("../migrations/0003_run_state_reason.sql"),
        include_str!("../migrations/0004_counts_per_transaction.sql"),
    ] {
        conn.execute_batch(sql).unwrap();
    }
    let run = new_run("promo");
    let (sent_phone, failed_phone) = (phone(1), phone(2));
    conn.execute_batch(&format!(
        "PRAGMA user_version = 4;
         INSERT INTO runs (id, run_id, campaign, purpose, source, at_least_once, created_at)
         VALUES (1, '{run}', 'promo', 'marketing', 'id: promo', 0, 0);
         INSERT INTO deliveries (id, run, recipient, state, phone, attempts)
         VALUES (1, 1, 'a', 'sent', '{sent}', 1), (2, 1, 'b', 'failed', '{failed}', 1);
         INSERT INTO sends (delivery, phone, at, campaign, purpose)
         VALUES (1, '{sent}', {at}, 'promo', 'marketing');",
        run = run.run,
        sent = sent_phone.expose_e164(),
        failed = failed_phone.expose_e164(),
        at = t(30).timestamp(),
    ))
    .unwrap();
    drop(conn);

    let stores = SqliteStores::open(&path).unwrap();
    assert_eq!(stores.schema_version().unwrap(), 10);
    let history = stores
        .deliveries()
        .history(&sent_phone, t(0))
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].at,
            history[0].campaign.as_str(),
            history[0].purpose
        ),
        (t(30), "promo", herald_core::Purpose::Marketing)
    );
    assert!(
        stores
            .deliveries()
            .history(&failed_phone, t(0))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        stores
            .deliveries()
            .history(&sent_phone, t(31))
            .await
            .unwrap()
            .is_empty()
    );
    let tables: i64 = raw(&path)
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'sends'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
}

/// An older file is not upgraded under a run that still uses it: that run is an older herald
/// writing the old schema. Once the run is gone the same open upgrades it.
#[test]
fn an_older_file_is_not_upgraded_while_a_run_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(&dir);
    let conn = raw(&path);
    conn.execute_batch(include_str!("../migrations/0001_init.sql"))
        .unwrap();
    conn.execute_batch("PRAGMA user_version = 1").unwrap();
    drop(conn);
    let lock_file = std::fs::File::create(dir.path().join("herald.db.lock")).unwrap();
    lock_file.try_lock().unwrap();
    match SqliteStores::open(&path) {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("schema version 1"), "{message}");
            assert!(message.contains("a herald run is using it"), "{message}");
        }
        Ok(_) => panic!("upgraded under a running herald"),
        Err(other) => panic!("expected a conflict, got {other}"),
    }
    let version: i64 = raw(&path)
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 1);
    lock_file.unlock().unwrap();
    let stores = SqliteStores::open(&path).unwrap();
    assert_eq!(stores.schema_version().unwrap(), 10);
}
