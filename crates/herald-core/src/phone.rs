//! Phone numbers in E.164, with the region libphonenumber assigns them.
//!
//! The region matters beyond formatting: +1 and +7 span several countries, and an unknown-zone
//! recipient is held until the window is open in every zone of *their* country, so a 416 number
//! must come out Canadian and a 7-7xx number Kazakh. Region detection is delegated to the
//! `phonenumber` crate (a maintained port of Google's libphonenumber metadata).

use std::fmt;

use phonenumber::country;

use crate::region::Region;

/// Why a phone number was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    /// Nothing but whitespace was given.
    #[error("phone number is empty")]
    Empty,
    /// A letter or other character that has no place in a phone number.
    #[error("invalid phone {input:?}: unexpected character {character:?}")]
    InvalidCharacter {
        /// The rejected input.
        input: String,
        /// The first offending character.
        character: char,
    },
    /// A national-format number without a country to read it in.
    #[error("invalid phone {input:?}: not in +<country code> form and no default country given")]
    MissingCountry {
        /// The rejected input.
        input: String,
    },
    /// The default country is not one libphonenumber knows.
    #[error("unknown default country {region} for phone {input:?}")]
    UnknownDefaultCountry {
        /// The rejected input.
        input: String,
        /// The default country.
        region: Region,
    },
    /// libphonenumber could not parse the digits, or they are not a valid number of any region.
    #[error("invalid phone {input:?}: {reason}")]
    Invalid {
        /// The rejected input.
        input: String,
        /// Why, in words.
        reason: &'static str,
    },
}

/// A valid phone number in E.164 form.
///
/// `Display` and `Debug` mask the digits (`+7********89`) so that a number can be put in a log
/// line or an error without leaking it; [`PhoneNumber::expose_e164`] is the one way to the full
/// number, and its name makes each use visible in review.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhoneNumber {
    e164: String,
    country_code_len: u8,
    region: Option<Region>,
}

