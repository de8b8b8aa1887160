//! Payload shapes as Meta documents and sends them (Cloud API webhooks reference, with the
//! extra fields real notifications carry: `contacts`, `pricing`, `conversation`).

use super::*;

const STATUS_FAILED: &str = r#"{
  "object": "whatsapp_business_account",
  "entry": [{
    "id": "102290129340398",
    "changes": [{
      "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "statuses": [
          {"id": "wamid.HBgLMTU1NTA3ODM4ODEVAgARGBI1", "status": "delivered",
           "timestamp": "1700000100", "recipient_id": "79161234567",
           "biz_opaque_callback_data": "h1:3:a@1cust-1",
           "conversation": {"id": "c1", "origin": {"type": "marketing"}},
           "pricing": {"billable": true, "pricing_model": "CBP", "category": "marketing"}},
          {"id": "wamid.2", "status": "failed", "timestamp": "1700000200",
           "recipient_id": "79161234567",
           "errors": [{"code": 131050, "title": "Unable to deliver", "error_data": {"details": "x"}}]},
          {"id": "wamid.3", "status": "deleted", "timestamp": "1700000300", "recipient_id": "1"}
        ]
      },
      "field": "messages"
    }]
  }]
}"#;

const MESSAGES: &str = r#"{
  "object": "whatsapp_business_account",
  "entry": [{
    "id": "102290129340398",
    "changes": [{
      "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Anna"}, "wa_id": "79161234567"}],
        "messages": [
          {"from": "79161234567", "id": "wamid.in1", "timestamp": "1700000400",
           "type": "text", "text": {"body": " СТОП! "}},
          {"from": "79161234567", "id": "wamid.in2", "timestamp": "1700000500",
           "type": "button", "context": {"from": "15550783881", "id": "wamid.out1"},
           "button": {"payload": "stop", "text": "Stop promotions"}},
          {"from": "79161234567", "id": "wamid.in3", "timestamp": "1700000600",
           "type": "interactive", "context": {"from": "15550783881", "id": "wamid.out2"},
           "interactive": {"type": "button_reply", "button_reply": {"id": "vip", "title": "VIP"}}},
          {"from": "79161234567", "id": "wamid.in4", "timestamp": "1700000700",
           "type": "image", "image": {"id": "m1", "mime_type": "image/jpeg"}}
        ]
      },
      "field": "messages"
    }, {
      "value": {"message_template_id": 1, "event": "APPROVED"},
      "field": "message_template_status_update"
    }]
  }]
}"#;

#[test]
fn statuses_parse_with_codes_and_callback_data() {
    let n = parse_notification(STATUS_FAILED.as_bytes()).unwrap();
    assert_eq!(n.phone_number_ids(), ["106540352242922"]);
    let statuses = &n.changes[0].statuses;
    assert_eq!(statuses.len(), 3);
    assert_eq!(statuses[0].status, StatusKind::Delivered);
    assert_eq!(statuses[0].callback_data.as_deref(), Some("h1:3:a@1cust-1"));
    assert_eq!(statuses[0].timestamp.timestamp(), 1_700_000_100);
    assert_eq!(statuses[1].status, StatusKind::Failed);
    assert_eq!(statuses[1].error_code, Some(131_050));
    assert_eq!(statuses[2].status, StatusKind::Other("deleted".into()));
}

#[test]
fn messages_parse_text_buttons_and_others() {
    let n = parse_notification(MESSAGES.as_bytes()).unwrap();
    assert_eq!(n.changes.len(), 1, "the template status change is left out");
    let m = &n.changes[0].messages;
    assert_eq!(m[0].content, InboundContent::Text(" СТОП! ".into()));
    assert_eq!(m[0].from, "79161234567");
    assert_eq!(
        m[1].content,
        InboundContent::Button {
            payload: "stop".into(),
            replied_to: Some("wamid.out1".into())
        }
    );
    assert_eq!(
        m[2].content,
        InboundContent::Button {
            payload: "vip".into(),
            replied_to: Some("wamid.out2".into())
        }
    );
    assert_eq!(m[3].content, InboundContent::Other("image".into()));
}

#[test]
fn what_herald_uses_is_strict_and_names_the_field() {
    let cases = [
        (r#"{"object":"page","entry":[]}"#, "object"),
        ("not json", "invalid"),
        (
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{}}]}]}"#,
            "entry[0].changes[0].value.metadata",
        ),
        (
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"1"},"statuses":[{"id":"w","status":"read","timestamp":"soon"}]}}]}]}"#,
            "statuses[0].timestamp",
        ),
        (
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"1"},"statuses":[{"id":"w","status":"failed","timestamp":"1"}]}}]}]}"#,
            "statuses[0].errors",
        ),
        (
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"1"},"messages":[{"id":"","from":"1","timestamp":"1","type":"text","text":{"body":"x"}}]}}]}]}"#,
            "messages[0].id",
        ),
    ];
    for (body, needle) in cases {
        let error = parse_notification(body.as_bytes()).unwrap_err().to_string();
        assert!(error.contains(needle), "{error} should name {needle}");
    }
}

#[test]
fn lists_are_bounded() {
    let entry = r#"{"changes":[]}"#;
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{}]}}"#,
        vec![entry; MAX_ENTRIES + 1].join(",")
    );
    assert!(matches!(
        parse_notification(body.as_bytes()),
        Err(PayloadError::TooMany {
            field: "entries",
            ..
        })
    ));
    let status = r#"{"id":"w","status":"read","timestamp":"1"}"#;
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"1"}},"statuses":[{}]}}}}]}}]}}"#,
        vec![status; MAX_EVENTS + 1].join(",")
    );
    assert!(matches!(
        parse_notification(body.as_bytes()),
        Err(PayloadError::TooMany { .. })
    ));
}
