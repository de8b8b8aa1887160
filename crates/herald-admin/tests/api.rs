//! The admin API through its router (no socket): every endpoint, its 401s, its errors.

mod support;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use support::{AUDIENCE_CSV, admin, admin_with, campaign};

#[tokio::test]
async fn health_metrics_and_openapi_need_no_token() {
    let admin = admin().await;
    let health = admin.get_anonymous("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = admin.get_anonymous("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    let metrics = admin.get_anonymous("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.content_type.as_deref(),
        Some(herald_app::metrics_listener::CONTENT_TYPE)
    );
    let doc = admin.get_anonymous("/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.json["openapi"].as_str().unwrap().starts_with("3."));
    // It parses as an OpenAPI 3 document, and its operations are exactly the routes served.
    let parsed: utoipa::openapi::OpenApi = serde_json::from_str(&doc.text).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in &parsed.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
            ("PATCH", &item.patch),
            ("HEAD", &item.head),
            ("OPTIONS", &item.options),
            ("TRACE", &item.trace),
        ];
        for (method, operation) in operations {
            if operation.is_some() {
                documented.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = herald_admin::ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(documented, served);
    let webhook = &parsed.paths.paths["/webhooks/whatsapp"];
    let codes = |operation: &Option<utoipa::openapi::path::Operation>| -> Vec<String> {
        operation
            .as_ref()
            .unwrap()
            .responses
            .responses
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(codes(&webhook.get), ["200", "403"]);
    assert_eq!(codes(&webhook.post), ["200", "400", "401", "503"]);
}

/// Every route of [`herald_admin::ROUTES`] is served (no "no such route", no 405), and no
/// other method is on its path.
#[tokio::test]
async fn every_listed_route_is_served_and_no_other_method() {
    let admin = admin().await;
    let concrete = |path: &str| {
        path.replace("{id}", "no-such-run")
            .replace("{name}", "no-such-sender")
            .replace("{phone}", "%2B4915112345671")
    };
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    for (method, path) in herald_admin::ROUTES {
        let request = support::authorized(
            Request::builder()
                .method(*method)
                .uri(concrete(path))
                .header("content-type", "application/json"),
        )
        .body(Body::empty())
        .unwrap();
        let answer = admin.send(request).await;
        assert_ne!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(
            answer.json["error"]["message"] != "no such route",
            "{method} {path}: {}",
            answer.text
        );
        for other in methods {
            if herald_admin::ROUTES.contains(&(other, path)) {
                continue;
            }
            let request = support::authorized(Request::builder().method(other).uri(concrete(path)))
                .body(Body::empty())
                .unwrap();
            let answer = admin.send(request).await;
            assert_eq!(
                answer.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{other} {path}: {}",
                answer.text
            );
        }
    }
}

#[tokio::test]
async fn v1_answers_401_without_or_with_a_wrong_token() {
    let admin = admin().await;
    for path in ["/v1/runs", "/v1/campaigns", "/v1/senders", "/v1/nope"] {
        let anonymous = admin.get_anonymous(path).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(anonymous.code(), "unauthorized");
        assert!(
            anonymous.json["error"]["message"].is_string(),
            "{}",
            anonymous.text
        );
    }
    for wrong in [
        "Bearer s3cret-toke",
        "Bearer s3cret-token-and-more",
        "Bearer ",
        "Basic s3cret-token",
        "s3cret-token",
    ] {
        let request = axum::http::Request::get("/v1/runs")
            .header("authorization", wrong)
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = admin.send(request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert_eq!(answer.code(), "unauthorized");
        assert!(!answer.text.contains("s3cret"), "{}", answer.text);
    }
    let right = admin.get("/v1/runs").await;
    assert_eq!(right.status, StatusCode::OK);
    assert_eq!(right.json, Value::Array(vec![]));
}

#[tokio::test]
async fn a_campaign_is_validated_expanded_and_listed() {
    let admin = admin().await;
    let created = admin
        .post_campaign(&[
            (
                "campaign",
                Some("welcome.yaml"),
                &campaign(Some("people.csv")),
            ),
            ("audience", Some("people.csv"), AUDIENCE_CSV),
        ])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let run = created.json["run"].as_str().unwrap().to_owned();
    assert_eq!(created.json["campaign"], "api-welcome");
    assert_eq!(created.json["inserted"], 3);
    assert_eq!(created.json["total"], 3);
    assert_eq!(created.json["counts"]["queued"], 3);

    let campaigns = admin.get("/v1/campaigns").await;
    assert_eq!(campaigns.status, StatusCode::OK);
    assert_eq!(campaigns.json[0]["campaign"], "api-welcome");
    assert_eq!(campaigns.json[0]["runs"][0]["run"], run.as_str());
    // The run names the uploaded part, never the server's temporary path.
    assert_eq!(campaigns.json[0]["runs"][0]["source"], "welcome.yaml");

    let runs = admin.get("/v1/runs").await;
    assert_eq!(runs.json.as_array().unwrap().len(), 1);
    let one = admin.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    // The list is the one run's document without the reads of its claims: in-flight owners,
    // send rate and ETA are null there and computed for the run asked for by id.
    assert_eq!(runs.json[0]["in_flight"], Value::Null, "{}", runs.text);
    assert_eq!(runs.json[0]["send_rate_per_second"], Value::Null);
    assert_eq!(runs.json[0]["eta"], Value::Null);
    assert_eq!(one.json["in_flight"], serde_json::json!({}), "{}", one.text);
    let mut listed = runs.json[0].clone();
    for key in ["in_flight", "send_rate_per_second", "eta"] {
        listed[key] = one.json[key].clone();
    }
    assert_eq!(one.json, listed);
    // No campaign text in a list answer.
    assert!(
        !campaigns.text.contains("send_window"),
        "{}",
        campaigns.text
    );
    assert!(!runs.text.contains("send_window"), "{}", runs.text);
    assert_eq!(one.json["total"], 3);
    assert_eq!(one.json["queued"], 3);
    assert_eq!(one.json["delivered"], 0);
    assert_eq!(one.json["read"], 0);
    assert!(one.json["delivered_rate"].is_null());
    assert!(one.json["next_wave"]["at"].is_string(), "{}", one.text);
    assert!(one.json["waits"].is_object());

    // The same campaign and audience again: the run exists, nothing is added.
    let again = admin
        .post_campaign(&[
            ("audience", Some("people.csv"), AUDIENCE_CSV),
            ("campaign", Some("welcome.yaml"), &campaign(None)),
        ])
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.json["run"], run.as_str());
    assert_eq!(again.json["inserted"], 0);

    let unknown = admin.get("/v1/runs/api-welcome@2030-01-01T00:00:00Z").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "not_found");
    // Not a run id at all: 400 in the one error shape, naming what was given.
    let bad = admin.get("/v1/runs/not-a-run-id").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert_eq!(bad.code(), "bad_request");
    assert!(bad.text.contains("not-a-run-id"), "{}", bad.text);
}

#[tokio::test]
async fn lists_are_bounded_by_limit_newest_first() {
    let admin = admin().await;
    for id in ["api-first", "api-second"] {
        let yaml = campaign(None).replace("id: api-welcome", &format!("id: {id}"));
        let created = admin
            .post_campaign(&[
                ("campaign", Some("welcome.yaml"), &yaml),
                ("audience", Some("people.csv"), AUDIENCE_CSV),
            ])
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        admin.clock.advance(chrono::TimeDelta::minutes(1));
    }
    let all = admin.get("/v1/runs").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.json.as_array().unwrap().len(), 2);
    let newest = admin.get("/v1/runs?limit=1").await;
    assert_eq!(newest.status, StatusCode::OK, "{}", newest.text);
    assert_eq!(newest.json.as_array().unwrap().len(), 1);
    assert_eq!(newest.json[0]["campaign"], "api-second", "{}", newest.text);
    let campaigns = admin.get("/v1/campaigns?limit=1").await;
    assert_eq!(campaigns.status, StatusCode::OK, "{}", campaigns.text);
    assert_eq!(campaigns.json.as_array().unwrap().len(), 1);
    assert_eq!(campaigns.json[0]["campaign"], "api-second");
    let both = admin.get("/v1/campaigns?limit=1000").await;
    assert_eq!(both.json[0]["campaign"], "api-second", "{}", both.text);
    assert_eq!(both.json[1]["campaign"], "api-first");
    for path in ["/v1/runs", "/v1/campaigns"] {
        for query in [
            "limit=0",
            "limit=1001",
            "limit=many",
            "limit=1&limit=2",
            "lmit=5",
        ] {
            let refused = admin.get(&format!("{path}?{query}")).await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{path}?{query}");
            assert_eq!(refused.code(), "bad_request");
        }
    }
}

#[tokio::test]
async fn a_yaml_error_is_422_with_line_and_column_and_nothing_is_stored() {
    let admin = admin().await;
    let broken = campaign(None).replace("purpose: transactional", "purpose: transactionl");
    let answer = admin
        .post_campaign(&[
            ("campaign", Some("welcome.yaml"), &broken),
            ("audience", Some("people.csv"), AUDIENCE_CSV),
        ])
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert_eq!(answer.code(), "invalid");
    let diagnostic = &answer.json["error"]["diagnostics"][0];
    assert_eq!(diagnostic["file"], "welcome.yaml");
    assert_eq!(diagnostic["line"], 3);
    assert_eq!(diagnostic["column"], 10);
    assert!(diagnostic["message"].as_str().unwrap().contains("purpose"));

    let syntax = admin
        .post_campaign(&[
            ("campaign", Some("welcome.yaml"), "id: x\nname: [unclosed\n"),
            ("audience", Some("people.csv"), AUDIENCE_CSV),
        ])
        .await;
    assert_eq!(syntax.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        syntax.json["error"]["diagnostics"][0]["line"]
            .as_u64()
            .unwrap()
            >= 1
    );

    assert_eq!(admin.get("/v1/runs").await.json, Value::Array(vec![]));
    assert_eq!(admin.get("/v1/campaigns").await.json, Value::Array(vec![]));
}

#[tokio::test]
async fn an_audience_source_naming_a_server_path_is_refused() {
    let admin = admin().await;
    for source in ["/etc/customers.csv", "../herald/people.csv", "other.csv"] {
        let answer = admin
            .post_campaign(&[
                ("campaign", Some("welcome.yaml"), &campaign(Some(source))),
                ("audience", Some("people.csv"), AUDIENCE_CSV),
            ])
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{source}");
        let diagnostic = &answer.json["error"]["diagnostics"][0];
        assert_eq!(diagnostic["line"], 5, "{}", answer.text);
        assert!(
            diagnostic["message"]
                .as_str()
                .unwrap()
                .contains("never names a path on the server"),
            "{}",
            answer.text
        );
    }
    // A part whose file name has a directory is refused before anything is written.
    let sneaky = admin
        .post_campaign(&[
            ("campaign", Some("welcome.yaml"), &campaign(None)),
            ("audience", Some("../people.csv"), AUDIENCE_CSV),
        ])
        .await;
    assert_eq!(sneaky.status, StatusCode::BAD_REQUEST, "{}", sneaky.text);
    assert_eq!(sneaky.code(), "bad_request");
    let missing = admin
        .post_campaign(&[("campaign", Some("welcome.yaml"), &campaign(None))])
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.text.contains("audience"));
    assert_eq!(admin.get("/v1/runs").await.json, Value::Array(vec![]));
}

#[tokio::test]
async fn an_audience_over_the_upload_limit_is_413() {
    let admin =
        admin_with("[admin]\ntoken_env = \"HERALD_ADMIN_TOKEN\"\nmax_upload_bytes = 64\n").await;
    let answer = admin
        .post_campaign(&[
            ("campaign", Some("welcome.yaml"), &campaign(None)),
            ("audience", Some("people.csv"), AUDIENCE_CSV),
        ])
        .await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text
    );
    assert_eq!(answer.code(), "payload_too_large");
    assert_eq!(admin.get("/v1/runs").await.json, Value::Array(vec![]));
}

