//! The WhatsApp adapter against a fake Cloud API (axum on 127.0.0.1:0) that records every
//! request, whatever its path, and answers as each test scripts it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use herald_channel::whatsapp::Classification;
use herald_channel::{
    Accepted, Channel, OutgoingMessage, ProviderAction, SendError, ThrottleScope, WhatsApp,
    WhatsAppConfig, WhatsAppError,
};
use serde_json::{Value, json};

const TOKEN: &str = "EAAG-secret-token-123";
const PHONE_NUMBER_ID: &str = "106540352242922";
const PATH: &str = "/v21.0/106540352242922/messages";

/// What the fake API answers.
#[derive(Clone)]
enum Reply {
    Answer {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: String,
    },
    /// Never answers, so the client's timeout fires after the request was written.
    Hang,
}

#[derive(Debug)]
struct Received {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Received>>>;

struct FakeApi {
    base_url: String,
    log: Log,
}

impl FakeApi {
    async fn spawn(reply: Reply) -> FakeApi {
        let log = Log::default();
        let app = Router::new()
            .fallback(handle)
            .with_state((log.clone(), reply));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeApi { base_url, log }
    }

    fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Waits, boundedly, until `n` requests arrived; fails with the observed count.
    async fn wait_for(&self, n: usize) {
        for _ in 0..1000 {
            if self.count() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the fake API got {} requests, expected {n}", self.count());
    }

    fn config(&self) -> WhatsAppConfig {
        let mut config = WhatsAppConfig::new(PHONE_NUMBER_ID, TOKEN);
        config.base_url = self.base_url.clone();
        config
    }

    fn whatsapp(&self) -> WhatsApp {
        WhatsApp::new(self.config()).unwrap()
    }
}

async fn handle(
    State((log, reply)): State<(Log, Reply)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    log.lock().unwrap().push(Received {
        method,
        uri,
        headers,
        body,
    });
    match reply {
        Reply::Answer {
            status,
            headers,
            body,
        } => {
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        Reply::Hang => std::future::pending().await,
    }
}

fn answer(status: u16, headers: Vec<(&'static str, &'static str)>, body: String) -> Reply {
    Reply::Answer {
        status,
        headers,
        body,
    }
}

/// A Graph API error reply with `code`.
fn error(status: u16, code: i64, message: &str) -> Reply {
    let body = json!({"error": {"message": message, "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": "details"},
        "fbtrace_id": "AbCd"}});
    answer(
        status,
        vec![("content-type", "application/json")],
        body.to_string(),
    )
}

fn accepted() -> Reply {
    let body = json!({"messaging_product": "whatsapp",
        "contacts": [{"input": "4915112345678", "wa_id": "4915112345678"}],
        "messages": [{"id": "wamid.HBgLNDkxNTExMjM0NTY3OBUCABEYEjA"}]});
    answer(
        200,
        vec![("content-type", "application/json")],
        body.to_string(),
    )
}

fn message() -> OutgoingMessage {
    OutgoingMessage {
        idempotency_key: "bf@2026-11-27T10:00/r-1".into(),
        run: "bf@2026-11-27T10:00".into(),
        recipient: "r-1".into(),
        recipient_key: "r-1".into(),
        to: "+4915112345678".into(),
        template: "black_friday".into(),
        language: "de".into(),
        header_media: Some(("image".into(), "https://cdn.example/bf.png".into())),
        header_text: None,
        params: vec![
            ("first_name".into(), "Anna".into()),
            ("code".into(), "BF26".into()),
        ],
        buttons: vec!["stop".into(), "more".into()],
    }
}

/// Sends once through the port and checks that exactly one request reached the API.
async fn send_once(reply: Reply) -> Result<Accepted, SendError> {
    let api = FakeApi::spawn(reply).await;
    let result = api.whatsapp().send(&message()).await;
    assert_eq!(api.count(), 1, "exactly one request per send: {result:?}");
    result
}

/// Sends once, classified in full, and checks that exactly one request reached the API.
async fn deliver_once(reply: Reply) -> Result<Accepted, Classification> {
    let api = FakeApi::spawn(reply).await;
    let result = api.whatsapp().deliver(&message()).await;
    assert_eq!(api.count(), 1, "exactly one request per send: {result:?}");
    result
}

#[tokio::test]
async fn requests_carry_the_documented_url_token_and_template_in_three_languages() {
    let mut ru = message();
    ru.language = "ru".into();
    ru.to = "+79161234567".into();
    ru.header_media = Some(("video".into(), "https://cdn.example/bf.mp4".into()));
    ru.params = vec![("first_name".into(), "Анна".into())];
    ru.buttons = vec!["stop".into()];
    let mut en = message();
    en.language = "en".into();
    en.to = "+447700900123".into();
    en.header_media = None;
    en.header_text = Some("Black Friday".into());
    en.params = vec![
        ("first_name".into(), "Anna".into()),
        ("code".into(), "BF26".into()),
    ];
    en.buttons = vec![];
    let mut pt = message();
    pt.language = "pt_BR".into();
    pt.to = "+5511912345678".into();
    pt.header_media = Some(("document".into(), "https://cdn.example/bf.pdf".into()));
    pt.params = vec![
        ("code".into(), "BF26".into()),
        ("first_name".into(), "João".into()),
    ];
    pt.buttons = vec!["parar".into(), "mais".into()];
    let expected = [
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "79161234567", "type": "template",
            "biz_opaque_callback_data": "h1:19:bf@2026-11-27T10:00r-1",
            "template": {"name": "black_friday", "language": {"code": "ru"}, "components": [
                {"type": "header", "parameters": [
                    {"type": "video", "video": {"link": "https://cdn.example/bf.mp4"}}]},
                {"type": "body", "parameters": [
                    {"type": "text", "parameter_name": "first_name", "text": "Анна"}]},
                {"type": "button", "sub_type": "quick_reply", "index": "0",
                 "parameters": [{"type": "payload", "payload": "stop"}]}]}}),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "447700900123", "type": "template",
            "biz_opaque_callback_data": "h1:19:bf@2026-11-27T10:00r-1",
            "template": {"name": "black_friday", "language": {"code": "en"}, "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "Black Friday"}]},
                {"type": "body", "parameters": [
                    {"type": "text", "parameter_name": "first_name", "text": "Anna"},
                    {"type": "text", "parameter_name": "code", "text": "BF26"}]}]}}),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "5511912345678", "type": "template",
            "biz_opaque_callback_data": "h1:19:bf@2026-11-27T10:00r-1",
            "template": {"name": "black_friday", "language": {"code": "pt_BR"}, "components": [
                {"type": "header", "parameters": [
                    {"type": "document", "document": {"link": "https://cdn.example/bf.pdf"}}]},
                {"type": "body", "parameters": [
                    {"type": "text", "parameter_name": "code", "text": "BF26"},
                    {"type": "text", "parameter_name": "first_name", "text": "João"}]},
                {"type": "button", "sub_type": "quick_reply", "index": "0",
                 "parameters": [{"type": "payload", "payload": "parar"}]},
                {"type": "button", "sub_type": "quick_reply", "index": "1",
                 "parameters": [{"type": "payload", "payload": "mais"}]}]}}),
    ];
    let api = FakeApi::spawn(accepted()).await;
    let whatsapp = api.whatsapp();
    for message in [&ru, &en, &pt] {
        let result = whatsapp.send(message).await;
        assert_eq!(
            result.unwrap(),
            Accepted {
                provider_id: Some("wamid.HBgLNDkxNTExMjM0NTY3OBUCABEYEjA".into())
            }
        );
    }
    let log = api.log.lock().unwrap();
    assert_eq!(log.len(), 3, "one request per message");
    for (received, expected) in log.iter().zip(&expected) {
        assert_eq!(received.method, Method::POST);
        assert_eq!(received.uri.path(), PATH);
        assert_eq!(received.uri.query(), None);
        let header = |name: &str| {
            received
                .headers
                .get(name)
                .unwrap_or_else(|| panic!("no {name} header"))
                .to_str()
                .unwrap()
        };
        assert_eq!(header("authorization"), format!("Bearer {TOKEN}"));
        assert_eq!(header("content-type"), "application/json");
        let body: Value = serde_json::from_slice(&received.body).unwrap();
        assert_eq!(&body, expected);
    }
}

