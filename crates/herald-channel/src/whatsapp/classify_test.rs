//! One row per code and per HTTP case of the classification table, plus the request body.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

use super::classify::classify;
use super::{Classification, classify_code, classify_response, request};
use crate::transport::{Answer, Outcome};
use crate::{Accepted, OutgoingMessage, SendError, ThrottleScope};

/// The classification in a line of text (`"sender 7s"`, `"pause_campaign 132001"`), so a row
/// fits on one line.
fn summary(result: Result<Accepted, Classification>) -> String {
    let after = |after: Option<Duration>| match after {
        Some(after) => format!(" {}s", after.as_secs()),
        None => String::new(),
    };
    match result {
        Ok(Accepted {
            provider_id: Some(id),
        }) => format!("accepted id={id}"),
        Ok(Accepted { provider_id: None }) => "accepted".into(),
        Err(Classification::Throttled { scope, retry_after }) => match scope {
            ThrottleScope::Sender => format!("throttle_sender{}", after(retry_after)),
            ThrottleScope::Recipient => format!("throttle_recipient{}", after(retry_after)),
        },
        Err(Classification::PauseSender { code, .. }) => format!("pause_sender {code}"),
        Err(Classification::PauseCampaign { code, .. }) => format!("pause_campaign {code}"),
        Err(Classification::OptOut { code, .. }) => format!("opt_out {code}"),
        Err(Classification::Rejected { code, .. }) => format!("rejected {code}"),
        Err(Classification::Retryable { retry_after, .. }) => {
            format!("retryable{}", after(retry_after))
        }
        Err(Classification::Unknown { .. }) => "unknown".into(),
    }
}

#[test]
fn every_code_maps_to_its_row() {
    let rows: &[(i64, &str)] = &[
        (4, "throttle_sender"),
        (80007, "throttle_sender"),
        (130429, "throttle_sender"),
        (131056, "throttle_recipient"),
        (131048, "pause_sender 131048"),
        (368, "pause_sender 368"),
        (131042, "pause_sender 131042"),
        (190, "pause_sender 190"),
        (132000, "pause_campaign 132000"),
        (132001, "pause_campaign 132001"),
        (132005, "pause_campaign 132005"),
        (132007, "pause_campaign 132007"),
        (132012, "pause_campaign 132012"),
        (132015, "pause_campaign 132015"),
        (132016, "pause_campaign 132016"),
        (131050, "opt_out 131050"),
        (131026, "rejected 131026"),
        (131049, "rejected 131049"),
        (131047, "rejected 131047"),
        (131051, "rejected 131051"),
        (100, "rejected 100"),
        (131000, "rejected 131000"),
        (132017, "rejected 132017"),
        (131999, "rejected 131999"),
        (131016, "retryable"),
    ];
    for (code, expected) in rows {
        assert_eq!(
            summary(Err(classify_code(*code, None))),
            *expected,
            "code {code}"
        );
    }
}

#[test]
fn retry_after_is_kept_where_the_engine_waits() {
    let seven = Some(Duration::from_secs(7));
    let rows: &[(i64, &str)] = &[
        (130429, "throttle_sender 7s"),
        (131056, "throttle_recipient 7s"),
        (131016, "retryable 7s"),
    ];
    for (code, expected) in rows {
        assert_eq!(summary(Err(classify_code(*code, seven))), *expected);
    }
}

/// A day-long `Retry-After` would leave the sender asleep for a day (issue 10, item 10): every
/// path into a classification caps it at 15 minutes.
#[test]
fn a_retry_after_beyond_15_minutes_is_capped() {
    let day = Some(Duration::from_secs(86_400));
    for (code, expected) in [
        (130429, "throttle_sender 900s"),
        (131056, "throttle_recipient 900s"),
        (131016, "retryable 900s"),
    ] {
        assert_eq!(summary(Err(classify_code(code, day))), expected);
    }
    assert_eq!(
        summary(classify_response(429, day, b"")),
        "throttle_sender 900s"
    );
    let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let in_2_days = httpdate::fmt_http_date(received + Duration::from_secs(2 * 86_400));
    for value in ["86400", in_2_days.as_str(), "18446744073709551615"] {
        assert_eq!(
            summary(classify(answer(429, &[("retry-after", value)], ""))),
            "throttle_sender 900s",
            "{value}"
        );
    }
}

