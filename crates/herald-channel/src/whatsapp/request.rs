//! The Cloud API request body for one template message, built from an [`OutgoingMessage`].
//!
//! ```json
//! {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "4915112345678",
//!  "type": "template",
//!  "template": {"name": "black_friday", "language": {"code": "de"}, "components": [
//!    {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://…"}}]},
//!    {"type": "body", "parameters": [
//!      {"type": "text", "parameter_name": "first_name", "text": "Anna"}]},
//!    {"type": "button", "sub_type": "quick_reply", "index": "0",
//!     "parameters": [{"type": "payload", "payload": "stop"}]}]}}
//! ```
//!
//! Components that would be empty are left out; a template without variables has none. The
//! body also carries `"biz_opaque_callback_data"`: the delivery key (see `callback`), which
//! Meta returns in every status webhook about the message.

use serde_json::{Value, json};

use super::callback::callback_data;
use crate::OutgoingMessage;

/// The media kinds a template header can carry.
const MEDIA_KINDS: [&str; 3] = ["image", "video", "document"];

/// The JSON body for `message`, or why it cannot be sent (nothing is sent then).
pub(super) fn body(message: &OutgoingMessage) -> Result<Value, String> {
    let to = recipient(&message.to)?;
    let mut components = Vec::new();
    match (&message.header_media, &message.header_text) {
        (Some(_), Some(_)) => {
            return Err("a template header is either media or text, not both".into());
        }
        (Some((kind, link)), None) => {
            if !MEDIA_KINDS.contains(&kind.as_str()) {
                return Err(format!("unsupported header media kind {kind:?}"));
            }
            let mut parameter = serde_json::Map::new();
            parameter.insert("type".into(), json!(kind));
            parameter.insert(kind.clone(), json!({ "link": link }));
            components.push(json!({"type": "header", "parameters": [parameter]}));
        }
        (None, Some(text)) => {
            components.push(json!({
                "type": "header",
                "parameters": [{"type": "text", "text": text}],
            }));
        }
        (None, None) => {}
    }
    if !message.params.is_empty() {
        let parameters: Vec<Value> = message
            .params
            .iter()
            .map(|(name, text)| json!({"type": "text", "parameter_name": name, "text": text}))
            .collect();
        components.push(json!({"type": "body", "parameters": parameters}));
    }
    for (index, payload) in message.buttons.iter().enumerate() {
        components.push(json!({
            "type": "button",
            "sub_type": "quick_reply",
            "index": index.to_string(),
            "parameters": [{"type": "payload", "payload": payload}],
        }));
    }
    let mut template = json!({
        "name": message.template,
        "language": {"code": message.language},
    });
    if !components.is_empty() {
        template["components"] = Value::Array(components);
    }
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
    });
    if let Some(data) = callback_data(&message.run, &message.recipient_key) {
        body["biz_opaque_callback_data"] = Value::String(data);
    }
    Ok(body)
}

/// E.164 without the `+`: 7 to 15 digits, the first not 0. The phone itself is not echoed in
/// the error, which ends up in the ledger.
fn recipient(e164: &str) -> Result<&str, String> {
    let digits = e164.strip_prefix('+').unwrap_or(e164);
    let valid = (7..=15).contains(&digits.len())
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Ok(digits)
    } else {
        Err("the recipient phone is not an E.164 number".into())
    }
}
