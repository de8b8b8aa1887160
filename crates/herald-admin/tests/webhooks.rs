//! `/webhooks/whatsapp` through the router: Meta's challenge, the signature cases, the status
//! ladder, keywords and button replies, on a real SQLite store in a temp dir.

mod support;

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use herald_admin::AdminState;
use herald_app::channel::AnyChannel;
use herald_app::metrics::Metrics;
use herald_channel::whatsapp::{callback_data, hub_signature};
use herald_core::clock::Clock;
use herald_core::{Outcome, RunId};
use herald_engine::worker::Worker;
use herald_store::{
    Consents, Deliveries, Feedback, Progress, StoreTime, Stores, Terminal, WorkScope, WorkerId,
};
use herald_testkit::TokioClock;
use support::whatsapp::*;
use support::{Admin, admin_with, settings};

#[tokio::test]
async fn the_subscription_challenge_needs_the_verify_token() {
    let admin = admin().await;
    let ok = admin
        .get_anonymous(&format!(
            "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444"
        ))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.text, "1158201444");
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=verify-me-please&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        "hub.mode=subscribe&hub.verify_token=verify-me-please",
    ] {
        let refused = admin
            .get_anonymous(&format!("/webhooks/whatsapp?{query}"))
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{query}");
    }
    // Without a configured verify token nothing subscribes.
    let bare = admin_with("[admin]\ntoken_env = \"HERALD_ADMIN_TOKEN\"\n").await;
    let refused = bare
        .get_anonymous("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=&hub.challenge=1")
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unsigned_missigned_and_foreign_notifications_are_401_and_change_nothing() {
    let admin = admin().await;
    let body = text(
        "4915112345671",
        "wamid.in1",
        unix(support::start_instant()),
        "STOP",
    );
    let other = text(
        "4915112345671",
        "wamid.in2",
        unix(support::start_instant()),
        "STOP",
    );
    let foreign = body.replace(PNID, "999999999");
    let cases = [
        ("missing", None),
        (
            "wrong secret",
            Some(hub_signature("not-the-secret", body.as_bytes())),
        ),
        (
            "another body",
            Some(hub_signature(APP_SECRET, other.as_bytes())),
        ),
        ("garbage", Some("sha256=zz".to_owned())),
    ];
    for (what, signature) in cases {
        let answer = post(&admin, &body, signature).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
    }
    let answer = signed(&admin, &foreign).await;
    assert_eq!(
        answer.status,
        StatusCode::UNAUTHORIZED,
        "unknown phone_number_id"
    );
    let events = admin
        .state
        .stores
        .consents()
        .events("whatsapp", &phone("+4915112345671"))
        .await
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    // Unreadable: 401 unsigned, 400 when Meta's secret signs it.
    assert_eq!(
        post(&admin, "{not json", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        signed(&admin, "{not json").await.status,
        StatusCode::BAD_REQUEST
    );
    // And the valid one is taken.
    assert_eq!(signed(&admin, &body).await.status, StatusCode::OK);
}

#[tokio::test]
async fn keywords_in_any_case_and_script_become_consent_events() {
    let admin = admin().await;
    let at = unix(support::start_instant());
    let cases = [
        (
            "4915112345671",
            " стоп!! ",
            "keyword:СТОП",
            herald_core::ConsentKind::OptOut,
        ),
        (
            "4915112345672",
            "Arrêt.",
            "keyword:ARRÊT",
            herald_core::ConsentKind::OptOut,
        ),
        (
            "4915112345673",
            "\nStart 🙂",
            "keyword:START",
            herald_core::ConsentKind::OptIn,
        ),
    ];
    for (n, (from, body, source, kind)) in cases.into_iter().enumerate() {
        let payload = text(from, &format!("wamid.kw{n}"), at, body);
        assert_eq!(signed(&admin, &payload).await.status, StatusCode::OK);
        let events = admin
            .state
            .stores
            .consents()
            .events("whatsapp", &phone(&format!("+{from}")))
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{body:?}");
        let event = &events[0].event;
        assert_eq!((event.kind, event.source.as_str()), (kind, source));
        assert_eq!(event.scope, herald_core::Scope::All, "design §2");
        assert_eq!(
            event.proof.as_deref(),
            Some(format!("wamid.kw{n}").as_str())
        );
    }
    // Not a keyword: a sentence holding one.
    let payload = text("4915112345674", "wamid.kw9", at, "please stop it");
    assert_eq!(signed(&admin, &payload).await.status, StatusCode::OK);
    let events = admin
        .state
        .stores
        .consents()
        .events("whatsapp", &phone("+4915112345674"))
        .await
        .unwrap();
    assert!(events.is_empty());
}

#[tokio::test]
async fn statuses_climb_the_ladder_once_in_any_order_and_resolve_unknowns() {
    let admin = admin().await;
    let run = campaign_run(&admin, &support::campaign(None), support::AUDIENCE_CSV).await;
    let stores = &admin.state.stores;
    let now = admin.clock.now();
    let at = unix(now);

    // c-1 sent as W1: five identical `delivered` reports count once.
    stores
        .deliveries()
        .finish(&key(&run, "c-1"), &sent_as("wamid.W1"), None, now)
        .await
        .unwrap();
    let delivered = status("wamid.W1", "delivered", at + 5, None);
    for _ in 0..5 {
        assert_eq!(signed(&admin, &delivered).await.status, StatusCode::OK);
    }
    let counts = stores
        .deliveries()
        .counts(&RunId::parse(&run).unwrap())
        .await
        .unwrap();
    assert_eq!((counts.sent, counts.delivered, counts.read), (1, 1, 0));

    // `read` before `delivered` ends `read`.
    assert_eq!(
        signed(&admin, &status("wamid.W1", "read", at + 9, None))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        signed(&admin, &status("wamid.W1", "delivered", at + 6, None))
            .await
            .status,
        StatusCode::OK
    );
    let w1 = stores
        .feedback()
        .message("wamid.W1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w1.progress, Some(Progress::Read));

    // A status before its send is kept and applied when the send is recorded.
    assert_eq!(
        signed(&admin, &status("wamid.W2", "delivered", at + 7, None))
            .await
            .status,
        StatusCode::OK
    );
    assert!(
        stores
            .feedback()
            .message("wamid.W2")
            .await
            .unwrap()
            .is_none()
    );
    stores
        .deliveries()
        .finish(&key(&run, "c-2"), &sent_as("wamid.W2"), None, now)
        .await
        .unwrap();
    let w2 = stores
        .feedback()
        .message("wamid.W2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w2.progress, Some(Progress::Delivered));

    // An `unknown` (the worker crashed after Meta accepted) becomes `sent` by its callback.
    stores
        .deliveries()
        .finish(
            &key(&run, "c-3"),
            &Terminal {
                outcome: Outcome::Unknown,
                detail: None,
            },
            None,
            now,
        )
        .await
        .unwrap();
    let callback = callback_data(&run, "c-3").unwrap();
    assert_eq!(
        signed(&admin, &status("wamid.W3", "sent", at + 8, Some(&callback)))
            .await
            .status,
        StatusCode::OK
    );
    let counts = stores
        .deliveries()
        .counts(&RunId::parse(&run).unwrap())
        .await
        .unwrap();
    assert_eq!(counts.unknown, 0, "{counts:?}");
    assert_eq!(
        (counts.sent, counts.delivered, counts.read),
        (3, 2, 1),
        "{counts:?}"
    );
    assert_eq!(
        stores
            .feedback()
            .message("wamid.W3")
            .await
            .unwrap()
            .unwrap()
            .key,
        key(&run, "c-3")
    );
    let text = admin.state.metrics.render();
    assert!(
        text.contains(r#"herald_webhook_events_total{kind="status",verdict="unchanged"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn button_replies_tag_or_opt_out_and_tags_count_in_a_later_where() {
    let admin = admin().await;
    let run = campaign_run(&admin, PROMO, support::AUDIENCE_CSV).await;
    let stores = &admin.state.stores;
    let now = admin.clock.now();
    let at = unix(now);
    for (id, wamid) in [("c-1", "wamid.P1"), ("c-2", "wamid.P2")] {
        stores
            .deliveries()
            .finish(&key(&run, id), &sent_as(wamid), None, now)
            .await
            .unwrap();
    }
    let taps = [
        button("4915112345671", "wamid.b1", at, "more", "wamid.P1"),
        button("4915112345672", "wamid.b2", at, "stop", "wamid.P2"),
        button("4915112345672", "wamid.b3", at, "nothing", "wamid.P2"),
        // Unknown message and unknown button: 200, counted, nothing stored.
        button("4915112345673", "wamid.b4", at, "more", "wamid.nobody"),
        button("4915112345671", "wamid.b5", at, "gone", "wamid.P1"),
    ];
    for tap in &taps {
        assert_eq!(signed(&admin, tap).await.status, StatusCode::OK);
    }
    let tags = stores
        .feedback()
        .tags_for(&[phone("+4915112345671"), phone("+4915112345673")])
        .await
        .unwrap();
    assert_eq!(tags[0].iter().collect::<Vec<_>>(), ["interested"]);
    assert!(tags[1].is_empty());
    let events = stores
        .consents()
        .events("whatsapp", &phone("+4915112345672"))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.kind, herald_core::ConsentKind::OptOut);
    assert_eq!(events[0].event.scope, herald_core::Scope::Marketing);
    assert_eq!(events[0].event.source, "button");
    let text = admin.state.metrics.render();
    for verdict in [
        "tagged",
        "opted_out",
        "no_action",
        "unknown_message",
        "unknown_button",
    ] {
        assert!(
            text.contains(&format!(
                r#"herald_webhook_events_total{{kind="button",verdict="{verdict}"}}"#
            )),
            "{verdict}: {text}"
        );
    }

    // A later campaign for `interested` reaches c-1 by its stored tag (the file has no tags).
    let later = support::campaign(None)
        .replace("id: api-welcome", "id: interested")
        .replace(
            "  default_country: DE\n",
            "  default_country: DE\n  where: { tags: [interested] }\n",
        );
    let run = campaign_run(&admin, &later, support::AUDIENCE_CSV).await;
    let counts = stores
        .deliveries()
        .counts(&RunId::parse(&run).unwrap())
        .await
        .unwrap();
    assert_eq!(counts.total(), 1, "{counts:?}");
}

/// The acceptance case: a valid signed "СТОП" opts the phone out, and a deferred delivery of a
/// running campaign to it then ends `skipped(opted_out)` while the others are sent.
#[tokio::test(start_paused = true)]
async fn a_signed_stop_skips_the_deferred_delivery_of_a_running_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let env = env();
    let settings = settings(dir.path(), WHATSAPP, &env);
    let clock = Arc::new(TokioClock::new(support::start_instant()));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let stores = herald_app::open_store_with(&settings, &env, StoreTime::Clock(dyn_clock.clone()))
        .await
        .unwrap();
    let state = AdminState::new(
        stores.clone(),
        settings.clone(),
        env.clone(),
        dyn_clock.clone(),
        Metrics::install().unwrap(),
    )
    .unwrap();
    let admin = Admin {
        router: herald_admin::router(state.clone()),
        state,
        clock: Arc::new(herald_testkit::ManualClock::new(support::start_instant())),
        dir,
    };
    let run = campaign_run(&admin, &support::campaign(None), support::AUDIENCE_CSV).await;
    let run_id = RunId::parse(&run).unwrap();
    let counts = stores.deliveries().counts(&run_id).await.unwrap();
    assert_eq!(
        counts.queued, 3,
        "deferred to tomorrow's window: {counts:?}"
    );

    let stop = text("4915112345671", "wamid.stop", unix(clock.now()), "СТОП");
    assert_eq!(signed(&admin, &stop).await.status, StatusCode::OK);

    // Tomorrow, inside the window and past the spread.
    let open = Utc.with_ymd_and_hms(2026, 11, 3, 10, 0, 0).unwrap();
    tokio::time::advance((open - clock.now()).to_std().unwrap()).await;
    let sender = &settings.senders["main"];
    let channel = Arc::new(AnyChannel::build("main", sender, &env).unwrap());
    let worker = Arc::new(
        Worker::new(
            Arc::new(stores.clone()),
            channel,
            dyn_clock,
            WorkerId::parse("webhook-test").unwrap(),
            WorkScope {
                sender: "main".into(),
                runs: None,
            },
            NonZeroU32::new(sender.rate()).unwrap(),
            16,
        )
        .with_consent_channel(sender.consent_channel()),
    );
    // Bounded by steps, not time: three deliveries need a handful.
    for _ in 0..20 {
        if stores.deliveries().counts(&run_id).await.unwrap().queued == 0 {
            break;
        }
        worker.step().await.unwrap();
    }
    let counts = stores.deliveries().counts(&run_id).await.unwrap();
    assert_eq!(counts.sent, 2, "{counts:?}");
    assert_eq!(counts.skipped.get("opted_out"), Some(&1), "{counts:?}");
    assert_eq!(counts.total(), 3);
}