#[tokio::test]
async fn pause_resume_and_cancel_a_run() {
    let admin = admin().await;
    let created = admin
        .post_campaign(&[
            ("campaign", Some("welcome.yaml"), &campaign(None)),
            ("audience", Some("people.csv"), AUDIENCE_CSV),
        ])
        .await;
    let run = created.json["run"].as_str().unwrap().to_owned();

    let paused = admin
        .post_json(
            &format!("/v1/runs/{run}/pause"),
            r#"{"reason": "wrong template"}"#,
        )
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text);
    assert_eq!(paused.json["state"], "paused");
    assert_eq!(paused.json["changed"], true);
    let shown = admin.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(shown.json["state"], "paused");
    assert_eq!(shown.json["state_reason"], "wrong template");
    assert_eq!(shown.json["waits"]["pause"]["count"], 3, "{}", shown.text);

    let unknown_key = admin
        .post_json(&format!("/v1/runs/{run}/pause"), r#"{"why": "x"}"#)
        .await;
    assert_eq!(unknown_key.status, StatusCode::BAD_REQUEST);
    assert!(unknown_key.text.contains("why"), "{}", unknown_key.text);

    let resumed = admin.post_empty(&format!("/v1/runs/{run}/resume")).await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.text);
    assert_eq!(resumed.json["changed"], true);
    let shown = admin.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(shown.json["state"], "active");
    assert!(shown.json["paused_by"].is_null());

    // Paused without a body: no reason, still recorded as the API's.
    let paused = admin.post_empty(&format!("/v1/runs/{run}/pause")).await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text);

    let cancelled = admin.post_empty(&format!("/v1/runs/{run}/cancel")).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.json["state"], "cancelled");
    let again = admin.post_empty(&format!("/v1/runs/{run}/resume")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(again.code(), "conflict");
    let pause_cancelled = admin.post_empty(&format!("/v1/runs/{run}/pause")).await;
    assert_eq!(pause_cancelled.status, StatusCode::CONFLICT);

    for action in ["pause", "resume", "cancel"] {
        let missing = admin
            .post_empty(&format!("/v1/runs/nope@2030-01-01T00:00:00Z/{action}"))
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{action}");
        assert_eq!(missing.code(), "not_found");
        let bad = admin.post_empty(&format!("/v1/runs/nope/{action}")).await;
        assert_eq!(
            bad.status,
            StatusCode::BAD_REQUEST,
            "{action}: {}",
            bad.text
        );
        assert_eq!(bad.code(), "bad_request");
    }
}

