//! `/webhooks/whatsapp` through the router: Meta's challenge, the signature cases, the status
//! ladder, keywords and button replies, on a real SQLite store in a temp dir.

mod support;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, TimeZone, Utc};
use herald_admin::AdminState;
use herald_app::channel::AnyChannel;
use herald_app::metrics::Metrics;
use herald_channel::whatsapp::{callback_data, hub_signature};
use herald_core::clock::Clock;
use herald_core::{Outcome, PhoneNumber, RecipientId, RecipientKey, RunId};
use herald_engine::worker::Worker;
use herald_store::{
    Consents, Deliveries, DeliveryKey, Feedback, Progress, StoreTime, Stores, Terminal, WorkScope,
    WorkerId,
};
use herald_testkit::TokioClock;
use support::{Admin, Answer, admin_with, settings};

const PNID: &str = "106540352242922";
const APP_SECRET: &str = "meta-app-secret-1";
const VERIFY: &str = "verify-me-please";

/// A WhatsApp sender whose webhooks the admin takes (its channel is never built here).
const WHATSAPP: &str = "[admin]\ntoken_env = \"HERALD_ADMIN_TOKEN\"\n\n\
    [webhooks]\nverify_token_env = \"WA_VERIFY\"\n\n\
    [senders.wa]\nchannel = \"whatsapp\"\nphone_number_id = \"106540352242922\"\n\
    token_env = \"WA_TOKEN\"\napp_secret_env = \"WA_APP_SECRET\"\n";

fn env() -> BTreeMap<String, String> {
    let mut env = support::env();
    env.insert("WA_APP_SECRET".into(), APP_SECRET.into());
    env.insert("WA_VERIFY".into(), VERIFY.into());
    env.insert("WA_TOKEN".into(), "a-token-long-enough-0123".into());
    env
}

async fn admin() -> Admin {
    support::admin_with_env(WHATSAPP, env()).await
}

fn envelope(value: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PNID}"}},{value}}}}}]}}]}}"#
    )
}

fn text(from: &str, id: &str, at: i64, body: &str) -> String {
    envelope(&format!(
        r#""contacts":[{{"wa_id":"{from}"}}],"messages":[{{"from":"{from}","id":"{id}","timestamp":"{at}","type":"text","text":{{"body":{}}}}}]"#,
        serde_json::to_string(body).unwrap()
    ))
}

fn button(from: &str, id: &str, at: i64, payload: &str, context: &str) -> String {
    envelope(&format!(
        r#""messages":[{{"from":"{from}","id":"{id}","timestamp":"{at}","type":"button","context":{{"from":"15550783881","id":"{context}"}},"button":{{"payload":"{payload}","text":"x"}}}}]"#
    ))
}

fn status(wamid: &str, status: &str, at: i64, callback: Option<&str>) -> String {
    let callback = callback
        .map(|c| {
            format!(
                r#","biz_opaque_callback_data":{}"#,
                serde_json::to_string(c).unwrap()
            )
        })
        .unwrap_or_default();
    envelope(&format!(
        r#""statuses":[{{"id":"{wamid}","status":"{status}","timestamp":"{at}","recipient_id":"4915112345672","pricing":{{"billable":true}}{callback}}}]"#
    ))
}

async fn post(admin: &Admin, body: &str, signature: Option<String>) -> Answer {
    let mut request =
        Request::post("/webhooks/whatsapp").header("content-type", "application/json");
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    admin
        .send(request.body(Body::from(body.to_owned())).unwrap())
        .await
}

async fn signed(admin: &Admin, body: &str) -> Answer {
    post(
        admin,
        body,
        Some(hub_signature(APP_SECRET, body.as_bytes())),
    )
    .await
}

fn unix(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn phone(e164: &str) -> PhoneNumber {
    PhoneNumber::parse(e164, None).unwrap()
}

fn key(run: &str, id: &str) -> DeliveryKey {
    DeliveryKey {
        run: RunId::parse(run).unwrap(),
        recipient: RecipientKey::recipient(RecipientId::parse(id).unwrap()),
    }
}

/// Stores the helper campaign (three recipients, deferred to tomorrow's window) and returns
/// its run id.
async fn campaign_run(admin: &Admin, yaml: &str, csv: &str) -> String {
    let created = admin
        .post_campaign(&[
            ("campaign", Some("c.yaml"), yaml),
            ("audience", Some("people.csv"), csv),
        ])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.json["run"].as_str().unwrap().to_owned()
}

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

fn sent_as(wamid: &str) -> Terminal {
    Terminal {
        outcome: Outcome::Sent,
        detail: Some(wamid.to_owned()),
    }
}

const PROMO: &str = "id: promo\nname: Promo\npurpose: transactional\naudience:\n  \
    default_country: DE\ntemplate:\n  name: promo\n  language: { default: en }\n  buttons:\n    \
    - { payload: more, on_reply: { tag: interested } }\n    - { payload: stop, on_reply: opt_out }\n    \
    - { payload: nothing }\nschedule:\n  at: 2026-11-03T09:00\n  in: recipient\nsend_window:\n  \
    hours: { daily: \"08:00-20:00\" }\n  unknown_timezone: conservative\n";

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
