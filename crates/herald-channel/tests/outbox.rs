//! The outbox adapter on real files.

use std::collections::BTreeSet;
use std::sync::Arc;

use herald_channel::{Accepted, Channel, Outbox, OutgoingMessage, SendError};
use serde_json::{Value, json};

fn message(n: usize) -> OutgoingMessage {
    OutgoingMessage {
        idempotency_key: format!("bf@1/r-{n}"),
        run: "bf@1".into(),
        recipient: format!("r-{n}"),
        recipient_key: format!("r-{n}"),
        to: format!("+49151{n:08}"),
        template: "black_friday".into(),
        language: "de".into(),
        header_media: None,
        header_text: Some("Hallo".into()),
        // A long value makes a line span many pages, so a line written in pieces would show.
        params: vec![
            ("n".into(), n.to_string()),
            ("filler".into(), "x".repeat(8192)),
        ],
        buttons: vec!["stop".into(), "more".into()],
    }
}

fn lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the file ends mid-line"
    );
    text.lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_produce_one_whole_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    let outbox = Arc::new(Outbox::open(&path).unwrap());
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let outbox = Arc::clone(&outbox);
            tokio::spawn(async move { outbox.send(&message(n)).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), Accepted { provider_id: None });
    }

    let lines = lines(&path);
    assert_eq!(lines.len(), 200);
    let mut keys = BTreeSet::new();
    for line in &lines {
        let json: Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line:.80}"));
        let n = json["params"]["n"].as_str().unwrap();
        assert_eq!(
            json["recipient"],
            format!("r-{n}"),
            "fields of one line belong to one message"
        );
        assert_eq!(json["params"]["filler"].as_str().unwrap().len(), 8192);
        keys.insert(json["idempotency_key"].as_str().unwrap().to_owned());
    }
    let expected: BTreeSet<_> = (0..200).map(|n| format!("bf@1/r-{n}")).collect();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn a_line_holds_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    let outbox = Outbox::open(&path).unwrap();
    assert_eq!(outbox.name(), "outbox");
    let mut message = message(7);
    message.params = vec![("zeta".into(), "1".into()), ("alpha".into(), "2".into())];
    message.header_media = Some(("document".into(), "https://cdn.example/terms.pdf".into()));
    outbox.send(&message).await.unwrap();

    let lines = lines(&path);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains(r#""params":{"zeta":"1","alpha":"2"}"#),
        "params keep their order: {}",
        lines[0]
    );
    let mut json: Value = serde_json::from_str(&lines[0]).unwrap();
    let at = json.as_object_mut().unwrap().remove("at").expect("at");
    let at = at.as_str().unwrap();
    assert!(at.ends_with('Z'), "UTC: {at}");
    chrono::DateTime::parse_from_rfc3339(at).unwrap();
    let expected = json!({
        "idempotency_key": "bf@1/r-7",
        "run": "bf@1",
        "recipient": "r-7",
        "to": "+4915100000007",
        "template": "black_friday",
        "language": "de",
        "header": {"media": {"kind": "document", "link": "https://cdn.example/terms.pdf"}, "text": "Hallo"},
        "params": {"zeta": "1", "alpha": "2"},
        "buttons": ["stop", "more"],
    });
    assert_eq!(json, expected);
}

#[tokio::test]
async fn reopening_appends_and_keeps_earlier_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    Outbox::open(&path)
        .unwrap()
        .send(&message(1))
        .await
        .unwrap();
    let first = lines(&path);
    Outbox::open(&path)
        .unwrap()
        .send(&message(2))
        .await
        .unwrap();
    let both = lines(&path);
    assert_eq!(both.len(), 2);
    assert_eq!(both[0], first[0]);
    assert!(both[1].contains(r#""recipient":"r-2""#));
}

#[tokio::test]
async fn a_torn_last_line_from_a_crash_does_not_swallow_the_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    std::fs::write(
        &path,
        "{\"at\":\"2026-11-27T09:00:00.000Z\",\"idempotency_key\":\"bf@1/r-",
    )
    .unwrap();
    Outbox::open(&path)
        .unwrap()
        .send(&message(3))
        .await
        .unwrap();
    let lines = lines(&path);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        serde_json::from_str::<Value>(&lines[0]).is_err(),
        "the torn line stays skippable"
    );
    let json: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(json["idempotency_key"], "bf@1/r-3");
}

/// `/dev/full` refuses every write with ENOSPC, so nothing reaches it: a proven non-delivery.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_write_that_wrote_nothing_is_retryable() {
    let outbox = Outbox::open(std::path::Path::new("/dev/full")).unwrap();
    let result = outbox.send(&message(1)).await;
    assert!(
        matches!(&result, Err(SendError::Retryable { reason, .. }) if reason.contains("nothing written")),
        "{result:?}"
    );
}