/// Needs the SQLite backend's `pause` that records who paused (branch s/sq): on the ports
/// branch alone its placeholder drops `by`.
#[tokio::test]
async fn a_pause_over_the_api_is_recorded_as_the_operators() {
    let admin = admin().await;
    let created = admin
        .post_campaign(&[
            ("campaign", Some("welcome.yaml"), &campaign(None)),
            ("audience", Some("people.csv"), AUDIENCE_CSV),
        ])
        .await;
    let run = created.json["run"].as_str().unwrap().to_owned();
    let paused = admin
        .post_json(
            &format!("/v1/runs/{run}/pause"),
            r#"{"reason": "checking"}"#,
        )
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text);
    let shown = admin.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(shown.json["paused_by"], "operator (api)", "{}", shown.text);
    assert_eq!(shown.json["state_reason"], "checking");
}

#[tokio::test]
async fn senders_are_listed_and_an_unknown_one_is_404() {
    let admin = admin().await;
    let senders = admin.get("/v1/senders").await;
    assert_eq!(senders.status, StatusCode::OK);
    assert_eq!(senders.json[0]["name"], "main");
    assert_eq!(senders.json[0]["state"], "ok");
    let resumed = admin.post_empty("/v1/senders/main/resume").await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.text);
    assert_eq!(resumed.json["unblocked"], false);
    let unknown = admin.post_empty("/v1/senders/mian/resume").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.text.contains("main"), "{}", unknown.text);
}

