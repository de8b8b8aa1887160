//! The webhook adapter against a real HTTP receiver (axum on 127.0.0.1:0) that records every
//! request and answers as each test scripts it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use herald_channel::webhook::{NOT_PROCESSED_HEADER, verify_signature};
use herald_channel::{
    Accepted, Channel, OutgoingMessage, SendError, ThrottleScope, Webhook, WebhookConfig,
};
use serde_json::{Value, json};

const SECRET: &str = "s3cret";

/// What the receiver answers.
#[derive(Clone)]
enum Reply {
    Answer {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: &'static str,
    },
    /// Never answers, so the client's timeout fires after the request was written.
    Hang,
}

#[derive(Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Received>>>;

struct Receiver {
    url: String,
    log: Log,
}

impl Receiver {
    async fn spawn(reply: Reply) -> Receiver {
        let log = Log::default();
        let app = Router::new()
            .route("/hook", post(handle))
            .with_state((log.clone(), reply));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, log }
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
        panic!("the receiver got {} requests, expected {n}", self.count());
    }

    fn webhook(&self, secret: Option<&str>) -> Webhook {
        let mut config = WebhookConfig::new(&self.url);
        config.secret = secret.map(str::to_owned);
        Webhook::new(config).unwrap()
    }
}

async fn handle(
    State((log, reply)): State<(Log, Reply)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    log.lock().unwrap().push(Received { headers, body });
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

fn answer(status: u16, headers: Vec<(&'static str, &'static str)>, body: &'static str) -> Reply {
    Reply::Answer {
        status,
        headers,
        body,
    }
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
            ("name".into(), "Ada".into()),
            ("code".into(), "BF26".into()),
        ],
        buttons: vec!["stop".into()],
    }
}

/// Sends once and checks that exactly one request reached the receiver: no internal retries.
async fn send_once(reply: Reply) -> Result<Accepted, SendError> {
    let receiver = Receiver::spawn(reply).await;
    let result = receiver.webhook(Some(SECRET)).send(&message()).await;
    assert_eq!(
        receiver.count(),
        1,
        "exactly one request per send: {result:?}"
    );
    result
}

#[tokio::test]
async fn accepted_request_carries_the_documented_body_headers_and_a_valid_signature() {
    let receiver = Receiver::spawn(answer(200, vec![], r#"{"id": "wh-1"}"#)).await;
    let result = receiver.webhook(Some(SECRET)).send(&message()).await;
    assert_eq!(
        result.unwrap(),
        Accepted {
            provider_id: Some("wh-1".into())
        }
    );

    let log = receiver.log.lock().unwrap();
    assert_eq!(log.len(), 1);
    let Received { headers, body } = &log[0];
    let header = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    };
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("idempotency-key"), "bf@2026-11-27T10:00/r-1");
    let timestamp = header("x-herald-timestamp");
    let signature = header("x-herald-signature");
    assert!(
        verify_signature(SECRET, timestamp, body, signature),
        "{signature}"
    );
    assert!(!verify_signature("wrong", timestamp, body, signature));

    let mut json: Value = serde_json::from_slice(body).unwrap();
    let sent_at = json
        .as_object_mut()
        .unwrap()
        .remove("sent_at")
        .expect("sent_at");
    let sent_at = chrono::DateTime::parse_from_rfc3339(sent_at.as_str().unwrap()).unwrap();
    assert_eq!(
        sent_at.timestamp().to_string(),
        timestamp,
        "sent_at and the signed timestamp agree"
    );
    let expected = json!({
        "idempotency_key": "bf@2026-11-27T10:00/r-1",
        "run": "bf@2026-11-27T10:00",
        "recipient": "r-1",
        "to": "+4915112345678",
        "template": "black_friday",
        "language": "de",
        "header": {"media": {"kind": "image", "link": "https://cdn.example/bf.png"}},
        "params": {"name": "Ada", "code": "BF26"},
        "buttons": ["stop"],
    });
    assert_eq!(json, expected);
}

#[tokio::test]
async fn without_a_secret_requests_are_not_signed() {
    let receiver = Receiver::spawn(answer(204, vec![], "")).await;
    let result = receiver.webhook(None).send(&message()).await;
    assert_eq!(result.unwrap(), Accepted { provider_id: None });
    let log = receiver.log.lock().unwrap();
    assert!(log[0].headers.get("x-herald-timestamp").is_some());
    assert!(log[0].headers.get("x-herald-signature").is_none());
}

#[tokio::test]
async fn a_non_ascii_idempotency_key_travels_as_utf8() {
    let receiver = Receiver::spawn(answer(200, vec![], "")).await;
    let mut message = message();
    message.idempotency_key = "rabatt-ä@1/r-1".into();
    receiver.webhook(Some(SECRET)).send(&message).await.unwrap();
    let log = receiver.log.lock().unwrap();
    assert_eq!(
        log[0].headers["idempotency-key"].as_bytes(),
        "rabatt-ä@1/r-1".as_bytes()
    );
}

#[tokio::test]
async fn an_idempotency_key_with_a_control_character_is_rejected_without_a_request() {
    let receiver = Receiver::spawn(answer(200, vec![], "")).await;
    let mut message = message();
    message.idempotency_key = "bf@1/r-1\r\nX-Evil: 1".into();
    let result = receiver.webhook(Some(SECRET)).send(&message).await;
    assert!(
        matches!(&result, Err(SendError::Rejected { code, .. }) if code == "invalid_request"),
        "{result:?}"
    );
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn too_many_requests_throttles_the_sender_for_retry_after() {
    let result = send_once(answer(429, vec![("retry-after", "7")], "")).await;
    let Err(SendError::Throttled { retry_after, scope }) = result else {
        panic!("{result:?}")
    };
    assert_eq!(
        (retry_after, scope),
        (Some(Duration::from_secs(7)), ThrottleScope::Sender)
    );
}

#[tokio::test]
async fn service_unavailable_not_processed_is_retryable() {
    for reply in [
        answer(
            503,
            vec![("content-type", "application/json")],
            r#"{"error": {"code": "not_processed"}}"#,
        ),
        answer(503, vec![(NOT_PROCESSED_HEADER, "1")], "busy"),
    ] {
        let result = send_once(reply).await;
        assert!(
            matches!(result, Err(SendError::Retryable { .. })),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn other_server_errors_are_unknown() {
    for status in [500, 502, 503] {
        let result = send_once(answer(status, vec![], "oops")).await;
        assert!(
            matches!(&result, Err(SendError::Unknown(detail)) if detail.contains(&status.to_string())),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn client_errors_are_rejected_with_the_status_and_body() {
    let result = send_once(answer(400, vec![], "template unknown")).await;
    let Err(SendError::Rejected {
        code,
        detail,
        action: None,
    }) = result
    else {
        panic!("{result:?}")
    };
    assert_eq!(
        (code.as_str(), detail.as_str()),
        ("http_400", "template unknown")
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let result = send_once(answer(307, vec![("location", "/elsewhere")], "")).await;
    assert!(
        matches!(&result, Err(SendError::Rejected { code, .. }) if code == "http_307"),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_timeout_after_the_request_was_written_is_unknown_and_the_receiver_got_it() {
    let receiver = Receiver::spawn(Reply::Hang).await;
    let mut config = WebhookConfig::new(&receiver.url);
    config.timeout = Duration::from_millis(500);
    config.connect_timeout = Duration::from_millis(500);
    let result = Webhook::new(config).unwrap().send(&message()).await;
    assert!(matches!(result, Err(SendError::Unknown(_))), "{result:?}");
    receiver.wait_for(1).await;
    assert_eq!(receiver.count(), 1);
}
