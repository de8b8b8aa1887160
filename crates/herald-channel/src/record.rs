//! The JSON shape of one message, shared by the outbox line and the webhook body.
//!
//! One shape for both adapters means a consumer written against the outbox (the demo channel)
//! reads a webhook body unchanged, apart from the name of the timestamp field.
//!
//! ```json
//! {"idempotency_key": "run@1/r-1", "run": "run@1", "recipient": "r-1", "to": "+4915112345678",
//!  "template": "promo", "language": "de", "header": {"media": {"kind": "image", "link": "https://…"}},
//!  "params": {"name": "Ada", "code": "BF26"}, "buttons": ["stop"]}
//! ```
//!
//! `header` is `null` without a header, otherwise an object with `media` and/or `text`: the port
//! allows both at once, and this shape keeps whatever it is given rather than picking one.
//! `params` is an object whose keys appear in the message's order (serialised by hand, because
//! `serde_json`'s own map sorts keys).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::OutgoingMessage;

/// The message's own fields, borrowed from it.
#[derive(Debug, Serialize)]
pub(crate) struct MessageFields<'a> {
    idempotency_key: &'a str,
    run: &'a str,
    recipient: &'a str,
    to: &'a str,
    template: &'a str,
    language: &'a str,
    header: Option<HeaderFields<'a>>,
    params: Params<'a>,
    buttons: &'a [String],
}

#[derive(Debug, Serialize)]
struct HeaderFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<Media<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Media<'a> {
    kind: &'a str,
    link: &'a str,
}

/// Named parameters serialised as a JSON object in the message's order.
#[derive(Debug)]
struct Params<'a>(&'a [(String, String)]);

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'a> MessageFields<'a> {
    /// Borrows the fields of `message`.
    pub(crate) fn of(message: &'a OutgoingMessage) -> Self {
        let media = message
            .header_media
            .as_ref()
            .map(|(kind, link)| Media { kind, link });
        let text = message.header_text.as_deref();
        let header = (media.is_some() || text.is_some()).then_some(HeaderFields { media, text });
        MessageFields {
            idempotency_key: &message.idempotency_key,
            run: &message.run,
            recipient: &message.recipient,
            to: &message.to,
            template: &message.template,
            language: &message.language,
            header,
            params: Params(&message.params),
            buttons: &message.buttons,
        }
    }
}

/// RFC 3339 in UTC with milliseconds and a `Z`, the form every JSON consumer parses.
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> OutgoingMessage {
        OutgoingMessage {
            idempotency_key: "bf@1/r-1".into(),
            run: "bf@1".into(),
            recipient: "r-1".into(),
            recipient_key: "r-1".into(),
            to: "+4915112345678".into(),
            template: "promo".into(),
            language: "de".into(),
            header_media: None,
            header_text: None,
            params: vec![("zeta".into(), "1".into()), ("alpha".into(), "2".into())],
            buttons: vec!["stop".into()],
        }
    }

    #[test]
    fn params_keep_the_message_order() {
        let json = serde_json::to_string(&MessageFields::of(&message())).unwrap();
        assert!(
            json.contains(r#""params":{"zeta":"1","alpha":"2"}"#),
            "{json}"
        );
    }

    #[test]
    fn header_is_null_without_one_and_keeps_both_parts_when_given_both() {
        let mut message = message();
        let json = serde_json::to_value(MessageFields::of(&message)).unwrap();
        assert_eq!(json["header"], serde_json::Value::Null);

        message.header_media = Some(("image".into(), "https://cdn.example/a.png".into()));
        message.header_text = Some("Hi".into());
        let json = serde_json::to_value(MessageFields::of(&message)).unwrap();
        let expected = serde_json::json!({"media": {"kind": "image", "link": "https://cdn.example/a.png"}, "text": "Hi"});
        assert_eq!(json["header"], expected);
    }

    #[test]
    fn timestamps_are_utc_with_a_z() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T10:00:00.5+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(at), "2026-11-27T09:00:00.500Z");
    }
}