#[tokio::test]
async fn the_version_and_a_base_path_are_honoured() {
    let api = FakeApi::spawn(accepted()).await;
    let mut config = api.config();
    config.base_url = format!("{}/graph/", api.base_url);
    config.api_version = "v22.0".into();
    WhatsApp::new(config)
        .unwrap()
        .send(&message())
        .await
        .unwrap();
    let log = api.log.lock().unwrap();
    assert_eq!(log[0].uri.path(), "/graph/v22.0/106540352242922/messages");
}

#[tokio::test]
async fn too_many_requests_without_a_code_throttles_the_sender_for_retry_after() {
    let result = send_once(answer(429, vec![("retry-after", "7")], String::new())).await;
    let Err(SendError::Throttled { retry_after, scope }) = result else {
        panic!("{result:?}")
    };
    assert_eq!(
        (retry_after, scope),
        (Some(Duration::from_secs(7)), ThrottleScope::Sender)
    );
}

#[tokio::test]
async fn throughput_130429_throttles_the_sender() {
    let result = send_once(error(400, 130429, "(#130429) Rate limit hit")).await;
    let Err(SendError::Throttled { retry_after, scope }) = result else {
        panic!("{result:?}")
    };
    assert_eq!((retry_after, scope), (None, ThrottleScope::Sender));
}

