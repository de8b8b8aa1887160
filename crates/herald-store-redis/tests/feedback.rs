//! The feedback port on Redis, past what the shared conformance cases check: the ladder and the
//! counts it keeps, reports kept before their send and applied by the write that records it (a
//! finish, a recovery), their expiry and their bound, the provider-id index dropped by
//! compaction, concurrent reports, tags, who paused a run. A real `redis-server` per test, the
//! store's time driven by hand.

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::{Outcome, RunId, SkipReason};
use herald_store::conformance::{join_all, new_run, phone, queued, t, worker};
use herald_store::{
    ClaimAnswer, DeliveryKey, Feedback, KEPT_STATUS_LIMIT, MAX_TAGS_PER_PHONE, Progress,
    ReportedStatus, RunState, Runs, StatusReport, StatusVerdict, StoreError, Stores, Terminal,
};
use herald_store::{Deliveries, StoreTime};
use herald_store_redis::RedisStores;
use herald_testkit::redis::RedisServer;

use common::{claims_at, key, open, started_at};

/// A run of `n` deliveries `r0`, `r1`, … to phones 0, 1, …, due at `t(0)`.
async fn run_of(stores: &RedisStores, name: &str, n: u32) -> RunId {
    let run = new_run(name);
    assert!(stores.runs().create_run(&run, t(0)).await.unwrap());
    let rows: Vec<_> = (0..n)
        .map(|i| queued(&run.run, &format!("r{i}"), i, 0))
        .collect();
    assert_eq!(
        stores.deliveries().insert_batch(&rows).await.unwrap(),
        u64::from(n)
    );
    run.run
}

/// `worker(1)` claims `recipients` at the store's now `t(10)`.
async fn claim(stores: &RedisStores, run: &RunId, recipients: &[&str]) {
    let answers = stores
        .deliveries()
        .claim(&claims_at(run, recipients, t(10)))
        .await
        .unwrap();
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, ClaimAnswer::Claimed { .. })),
        "{answers:?}"
    );
}

/// Ends `worker(1)`'s claim of `recipient` with `outcome` and `detail` at `t(11)`.
async fn finish(
    stores: &RedisStores,
    run: &RunId,
    recipient: &str,
    outcome: Outcome,
    detail: Option<&str>,
) {
    let terminal = Terminal {
        outcome,
        detail: detail.map(str::to_owned),
    };
    stores
        .deliveries()
        .finish(&key(run, recipient), &terminal, Some(&worker(1)), t(11))
        .await
        .unwrap();
}

/// Claims `recipient` and finishes it `sent` with provider id `wamid`.
async fn sent(stores: &RedisStores, run: &RunId, recipient: &str, wamid: &str) {
    claim(stores, run, &[recipient]).await;
    finish(stores, run, recipient, Outcome::Sent, Some(wamid)).await;
}

fn report(wamid: &str, status: ReportedStatus, at: DateTime<Utc>) -> StatusReport {
    StatusReport {
        provider_id: wamid.to_owned(),
        callback: None,
        status,
        at,
    }
}

fn reached(wamid: &str, progress: Progress) -> StatusReport {
    report(wamid, ReportedStatus::Reached(progress), t(20))
}

fn failed(wamid: &str, code: &str) -> StatusReport {
    report(wamid, ReportedStatus::Failed { code: code.into() }, t(20))
}

fn with_callback(mut report: StatusReport, key: DeliveryKey) -> StatusReport {
    report.callback = Some(key);
    report
}

async fn record(stores: &RedisStores, report: &StatusReport) -> StatusVerdict {
    stores
        .feedback()
        .record_status(report, t(30))
        .await
        .unwrap()
}

/// Where `wamid`'s delivery is on the ladder (`None` for a failed one).
async fn progress(stores: &RedisStores, wamid: &str) -> Option<Progress> {
    stores
        .feedback()
        .message(wamid)
        .await
        .unwrap()
        .expect("indexed")
        .progress
}