fn error(code: i64) -> String {
    json!({"error": {"message": "(#x) words", "type": "OAuthException", "code": code,
        "error_subcode": 2494010, "error_data": {"details": "more words"},
        "fbtrace_id": "Az"}})
    .to_string()
}

#[test]
fn every_answer_maps_to_its_row() {
    let seven = Some(Duration::from_secs(7));
    let rows: Vec<(&str, u16, Option<Duration>, String, &str)> = vec![
        (
            "200 with id",
            200,
            None,
            r#"{"messaging_product":"whatsapp","contacts":[{"input":"49","wa_id":"49"}],"messages":[{"id":"wamid.A"}]}"#.into(),
            "accepted id=wamid.A",
        ),
        ("200 no messages", 200, None, "{}".into(), "accepted"),
        ("200 empty id", 200, None, r#"{"messages":[{"id":""}]}"#.into(), "accepted"),
        ("200 not JSON", 200, None, "ok".into(), "accepted"),
        ("429 no code", 429, seven, String::new(), "throttle_sender 7s"),
        ("429 no code no header", 429, None, String::new(), "throttle_sender"),
        ("429 unlisted code", 429, seven, error(1), "throttle_sender 7s"),
        ("429 130429", 429, seven, error(130429), "throttle_sender 7s"),
        ("400 130429", 400, None, error(130429), "throttle_sender"),
        ("400 80007", 400, None, error(80007), "throttle_sender"),
        ("400 131056", 400, seven, error(131056), "throttle_recipient 7s"),
        ("400 131048", 400, None, error(131048), "pause_sender 131048"),
        ("403 368", 403, None, error(368), "pause_sender 368"),
        ("400 131042", 400, None, error(131042), "pause_sender 131042"),
        ("401 190", 401, None, error(190), "pause_sender 190"),
        ("404 132001", 404, None, error(132001), "pause_campaign 132001"),
        ("400 132015", 400, None, error(132015), "pause_campaign 132015"),
        ("400 131050", 400, None, error(131050), "opt_out 131050"),
        ("400 131026", 400, None, error(131026), "rejected 131026"),
        ("400 100", 400, None, error(100), "rejected 100"),
        ("400 unlisted", 400, None, error(999), "rejected 999"),
        ("503 131016", 503, seven, error(131016), "retryable 7s"),
        ("500 131016", 500, None, error(131016), "retryable"),
        ("500 131048 (code wins)", 500, None, error(131048), "pause_sender 131048"),
        ("500 131000", 500, None, error(131000), "unknown"),
        ("503 code 2", 503, None, error(2), "unknown"),
        ("500 no body", 500, None, String::new(), "unknown"),
        ("502 html", 502, None, "<html>bad gateway</html>".into(), "unknown"),
        ("503 no code", 503, None, r#"{"error":{"message":"busy"}}"#.into(), "unknown"),
        ("400 no code", 400, None, "nope".into(), "rejected http_400"),
        ("404 no body", 404, None, String::new(), "rejected http_404"),
        ("307", 307, None, String::new(), "rejected http_307"),
    ];
    for (name, status, retry_after, body, expected) in rows {
        assert_eq!(
            summary(classify_response(status, retry_after, body.as_bytes())),
            expected,
            "{name}"
        );
    }
}

#[test]
fn the_reason_carries_the_code_subcode_and_provider_words() {
    let Err(Classification::PauseCampaign { reason, .. }) =
        classify_response(404, None, error(132001).as_bytes())
    else {
        panic!()
    };
    assert_eq!(
        reason,
        "template does not exist in this language: HTTP 404, code 132001, subcode 2494010: \
         (#x) words (more words)"
    );
    let Err(Classification::Unknown { reason }) = classify_response(500, None, b"") else {
        panic!()
    };
    assert_eq!(reason, "HTTP 500: Internal Server Error");
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
        received_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    })
}

