//! The whole API on a real listener at 127.0.0.1:0, over HTTP, against each store: a SQLite
//! file, and a real `redis-server` (created with `herald_app::init_store`, as `herald init`).

mod support;

use std::sync::Arc;

use herald_admin::AdminState;
use herald_app::Settings;
use herald_app::metrics::Metrics;
use herald_engine::ShutdownSignal;
use herald_store::StoreTime;
use herald_testkit::ManualClock;
use herald_testkit::redis::RedisServer;
use serde_json::Value;
use support::{AUDIENCE_CSV, TOKEN, campaign, multipart, start_instant};

const ADMIN: &str = "[admin]\ntoken_env = \"HERALD_ADMIN_TOKEN\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_api_on_a_listener_over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite = \"{}\"", dir.path().join("herald.db").display());
    whole_api(&store, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_api_on_a_listener_over_redis() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redis = \"{}\"", redis.url());
    whole_api(&store, dir.path()).await;
}

async fn whole_api(store: &str, dir: &std::path::Path) {
    let env = support::env();
    let file = dir.join("herald.toml");
    std::fs::write(&file, support::config_on(store, dir, ADMIN)).unwrap();
    let settings = Settings::load(Some(&file), &env).unwrap();
    herald_app::init_store(&settings, &env).await.unwrap();
    let clock = Arc::new(ManualClock::new(start_instant()));
    let stores = herald_app::open_store_with(&settings, &env, StoreTime::Clock(clock.clone()))
        .await
        .unwrap();
    let state = AdminState::new(stores, settings, env, clock, Metrics::install().unwrap()).unwrap();
    let listener = herald_admin::bind(&state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let signal = ShutdownSignal::new();
    let server = tokio::spawn(herald_admin::serve(state, listener, signal.subscribe()));
    let http = reqwest::Client::new();
    let bearer = format!("Bearer {TOKEN}");

    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let answer = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
    }
    let anonymous = http.get(format!("{base}/v1/runs")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = http
        .get(format!("{base}/v1/runs"))
        .header("authorization", "Bearer nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let (content_type, body) = multipart(&[
        ("campaign", Some("welcome.yaml"), &campaign(None)),
        ("audience", Some("people.csv"), AUDIENCE_CSV),
    ]);
    let created = http
        .post(format!("{base}/v1/campaigns"))
        .header("authorization", &bearer)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = serde_json::from_str(&created.text().await.unwrap()).unwrap();
    let run = created["run"].as_str().unwrap().to_owned();
    assert_eq!(created["total"], 3);

    let json = |path: String| {
        let http = http.clone();
        let bearer = bearer.clone();
        async move {
            let answer = http
                .get(path)
                .header("authorization", bearer)
                .send()
                .await
                .unwrap();
            (
                answer.status().as_u16(),
                serde_json::from_str::<Value>(&answer.text().await.unwrap()).unwrap(),
            )
        }
    };
    let post = |path: String, body: &'static str| {
        let http = http.clone();
        let bearer = bearer.clone();
        async move {
            let answer = http
                .post(path)
                .header("authorization", bearer)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (
                answer.status().as_u16(),
                serde_json::from_str::<Value>(&answer.text().await.unwrap()).unwrap(),
            )
        }
    };

    let (status, campaigns) = json(format!("{base}/v1/campaigns")).await;
    assert_eq!(status, 200);
    assert_eq!(campaigns[0]["runs"][0]["run"], run.as_str());
    let (status, shown) = json(format!("{base}/v1/runs/{run}")).await;
    assert_eq!(status, 200);
    assert_eq!(shown["total"], 3);
    assert_eq!(shown["queued"], 3);

    let (status, paused) = post(
        format!("{base}/v1/runs/{run}/pause"),
        r#"{"reason": "hold"}"#,
    )
    .await;
    assert_eq!(status, 200, "{paused}");
    let (_, shown) = json(format!("{base}/v1/runs/{run}")).await;
    assert_eq!(shown["state"], "paused");
    assert_eq!(shown["state_reason"], "hold");
    let (status, _) = post(format!("{base}/v1/runs/{run}/resume"), "").await;
    assert_eq!(status, 200);
    let (status, _) = post(format!("{base}/v1/runs/{run}/cancel"), "").await;
    assert_eq!(status, 200);
    let (status, refused) = post(format!("{base}/v1/runs/{run}/resume"), "").await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "conflict");

    let (status, senders) = json(format!("{base}/v1/senders")).await;
    assert_eq!(status, 200);
    assert_eq!(senders[0]["name"], "main");
    let (status, _) = post(format!("{base}/v1/senders/main/resume"), "").await;
    assert_eq!(status, 200);

    let (status, recorded) = post(
        format!("{base}/v1/consent"),
        r#"{"phone": "+4915112345672", "channel": "whatsapp", "kind": "opt_out", "source": "crm"}"#,
    )
    .await;
    assert_eq!(status, 201, "{recorded}");
    let (status, consent) = json(format!("{base}/v1/consent/+4915112345672")).await;
    assert_eq!(status, 200);
    assert_eq!(consent["scopes"]["all"], "opted_out");

    signal.trigger();
    server.await.unwrap().unwrap();
}
