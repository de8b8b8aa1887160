//! What WhatsApp tells Herald after a send, applied to the stores: delivery statuses on the
//! ladder ([`herald_store::Feedback`]), STOP/START keywords as consent events, and button
//! replies as an opt-out or a stored tag.
//!
//! The webhook handler (admin) verifies the signature and parses the notification
//! ([`herald_channel::whatsapp::inbound`]); these functions decide and write, and say what they
//! did as a [`Verdict`] whose label is bounded (metrics, logs). Nothing here fails on what a
//! user or Meta sent: an unknown message id, an unknown button, a number that is not a phone
//! are verdicts (counted, logged, and answered 200 so Meta does not retry them for days). Only
//! a store failure is an error, so Meta retries the notification later.

mod message;
mod status;

pub use message::apply_message;
pub use status::{StatusOutcome, apply_status};

/// What one status or message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// A status moved its delivery.
    Applied,
    /// A status the delivery already had (a duplicate, an out-of-order report).
    Unchanged,
    /// A status for a delivery no report may change.
    Refused,
    /// A status for a message not recorded yet: kept until its send is.
    Kept,
    /// A status dropped: too many kept already.
    Dropped,
    /// An opt-out recorded (keyword, button, or a failed 131050).
    OptedOut,
    /// An opt-in recorded (keyword).
    OptedIn,
    /// A tag stored (button).
    Tagged,
    /// A tag the phone had already.
    AlreadyTagged,
    /// A tag the store refused (too long, too many for the phone).
    TagRefused,
    /// A button without `on_reply`.
    NoAction,
    /// A text that is no keyword.
    NotKeyword,
    /// A keyword opt-in dated more than 5 minutes ahead of Herald's clock: refused.
    DatedAhead,
    /// A reply to a message Herald has no record of (or whose run or campaign is gone).
    UnknownMessage,
    /// A button payload the campaign does not define.
    UnknownButton,
    /// A button reply from a number the replied-to message was not sent to: ignored.
    Foreign,
    /// The sender's number is not a valid phone number.
    InvalidPhone,
    /// A message type or status value Herald does not act on.
    Ignored,
}

impl Verdict {
    /// Stable, bounded label (metrics `verdict`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Applied => "applied",
            Verdict::Unchanged => "unchanged",
            Verdict::Refused => "refused",
            Verdict::Kept => "kept",
            Verdict::Dropped => "dropped",
            Verdict::OptedOut => "opted_out",
            Verdict::OptedIn => "opted_in",
            Verdict::Tagged => "tagged",
            Verdict::AlreadyTagged => "already_tagged",
            Verdict::TagRefused => "tag_refused",
            Verdict::NoAction => "no_action",
            Verdict::NotKeyword => "not_keyword",
            Verdict::DatedAhead => "dated_ahead",
            Verdict::UnknownMessage => "unknown_message",
            Verdict::UnknownButton => "unknown_button",
            Verdict::Foreign => "foreign",
            Verdict::InvalidPhone => "invalid_phone",
            Verdict::Ignored => "ignored",
        }
    }
}

/// Meta writes numbers as digits without `+`.
fn phone(digits: &str) -> Option<herald_core::PhoneNumber> {
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    herald_core::PhoneNumber::parse(&format!("+{digits}"), None).ok()
}
