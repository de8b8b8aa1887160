//! A webhook receiver on 127.0.0.1:0 standing in for the provider: it records every request it
//! receives (recipient, receipt instant) before answering, and can hold chosen requests open so
//! that a test can kill `herald` while they are in flight.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

#[derive(Default)]
pub(crate) struct Log {
    /// (recipient, receipt instant, held) in arrival order.
    pub(crate) requests: Vec<(String, Instant, bool)>,
    /// Request ordinals (0-based, counted over the receiver's life) to hold open.
    pub(crate) hold: BTreeSet<usize>,
    /// How long every answer takes.
    pub(crate) delay: Duration,
    /// How to answer.
    pub(crate) answer: Answer,
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 200 to everything.
    #[default]
    Ok,
    /// Cloud API throughput error 130429 (HTTP 429, `Retry-After: 1`) to every third request.
    ThrottleEveryThird,
    /// HTTP 500 without an error code to each recipient's first request, 200 after.
    FailFirstWith500,
    /// Cloud API throughput error 130429 (HTTP 429) with `Retry-After: 86400` to everything.
    ThrottleForADay,
    /// Cloud API 131048 (spam rate limit: the sender is blocked) to everything.
    BlockSender,
}

pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    pub(crate) log: Arc<Mutex<Log>>,
    runtime: tokio::runtime::Runtime,
}

impl Receiver {
    pub(crate) fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let app = Router::new()
            .route("/hook", post(receive))
            // The Cloud API's message path, for WhatsApp senders.
            .route("/{version}/{phone_number_id}/messages", post(receive))
            .with_state(Arc::clone(&log));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, log, runtime }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub(crate) fn hold(&self, ordinals: impl IntoIterator<Item = usize>) {
        self.log.lock().unwrap().hold.extend(ordinals);
    }

    pub(crate) fn set_answer(&self, answer: Answer) {
        self.log.lock().unwrap().answer = answer;
    }

    pub(crate) fn set_delay(&self, delay: Duration) {
        self.log.lock().unwrap().delay = delay;
    }

    pub(crate) fn count(&self) -> usize {
        self.log.lock().unwrap().requests.len()
    }

    pub(crate) fn held(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.2)
            .count()
    }

    pub(crate) fn recipients(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .requests
            .iter()
            .map(|r| r.0.clone())
            .collect()
    }

    pub(crate) fn receipt_times(&self) -> Vec<Instant> {
        self.log
            .lock()
            .unwrap()
            .requests
            .iter()
            .map(|r| r.1)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Held handlers sleep for an hour; do not wait for them.
        let runtime = std::mem::replace(
            &mut self.runtime,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        );
        runtime.shutdown_background();
    }
}

async fn receive(
    State(log): State<Arc<Mutex<Log>>>,
    body: String,
) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    // A webhook body names the recipient; a Cloud API body only has the number (`to`).
    let recipient = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v["recipient"]
                .as_str()
                .or(v["to"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let (held, delay, answer, ordinal, seen_before) = {
        let mut log = log.lock().unwrap();
        let ordinal = log.requests.len();
        let held = log.hold.contains(&ordinal);
        let seen_before = log.requests.iter().any(|r| r.0 == recipient);
        log.requests.push((recipient, Instant::now(), held));
        (held, log.delay, log.answer, ordinal, seen_before)
    };
    if held {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    tokio::time::sleep(delay).await;
    const OK: &str = r#"{"messages":[{"id":"wamid.test"}]}"#;
    match answer {
        Answer::ThrottleEveryThird if ordinal % 3 == 2 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            r#"{"error":{"code":130429,"message":"Rate limit hit"}}"#,
        ),
        Answer::FailFirstWith500 if !seen_before => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("x-test", "500")],
            "internal error",
        ),
        Answer::ThrottleForADay => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "86400")],
            r#"{"error":{"code":130429,"message":"Rate limit hit"}}"#,
        ),
        Answer::BlockSender => (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            r#"{"error":{"code":131048,"message":"Spam rate limit hit"}}"#,
        ),
        _ => (StatusCode::OK, [("content-type", "application/json")], OK),
    }
}
