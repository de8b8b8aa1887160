//! JSONL audiences: one JSON object per line, blank lines skipped.
//!
//! Lines are read one at a time into a reused buffer of at most [`MAX_RECORD_BYTES`]: a longer
//! line is read past and is that row's error, so one huge line costs no memory. Each line is
//! parsed on its own: a line that is not JSON, or not an object, is that row's error and the
//! next line is read as usual.

use std::fs::File;
use std::io::BufReader;

use herald_core::Region;
use serde_json::Value;

use super::{Column, RawRow, Recipient, RowError, Share, split_tags};
use crate::input::{Line, MAX_RECORD_BYTES, read_line};

const BOM: &[u8] = b"\xef\xbb\xbf";

/// The rows of a JSONL audience.
pub(super) struct JsonlRows {
    reader: BufReader<File>,
    buffer: Vec<u8>,
    line: u64,
    done: bool,
    file: String,
    default_country: Option<Region>,
    pub(super) share: Share,
}

impl JsonlRows {
    /// Starts reading `file` at its first line.
    pub(super) fn new(file: File, name: String, default_country: Option<Region>) -> Self {
        Self {
            reader: BufReader::with_capacity(64 * 1024, file),
            buffer: Vec::new(),
            line: 0,
            done: false,
            file: name,
            default_country,
            share: Share::ALL,
        }
    }

    fn error(&self, message: String) -> RowError {
        RowError {
            file: self.file.clone(),
            line: self.line,
            message,
            unreadable: false,
        }
    }
}

impl Iterator for JsonlRows {
    type Item = Result<Recipient, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let read = read_line(&mut self.reader, &mut self.buffer, MAX_RECORD_BYTES);
            self.line += 1;
            match read {
                Ok(Line::End) => self.done = true,
                Ok(Line::TooLong) => {
                    if self.share.take() {
                        let message = format!(
                            "the line is longer than the limit of {MAX_RECORD_BYTES} bytes"
                        );
                        return Some(Err(self.error(message)));
                    }
                }
                Ok(Line::Read) => {
                    // Without its terminator, so that JSON errors point into the line.
                    let mut bytes = self.buffer.as_slice();
                    bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                    if self.line == 1 {
                        bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
                    }
                    if bytes.iter().all(u8::is_ascii_whitespace) || !self.share.take() {
                        continue;
                    }
                    let row = recipient(bytes, self.line, self.default_country);
                    return Some(row.map_err(|m| self.error(m)));
                }
                Err(e) => {
                    // A read error leaves the position in the file unknown: stop here.
                    self.done = true;
                    // Every reader of a shared file reports it, whichever row it fell in.
                    let mut error = self.error(format!("cannot read further: {e}"));
                    error.unreadable = true;
                    return Some(Err(error));
                }
            }
        }
        None
    }
}

/// Parses one non-blank line into a recipient.
fn recipient(
    bytes: &[u8],
    line: u64,
    default_country: Option<Region>,
) -> Result<Recipient, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("invalid UTF-8 at byte {} of the line", e.valid_up_to() + 1))?;
    let value: Value = serde_json::from_str(text).map_err(|e| json_message(&e))?;
    let Value::Object(object) = value else {
        return Err(format!("expected a JSON object, found {}", kind(&value)));
    };
    // Known values that are numbers are turned into text first, so `RawRow` can borrow them.
    let mut scalars: Vec<(Column, String)> = Vec::new();
    let mut tags = None;
    let mut attributes = std::collections::BTreeMap::new();
    for (key, value) in object {
        match Column::known(&key) {
            Some(column) if scalars.iter().any(|(c, _)| *c == column) => {
                return Err(format!("duplicate key {key:?}"));
            }
            Some(Column::Tags) if tags.is_some() => return Err(format!("duplicate key {key:?}")),
            Some(Column::Tags) => tags = Some(tag_list(value)?),
            Some(column) => {
                if let Some(text) = scalar(&key, value)? {
                    scalars.push((column, text));
                }
            }
            None => {
                let name = key.trim();
                let Some(text) = attribute(name, value)? else {
                    continue;
                };
                if name.is_empty() || text.trim().is_empty() {
                    continue;
                }
                if attributes.insert(name.to_owned(), text).is_some() {
                    return Err(format!("duplicate key {name:?}"));
                }
            }
        }
    }
    let mut raw = RawRow {
        tags: tags.unwrap_or_default(),
        attributes,
        ..RawRow::default()
    };
    for (column, text) in &scalars {
        raw.set(*column, text);
    }
    raw.into_recipient(line, default_country)
}

