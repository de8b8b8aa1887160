//! WhatsApp webhook helpers: a sender whose webhooks the admin takes, Meta's payload shapes,
//! signed posts.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use herald_channel::whatsapp::hub_signature;
use herald_core::{Outcome, PhoneNumber, RecipientId, RecipientKey, RunId};
use herald_store::{DeliveryKey, Terminal};

use super::{Admin, Answer};

pub const PNID: &str = "106540352242922";
pub const APP_SECRET: &str = "meta-app-secret-1";
pub const VERIFY: &str = "verify-me-please";

/// A WhatsApp sender whose webhooks the admin takes (its channel is never built here).
pub const WHATSAPP: &str = "[admin]\ntoken_env = \"HERALD_ADMIN_TOKEN\"\n\n\
    [webhooks]\nverify_token_env = \"WA_VERIFY\"\n\n\
    [senders.wa]\nchannel = \"whatsapp\"\nphone_number_id = \"106540352242922\"\n\
    token_env = \"WA_TOKEN\"\napp_secret_env = \"WA_APP_SECRET\"\n";

pub fn env() -> BTreeMap<String, String> {
    let mut env = super::env();
    env.insert("WA_APP_SECRET".into(), APP_SECRET.into());
    env.insert("WA_VERIFY".into(), VERIFY.into());
    env.insert("WA_TOKEN".into(), "a-token-long-enough-0123".into());
    env
}

pub async fn admin() -> Admin {
    super::admin_with_env(WHATSAPP, env()).await
}

pub fn envelope(value: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PNID}"}},{value}}}}}]}}]}}"#
    )
}

pub fn text(from: &str, id: &str, at: i64, body: &str) -> String {
    envelope(&format!(
        r#""contacts":[{{"wa_id":"{from}"}}],"messages":[{{"from":"{from}","id":"{id}","timestamp":"{at}","type":"text","text":{{"body":{}}}}}]"#,
        serde_json::to_string(body).unwrap()
    ))
}

pub fn button(from: &str, id: &str, at: i64, payload: &str, context: &str) -> String {
    envelope(&format!(
        r#""messages":[{{"from":"{from}","id":"{id}","timestamp":"{at}","type":"button","context":{{"from":"15550783881","id":"{context}"}},"button":{{"payload":"{payload}","text":"x"}}}}]"#
    ))
}

pub fn status(wamid: &str, status: &str, at: i64, callback: Option<&str>) -> String {
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

pub async fn post(admin: &Admin, body: &str, signature: Option<String>) -> Answer {
    let mut request =
        Request::post("/webhooks/whatsapp").header("content-type", "application/json");
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    admin
        .send(request.body(Body::from(body.to_owned())).unwrap())
        .await
}

pub async fn signed(admin: &Admin, body: &str) -> Answer {
    post(
        admin,
        body,
        Some(hub_signature(APP_SECRET, body.as_bytes())),
    )
    .await
}

pub fn unix(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub fn phone(e164: &str) -> PhoneNumber {
    PhoneNumber::parse(e164, None).unwrap()
}

pub fn key(run: &str, id: &str) -> DeliveryKey {
    DeliveryKey {
        run: RunId::parse(run).unwrap(),
        recipient: RecipientKey::recipient(RecipientId::parse(id).unwrap()),
    }
}

/// Stores the helper campaign (three recipients, deferred to tomorrow's window) and returns
/// its run id.
pub async fn campaign_run(admin: &Admin, yaml: &str, csv: &str) -> String {
    let created = admin
        .post_campaign(&[
            ("campaign", Some("c.yaml"), yaml),
            ("audience", Some("people.csv"), csv),
        ])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.json["run"].as_str().unwrap().to_owned()
}

pub fn sent_as(wamid: &str) -> Terminal {
    Terminal {
        outcome: Outcome::Sent,
        detail: Some(wamid.to_owned()),
    }
}

pub const PROMO: &str = "id: promo\nname: Promo\npurpose: transactional\naudience:\n  \
    default_country: DE\ntemplate:\n  name: promo\n  language: { default: en }\n  buttons:\n    \
    - { payload: more, on_reply: { tag: interested } }\n    - { payload: stop, on_reply: opt_out }\n    \
    - { payload: nothing }\nschedule:\n  at: 2026-11-03T09:00\n  in: recipient\nsend_window:\n  \
    hours: { daily: \"08:00-20:00\" }\n  unknown_timezone: conservative\n";

/// A `failed` status with Meta's error `code`, for the message `wamid` sent to `recipient`
/// (digits, as Meta writes them).
pub fn failed(wamid: &str, code: i64, at: i64, recipient: &str) -> String {
    envelope(&format!(
        r#""statuses":[{{"id":"{wamid}","status":"failed","timestamp":"{at}","recipient_id":"{recipient}","errors":[{{"code":{code},"title":"x","error_data":{{"details":"x"}}}}]}}]"#
    ))
}
