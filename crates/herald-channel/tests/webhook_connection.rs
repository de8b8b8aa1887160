//! The webhook adapter when HTTP never gets a say: the connection is never made (retryable,
//! nothing was sent) or is lost after the request went out (unknown). Also its configuration.

use std::time::Duration;

use herald_channel::{Channel, OutgoingMessage, SendError, Webhook, WebhookConfig};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

fn message() -> OutgoingMessage {
    OutgoingMessage {
        idempotency_key: "bf@1/r-1".into(),
        run: "bf@1".into(),
        recipient: "r-1".into(),
        recipient_key: "r-1".into(),
        to: "+4915112345678".into(),
        template: "black_friday".into(),
        language: "de".into(),
        header_media: None,
        header_text: None,
        params: vec![],
        buttons: vec![],
    }
}

async fn send_to(url: String, connect_timeout: Duration) -> Result<(), SendError> {
    let mut config = WebhookConfig::new(url);
    config.connect_timeout = connect_timeout;
    Webhook::new(config)
        .unwrap()
        .send(&message())
        .await
        .map(drop)
}

fn assert_retryable(result: &Result<(), SendError>) {
    assert!(
        matches!(result, Err(SendError::Retryable { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_port_with_nothing_listening_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let result = send_to(
        format!("http://127.0.0.1:{port}/hook"),
        Duration::from_secs(3),
    )
    .await;
    assert_retryable(&result);
}

#[tokio::test]
async fn a_host_that_does_not_resolve_is_retryable() {
    // `.invalid` never resolves (RFC 6761).
    let url = "http://herald-webhook-test.invalid/hook".to_owned();
    assert_retryable(&send_to(url, Duration::from_secs(3)).await);
}

/// A connect timeout is a timeout too, but nothing was sent: it must not read as `Unknown`.
#[tokio::test]
async fn a_connect_timeout_is_retryable() {
    // A listener that never accepts, with its accept queue filled: the kernel then drops new
    // SYNs, so a connect hangs until the client gives up.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    let mut stalled = false;
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => queued.push(stream),
            Ok(Err(error)) => panic!("filling the accept queue: {error}"),
            Err(_elapsed) => {
                stalled = true;
                break;
            }
        }
    }
    assert!(
        stalled,
        "the accept queue never filled; this test cannot reach a connect timeout"
    );

    let result = send_to(format!("http://{addr}/hook"), Duration::from_millis(300)).await;
    assert_retryable(&result);
    drop(queued);
}

#[tokio::test]
async fn a_connection_closed_after_the_request_is_unknown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = vec![0_u8; 4096];
        let read = stream.read(&mut request).await.unwrap();
        request.truncate(read);
        // Dropping the stream closes the connection without an answer.
        request
    });
    let result = send_to(format!("http://{addr}/hook"), Duration::from_secs(3)).await;
    assert!(matches!(result, Err(SendError::Unknown(_))), "{result:?}");
    let request = server.await.unwrap();
    assert!(
        request.starts_with(b"POST /hook "),
        "{}",
        String::from_utf8_lossy(&request)
    );
}

#[test]
fn a_config_that_cannot_work_is_refused() {
    let refusal = |url: &str, timeout: u64, connect: u64| {
        let mut config = WebhookConfig::new(url);
        config.timeout = Duration::from_secs(timeout);
        config.connect_timeout = Duration::from_secs(connect);
        Webhook::new(config)
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default()
    };
    let rows = [
        ("https://example.com/hook", 10, 3, ""),
        ("http://127.0.0.1:8080/hook", 3, 3, ""),
        ("not a url", 10, 3, "not a valid URL"),
        ("ftp://example.com/hook", 10, 3, "not \"ftp\""),
        ("https://example.com/hook", 0, 0, "greater than zero"),
        ("https://example.com/hook", 2, 3, "exceeds timeout"),
    ];
    for (url, timeout, connect, want) in rows {
        let got = refusal(url, timeout, connect);
        assert!(
            got.contains(want) && got.is_empty() == want.is_empty(),
            "{url}: {got:?}"
        );
    }
}

#[test]
fn the_config_debug_hides_the_secret() {
    let mut config = WebhookConfig::new("https://example.com/hook");
    config.secret = Some("s3cret".into());
    let debug = format!("{config:?}");
    assert!(
        debug.contains("redacted") && !debug.contains("s3cret"),
        "{debug}"
    );
}
