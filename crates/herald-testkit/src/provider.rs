//! A fake provider on 127.0.0.1:0: the WhatsApp Cloud API's message path and a plain webhook
//! path, both answered by one scripted handler that records every request before answering.
//!
//! # Why one fake, scripted per request
//! End-to-end tests assert on what reached the provider and when (at most one request per
//! recipient, the rate measured at receipt, nothing between a block and its resume), and they
//! provoke the provider's answers that drive Herald's shared state (a 429 with `Retry-After`, a
//! 131048 block, a 500 without a code, a request held open while a process is killed). A rule
//! says which requests an answer applies to (the Nth, every Nth, those to one phone, each
//! phone's first), so a test scripts exactly the request that matters and lets the rest succeed.
//! The log is kept in arrival order with both a monotonic instant (to measure rates) and the
//! wall-clock instant (to compare with instants Herald stores, such as a throttle's end).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};

/// The webhook path ([`FakeProvider::url`]).
const HOOK_PATH: &str = "/hook";

/// The body of an accepted Cloud API message.
const ACCEPTED: &str = r#"{"messages":[{"id":"wamid.test"}]}"#;

/// How long a held request stays open: longer than any test, so only a kill ends it.
const HOLD: Duration = Duration::from_secs(3600);

/// Which requests a [`Rule`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Every request.
    Any,
    /// The request with this 0-based ordinal, counted over the provider's life.
    Ordinal(usize),
    /// Requests whose ordinal is `offset` modulo `every`.
    EveryNth {
        /// The period.
        every: usize,
        /// The ordinal within each period (0-based).
        offset: usize,
    },
    /// Requests to this recipient (the Cloud API's `to`, digits only, or a webhook's
    /// `recipient`).
    To(String),
    /// Each recipient's first request.
    FirstPerRecipient,
}

/// How a matched request is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 with a message id.
    Accept,
    /// 429 with the Cloud API's throughput error 130429 and `Retry-After` in seconds.
    Throttle {
        /// The `Retry-After` header's value.
        retry_after_secs: u64,
    },
    /// A Cloud API error body with this code (131048 blocks the sender, 131050 is a STOP,
    /// 132xxx a template error) and HTTP status.
    CloudError {
        /// The HTTP status.
        status: u16,
        /// The error code in the body.
        code: u32,
    },
    /// 500 without an error code: the request may or may not have been taken.
    ServerError,
    /// Kept open for an hour, so a test can kill Herald while it is in flight.
    Hold,
}

impl Reply {
    /// The Cloud API's "spam rate limit hit", which blocks the sender.
    pub const BLOCK: Reply = Reply::CloudError {
        status: 400,
        code: 131_048,
    };
}

/// One scripted answer: requests that match `when` get `reply`, after `delay` on top of the
/// provider's own delay. The first rule that matches wins; unmatched requests are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Which requests.
    pub when: Match,
    /// The answer.
    pub reply: Reply,
    /// Extra time before answering.
    pub delay: Duration,
}

/// One request as the provider received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// 0-based arrival ordinal.
    pub ordinal: usize,
    /// The recipient: the Cloud API's `to`, or the webhook's `recipient`; empty if neither.
    pub to: String,
    /// When it arrived, on the monotonic clock (rates).
    pub received: Instant,
    /// When it arrived, on the wall clock (comparisons with instants Herald stores).
    pub received_at: DateTime<Utc>,
    /// How it was answered.
    pub reply: Reply,
    /// The request's path.
    pub path: String,
}

#[derive(Debug, Default)]
struct Log {
    requests: Vec<Request>,
    rules: Vec<Rule>,
    delay: Duration,
}

