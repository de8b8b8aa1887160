//! JSON Schema of the campaign format, generated from [`crate::fields`]. `campaigns/schema.json`
//! is this output; a test keeps the file in sync.

use serde_json::{Map, Value, json};

use crate::fields::{CAMPAIGN, Field, Shape};

/// The schema document.
pub fn campaign_schema() -> Value {
    let mut root = object(CAMPAIGN, None);
    let extra = json!({
        "$schema": "https://json-schema.org/draft-07/schema#",
        "$id": "https://github.com/herald/herald/campaigns/schema.json",
        "title": "Herald campaign",
        "description": "A Herald campaign file. Validate with `herald validate FILE`.",
    });
    if let (Value::Object(root), Value::Object(extra)) = (&mut root, extra) {
        for (k, v) in extra {
            root.insert(k, v);
        }
    }
    root
}

fn object(fields: &[Field], additional: Option<&Shape>) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| {
            let mut schema = shape(&f.shape);
            if let Value::Object(map) = &mut schema {
                map.insert("description".into(), Value::String(f.doc.into()));
            }
            (f.name.to_owned(), schema)
        })
        .collect();
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    let mut out = json!({ "type": "object", "properties": properties });
    if let Value::Object(map) = &mut out {
        if !required.is_empty() {
            map.insert("required".into(), json!(required));
        }
        map.insert(
            "additionalProperties".into(),
            additional.map(shape).unwrap_or(Value::Bool(false)),
        );
    }
    out
}

fn shape(shape_: &Shape) -> Value {
    match shape_ {
        Shape::Str => json!({ "type": "string" }),
        Shape::Pattern(p) => json!({ "type": "string", "pattern": p }),
        Shape::Enum(values) => json!({ "type": "string", "enum": values }),
        Shape::Int(min) => json!({ "type": "integer", "minimum": min }),
        Shape::Bool => json!({ "type": "boolean" }),
        Shape::Object(fields) => object(fields, None),
        Shape::Open(fields, extra) => object(fields, Some(extra)),
        Shape::MapOf(values) => json!({ "type": "object", "additionalProperties": shape(values) }),
        Shape::ListOf(items) => json!({ "type": "array", "items": shape(items) }),
        Shape::ListUpTo(items, max) => {
            json!({ "type": "array", "items": shape(items), "maxItems": max })
        }
        Shape::OneOf(options) => json!({ "oneOf": options.iter().map(shape).collect::<Vec<_>>() }),
    }
}

/// The schema as the committed file holds it: pretty JSON with a trailing newline.
pub fn campaign_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&campaign_schema()).unwrap_or_default();
    text.push('\n');
    text
}