#[tokio::test]
async fn consent_events_follow_the_cli_rules_and_are_shown() {
    let admin = admin().await;
    let opt_out = admin
        .post_json(
            "/v1/consent",
            r#"{"phone": "+4915112345671", "channel": "whatsapp", "kind": "opt_out",
                "source": "crm", "proof": "ticket-9"}"#,
        )
        .await;
    assert_eq!(opt_out.status, StatusCode::CREATED, "{}", opt_out.text);
    assert_eq!(opt_out.json["new"], true);
    assert_eq!(opt_out.json["scope"], "all");
    let twice = admin
        .post_json(
            "/v1/consent",
            r#"{"phone": "+4915112345671", "channel": "whatsapp", "kind": "opt_out",
                "source": "crm", "proof": "ticket-9"}"#,
        )
        .await;
    assert_eq!(twice.json["new"], false, "{}", twice.text);

    let cases = [
        (
            r#"{"phone": "+4915112345671", "channel": "whatsapp", "kind": "opt_in", "source": "form"}"#,
            "scope",
        ),
        (
            r#"{"phone": "+4915112345671", "channel": "whatsapp", "kind": "opt_out", "source": "crm", "color": "red"}"#,
            "color",
        ),
        (
            r#"{"phone": "not a phone", "channel": "whatsapp", "kind": "opt_out", "source": "crm"}"#,
            "phone",
        ),
        (
            r#"{"phone": "+4915112345671", "kind": "opt_out", "source": "crm"}"#,
            "channel",
        ),
        (
            r#"{"phone": "+4915112345671", "channel": "whatsapp", "kind": "maybe", "source": "crm"}"#,
            "kind",
        ),
        (
            r#"{"phone": "+4915112345671", "channel": "whatsapp", "kind": "opt_in", "scope": "marketing", "source": "form", "occurred_at": "2026-11-03T00:00:00Z"}"#,
            "occurred_at",
        ),
    ];
    for (body, field) in cases {
        let answer = admin.post_json("/v1/consent", body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.text
        );
        assert_eq!(answer.code(), "bad_request");
        assert!(answer.text.contains(field), "{field}: {}", answer.text);
    }

    let shown = admin.get("/v1/consent/+4915112345671").await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert_eq!(shown.json["channel"], "whatsapp");
    assert_eq!(shown.json["scopes"]["all"], "opted_out");
    assert_eq!(shown.json["scopes"]["marketing"], "none");
    assert_ne!(shown.json["purposes"]["marketing"], "may_send");
    assert_eq!(shown.json["events"].as_array().unwrap().len(), 1);
    assert_eq!(shown.json["events"][0]["proof"], "ticket-9");
    let other_channel = admin.get("/v1/consent/+4915112345671?channel=sms").await;
    assert_eq!(other_channel.json["events"], Value::Array(vec![]));
    let bad = admin.get("/v1/consent/12").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
}

