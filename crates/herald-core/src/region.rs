//! Countries (ISO 3166-1 alpha-2). A phone number's region decides which zones an unknown-zone
//! recipient may live in and which holiday calendar the `country` option applies.

use std::fmt;
use std::str::FromStr;

/// Why a region code was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid country code {input:?}: expected two ASCII letters (ISO 3166-1 alpha-2)")]
pub struct RegionError {
    /// The rejected input.
    pub input: String,
}

/// An ISO 3166-1 alpha-2 country code, stored upper-case.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region([u8; 2]);

impl Region {
    /// Parses `ru`, `RU` or `Ru`.
    pub fn parse(input: &str) -> Result<Self, RegionError> {
        match input.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(RegionError {
                input: input.to_owned(),
            }),
        }
    }

    /// The code, upper-case.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for Region {
    type Err = RegionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_either_case_and_rejects_the_rest() {
        assert_eq!(Region::parse("ru").unwrap().as_str(), "RU");
        assert_eq!(Region::parse("Us").unwrap(), Region::parse("US").unwrap());
        for bad in ["", "R", "RUS", "1A", "р у"] {
            assert!(Region::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
