//! Terminal outcomes of a delivery (design §1.5). Every recipient of a run ends in exactly one.

use std::fmt;

/// Why a delivery was not sent. A skip is data, not an error: the engine records it and the
/// counts by reason add up to the audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// Marketing without an opt-in.
    NoConsent,
    /// The newest relevant consent event is an opt-out.
    OptedOut,
    /// A frequency cap is reached.
    FrequencyCapped,
    /// The phone or zone could not be used.
    InvalidRecipient,
    /// The zones of an unknown-zone recipient's country never share an open instant.
    NoCommonWindow,
    /// A template variable has no value and no default.
    MissingVariable,
    /// A rendered parameter breaks the provider's rules (newline, tab, too long, …).
    InvalidParameter,
    /// The phone appeared earlier in the same audience.
    Duplicate,
    /// The run was cancelled before this delivery went out.
    Cancelled,
    /// Filtered out by the segment.
    NotInSegment,
}

impl SkipReason {
    /// Every reason, for exhaustive reports.
    pub const ALL: [SkipReason; 10] = [
        SkipReason::NoConsent,
        SkipReason::OptedOut,
        SkipReason::FrequencyCapped,
        SkipReason::InvalidRecipient,
        SkipReason::NoCommonWindow,
        SkipReason::MissingVariable,
        SkipReason::InvalidParameter,
        SkipReason::Duplicate,
        SkipReason::Cancelled,
        SkipReason::NotInSegment,
    ];

    /// The stable snake_case name used in storage, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoConsent => "no_consent",
            SkipReason::OptedOut => "opted_out",
            SkipReason::FrequencyCapped => "frequency_capped",
            SkipReason::InvalidRecipient => "invalid_recipient",
            SkipReason::NoCommonWindow => "no_common_window",
            SkipReason::MissingVariable => "missing_variable",
            SkipReason::InvalidParameter => "invalid_parameter",
            SkipReason::Duplicate => "duplicate",
            SkipReason::Cancelled => "cancelled",
            SkipReason::NotInSegment => "not_in_segment",
        }
    }

    /// Parses a stable name back.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one terminal state of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The provider accepted the message.
    Sent,
    /// The provider rejected it with a code that proves it was not sent.
    Failed {
        /// The provider's error code.
        code: String,
    },
    /// The request may have reached the provider (timeout after writing, crash in flight).
    Unknown,
    /// It could not go out before the campaign's expiry.
    Expired,
    /// Not sent, on purpose.
    Skipped(SkipReason),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Sent => f.write_str("sent"),
            Outcome::Failed { code } => write!(f, "failed({code})"),
            Outcome::Unknown => f.write_str("unknown"),
            Outcome::Expired => f.write_str("expired"),
            Outcome::Skipped(reason) => write!(f, "skipped({reason})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<_> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
        for reason in SkipReason::ALL {
            assert_eq!(SkipReason::parse(reason.as_str()), Some(reason));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SkipReason::ALL.len());
        assert_eq!(
            Outcome::Skipped(SkipReason::OptedOut).to_string(),
            "skipped(opted_out)"
        );
        assert_eq!(
            Outcome::Failed {
                code: "131026".into()
            }
            .to_string(),
            "failed(131026)"
        );
    }
}