#[tokio::test]
async fn pair_rate_131056_throttles_only_the_recipient() {
    let mut reply = error(
        400,
        131056,
        "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    );
    if let Reply::Answer { headers, .. } = &mut reply {
        headers.push(("retry-after", "4"));
    }
    let result = send_once(reply).await;
    let Err(SendError::Throttled { retry_after, scope }) = result else {
        panic!("{result:?}")
    };
    assert_eq!(
        (retry_after, scope),
        (Some(Duration::from_secs(4)), ThrottleScope::Recipient)
    );
}

#[tokio::test]
async fn spam_rate_131048_pauses_the_sender() {
    let reply = || error(400, 131048, "(#131048) Spam rate limit hit");
    let result = deliver_once(reply()).await;
    assert!(
        matches!(&result, Err(Classification::PauseSender { code: 131048, reason })
            if reason.contains("Spam rate limit hit")),
        "{result:?}"
    );
    let result = send_once(reply()).await;
    assert!(
        matches!(&result, Err(SendError::Rejected { code, action: Some(ProviderAction::BlockSender), .. })
            if code == "131048"),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_missing_template_132001_pauses_the_campaign() {
    let reply = || {
        error(
            404,
            132001,
            "(#132001) Template name does not exist in the translation",
        )
    };
    let result = deliver_once(reply()).await;
    assert!(
        matches!(
            &result,
            Err(Classification::PauseCampaign { code: 132001, .. })
        ),
        "{result:?}"
    );
    let result = send_once(reply()).await;
    assert!(
        matches!(&result, Err(SendError::Rejected { code, detail, action: Some(ProviderAction::TemplateError) })
            if code == "132001" && detail.contains("does not exist")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_marketing_opt_out_131050_is_reported_as_an_opt_out() {
    let reply = || error(400, 131050, "(#131050) User has stopped marketing messages");
    let result = deliver_once(reply()).await;
    assert!(
        matches!(&result, Err(Classification::OptOut { code: 131050, .. })),
        "{result:?}"
    );
    let result = send_once(reply()).await;
    assert!(
        matches!(&result, Err(SendError::Rejected { code, action: Some(ProviderAction::OptOut), .. })
            if code == "131050"),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_undeliverable_131026_fails_the_delivery_with_its_code() {
    let result = send_once(error(400, 131026, "(#131026) Message undeliverable")).await;
    let Err(SendError::Rejected {
        code,
        detail,
        action: None,
    }) = result
    else {
        panic!("{result:?}")
    };
    assert_eq!(code, "131026");
    assert!(detail.contains("Message undeliverable"), "{detail}");
}

#[tokio::test]
async fn service_unavailable_131016_is_retryable() {
    let result = send_once(error(503, 131016, "(#131016) Service unavailable")).await;
    assert!(
        matches!(result, Err(SendError::Retryable { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_server_error_without_a_code_is_unknown() {
    for body in [String::new(), "<html>oops</html>".into()] {
        let result = send_once(answer(500, vec![], body)).await;
        assert!(
            matches!(&result, Err(SendError::Unknown(detail)) if detail.contains("500")),
            "{result:?}"
        );
    }
    // A 503 is "unknown" too unless the body carries the not-processed code.
    let result = send_once(error(503, 131000, "(#131000) Something went wrong")).await;
    assert!(matches!(result, Err(SendError::Unknown(_))), "{result:?}");
}

#[tokio::test]
async fn a_timeout_after_the_request_was_written_is_unknown_and_the_api_got_it() {
    let api = FakeApi::spawn(Reply::Hang).await;
    let mut config = api.config();
    config.timeout = Duration::from_millis(500);
    config.connect_timeout = Duration::from_millis(500);
    let result = WhatsApp::new(config).unwrap().send(&message()).await;
    assert!(matches!(result, Err(SendError::Unknown(_))), "{result:?}");
    api.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(api.count(), 1);
}

#[tokio::test]
async fn a_connection_that_never_opened_is_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let mut config = WhatsAppConfig::new(PHONE_NUMBER_ID, TOKEN);
    config.base_url = format!("http://{address}");
    let result = WhatsApp::new(config).unwrap().send(&message()).await;
    assert!(
        matches!(result, Err(SendError::Retryable { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_invalid_phone_is_rejected_without_a_request() {
    let api = FakeApi::spawn(accepted()).await;
    let mut message = message();
    message.to = "+49 151 1234".into();
    let result = api.whatsapp().send(&message).await;
    assert!(
        matches!(&result, Err(SendError::Rejected { code, .. }) if code == "invalid_request"),
        "{result:?}"
    );
    assert_eq!(api.count(), 0);
}

#[tokio::test]
async fn the_token_never_shows() {
    let api = FakeApi::spawn(error(
        401,
        190,
        &format!("Invalid OAuth access token {TOKEN}"),
    ))
    .await;
    let whatsapp = api.whatsapp();
    let config = format!("{:?}", api.config());
    let client = format!("{whatsapp:?}");
    let result = whatsapp.send(&message()).await;
    let Err(SendError::Rejected {
        code,
        detail,
        action,
    }) = &result
    else {
        panic!("{result:?}")
    };
    assert_eq!(code, "190");
    assert_eq!(*action, Some(ProviderAction::BlockSender));
    assert!(
        detail.contains("Invalid OAuth access token <redacted>"),
        "{detail}"
    );
    for text in [
        config,
        client,
        format!("{result:?}"),
        result.unwrap_err().to_string(),
    ] {
        assert!(!text.contains(TOKEN), "{text}");
    }
    let mut config = api.config();
    config.token = format!("{TOKEN}\n");
    let error = WhatsApp::new(config).unwrap_err();
    assert!(matches!(error, WhatsAppError::InvalidToken), "{error:?}");
    assert!(!format!("{error:?} {error}").contains(TOKEN));
}

#[test]
fn invalid_configurations_are_refused() {
    let base = || WhatsAppConfig::new(PHONE_NUMBER_ID, TOKEN);
    let defaults = base();
    assert_eq!(
        (defaults.base_url.as_str(), defaults.api_version.as_str()),
        ("https://graph.facebook.com", "v21.0")
    );
    type Expected = fn(&WhatsAppError) -> bool;
    let cases: Vec<(WhatsAppConfig, Expected)> = vec![
        (
            WhatsAppConfig {
                base_url: "not a url".into(),
                ..base()
            },
            |e| matches!(e, WhatsAppError::InvalidUrl(_)),
        ),
        (
            WhatsAppConfig {
                base_url: "ftp://graph.facebook.com".into(),
                ..base()
            },
            |e| matches!(e, WhatsAppError::UnsupportedScheme(_)),
        ),
        (
            WhatsAppConfig {
                api_version: String::new(),
                ..base()
            },
            |e| matches!(e, WhatsAppError::InvalidSegment("api_version")),
        ),
        (
            WhatsAppConfig {
                phone_number_id: "1/../2".into(),
                ..base()
            },
            |e| matches!(e, WhatsAppError::InvalidSegment("phone_number_id")),
        ),
        (
            WhatsAppConfig {
                token: " ".into(),
                ..base()
            },
            |e| matches!(e, WhatsAppError::InvalidToken),
        ),
        (
            WhatsAppConfig {
                timeout: Duration::ZERO,
                ..base()
            },
            |e| matches!(e, WhatsAppError::InvalidTimeouts(_)),
        ),
        (
            WhatsAppConfig {
                timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(2),
                ..base()
            },
            |e| matches!(e, WhatsAppError::InvalidTimeouts(_)),
        ),
    ];
    for (config, expected) in cases {
        let error = WhatsApp::new(config.clone()).unwrap_err();
        assert!(expected(&error), "{config:?}: {error:?}");
    }
    assert!(WhatsApp::new(base()).is_ok());
}

#[test]
fn the_channel_is_named_whatsapp() {
    let whatsapp = WhatsApp::new(WhatsAppConfig::new(PHONE_NUMBER_ID, TOKEN)).unwrap();
    assert_eq!(whatsapp.name(), "whatsapp");
}