fn int(server: &RedisServer, args: &[&str]) -> i64 {
    let reply = server.command(args);
    reply
        .strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{args:?}: {reply}"))
}

/// Duplicates change nothing, `read` before `delivered` ends `read`, `failed` moves only a
/// message at `sent`, and the run's counts follow.
#[tokio::test]
async fn statuses_climb_the_ladder_once_and_counts_follow() {
    let (_server, _clock, stores) = started_at(t(10)).await;
    let run = run_of(&stores, "ladder", 4).await;
    for (r, wamid) in [("r0", "wamid.A"), ("r1", "wamid.B"), ("r2", "wamid.C")] {
        sent(&stores, &run, r, wamid).await;
    }
    let found = stores.feedback().message("wamid.A").await.unwrap().unwrap();
    assert_eq!(found.key, key(&run, "r0"));
    assert_eq!(found.phone, phone(0));
    assert_eq!(found.progress, Some(Progress::Sent));

    let delivered = reached("wamid.A", Progress::Delivered);
    let verdicts = [
        record(&stores, &delivered).await,
        record(&stores, &delivered).await,
        record(&stores, &delivered).await,
        record(&stores, &delivered).await,
        record(&stores, &delivered).await,
    ];
    assert_eq!(
        verdicts[0],
        StatusVerdict::Applied {
            key: key(&run, "r0"),
            phone: phone(0)
        }
    );
    for v in &verdicts[1..] {
        assert_eq!(
            v,
            &StatusVerdict::Unchanged {
                key: key(&run, "r0")
            }
        );
    }
    // Read before delivered.
    assert!(matches!(
        record(&stores, &reached("wamid.B", Progress::Read)).await,
        StatusVerdict::Applied { .. }
    ));
    assert!(matches!(
        record(&stores, &reached("wamid.B", Progress::Delivered)).await,
        StatusVerdict::Unchanged { .. }
    ));
    assert_eq!(progress(&stores, "wamid.B").await, Some(Progress::Read));
    // A delivered message stays so; one at `sent` fails.
    assert!(matches!(
        record(&stores, &failed("wamid.A", "131026")).await,
        StatusVerdict::Unchanged { .. }
    ));
    assert!(matches!(
        record(&stores, &failed("wamid.C", "131050")).await,
        StatusVerdict::Applied { .. }
    ));
    assert_eq!(progress(&stores, "wamid.C").await, None);
    assert!(matches!(
        record(&stores, &reached("wamid.C", Progress::Read)).await,
        StatusVerdict::Unchanged { .. }
    ));
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!((counts.sent, counts.delivered, counts.read), (2, 2, 1));
    assert_eq!(counts.failed.get("131050"), Some(&1));
    assert_eq!(counts.queued, 1);
    assert_eq!(counts.total(), 4);
}

/// A queued, skipped or synchronously failed delivery named by a callback is refused.
#[tokio::test]
async fn reports_for_deliveries_no_report_may_change_are_refused() {
    let (_server, _clock, stores) = started_at(t(10)).await;
    let run = run_of(&stores, "refused", 3).await;
    claim(&stores, &run, &["r1"]).await;
    finish(
        &stores,
        &run,
        "r1",
        Outcome::Failed {
            code: "131026".into(),
        },
        None,
    )
    .await;
    let skipped = Terminal {
        outcome: Outcome::Skipped(SkipReason::OptedOut),
        detail: None,
    };
    stores
        .deliveries()
        .finish(&key(&run, "r2"), &skipped, None, t(11))
        .await
        .unwrap();
    let before = stores.deliveries().counts(&run).await.unwrap();
    for r in ["r0", "r1", "r2"] {
        let report = with_callback(reached("wamid.X", Progress::Delivered), key(&run, r));
        assert_eq!(
            record(&stores, &report).await,
            StatusVerdict::Refused { key: key(&run, r) },
            "{r}"
        );
    }
    assert_eq!(stores.deliveries().counts(&run).await.unwrap(), before);
    assert_eq!(stores.feedback().message("wamid.X").await.unwrap(), None);
}

