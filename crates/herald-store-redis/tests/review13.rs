//! Hostile review of issue 13: each test here was a finding that failed when written, and is
//! kept as its regression test; the comment says what was wrong and why it matters.

mod common;

use herald_core::{Outcome, RunId};
use herald_store::conformance::{new_run, queued, t, worker};
use herald_store::{
    ClaimAnswer, Deliveries, Feedback, Progress, ReportedStatus, Runs, StatusReport, StatusVerdict,
    Stores, Terminal,
};
use herald_store_redis::RedisStores;

use common::{claims_at, key, started_at};

async fn sent_as(stores: &RedisStores, wamid: &str) -> RunId {
    let run = new_run("review");
    assert!(stores.runs().create_run(&run, t(0)).await.unwrap());
    let run = run.run;
    stores
        .deliveries()
        .insert_batch(&[queued(&run, "r0", 0, 0)])
        .await
        .unwrap();
    let answers = stores
        .deliveries()
        .claim(&claims_at(&run, &["r0"], t(10)))
        .await
        .unwrap();
    assert!(
        matches!(answers[0], ClaimAnswer::Claimed { .. }),
        "{answers:?}"
    );
    let terminal = Terminal {
        outcome: Outcome::Sent,
        detail: Some(wamid.to_owned()),
    };
    stores
        .deliveries()
        .finish(&key(&run, "r0"), &terminal, Some(&worker(1)), t(11))
        .await
        .unwrap();
    run
}

/// FINDING (medium, store divergence on the ladder): a report for message `wamid.Y` whose
/// callback names a delivery already `sent` as `wamid.X` is another message's report (an
/// at-least-once retry sends the same delivery key twice; the callback is per delivery, not
/// per message). SQLite refuses it ("a sent message reported under another id is not this
/// report's message", `queries/status.rs`); Redis's `fb_ladder` never compares the report's
/// id with the delivery's, so on Redis the delivered message becomes `failed(131050)` (and the
/// engine then opts the phone out on the strength of the other message). The same deployment
/// gives different delivered/failed counts depending on the store; the conformance suite has
/// no case for it.
#[tokio::test]
async fn a_report_under_another_id_with_the_callback_fails_a_sent_delivery_on_redis() {
    let (_server, _clock, stores) = started_at(t(10)).await;
    let run = sent_as(&stores, "wamid.X").await;
    let stray = StatusReport {
        provider_id: "wamid.Y".to_owned(),
        callback: Some(key(&run, "r0")),
        status: ReportedStatus::Failed {
            code: "131050".into(),
        },
        at: t(20),
    };
    let verdict = stores
        .feedback()
        .record_status(&stray, t(30))
        .await
        .unwrap();
    assert!(
        matches!(verdict, StatusVerdict::Refused { .. }),
        "SQLite refuses this report; Redis: {verdict:?}"
    );
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!((counts.sent, counts.failed.len()), (1, 0), "{counts:?}");
    let message = stores.feedback().message("wamid.X").await.unwrap().unwrap();
    assert_eq!(message.progress, Some(Progress::Sent));
}
