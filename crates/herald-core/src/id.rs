//! Identifiers. Each one is parsed once at the boundary so that everything downstream can rely on
//! its shape (campaign ids end up in run ids, store keys and file names).

use std::fmt;

mod key;

pub use key::{AudienceId, RecipientKey};

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier was empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which identifier.
        kind: &'static str,
    },
    /// The identifier was longer than allowed.
    #[error("{kind} {input:?} is longer than {max} characters")]
    TooLong {
        /// Which identifier.
        kind: &'static str,
        /// The rejected input.
        input: String,
        /// The limit.
        max: usize,
    },
    /// The identifier held a character outside its alphabet.
    #[error("{kind} {input:?} may only contain {allowed}")]
    InvalidCharacter {
        /// Which identifier.
        kind: &'static str,
        /// The rejected input.
        input: String,
        /// The alphabet, in words.
        allowed: &'static str,
    },
}

/// A campaign id: `[a-z0-9-]+`, at most 64 characters, not starting or ending with `-`.
/// It is used verbatim in run ids and store keys, so the alphabet is deliberately small.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CampaignId(String);

impl CampaignId {
    const MAX: usize = 64;

    /// Parses a campaign id.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        const KIND: &str = "campaign id";
        const ALLOWED: &str = "lowercase letters, digits and inner dashes";
        if input.is_empty() {
            return Err(IdError::Empty { kind: KIND });
        }
        if input.len() > Self::MAX {
            return Err(IdError::TooLong {
                kind: KIND,
                input: input.to_owned(),
                max: Self::MAX,
            });
        }
        let valid_chars = input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_chars || input.starts_with('-') || input.ends_with('-') {
            return Err(IdError::InvalidCharacter {
                kind: KIND,
                input: input.to_owned(),
                allowed: ALLOWED,
            });
        }
        Ok(Self(input.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One execution of a campaign: `<campaign_id>@<fire time as written>` (design §2), so a one-off
/// campaign submitted twice maps to the same run and creates no second delivery.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(String);

impl RunId {
    /// Builds the run id of `campaign` fired at `fire` (the `at` value as written, or the cron fire
    /// time in RFC 3339).
    pub fn new(campaign: &CampaignId, fire: &str) -> Self {
        Self(format!("{campaign}@{fire}"))
    }

    /// Parses a run id as printed by [`RunId`]'s `Display`.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let Some((campaign, fire)) = input.split_once('@') else {
            return Err(IdError::InvalidCharacter {
                kind: "run id",
                input: input.to_owned(),
                allowed: "`<campaign id>@<fire time>`",
            });
        };
        let campaign = CampaignId::parse(campaign)?;
        // Control characters are refused as well as spaces: stores join a run id to a
        // recipient key with a control character (the Redis store's U+001F), and a run id
        // holding it would split at the wrong place.
        if fire.is_empty() || fire.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(IdError::InvalidCharacter {
                kind: "run id",
                input: input.to_owned(),
                allowed: "a fire time without spaces or control characters after `@`",
            });
        }
        Ok(Self::new(&campaign, fire))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            const MAX: usize = 128;

            /// Parses the id: 1-128 printable characters without whitespace.
            pub fn parse(input: &str) -> Result<Self, IdError> {
                if input.is_empty() {
                    return Err(IdError::Empty { kind: $kind });
                }
                if input.chars().count() > Self::MAX {
                    return Err(IdError::TooLong { kind: $kind, input: input.to_owned(), max: Self::MAX });
                }
                if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(IdError::InvalidCharacter {
                        kind: $kind,
                        input: input.to_owned(),
                        allowed: "printable characters without whitespace",
                    });
                }
                Ok(Self(input.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

opaque_id!(
    /// A recipient's id as given by the audience file (a CRM key, not the phone).
    ///
    /// It never contains whitespace, and that is what keeps audience rows apart: the rows that
    /// are not keyed by their own id (a row without one, a duplicate, a broken row) get a
    /// [`RecipientKey`] written with spaces (`phone +79161234567`, `cust-17 dup line 9`,
    /// `line 17`), a form no recipient id can take, so no real recipient can ever share a
    /// delivery key with one of them.
    RecipientId,
    "recipient id"
);
opaque_id!(
    /// A sender account from the config file.
    SenderId,
    "sender id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_ids_keep_to_their_alphabet() {
        assert!(CampaignId::parse("black-friday-2026").is_ok());
        for bad in ["", "Black", "a_b", "-a", "a-", "a b", "é"] {
            assert!(CampaignId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(CampaignId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn run_id_is_campaign_at_fire_time() {
        let c = CampaignId::parse("black-friday-2026").unwrap();
        let run = RunId::new(&c, "2026-11-27T10:00");
        assert_eq!(run.as_str(), "black-friday-2026@2026-11-27T10:00");
        assert_eq!(RunId::parse(run.as_str()).unwrap(), run);
        assert!(RunId::parse("no-at-sign").is_err());
        assert!(RunId::parse("x@").is_err());
    }

    #[test]
    fn run_id_rejects_control_characters() {
        for bad in [
            "sep@2026-11-27T10:00\u{1f}x",
            "nul@2026-11-27T10:00\u{0}",
            "del@2026\u{7f}",
            "tab@2026\t",
        ] {
            assert!(RunId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn opaque_ids_reject_whitespace() {
        assert!(RecipientId::parse("cust-17").is_ok());
        assert!(RecipientId::parse("a b").is_err());
        assert!(SenderId::parse("").is_err());
    }
}
