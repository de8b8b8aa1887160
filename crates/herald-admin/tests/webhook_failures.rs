//! `/webhooks/whatsapp` through the router, the cases a `failed` status and a button reply
//! can get wrong: consent from a late or early 131050, a late sender block or template error
//! doing what the synchronous reply does, a `failed` after `delivered`, `read` before
//! `delivered` on a fresh message, a reply from a foreign number, and a parse error whose log
//! line must not quote the body.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use herald_core::clock::Clock;
use herald_core::{ConsentKind, RunId, Scope};
use herald_store::{
    Consents, Deliveries, Feedback, Progress, RunCounts, RunState, Runs, Senders, Stores,
};
use support::whatsapp::*;

async fn counts(admin: &support::Admin, run: &str) -> RunCounts {
    admin
        .state
        .stores
        .deliveries()
        .counts(&RunId::parse(run).unwrap())
        .await
        .unwrap()
}

/// Records delivery `id` of `run` as sent with message id `wamid`.
async fn sent(admin: &support::Admin, run: &str, id: &str, wamid: &str) {
    let now = admin.clock.now();
    admin
        .state
        .stores
        .deliveries()
        .finish(&key(run, id), &sent_as(wamid), None, now)
        .await
        .unwrap();
}

async fn ok(admin: &support::Admin, body: &str) {
    let answer = signed(admin, body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

fn metric(admin: &support::Admin, kind: &str, verdict: &str) -> bool {
    admin.state.metrics.render().contains(&format!(
        r#"herald_webhook_events_total{{kind="{kind}",verdict="{verdict}"}}"#
    ))
}

#[tokio::test]
async fn a_131050_after_sent_fails_the_delivery_and_opts_the_phone_out() {
    let admin = admin().await;
    let run = campaign_run(&admin, &support::campaign(None), support::AUDIENCE_CSV).await;
    let at = unix(admin.clock.now());
    sent(&admin, &run, "c-2", "wamid.F1").await;
    ok(&admin, &status("wamid.F1", "sent", at + 1, None)).await;
    ok(&admin, &failed("wamid.F1", 131050, at + 2, "4915112345672")).await;

    let counts = counts(&admin, &run).await;
    assert_eq!(counts.sent, 0, "{counts:?}");
    assert_eq!(counts.failed.get("131050"), Some(&1), "{counts:?}");
    let events = admin
        .state
        .stores
        .consents()
        .events("whatsapp", &phone("+4915112345672"))
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event.kind, ConsentKind::OptOut);
    assert_eq!(events[0].event.scope, Scope::Marketing);
    assert_eq!(events[0].event.source, "webhook:131050");
    assert!(metric(&admin, "failed_status", "opted_out"));
}

#[tokio::test]
async fn a_kept_131050_opts_the_recipient_out_at_once() {
    let admin = admin().await;
    let at = unix(admin.clock.now());
    // No send was recorded for this message (yet): the status is kept, the opt-out is not.
    ok(&admin, &failed("wamid.K1", 131050, at, "4915112345673")).await;
    assert!(metric(&admin, "status", "kept"));
    let events = admin
        .state
        .stores
        .consents()
        .events("whatsapp", &phone("+4915112345673"))
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event.kind, ConsentKind::OptOut);
    assert_eq!(events[0].event.scope, Scope::Marketing);
}