/// Reports for a message not recorded yet are kept (a retry once) and applied by the finish that
/// records the send, in the same script: the kept keys are empty after it.
#[tokio::test]
async fn early_reports_are_applied_by_the_finish() {
    let (server, _clock, stores) = started_at(t(10)).await;
    let run = run_of(&stores, "early", 2).await;
    claim(&stores, &run, &["r0", "r1"]).await;
    let delivered = reached("wamid.E", Progress::Delivered);
    assert_eq!(record(&stores, &delivered).await, StatusVerdict::Kept);
    assert_eq!(record(&stores, &delivered).await, StatusVerdict::Kept);
    // The callback names a delivery still being sent: kept too.
    let read = with_callback(reached("wamid.F", Progress::Read), key(&run, "r1"));
    assert_eq!(record(&stores, &read).await, StatusVerdict::Kept);
    assert_eq!(int(&server, &["ZCARD", "h:kept"]), 2);

    finish(&stores, &run, "r0", Outcome::Sent, Some("wamid.E")).await;
    assert_eq!(
        progress(&stores, "wamid.E").await,
        Some(Progress::Delivered)
    );
    // r1's provider id differs from nothing kept under it: its callback key carries it.
    finish(&stores, &run, "r1", Outcome::Sent, Some("wamid.F")).await;
    assert_eq!(progress(&stores, "wamid.F").await, Some(Progress::Read));
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!((counts.sent, counts.delivered, counts.read), (2, 2, 1));
    assert_eq!(int(&server, &["ZCARD", "h:kept"]), 0);
    let leftovers = server.command(&["KEYS", "h:kept:*"]);
    assert!(
        leftovers == "*0" || leftovers.is_empty(),
        "kept sets left: {leftovers}"
    );
}

/// A crash after the provider accepted the request: the lease ends, recovery makes the delivery
/// `unknown` and applies what was kept for its key; a later report with the callback resolves
/// another `unknown` and indexes its provider id.
#[tokio::test]
async fn reports_resolve_unknown_deliveries() {
    let (_server, clock, stores) = started_at(t(10)).await;
    let run = run_of(&stores, "crash", 2).await;
    claim(&stores, &run, &["r0", "r1"]).await;
    let kept = with_callback(reached("wamid.K", Progress::Delivered), key(&run, "r0"));
    assert_eq!(record(&stores, &kept).await, StatusVerdict::Kept);
    clock.set(t(10) + TimeDelta::minutes(5));
    let recovered = stores.deliveries().recover_expired(10).await.unwrap();
    assert_eq!(recovered.len(), 2);
    assert_eq!(
        progress(&stores, "wamid.K").await,
        Some(Progress::Delivered)
    );
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!((counts.sent, counts.unknown, counts.delivered), (1, 1, 1));

    let late = with_callback(reached("wamid.L", Progress::Sent), key(&run, "r1"));
    assert_eq!(
        record(&stores, &late).await,
        StatusVerdict::Applied {
            key: key(&run, "r1"),
            phone: phone(1)
        }
    );
    assert_eq!(progress(&stores, "wamid.L").await, Some(Progress::Sent));
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!((counts.sent, counts.unknown, counts.sending), (2, 0, 0));
}