/// The fake provider. Dropping it stops the server without waiting for held requests.
pub struct FakeProvider {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakeProvider {
    /// Starts a server on 127.0.0.1:0 on a runtime of its own (tests calling it are plain
    /// `#[test]`s driving processes).
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the fake provider");
        let log = Arc::new(Mutex::new(Log::default()));
        let app = Router::new()
            .route(HOOK_PATH, post(receive))
            .route("/{version}/{phone_number_id}/messages", post(receive))
            .with_state(Arc::clone(&log));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a port on 127.0.0.1");
        let addr = listener.local_addr().expect("the bound address");
        runtime.spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the fake provider serves");
        });
        Self {
            addr,
            log,
            runtime: Some(runtime),
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Graph API root for a WhatsApp sender's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The webhook URL for a webhook sender's `url`.
    pub fn url(&self) -> String {
        format!("http://{}{HOOK_PATH}", self.addr)
    }

    /// Adds a rule after the existing ones.
    pub fn script(&self, when: Match, reply: Reply) {
        self.script_rule(Rule {
            when,
            reply,
            delay: Duration::ZERO,
        });
    }

    /// Adds a rule with its own delay after the existing ones.
    pub fn script_rule(&self, rule: Rule) {
        self.lock().rules.push(rule);
    }

    /// Removes every rule: from now on every request is accepted.
    pub fn clear_script(&self) {
        self.lock().rules.clear();
    }

    /// Holds open the requests with these ordinals ([`Reply::Hold`]).
    pub fn hold(&self, ordinals: impl IntoIterator<Item = usize>) {
        for ordinal in ordinals {
            self.script(Match::Ordinal(ordinal), Reply::Hold);
        }
    }

    /// How long every answer takes (on top of a rule's own delay).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.lock().requests.len()
    }

    /// How many requests are being held open.
    pub fn held(&self) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.reply == Reply::Hold)
            .count()
    }

    /// The recipients of every request, in arrival order.
    pub fn recipients(&self) -> Vec<String> {
        self.lock().requests.iter().map(|r| r.to.clone()).collect()
    }

    /// The receipt instants, in arrival order.
    pub fn receipt_times(&self) -> Vec<Instant> {
        self.lock().requests.iter().map(|r| r.received).collect()
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        // Held handlers sleep for an hour; do not wait for them.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The most requests that fall in any window of `width` among `times` (any order): the rate a
/// receiver saw.
pub fn most_within(times: &[Instant], width: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut most = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end].duration_since(sorted[start]) >= width {
            start += 1;
        }
        most = most.max(end + 1 - start);
    }
    most
}

impl Match {
    fn matches(&self, ordinal: usize, to: &str, seen_before: bool) -> bool {
        match self {
            Match::Any => true,
            Match::Ordinal(n) => ordinal == *n,
            Match::EveryNth { every, offset } => *every > 0 && ordinal % every == *offset,
            Match::To(phone) => phone == to,
            Match::FirstPerRecipient => !seen_before,
        }
    }
}

async fn receive(
    State(log): State<Arc<Mutex<Log>>>,
    uri: axum::http::Uri,
    body: String,
) -> Response {
    // A webhook body names the recipient; a Cloud API body only has the number (`to`).
    let to = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v["recipient"]
                .as_str()
                .or(v["to"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let (reply, delay) = {
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        let ordinal = log.requests.len();
        let seen_before = log.requests.iter().any(|r| r.to == to);
        let rule = log
            .rules
            .iter()
            .find(|rule| rule.when.matches(ordinal, &to, seen_before));
        let (reply, extra) = rule.map_or((Reply::Accept, Duration::ZERO), |rule| {
            (rule.reply.clone(), rule.delay)
        });
        let delay = log.delay + extra;
        log.requests.push(Request {
            ordinal,
            to,
            received: Instant::now(),
            received_at: Utc::now(),
            reply: reply.clone(),
            path: uri.path().to_owned(),
        });
        (reply, delay)
    };
    tokio::time::sleep(delay).await;
    answer(&reply).await
}

async fn answer(reply: &Reply) -> Response {
    let json = (
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("application/json"),
    );
    match reply {
        Reply::Accept => (StatusCode::OK, [json], ACCEPTED).into_response(),
        Reply::Throttle { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                json,
                (
                    HeaderName::from_static("retry-after"),
                    HeaderValue::from(*retry_after_secs),
                ),
            ],
            r#"{"error":{"code":130429,"message":"Rate limit hit"}}"#,
        )
            .into_response(),
        Reply::CloudError { status, code } => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
            [json],
            format!(r#"{{"error":{{"code":{code},"message":"scripted error {code}"}}}}"#),
        )
            .into_response(),
        Reply::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
        Reply::Hold => {
            tokio::time::sleep(HOLD).await;
            (StatusCode::OK, [json], ACCEPTED).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_within_counts_the_busiest_half_open_window() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let times = [at(0), at(500), at(999), at(1000), at(1500), at(1600)];
        // [500, 1500) holds 500, 999, 1000; [999, 1999) holds 999, 1000, 1500, 1600.
        assert_eq!(most_within(&times, Duration::from_secs(1)), 4);
        assert_eq!(most_within(&[], Duration::from_secs(1)), 0);
    }

    #[test]
    fn rules_match_by_ordinal_period_phone_and_first_request() {
        assert!(Match::Ordinal(3).matches(3, "", false));
        assert!(!Match::Ordinal(3).matches(4, "", false));
        let third = Match::EveryNth {
            every: 3,
            offset: 2,
        };
        assert_eq!((0..7).filter(|n| third.matches(*n, "", false)).count(), 2);
        assert!(Match::To("7916".into()).matches(0, "7916", true));
        assert!(!Match::To("7916".into()).matches(0, "7917", false));
        assert!(Match::FirstPerRecipient.matches(9, "x", false));
        assert!(!Match::FirstPerRecipient.matches(9, "x", true));
    }
}
