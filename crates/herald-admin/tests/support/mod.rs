//! The admin under test: a router over a SQLite store in a temp dir, a manual clock, a token.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, TimeZone, Utc};
use herald_admin::AdminState;
use herald_app::Settings;
use herald_app::metrics::Metrics;
use herald_store::StoreTime;
use herald_testkit::ManualClock;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub mod whatsapp;

pub const TOKEN: &str = "s3cret-token";

/// A router and what it runs on.
pub struct Admin {
    pub router: Router,
    pub state: AdminState,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

pub fn start_instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap()
}

/// The config text for `dir`, with `extra` appended.
pub fn config(dir: &std::path::Path, extra: &str) -> String {
    config_on(
        &format!("sqlite = \"{}\"", dir.join("herald.db").display()),
        dir,
        extra,
    )
}

/// The config text with this `[store]` line.
pub fn config_on(store: &str, dir: &std::path::Path, extra: &str) -> String {
    format!(
        "[store]\n{store}\n\n[senders.main]\nchannel = \"outbox\"\npath = \"{out}\"\n\n{extra}",
        out = dir.join("outbox.jsonl").display(),
    )
}

pub fn settings(dir: &std::path::Path, extra: &str, env: &BTreeMap<String, String>) -> Settings {
    let file = dir.join("herald.toml");
    std::fs::write(&file, config(dir, extra)).unwrap();
    Settings::load(Some(&file), env).unwrap()
}

pub fn env() -> BTreeMap<String, String> {
    BTreeMap::from([("HERALD_ADMIN_TOKEN".to_owned(), TOKEN.to_owned())])
}

/// An admin with a token.
pub async fn admin() -> Admin {
    admin_with("[admin]\ntoken_env = \"HERALD_ADMIN_TOKEN\"\n").await
}

/// An admin with this extra config.
pub async fn admin_with(extra: &str) -> Admin {
    admin_with_env(extra, env()).await
}

/// An admin with this extra config and environment.
pub async fn admin_with_env(extra: &str, env: BTreeMap<String, String>) -> Admin {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), extra, &env);
    let clock = Arc::new(ManualClock::new(start_instant()));
    let stores = herald_app::open_store_with(&settings, &env, StoreTime::Clock(clock.clone()))
        .await
        .unwrap();
    let state = AdminState::new(
        stores,
        settings,
        env,
        clock.clone(),
        Metrics::install().unwrap(),
    )
    .unwrap();
    Admin {
        router: herald_admin::router(state.clone()),
        state,
        clock,
        dir,
    }
}

/// An answer: status, content type, body as JSON (or a string value when not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub text: String,
    pub json: Value,
}

impl Answer {
    /// The stable error code of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("(none)")
    }
}

impl Admin {
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        Answer {
            status,
            content_type,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(authorized(Request::get(path)).body(Body::empty()).unwrap())
            .await
    }

    pub async fn get_anonymous(&self, path: &str) -> Answer {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post_json(&self, path: &str, body: &str) -> Answer {
        self.send(
            authorized(Request::post(path))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_owned()))
                .unwrap(),
        )
        .await
    }

    pub async fn post_empty(&self, path: &str) -> Answer {
        self.send(authorized(Request::post(path)).body(Body::empty()).unwrap())
            .await
    }

    /// `POST /v1/campaigns` with these parts: (part name, file name, content).
    pub async fn post_campaign(&self, parts: &[(&str, Option<&str>, &str)]) -> Answer {
        let (content_type, body) = multipart(parts);
        self.send(
            authorized(Request::post("/v1/campaigns"))
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }
}

/// A multipart/form-data body of these parts: its content type and text.
pub fn multipart(parts: &[(&str, Option<&str>, &str)]) -> (String, String) {
    let boundary = "herald-test-boundary-7d1f";
    let mut body = String::new();
    for (name, file, content) in parts {
        body.push_str(&format!("--{boundary}\r\n"));
        match file {
            Some(file) => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\r\n"
            )),
            None => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
            )),
        }
        body.push_str(content);
        body.push_str("\r\n");
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn authorized(builder: axum::http::request::Builder) -> axum::http::request::Builder {
    builder.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
}

/// A valid campaign; `source` is the `audience.source` line's value (`None`: omitted).
pub fn campaign(source: Option<&str>) -> String {
    let source = source
        .map(|s| format!("  source: {s}\n"))
        .unwrap_or_default();
    format!(
        "id: api-welcome\nname: Welcome\npurpose: transactional\naudience:\n{source}  \
         default_country: DE\ntemplate:\n  name: welcome\n  language: {{ default: en }}\n\
         schedule:\n  at: 2026-11-03T09:00\n  in: recipient\nsend_window:\n  hours: {{ daily: \
         \"08:00-20:00\" }}\n  unknown_timezone: conservative\n"
    )
}

/// Three recipients, one of them twice.
pub const AUDIENCE_CSV: &str = "id,phone,timezone\nc-1,+4915112345671,Europe/Berlin\n\
                                c-2,+4915112345672,Europe/Berlin\nc-3,+4915112345673,\n";