/// A known value: strings as they are, numbers as their JSON text (ids and phones are often
/// exported as numbers), `null` as absent.
fn scalar(key: &str, value: Value) -> Result<Option<String>, String> {
    match value {
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Null => Ok(None),
        other => Err(format!("{key:?} must be a string, found {}", kind(&other))),
    }
}

/// An attribute value: templates substitute text, so numbers and booleans become their JSON
/// text; an object or array has no single text and is refused rather than flattened.
fn attribute(key: &str, value: Value) -> Result<Option<String>, String> {
    match value {
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Null => Ok(None),
        other => Err(format!(
            "attribute {key:?} must be a string, number or boolean, found {}",
            kind(&other)
        )),
    }
}

/// `tags` as an array of strings, or one string split like a CSV cell.
fn tag_list(value: Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(split_tags(&s).collect()),
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => {
            let mut tags = Vec::with_capacity(items.len());
            for item in items {
                let Value::String(tag) = item else {
                    return Err(format!("\"tags\" must hold strings, found {}", kind(&item)));
                };
                let tag = tag.trim();
                if !tag.is_empty() {
                    tags.push(tag.to_owned());
                }
            }
            Ok(tags)
        }
        other => Err(format!(
            "\"tags\" must be an array of strings or a string, found {}",
            kind(&other)
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json's message with its "at line 1" dropped: each line is parsed alone, so only the
/// column means anything.
fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let reason = text.strip_suffix(&suffix).unwrap_or(&text);
    format!("invalid JSON: {reason} (column {})", error.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: &str) -> Result<Recipient, String> {
        recipient(line.as_bytes(), 1, None)
    }

    #[test]
    fn values_become_text_or_errors() {
        let line = concat!(
            r#"{"phone":"+79161234567","id":17,"age":42,"vip":true,"x":null,"#,
            r#""tags":[" a ","","b"]}"#
        );
        let r = row(line).unwrap();
        assert_eq!(r.id.as_str(), "17");
        assert_eq!(r.attributes["age"], "42");
        assert_eq!(r.attributes["vip"], "true");
        assert!(!r.attributes.contains_key("x"));
        assert_eq!(r.tags, ["a", "b"]);

        let r = row(r#"{"Phone":"+79161234567","tags":"a|b"}"#).unwrap();
        assert_eq!(r.tags, ["a", "b"]);

        let message = row(r#"{"phone":"+79161234567","address":{"city":"Omsk"}}"#).unwrap_err();
        assert_eq!(
            message,
            "attribute \"address\" must be a string, number or boolean, found an object"
        );
        let message = row(r#"{"phone":"+79161234567","tags":[1]}"#).unwrap_err();
        assert_eq!(message, "\"tags\" must hold strings, found a number");
        let message = row(r#"{"phone":"+79161234567","PHONE":"+79161234568"}"#).unwrap_err();
        assert!(message.starts_with("duplicate key"), "{message}");
        let message = row(r#"{"phone":true}"#).unwrap_err();
        assert_eq!(message, "\"phone\" must be a string, found a boolean");
    }

    #[test]
    fn broken_lines_get_short_messages() {
        let message = row(r#"{"phone": }"#).unwrap_err();
        assert_eq!(message, "invalid JSON: expected value (column 11)");
        assert_eq!(
            row("[1, 2]").unwrap_err(),
            "expected a JSON object, found an array"
        );
        assert!(
            recipient(b"{\"phone\":\"\xff\"}", 1, None)
                .unwrap_err()
                .starts_with("invalid UTF-8 at byte 11")
        );
    }
}
