//! The channel a consent event is keyed by (design §1.1: consent on another channel is not
//! consent here).

use std::fmt;
use std::str::FromStr;

use super::ConsentParseError;

/// A consent channel: `whatsapp`, `sms`, `email`, … Any lowercase name `[a-z][a-z0-9_-]*` of at
/// most [`ConsentChannel::MAX_LEN`] characters, so a typo in case or spacing (`SMS`, `sms `)
/// is an error rather than a new, empty channel on which nobody has consented.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsentChannel(String);

impl ConsentChannel {
    /// The longest name accepted.
    pub const MAX_LEN: usize = 32;

    /// The channel WhatsApp senders check, and the default everywhere a channel is not named.
    pub fn whatsapp() -> Self {
        Self("whatsapp".to_owned())
    }

    /// Parses a channel name.
    pub fn parse(name: &str) -> Result<Self, ConsentParseError> {
        let bytes = name.as_bytes();
        let valid = bytes.first().is_some_and(u8::is_ascii_lowercase)
            && bytes.len() <= Self::MAX_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(ConsentParseError {
                what: "consent channel",
                input: name.to_owned(),
                expected: "a lowercase name matching [a-z][a-z0-9_-]* of at most 32 characters, \
                           such as whatsapp or sms",
            })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ConsentChannel {
    type Err = ConsentParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ConsentChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_names_are_channels_and_nothing_else_is() {
        for ok in ["whatsapp", "sms", "e-mail", "push_v2", "x", &"a".repeat(32)] {
            assert_eq!(ConsentChannel::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "SMS",
            "Sms",
            " sms",
            "sms ",
            "1sms",
            "-sms",
            "_sms",
            "sms.x",
            "смс",
            &"a".repeat(33),
        ] {
            let error = ConsentChannel::parse(bad).unwrap_err();
            assert_eq!(error.what, "consent channel", "{bad:?}");
        }
        assert_eq!(ConsentChannel::whatsapp().to_string(), "whatsapp");
    }
}