#[tokio::test]
async fn a_failed_after_delivered_changes_nothing() {
    let admin = admin().await;
    let run = campaign_run(&admin, &support::campaign(None), support::AUDIENCE_CSV).await;
    let at = unix(admin.clock.now());
    sent(&admin, &run, "c-1", "wamid.D1").await;
    ok(&admin, &status("wamid.D1", "delivered", at + 1, None)).await;
    ok(&admin, &failed("wamid.D1", 131026, at + 2, "4915112345671")).await;

    let message = admin
        .state
        .stores
        .feedback()
        .message("wamid.D1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.progress, Some(Progress::Delivered));
    let counts = counts(&admin, &run).await;
    assert_eq!((counts.sent, counts.delivered), (1, 1), "{counts:?}");
    assert!(counts.failed.is_empty(), "{counts:?}");
    assert!(metric(&admin, "status", "unchanged"));
}

#[tokio::test]
async fn read_before_delivered_on_a_fresh_message_ends_read() {
    let admin = admin().await;
    let run = campaign_run(&admin, &support::campaign(None), support::AUDIENCE_CSV).await;
    let at = unix(admin.clock.now());
    sent(&admin, &run, "c-1", "wamid.R1").await;
    // Meta's order, not the ladder's: `read` first, then the `delivered` it implies.
    ok(&admin, &status("wamid.R1", "read", at + 2, None)).await;
    ok(&admin, &status("wamid.R1", "delivered", at + 1, None)).await;

    let message = admin
        .state
        .stores
        .feedback()
        .message("wamid.R1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.progress, Some(Progress::Read));
    let counts = counts(&admin, &run).await;
    assert_eq!(
        (counts.sent, counts.delivered, counts.read),
        (1, 1, 1),
        "{counts:?}"
    );
}

#[tokio::test]
async fn a_late_131048_blocks_the_sender_and_a_late_template_error_pauses_the_run() {
    let admin = admin().await;
    let run = campaign_run(&admin, &support::campaign(None), support::AUDIENCE_CSV).await;
    let at = unix(admin.clock.now());
    sent(&admin, &run, "c-1", "wamid.B1").await;
    sent(&admin, &run, "c-2", "wamid.T1").await;

    ok(&admin, &failed("wamid.B1", 131048, at + 1, "4915112345671")).await;
    let sender = admin.state.stores.senders().sender("wa").await.unwrap();
    let block = sender.blocked.expect("the sender is blocked");
    assert_eq!(block.code, "131048");
    assert!(metric(&admin, "failed_status", "sender_blocked"));

    ok(&admin, &failed("wamid.T1", 132001, at + 2, "4915112345672")).await;
    let record = admin
        .state
        .stores
        .runs()
        .run(&RunId::parse(&run).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, RunState::Paused);
    assert_eq!(record.paused_by.as_deref(), Some("herald"));
    assert!(
        record
            .state_reason
            .as_deref()
            .is_some_and(|why| why.contains("132001")),
        "{record:?}"
    );
    assert!(metric(&admin, "failed_status", "run_paused"));
    let counts = counts(&admin, &run).await;
    assert_eq!(counts.failed.get("131048"), Some(&1), "{counts:?}");
    assert_eq!(counts.failed.get("132001"), Some(&1), "{counts:?}");
}

#[tokio::test]
async fn a_button_reply_from_another_number_is_ignored() {
    let admin = admin().await;
    let run = campaign_run(&admin, PROMO, support::AUDIENCE_CSV).await;
    let at = unix(admin.clock.now());
    sent(&admin, &run, "c-1", "wamid.P1").await;
    // c-3's number taps `stop` on c-1's message (forwarded, or a forged context id).
    ok(
        &admin,
        &button("4915112345673", "wamid.x1", at, "stop", "wamid.P1"),
    )
    .await;
    assert!(metric(&admin, "button", "foreign"));
    for e164 in ["+4915112345671", "+4915112345673"] {
        let events = admin
            .state
            .stores
            .consents()
            .events("whatsapp", &phone(e164))
            .await
            .unwrap();
        assert!(events.is_empty(), "{e164}: {events:?}");
    }
}

/// A log sink for one test's subscriber.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_unreadable_signed_notification_is_400_and_its_log_quotes_nothing_of_the_body() {
    let admin = admin().await;
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // An error code that is a string (a phone number, here): serde's message would quote it.
    let body = failed("wamid.L1", 1, 0, "4915112345679")
        .replace(r#""code":1,"#, r#""code":"4915112345679","#);
    let answer = signed(&admin, &body).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    let logged = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("cannot read") && logged.contains(r#"category="data""#),
        "{logged}"
    );
    assert!(!logged.contains("4915112345679"), "{logged}");
}