/// A kept report outlives its TTL: it is dropped, and the send it waited for is not moved by it.
#[tokio::test]
async fn kept_reports_expire() {
    let (server, _clock, stores) = started_at(t(10)).await;
    let run = run_of(&stores, "expiry", 1).await;
    let feedback = stores.feedback();
    let old = reached("wamid.OLD", Progress::Read);
    assert_eq!(
        feedback.record_status(&old, t(30)).await.unwrap(),
        StatusVerdict::Kept
    );
    let day_later = t(30) + TimeDelta::hours(25);
    let other = reached("wamid.OTHER", Progress::Read);
    assert_eq!(
        feedback.record_status(&other, day_later).await.unwrap(),
        StatusVerdict::Kept
    );
    assert_eq!(int(&server, &["ZCARD", "h:kept"]), 1, "the old one trimmed");
    assert_eq!(int(&server, &["EXISTS", "h:kept:i:wamid.OLD"]), 0);
    claim(&stores, &run, &["r0"]).await;
    stores
        .deliveries()
        .finish(
            &key(&run, "r0"),
            &Terminal {
                outcome: Outcome::Sent,
                detail: Some("wamid.OLD".into()),
            },
            Some(&worker(1)),
            day_later,
        )
        .await
        .unwrap();
    assert_eq!(progress(&stores, "wamid.OLD").await, Some(Progress::Sent));
}

/// At [`KEPT_STATUS_LIMIT`] kept reports, a new one is dropped; one already kept is still kept,
/// and reports for known messages are applied as ever.
#[tokio::test]
async fn kept_reports_are_bounded() {
    let (server, _clock, stores) = started_at(t(10)).await;
    let run = run_of(&stores, "flood", 1).await;
    sent(&stores, &run, "r0", "wamid.KNOWN").await;
    let first = reached("wamid.FIRST", Progress::Delivered);
    assert_eq!(record(&stores, &first).await, StatusVerdict::Kept);
    // Fill the zset as a flood would have, far from expiry (raw members: the limit counts them).
    let far = (t(30) + TimeDelta::hours(23))
        .timestamp_millis()
        .to_string();
    let limit = i64::try_from(KEPT_STATUS_LIMIT).unwrap();
    let mut sync = common::blocking_client(&server);
    for chunk in (1..limit).collect::<Vec<_>>().chunks(10_000) {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg("h:kept");
        for n in chunk {
            cmd.arg(&far).arg(format!("flood {n}"));
        }
        let _: i64 = cmd.query(&mut sync).unwrap();
    }
    assert_eq!(int(&server, &["ZCARD", "h:kept"]), limit);
    let next = reached("wamid.NEXT", Progress::Delivered);
    assert_eq!(record(&stores, &next).await, StatusVerdict::Dropped);
    assert_eq!(record(&stores, &first).await, StatusVerdict::Kept);
    assert!(matches!(
        record(&stores, &reached("wamid.KNOWN", Progress::Read)).await,
        StatusVerdict::Applied { .. }
    ));
    assert_eq!(int(&server, &["ZCARD", "h:kept"]), limit);
}

/// Compaction deletes a delivery's provider-id index entry with the delivery.
#[tokio::test]
async fn compaction_drops_the_index_entry() {
    let (server, clock, stores) = started_at(t(10)).await;
    let run = run_of(&stores, "compacted", 2).await;
    sent(&stores, &run, "r0", "wamid.OLD").await;
    assert!(matches!(
        record(&stores, &failed("wamid.OLD", "131026")).await,
        StatusVerdict::Applied { .. }
    ));
    clock.set(t(11) + TimeDelta::days(8));
    stores.deliveries().recover_expired(10).await.unwrap();
    assert_eq!(stores.feedback().message("wamid.OLD").await.unwrap(), None);
    assert_eq!(int(&server, &["HLEN", "h:mid"]), 0);
    // A report for it now is kept (nothing known), never applied to anything.
    assert_eq!(
        record(&stores, &reached("wamid.OLD", Progress::Read)).await,
        StatusVerdict::Kept
    );
}