impl PhoneNumber {
    /// Parses `input` (spaces, dashes, dots and brackets allowed). A number without a leading `+`
    /// (or `00`) is read in `default_country`'s national format, trunk prefix included
    /// (`8 (916) 123-45-67` with RU).
    pub fn parse(input: &str, default_country: Option<Region>) -> Result<Self, PhoneNumberError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneNumberError::Empty);
        }
        if let Some(character) = trimmed.chars().find(|c| {
            !(c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.' | '\u{a0}'))
        }) {
            return Err(PhoneNumberError::InvalidCharacter {
                input: input.to_owned(),
                character,
            });
        }
        let digits_and_plus: String = trimmed
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        if digits_and_plus.rfind('+').is_some_and(|i| i > 0) {
            return Err(PhoneNumberError::Invalid {
                input: input.to_owned(),
                reason: "'+' only at the start",
            });
        }
        let international = digits_and_plus.starts_with('+') || digits_and_plus.starts_with("00");
        let normalised = match digits_and_plus.strip_prefix("00") {
            Some(rest) => format!("+{rest}"),
            None => digits_and_plus,
        };
        let default_id = match (international, default_country) {
            (true, _) => None,
            (false, None) => {
                return Err(PhoneNumberError::MissingCountry {
                    input: input.to_owned(),
                });
            }
            (false, Some(region)) => {
                Some(region.as_str().parse::<country::Id>().map_err(|_| {
                    PhoneNumberError::UnknownDefaultCountry {
                        input: input.to_owned(),
                        region,
                    }
                })?)
            }
        };
        let parsed =
            phonenumber::parse(default_id, &normalised).map_err(|_| PhoneNumberError::Invalid {
                input: input.to_owned(),
                reason: "not a phone number",
            })?;
        if !parsed.is_valid() {
            return Err(PhoneNumberError::Invalid {
                input: input.to_owned(),
                reason: "not a valid number in any region's numbering plan",
            });
        }
        // E.164 is the country code and the national significant number (its leading zeros
        // included), nothing else; libphonenumber's formatter would also run its national format
        // rules (regexes) first, a fifth of the cost of parsing a number.
        let code = parsed.code().value();
        let e164 = format!("+{code}{}", parsed.national());
        let country_code_len = code.checked_ilog10().map_or(1, |digits| digits as u8 + 1);
        let region = parsed
            .country()
            .id()
            .and_then(|id| Region::parse(id.as_ref()).ok());
        Ok(Self {
            e164,
            country_code_len,
            region,
        })
    }

    /// Rebuilds a number that was parsed and validated before, from its E.164 form and region
    /// (a store's own columns), without running libphonenumber's validation again: that costs
    /// tens of microseconds, more than a whole delivery's budget when draining a queue. Only the
    /// shape is checked, and that the region's country code starts the number.
    pub fn from_validated(e164: &str, region: Region) -> Result<Self, PhoneNumberError> {
        let invalid = |reason| PhoneNumberError::Invalid {
            input: e164.to_owned(),
            reason,
        };
        let digits = e164
            .strip_prefix('+')
            .ok_or_else(|| invalid("not in E.164 form"))?;
        if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("not in E.164 form"));
        }
        let code = phonenumber::metadata::DATABASE
            .by_id(region.as_str())
            .map(|m| m.country_code().to_string())
            .ok_or_else(|| invalid("unknown region"))?;
        if !digits.starts_with(&code) {
            return Err(invalid("the number does not belong to its region"));
        }
        Ok(Self {
            e164: e164.to_owned(),
            country_code_len: code.len() as u8,
            region: Some(region),
        })
    }

    /// The full number, `+` and digits. Named so that every place that reveals it stands out.
    pub fn expose_e164(&self) -> &str {
        &self.e164
    }

    /// The country the number belongs to, when libphonenumber can tell (it cannot for
    /// non-geographic numbers such as +800).
    pub fn region(&self) -> Option<Region> {
        self.region
    }

    /// The masked form: country code and the last two digits, the rest as `*`.
    pub fn masked(&self) -> String {
        let digits = &self.e164[1..];
        let shown_head = usize::from(self.country_code_len).min(digits.len());
        let shown_tail = 2.min(digits.len() - shown_head);
        let hidden = digits.len() - shown_head - shown_tail;
        format!(
            "+{}{}{}",
            &digits[..shown_head],
            "*".repeat(hidden),
            &digits[digits.len() - shown_tail..]
        )
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(code: &str) -> Option<Region> {
        Some(Region::parse(code).unwrap())
    }

    /// The E.164 form is built from the parsed parts rather than by libphonenumber's formatter;
    /// it must be the same string, leading national zeros (Italy) and 1-3 digit codes included.
    #[test]
    fn e164_matches_libphonenumbers_own_formatting() {
        let cases = [
            ("+39 06 6982 0134", None),
            ("+39 02 1234 5678", None),
            ("+225 07 12 34 56 78", None),
            ("+1 347 555 0134", None),
            ("+44 20 7946 0958", None),
            ("+971 50 123 4567", None),
            ("+380 44 123 4567", None),
            ("8 (916) 123-45-67", region("RU")),
            ("0049 30 901820", None),
        ];
        for (input, country) in cases {
            let phone =
                PhoneNumber::parse(input, country).unwrap_or_else(|e| panic!("{input}: {e}"));
            let id = country.map(|r| r.as_str().parse::<country::Id>().unwrap());
            let digits: String = input
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect();
            let digits = digits
                .strip_prefix("00")
                .map_or(digits.clone(), |rest| format!("+{rest}"));
            let reference = phonenumber::parse(id, &digits).unwrap();
            let formatted = reference.format().mode(phonenumber::Mode::E164).to_string();
            assert_eq!(phone.expose_e164(), formatted, "{input}");
            let code_len = reference.code().value().to_string().len();
            assert_eq!(usize::from(phone.country_code_len), code_len, "{input}");
        }
    }

    #[test]
    fn plus_one_and_plus_seven_numbers_get_their_own_country() {
        let cases = [
            ("+1 347 555 0134", "US"), // New York City
            ("+1 (213) 555-0134", "US"),
            ("+1 416 555 0134", "CA"), // Toronto
            ("+1 604 555 0134", "CA"),
            ("+7 916 123-45-67", "RU"),
            ("+7 495 123 45 67", "RU"),
            ("+7 701 123 45 67", "KZ"), // Kazakh mobile
            ("+7 727 258 36 11", "KZ"), // Almaty
        ];
        for (input, expected) in cases {
            let phone = PhoneNumber::parse(input, None).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(phone.region(), region(expected), "{input}");
        }
    }

    #[test]
    fn normalises_punctuation_and_national_formats() {
        let national = PhoneNumber::parse("8 (916) 123-45-67", region("RU")).unwrap();
        assert_eq!(national.expose_e164(), "+79161234567");
        let dotted = PhoneNumber::parse("347.555.0134", region("US")).unwrap();
        assert_eq!(dotted.expose_e164(), "+13475550134");
        let double_zero = PhoneNumber::parse("0044 20 7946 0958", None).unwrap();
        assert_eq!(double_zero.expose_e164(), "+442079460958");
        assert_eq!(double_zero.region(), region("GB"));
    }

    #[test]
    fn rejects_bad_input_with_typed_errors() {
        assert_eq!(PhoneNumber::parse("  ", None), Err(PhoneNumberError::Empty));
        assert!(matches!(
            PhoneNumber::parse("1-800-FLOWERS", region("US")),
            Err(PhoneNumberError::InvalidCharacter { character: 'F', .. })
        ));
        assert!(matches!(
            PhoneNumber::parse("9161234567", None),
            Err(PhoneNumberError::MissingCountry { .. })
        ));
        assert!(matches!(
            PhoneNumber::parse("12345", region("US")),
            Err(PhoneNumberError::Invalid { .. })
        ));
        assert!(matches!(
            PhoneNumber::parse("+7 000 000 00 00", None),
            Err(PhoneNumberError::Invalid { .. })
        ));
        assert!(matches!(
            PhoneNumber::parse("+1 347+555", None),
            Err(PhoneNumberError::Invalid { .. })
        ));
    }

    #[test]
    fn rebuilding_a_validated_number_matches_parsing_it() {
        for input in [
            "+7 916 123-45-89",
            "+1 416 555 0134",
            "+977 984 1234567",
            "+44 20 7946 0958",
        ] {
            let parsed = PhoneNumber::parse(input, None).unwrap();
            let rebuilt =
                PhoneNumber::from_validated(parsed.expose_e164(), parsed.region().unwrap())
                    .unwrap();
            assert_eq!(rebuilt, parsed, "{input}");
            assert_eq!(rebuilt.to_string(), parsed.to_string());
        }
        let ru = Region::parse("RU").unwrap();
        assert!(
            PhoneNumber::from_validated("+14165550134", ru).is_err(),
            "+1 is not Russia's code"
        );
        assert!(PhoneNumber::from_validated("79161234589", ru).is_err());
        assert!(PhoneNumber::from_validated("+7916x234589", ru).is_err());
    }

    #[test]
    fn display_and_debug_hide_the_digits() {
        let phone = PhoneNumber::parse("+7 916 123-45-89", None).unwrap();
        assert_eq!(phone.to_string(), "+7********89");
        assert_eq!(format!("{phone:?}"), "PhoneNumber(+7********89)");
        let us = PhoneNumber::parse("+1 347 555 0134", None).unwrap();
        assert_eq!(us.to_string(), "+1********34");
        for shown in [phone.to_string(), format!("{phone:?}"), us.to_string()] {
            assert!(!shown.contains("9161234"), "{shown}");
            assert!(!shown.contains("5550"), "{shown}");
        }
    }
}
