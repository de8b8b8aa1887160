//! The recipient half of a delivery's key: who, within one run, a delivery is for.
//!
//! Every audience row of a run gets exactly one delivery, so every row needs a key of its own,
//! and two rows must never share one: the store keeps one delivery per (run, key), and a second
//! row under a taken key would vanish (counted nowhere, never sent). Most rows are keyed by their
//! recipient id. The others get a *synthetic* key: a row without an `id` (keyed by its phone), a
//! later row repeating an earlier id or phone (a duplicate, keyed by its line), a row that could
//! not be read (keyed by its line). Synthetic keys are written with spaces, which a
//! [`RecipientId`] cannot contain, so no real id can ever take one: `phone +79161234567`,
//! `cust-17 dup line 9`, `line 17`. They are variants of a type rather than strings, and a
//! synthetic key has no length limit of its own: `<128-character id> dup line 9` is a valid key.

use std::fmt;

use super::{IdError, RecipientId};

/// How an audience row names its recipient: its `id` column, or, in a row without one, its
/// phone. The two are kept apart because a given id may look like someone else's phone
/// (`+79161234567` in the `id` column of another person's row): in keys they never meet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AudienceId {
    /// The row's `id` column, as written.
    Given(RecipientId),
    /// No `id`: the phone in E.164, which stays the same when the file is edited and the
    /// campaign run again (a row number would shift). Keyed as `phone <E.164>`.
    Phone(RecipientId),
}

impl AudienceId {
    /// The id as templates (`{{ id }}`), channels and the send spread see it: the given id, or
    /// the phone in E.164.
    pub fn id(&self) -> &RecipientId {
        match self {
            AudienceId::Given(id) | AudienceId::Phone(id) => id,
        }
    }

    /// The text of [`AudienceId::id`]: the id, not the key (which adds `phone ` for a row
    /// without one; see [`RecipientKey`]).
    pub fn as_str(&self) -> &str {
        self.id().as_str()
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudienceId::Given(id) => f.write_str(id.as_str()),
            AudienceId::Phone(id) => write!(f, "{PHONE} {id}"),
        }
    }
}

/// The recipient part of a delivery key (see the module documentation). Its text form, from
/// `Display`, is what stores keep; [`RecipientKey::parse`] reads it back exactly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecipientKey {
    /// The first row of a recipient: `cust-17`, or `phone +79161234567` without an id.
    Recipient(AudienceId),
    /// A later row repeating an earlier row's id or phone: `cust-17 dup line 9` (this row's own
    /// id and line; the line makes it unique, the id says whose it was).
    Duplicate {
        /// The row's own id.
        row: AudienceId,
        /// The 1-based line the row starts on.
        line: u64,
    },
    /// A row that could not be read (no valid phone, a bad id, broken JSON, …): `line 17`.
    Unreadable {
        /// The 1-based line the row starts on.
        line: u64,
    },
}

const PHONE: &str = "phone";
const DUP: &str = "dup";
const LINE: &str = "line";

impl RecipientKey {
    /// The key of a recipient with this id (a row's first or only appearance).
    pub fn recipient(id: RecipientId) -> Self {
        RecipientKey::Recipient(AudienceId::Given(id))
    }

    /// The row's id when this key is a recipient's own (not a duplicate or broken row): only
    /// those deliveries are ever queued and sent.
    pub fn audience_id(&self) -> Option<&AudienceId> {
        match self {
            RecipientKey::Recipient(row) => Some(row),
            RecipientKey::Duplicate { .. } | RecipientKey::Unreadable { .. } => None,
        }
    }

    /// Reads a key as written by `Display`. Text without a space is a recipient id; anything
    /// else must be exactly one of the synthetic forms (single spaces, a line number without
    /// leading zeros), so that each key has one text and each text one key.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let malformed = || IdError::InvalidCharacter {
            kind: "delivery key",
            input: input.to_owned(),
            allowed: "a recipient id, `phone <id>`, `<id> dup line <n>` or `line <n>`",
        };
        let words: Vec<&str> = input.split(' ').collect();
        Ok(match words.as_slice() {
            [LINE, line] => RecipientKey::Unreadable {
                line: line_number(line).ok_or_else(malformed)?,
            },
            [row @ .., DUP, LINE, line] => RecipientKey::Duplicate {
                row: audience_id(row)?.ok_or_else(malformed)?,
                line: line_number(line).ok_or_else(malformed)?,
            },
            row => RecipientKey::Recipient(audience_id(row)?.ok_or_else(malformed)?),
        })
    }
}