/// Reports from two handles at once, duplicated and out of order, end as if applied one after
/// another: every message read, each counted once.
#[tokio::test]
async fn concurrent_reports_count_once() {
    let (server, _clock, stores) = started_at(t(10)).await;
    let other = open(&server, StoreTime::Backend).await;
    let run = run_of(&stores, "storm", 5).await;
    for i in 0..5 {
        sent(&stores, &run, &format!("r{i}"), &format!("wamid.{i}")).await;
    }
    let mut calls = Vec::new();
    for round in 0..4 {
        for i in 0..5 {
            let handle = if (round + i) % 2 == 0 {
                &stores
            } else {
                &other
            };
            for rung in [Progress::Read, Progress::Delivered, Progress::Sent] {
                let report = reached(&format!("wamid.{i}"), rung);
                calls.push(async move { handle.feedback().record_status(&report, t(30)).await });
            }
        }
    }
    let verdicts = join_all(calls).await;
    let applied = verdicts
        .iter()
        .filter(|v| matches!(v, Ok(StatusVerdict::Applied { .. })))
        .count();
    assert!((5..=10).contains(&applied), "{applied} applied");
    assert!(verdicts.iter().all(Result::is_ok));
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!((counts.sent, counts.delivered, counts.read), (5, 5, 5));
}

/// Tags: stored once per phone, bounded, checked; read back per phone in order.
#[tokio::test]
async fn tags_are_stored_per_phone_and_bounded() {
    let (_server, _clock, stores) = started_at(t(10)).await;
    let feedback = stores.feedback();
    assert!(feedback.add_tag(&phone(1), "vip", t(10)).await.unwrap());
    assert!(!feedback.add_tag(&phone(1), "vip", t(11)).await.unwrap());
    for bad in ["", "a\nb", &"x".repeat(65)] {
        let refused = feedback.add_tag(&phone(1), bad, t(10)).await;
        assert!(matches!(refused, Err(StoreError::Conflict(_))), "{bad:?}");
    }
    for n in 1..MAX_TAGS_PER_PHONE {
        assert!(
            feedback
                .add_tag(&phone(2), &format!("t{n}"), t(10))
                .await
                .unwrap()
        );
    }
    assert!(feedback.add_tag(&phone(2), "last", t(10)).await.unwrap());
    let full = feedback.add_tag(&phone(2), "one too many", t(10)).await;
    assert!(matches!(full, Err(StoreError::Conflict(_))), "{full:?}");
    let tags = feedback
        .tags_for(&[phone(1), phone(3), phone(2)])
        .await
        .unwrap();
    assert_eq!(tags[0].iter().collect::<Vec<_>>(), ["vip"]);
    assert!(tags[1].is_empty());
    assert_eq!(tags[2].len(), MAX_TAGS_PER_PHONE);
    assert!(feedback.tags_for(&[]).await.unwrap().is_empty());
}

/// Who paused a run is kept with it until it is resumed.
#[tokio::test]
async fn who_paused_a_run_is_cleared_by_resume() {
    let (_server, _clock, stores) = started_at(t(10)).await;
    let run = run_of(&stores, "paused", 1).await;
    let runs = stores.runs();
    runs.pause(&run, "operator (api)", "checking the template")
        .await
        .unwrap();
    let record = runs.run(&run).await.unwrap().unwrap();
    assert_eq!(record.state, RunState::Paused);
    assert_eq!(record.paused_by.as_deref(), Some("operator (api)"));
    assert_eq!(
        record.state_reason.as_deref(),
        Some("checking the template")
    );
    runs.set_run_state(&run, RunState::Active).await.unwrap();
    let record = runs.run(&run).await.unwrap().unwrap();
    assert_eq!((record.paused_by, record.state_reason), (None, None));
}

/// Reports the store cannot key by are refused naming their field.
#[tokio::test]
async fn unusable_reports_are_refused_naming_the_field() {
    let (_server, _clock, stores) = started_at(t(10)).await;
    for (report, field) in [
        (reached("", Progress::Read), "provider_id"),
        (reached(&"w".repeat(300), Progress::Read), "provider_id"),
        (failed("wamid.Z", ""), "status.code"),
    ] {
        match stores.feedback().record_status(&report, t(30)).await {
            Err(StoreError::Conflict(message)) => assert!(message.contains(field), "{message}"),
            other => panic!("{field}: {other:?}"),
        }
    }
}