#[test]
fn every_transport_outcome_maps_to_its_row() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_030);
    let in_30s = httpdate::fmt_http_date(at);
    let rows = [
        (
            "not connected",
            Outcome::NotConnected("refused".into()),
            "retryable",
        ),
        ("timed out", Outcome::TimedOut("timeout".into()), "unknown"),
        ("dropped", Outcome::Dropped("reset".into()), "unknown"),
        (
            "unsendable",
            Outcome::Unsendable("bad".into()),
            "rejected invalid_request",
        ),
        (
            "429 seconds",
            answer(429, &[("retry-after", "7")], ""),
            "throttle_sender 7s",
        ),
        (
            "429 date",
            answer(429, &[("retry-after", &in_30s)], ""),
            "throttle_sender 30s",
        ),
        (
            "429 garbage",
            answer(429, &[("retry-after", "soon")], ""),
            "throttle_sender",
        ),
        (
            "131056 seconds",
            answer(400, &[("retry-after", "3")], &error(131056)),
            "throttle_recipient 3s",
        ),
    ];
    for (name, outcome, expected) in rows {
        assert_eq!(summary(classify(outcome)), expected, "{name}");
    }
}

#[test]
fn classifications_reach_the_engine_as_send_errors() {
    let text = |classification: Classification| match SendError::from(classification) {
        SendError::Throttled { retry_after, scope } => {
            format!("throttled {scope:?} {retry_after:?}")
        }
        SendError::Retryable {
            retry_after,
            reason,
        } => format!("retryable {retry_after:?} {reason}"),
        SendError::Rejected {
            code,
            detail,
            action,
        } => format!("rejected {code} {detail} {action:?}"),
        SendError::Unknown(reason) => format!("unknown {reason}"),
    };
    let reason = || "r".to_owned();
    let rows = [
        (
            Classification::Throttled {
                scope: ThrottleScope::Recipient,
                retry_after: Some(Duration::from_secs(2)),
            },
            "throttled Recipient Some(2s)",
        ),
        (
            Classification::PauseSender {
                code: 131048,
                reason: reason(),
            },
            "rejected 131048 r Some(BlockSender)",
        ),
        (
            Classification::PauseCampaign {
                code: 132001,
                reason: reason(),
            },
            "rejected 132001 r Some(TemplateError)",
        ),
        (
            Classification::OptOut {
                code: 131050,
                reason: reason(),
            },
            "rejected 131050 r Some(OptOut)",
        ),
        (
            Classification::Rejected {
                code: "131026".into(),
                reason: reason(),
            },
            "rejected 131026 r None",
        ),
        (
            Classification::Retryable {
                retry_after: None,
                reason: reason(),
            },
            "retryable None r",
        ),
        (Classification::Unknown { reason: reason() }, "unknown r"),
    ];
    for (classification, expected) in rows {
        assert_eq!(text(classification), expected);
    }
}

fn message() -> OutgoingMessage {
    OutgoingMessage {
        idempotency_key: "run/r-1".into(),
        run: "run".into(),
        recipient: "r-1".into(),
        recipient_key: "r-1".into(),
        to: "+4915112345678".into(),
        template: "promo".into(),
        language: "de".into(),
        header_media: None,
        header_text: None,
        params: vec![],
        buttons: vec![],
    }
}

#[test]
fn a_template_without_variables_has_no_components() {
    assert_eq!(
        request::body(&message()).unwrap(),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "4915112345678", "type": "template",
            "biz_opaque_callback_data": "h1:3:runr-1",
            "template": {"name": "promo", "language": {"code": "de"}}})
    );
}

#[test]
fn unsendable_messages_are_refused_before_any_request() {
    let mut both = message();
    both.header_media = Some(("image".into(), "https://x/y.png".into()));
    both.header_text = Some("hi".into());
    let mut kind = message();
    kind.header_media = Some(("audio".into(), "https://x/y.ogg".into()));
    let phones = [
        "",
        "+",
        "+49 151",
        "+0151123456",
        "4915112345678901234",
        "+49151x2345678",
    ];
    let mut cases = vec![both, kind];
    for phone in phones {
        let mut message = message();
        message.to = phone.into();
        cases.push(message);
    }
    for message in cases {
        let error = request::body(&message).unwrap_err();
        assert!(!error.contains("49151"), "the phone is not echoed: {error}");
    }
    let mut bare = message();
    bare.to = "4915112345678".into();
    assert_eq!(request::body(&bare).unwrap()["to"], "4915112345678");
}