/// The words of an [`AudienceId`]: `<id>` or `phone <id>`; `None` for any other shape.
fn audience_id(words: &[&str]) -> Result<Option<AudienceId>, IdError> {
    Ok(match words {
        [id] => Some(AudienceId::Given(RecipientId::parse(id)?)),
        [PHONE, id] => Some(AudienceId::Phone(RecipientId::parse(id)?)),
        _ => None,
    })
}

/// A line number in its one written form: decimal digits, no sign, no leading zero.
fn line_number(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

impl fmt::Display for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecipientKey::Recipient(row) => row.write(f),
            RecipientKey::Duplicate { row, line } => {
                row.write(f)?;
                write!(f, " {DUP} {LINE} {line}")
            }
            RecipientKey::Unreadable { line } => write!(f, "{LINE} {line}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(text: &str) -> RecipientId {
        RecipientId::parse(text).unwrap()
    }

    #[test]
    fn each_form_reads_back() {
        let long = "x".repeat(128);
        let keys = [
            (RecipientKey::recipient(id("cust-17")), "cust-17".to_owned()),
            (
                RecipientKey::Recipient(AudienceId::Phone(id("+79161234567"))),
                "phone +79161234567".to_owned(),
            ),
            (
                RecipientKey::Duplicate {
                    row: AudienceId::Given(id(&long)),
                    line: 9,
                },
                format!("{long} dup line 9"),
            ),
            (
                RecipientKey::Duplicate {
                    row: AudienceId::Phone(id("+79161234567")),
                    line: 10,
                },
                "phone +79161234567 dup line 10".to_owned(),
            ),
            (RecipientKey::Unreadable { line: 17 }, "line 17".to_owned()),
        ];
        for (key, text) in keys {
            assert_eq!(key.to_string(), text);
            assert_eq!(RecipientKey::parse(&text), Ok(key));
        }
    }

    #[test]
    fn ids_that_look_synthetic_stay_ids() {
        // The forms of earlier versions, and words of the synthetic forms, are plain ids.
        for text in ["line:7", "c-1#line9", "invalid", "line", "phone", "dup"] {
            assert_eq!(
                RecipientKey::parse(text),
                Ok(RecipientKey::recipient(id(text)))
            );
        }
    }

    #[test]
    fn malformed_keys_are_refused() {
        for text in [
            "",
            "line  7",
            "line 07",
            "line -7",
            "line x",
            " line 7",
            "a dup line",
            "a dup 7",
            "phone a b",
            "a b",
            "line 7 dup line 8",
            "line 18446744073709551616",
        ] {
            assert!(RecipientKey::parse(text).is_err(), "{text:?} accepted");
        }
    }

    fn any_id() -> impl Strategy<Value = RecipientId> {
        "[^\\s\\p{Cc}]{1,128}".prop_filter_map("an id", |s| RecipientId::parse(&s).ok())
    }

    fn any_key() -> impl Strategy<Value = RecipientKey> {
        let row = prop_oneof![
            any_id().prop_map(AudienceId::Given),
            any_id().prop_map(AudienceId::Phone)
        ];
        prop_oneof![
            row.clone().prop_map(RecipientKey::Recipient),
            (row, any::<u64>()).prop_map(|(row, line)| RecipientKey::Duplicate { row, line }),
            any::<u64>().prop_map(|line| RecipientKey::Unreadable { line }),
        ]
    }

    proptest! {
        /// Distinct keys have distinct texts: a store keyed by the text merges nothing.
        #[test]
        fn text_and_key_correspond_one_to_one(a in any_key(), b in any_key()) {
            prop_assert_eq!(RecipientKey::parse(&a.to_string()), Ok(a.clone()));
            prop_assert_eq!(a == b, a.to_string() == b.to_string());
        }

        /// Any text that parses is written back as the same text.
        #[test]
        fn parsed_text_is_canonical(text in "(phone |line |[a-z0-9]{1,3} )?[a-z0-9#:]{1,4}( dup line [0-9]{1,3})?") {
            if let Ok(key) = RecipientKey::parse(&text) {
                prop_assert_eq!(key.to_string(), text);
            }
        }
    }
}