#[tokio::test]
async fn a_json_body_over_the_limit_is_refused() {
    let admin =
        admin_with("[admin]\ntoken_env = \"HERALD_ADMIN_TOKEN\"\nmax_body_bytes = 100\n").await;
    let big = format!(
        r#"{{"phone": "+4915112345671", "channel": "whatsapp", "kind": "opt_out", "source": "{}"}}"#,
        "x".repeat(200)
    );
    let answer = admin.post_json("/v1/consent", &big).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn without_a_token_the_admin_listens_on_loopback_only() {
    let admin = admin_with("").await;
    assert!(admin.state.token.is_none());
    let loopback = "127.0.0.1:0".parse().unwrap();
    herald_admin::check_listen(&admin.state, loopback).unwrap();
    let open = "0.0.0.0:8080".parse().unwrap();
    let error = herald_admin::check_listen(&admin.state, open).unwrap_err();
    assert!(error.to_string().contains("admin.listen"), "{error}");
    assert!(error.to_string().contains("token_env"), "{error}");
    // On loopback without a token, /v1 is open (a laptop's operator).
    assert_eq!(admin.get_anonymous("/v1/runs").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_variable_that_is_named_but_unset_stops_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let env = std::collections::BTreeMap::new();
    let settings = support::settings(
        dir.path(),
        "[admin]\ntoken_env = \"HERALD_ADMIN_TOKEN\"\n",
        &env,
    );
    let error = herald_admin::auth::Token::from_settings(&settings.admin, &env).unwrap_err();
    assert!(error.to_string().contains("HERALD_ADMIN_TOKEN"), "{error}");
}

/// A recurring campaign is refused over the API (its audience would be gone for the next
/// fires): 422 naming the campaign directory, and nothing is stored.
#[tokio::test]
async fn a_recurring_campaign_is_refused_over_the_api() {
    let admin = admin().await;
    let yaml = campaign(Some("people.csv")).replace(
        "schedule:\n  at: 2026-11-03T09:00\n  in: recipient\n",
        "schedule:\n  cron: \"0 9 * * MON\"\n  timezone: Europe/Berlin\n",
    );
    assert!(yaml.contains("cron"), "{yaml}");
    let answer = admin
        .post_campaign(&[
            ("campaign", Some("weekly.yaml"), &yaml),
            ("audience", Some("people.csv"), AUDIENCE_CSV),
        ])
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert!(answer.text.contains("--campaigns DIR"), "{}", answer.text);
    assert_eq!(admin.get("/v1/runs").await.json, Value::Array(vec![]));
}
