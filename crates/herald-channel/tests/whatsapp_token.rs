//! The access token: refused when too short to be one, and taken out of the provider's text
//! only where it stands whole (issue 10, item 15).

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use herald_channel::{
    Channel, OutgoingMessage, SendError, WhatsApp, WhatsAppConfig, WhatsAppError,
};
use serde_json::json;

const TOKEN: &str = "EAAGm0PX4ZCpsBAKZC9";

fn message() -> OutgoingMessage {
    OutgoingMessage {
        idempotency_key: "c@2026-11-27T10:00/r-1".into(),
        run: "c@2026-11-27T10:00".into(),
        recipient: "r-1".into(),
        recipient_key: "r-1".into(),
        to: "+4915112345678".into(),
        template: "notice".into(),
        language: "en".into(),
        header_media: None,
        header_text: None,
        params: vec![],
        buttons: vec![],
    }
}

/// A fake Graph API answering every request with error 190 and `text` as its message.
async fn api(text: String) -> String {
    let body = json!({"error": {"message": text, "type": "OAuthException", "code": 190}});
    let app = Router::new().fallback(move || {
        let body = body.to_string();
        async move { (StatusCode::UNAUTHORIZED, body).into_response() }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base_url
}

#[test]
fn a_token_shorter_than_16_characters_is_refused() {
    for token in ["a", "short-token", "fifteen-chars-x"] {
        let error = WhatsApp::new(WhatsAppConfig::new("1065", token)).unwrap_err();
        assert!(
            matches!(error, WhatsAppError::TokenTooShort(n) if n == token.len()),
            "{token}: {error:?}"
        );
        if token.len() > 1 {
            assert!(!error.to_string().contains(token), "{error}");
        }
    }
    assert!(WhatsApp::new(WhatsAppConfig::new("1065", "sixteen-chars-xy")).is_ok());
}

#[tokio::test]
async fn only_whole_occurrences_of_the_token_are_redacted() {
    let text = format!(
        "Invalid OAuth access token {TOKEN}. Tokens look like x{TOKEN}x; error validating access token"
    );
    let mut config = WhatsAppConfig::new("1065", TOKEN);
    config.base_url = api(text).await;
    let result = WhatsApp::new(config).unwrap().send(&message()).await;
    let Err(SendError::Rejected { detail, .. }) = &result else {
        panic!("{result:?}")
    };
    assert!(
        detail.contains(&format!(
            "Invalid OAuth access token <redacted>. Tokens look like x{TOKEN}x; error validating access token"
        )),
        "{detail}"
    );
}
