//! One row per case of the classification table, and the text a failure carries.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::NOT_PROCESSED_HEADER;
use super::classify::classify;
use crate::transport::{Answer, Outcome};
use crate::{Accepted, SendError, ThrottleScope};

/// The result in a line of text (`"throttled 7s"`, `"rejected http_400"`), so a table row
/// fits on one line; and the reason or detail it carries.
fn summary(result: Result<Accepted, SendError>) -> (String, String) {
    let after = |after: Option<std::time::Duration>| match after {
        Some(after) => format!(" {}s", after.as_secs()),
        None => String::new(),
    };
    match result {
        Ok(Accepted {
            provider_id: Some(id),
        }) => (format!("accepted id={id}"), String::new()),
        Ok(Accepted { provider_id: None }) => ("accepted".into(), String::new()),
        Err(SendError::Throttled { retry_after, scope }) => {
            assert_eq!(scope, ThrottleScope::Sender);
            (format!("throttled{}", after(retry_after)), String::new())
        }
        Err(SendError::Retryable {
            retry_after,
            reason,
        }) => (format!("retryable{}", after(retry_after)), reason),
        Err(SendError::Rejected {
            code,
            detail,
            action,
        }) => {
            // A webhook answer never asks anything of the sender, the run or consent.
            assert_eq!(action, None);
            (format!("rejected {code}"), detail)
        }
        Err(SendError::Unknown(reason)) => ("unknown".into(), reason),
    }
}

fn received_at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Outcome {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, value.parse().unwrap());
    }
    Outcome::Answered(Answer {
        status: StatusCode::from_u16(status).unwrap(),
        headers: map,
        body: body.as_bytes().to_vec(),
        received_at: received_at(),
    })
}

#[test]
fn every_outcome_maps_to_its_row() {
    let in_30s = httpdate::fmt_http_date(received_at() + Duration::from_secs(30));
    let ago_30s = httpdate::fmt_http_date(received_at() - Duration::from_secs(30));
    let np = r#"{"error": {"code": "not_processed"}}"#;
    let np_header = NOT_PROCESSED_HEADER;
    let rows = [
        (
            "200 with id",
            answer(200, &[], r#"{"id": "wh-1"}"#),
            "accepted id=wh-1",
        ),
        (
            "201 numeric id",
            answer(201, &[], r#"{"id": 42}"#),
            "accepted id=42",
        ),
        (
            "201 empty id",
            answer(201, &[], r#"{"id": ""}"#),
            "accepted",
        ),
        ("202 empty body", answer(202, &[], ""), "accepted"),
        ("204 non-JSON body", answer(204, &[], "ok"), "accepted"),
        (
            "connect failed",
            Outcome::NotConnected("refused".into()),
            "retryable",
        ),
        (
            "429 seconds",
            answer(429, &[("retry-after", "7")], ""),
            "throttled 7s",
        ),
        (
            "429 HTTP date",
            answer(429, &[("retry-after", &in_30s)], ""),
            "throttled 30s",
        ),
        (
            "429 past date",
            answer(429, &[("retry-after", &ago_30s)], ""),
            "throttled 0s",
        ),
        (
            "429 a day, capped at 15 minutes",
            answer(429, &[("retry-after", "86400")], ""),
            "throttled 900s",
        ),
        (
            "503 a day, capped at 15 minutes",
            answer(503, &[("retry-after", "86400")], np),
            "retryable 900s",
        ),
        ("429 no header", answer(429, &[], ""), "throttled"),
        (
            "429 garbage",
            answer(429, &[("retry-after", "soon")], ""),
            "throttled",
        ),
        ("503 body code", answer(503, &[], np), "retryable"),
        (
            "503 code + retry",
            answer(503, &[("retry-after", "5")], np),
            "retryable 5s",
        ),
        (
            "503 header",
            answer(503, &[(np_header, "1")], ""),
            "retryable",
        ),
        (
            "503 header 0",
            answer(503, &[(np_header, "0")], ""),
            "unknown",
        ),
        (
            "503 other code",
            answer(503, &[], r#"{"error": {"code": "x"}}"#),
            "unknown",
        ),
        ("503 plain", answer(503, &[], "down"), "unknown"),
        ("500 not_processed", answer(500, &[], np), "unknown"),
        ("500", answer(500, &[], ""), "unknown"),
        ("502", answer(502, &[], ""), "unknown"),
        ("400", answer(400, &[], "bad"), "rejected http_400"),
        ("404", answer(404, &[], ""), "rejected http_404"),
        ("409", answer(409, &[], ""), "rejected http_409"),
        (
            "302",
            answer(302, &[("location", "/x")], ""),
            "rejected http_302",
        ),
        ("timed out", Outcome::TimedOut("deadline".into()), "unknown"),
        ("dropped", Outcome::Dropped("reset".into()), "unknown"),
        (
            "unsendable",
            Outcome::Unsendable("bad".into()),
            "rejected invalid_request",
        ),
    ];
    for (name, outcome, want) in rows {
        assert_eq!(summary(classify(outcome)).0, want, "row {name:?}");
    }
}

#[test]
fn rejection_detail_is_the_trimmed_body_cut_to_200_chars_or_the_reason_phrase() {
    let long = format!("  {}  ", "é".repeat(300));
    let (_, detail) = summary(classify(answer(422, &[], &long)));
    assert_eq!(detail, "é".repeat(200));
    let (_, detail) = summary(classify(answer(404, &[], " ")));
    assert_eq!(detail, "Not Found");
}

#[test]
fn unknown_and_retryable_say_why() {
    let (_, reason) = summary(classify(answer(500, &[], "database down")));
    assert_eq!(reason, "HTTP 500: database down");
    let (_, reason) = summary(classify(Outcome::NotConnected("connection refused".into())));
    assert_eq!(reason, "no connection: connection refused");
}
