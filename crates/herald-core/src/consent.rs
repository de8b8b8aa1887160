//! Consent: the append-only events and the state derived from them (design §1.1, §2).
//!
//! The state keeps, per scope, the newest opt-in and the newest opt-out *by when they count*.
//! Folding is a maximum per field, so the result cannot depend on the order events arrive in: a
//! late-arriving old opt-in never overrides a newer opt-out. Ties go to the opt-out.
//!
//! # Dates ahead of the clock
//! An event's date is what the source says, and sources have clocks too. Input dated more than
//! [`MAX_DATED_AHEAD`] after it is recorded is refused ([`ConsentEvent::check_dated`]); events
//! stored before that rule (or within the allowance) count as [`RecordedConsent::counts_from`]
//! says: an opt-in from when it happened and never before `now` (a date in 2099 cannot grant
//! today, nor outrank a real opt-out made meanwhile until 2099 comes), an opt-out from the
//! earlier of when it happened and when it was recorded (a STOP dated a minute ahead stops sends
//! at once). Both directions fail closed.

mod channel;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::outcome::SkipReason;

pub use channel::ConsentChannel;

/// How far after the moment it is recorded an event may be dated: room for the source's clock
/// to run a little ahead of Herald's, and no more.
pub const MAX_DATED_AHEAD: TimeDelta = TimeDelta::minutes(5);

/// Why a purpose, scope or event kind was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: expected {expected}")]
pub struct ConsentParseError {
    /// What was being parsed.
    pub what: &'static str,
    /// The rejected input.
    pub input: String,
    /// What is accepted (`one of a, b` or a description).
    pub expected: &'static str,
}

/// What a campaign is for; decides which consent it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    /// Promotions: needs an explicit opt-in.
    Marketing,
    /// Order updates, receipts: allowed unless opted out.
    Transactional,
    /// Account and service notices: allowed unless opted out.
    Service,
}

impl Purpose {
    /// The name used in campaign files.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Marketing => "marketing",
            Purpose::Transactional => "transactional",
            Purpose::Service => "service",
        }
    }

    fn scope(self) -> Scope {
        match self {
            Purpose::Marketing => Scope::Marketing,
            Purpose::Transactional => Scope::Transactional,
            Purpose::Service => Scope::Service,
        }
    }
}

impl FromStr for Purpose {
    type Err = ConsentParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "marketing" => Ok(Purpose::Marketing),
            "transactional" => Ok(Purpose::Transactional),
            "service" => Ok(Purpose::Service),
            _ => Err(ConsentParseError {
                what: "purpose",
                input: s.to_owned(),
                expected: "one of marketing, transactional, service",
            }),
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event grants or withdraws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Marketing messages.
    Marketing,
    /// Transactional messages.
    Transactional,
    /// Service messages.
    Service,
    /// Everything on the channel (a STOP keyword, a START keyword).
    All,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [
        Scope::Marketing,
        Scope::Transactional,
        Scope::Service,
        Scope::All,
    ];

    /// The name used in files and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Marketing => "marketing",
            Scope::Transactional => "transactional",
            Scope::Service => "service",
            Scope::All => "all",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl FromStr for Scope {
    type Err = ConsentParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| ConsentParseError {
                what: "consent scope",
                input: s.to_owned(),
                expected: "one of marketing, transactional, service, all",
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Granting or withdrawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConsentKind {
    /// Consent given.
    OptIn,
    /// Consent withdrawn.
    OptOut,
}

impl FromStr for ConsentKind {
    type Err = ConsentParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "opt_in" | "opt-in" => Ok(ConsentKind::OptIn),
            "opt_out" | "opt-out" => Ok(ConsentKind::OptOut),
            _ => Err(ConsentParseError {
                what: "consent kind",
                input: s.to_owned(),
                expected: "one of opt_in, opt_out",
            }),
        }
    }
}

/// One consent event for a (channel, phone). The phone and channel key the store; the fold only
/// needs what, for which scope, and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvent {
    /// Opt-in or opt-out.
    pub kind: ConsentKind,
    /// What it covers.
    pub scope: Scope,
    /// When the recipient did it (not when Herald heard of it).
    pub occurred_at: DateTime<Utc>,
    /// Where it came from: `import`, `api`, `keyword:STOP`, `button`, `webhook:131050`, …
    pub source: String,
    /// Evidence: a form URL, the text shown, an IP.
    pub proof: Option<String>,
}

/// An event dated more than [`MAX_DATED_AHEAD`] after it is recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "dated {}, more than 5 minutes after it is recorded ({}): consent cannot be given or withdrawn in the future",
    rfc3339(.occurred_at),
    rfc3339(.recorded_at)
)]
pub struct DatedAhead {
    /// The date the input gave.
    pub occurred_at: DateTime<Utc>,
    /// When it was being recorded.
    pub recorded_at: DateTime<Utc>,
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl ConsentEvent {
    /// Refuses an event dated more than [`MAX_DATED_AHEAD`] after `recorded_at`, the moment it
    /// is being recorded. Every way into the log (the CLI, an import, the API) checks this first.
    pub fn check_dated(&self, recorded_at: DateTime<Utc>) -> Result<(), DatedAhead> {
        if self.occurred_at - recorded_at > MAX_DATED_AHEAD {
            return Err(DatedAhead {
                occurred_at: self.occurred_at,
                recorded_at,
            });
        }
        Ok(())
    }
}

/// A stored event and when Herald recorded it: what the fold needs to apply the rule for events
/// dated ahead (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedConsent {
    /// The event as given.
    pub event: ConsentEvent,
    /// When it was appended to the log.
    pub recorded_at: DateTime<Utc>,
}

impl RecordedConsent {
    /// The instant from which the event counts as of `now`, or `None` while it does not count:
    /// an opt-in from when it happened, once that is not after `now`; an opt-out always, from
    /// the earlier of when it happened and when it was recorded.
    pub fn counts_from(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let occurred_at = self.event.occurred_at;
        match self.event.kind {
            ConsentKind::OptIn => (occurred_at <= now).then_some(occurred_at),
            ConsentKind::OptOut => Some(occurred_at.min(self.recorded_at)),
        }
    }

    /// Whether the event is dated after it was recorded (shown as such in the audit trail).
    pub fn dated_ahead(&self) -> bool {
        self.event.occurred_at > self.recorded_at
    }
}

/// The newest opt-in and opt-out per scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsentState {
    newest_in: [Option<DateTime<Utc>>; 4],
    newest_out: [Option<DateTime<Utc>>; 4],
}

impl ConsentState {
    /// The state at `now` of a log, folded in any order; each event counts as
    /// [`RecordedConsent::counts_from`] says.
    pub fn at<'a>(
        now: DateTime<Utc>,
        records: impl IntoIterator<Item = &'a RecordedConsent>,
    ) -> Self {
        let mut state = Self::default();
        for record in records {
            if let Some(from) = record.counts_from(now) {
                state.apply(record.event.kind, record.event.scope, from);
            }
        }
        state
    }

    /// Adds one event that counts from `occurred_at`. [`ConsentState::at`] is the way to fold a
    /// stored log; this is for a state built by hand (a plan's assumed consent, tests).
    pub fn apply(&mut self, kind: ConsentKind, scope: Scope, occurred_at: DateTime<Utc>) {
        let slot = match kind {
            ConsentKind::OptIn => &mut self.newest_in[scope.index()],
            ConsentKind::OptOut => &mut self.newest_out[scope.index()],
        };
        *slot = (*slot).max(Some(occurred_at));
    }

    /// The current state of one scope on its own: the newest event, ties to opt-out.
    pub fn of_scope(&self, scope: Scope) -> Option<ConsentKind> {
        newest(
            self.newest_in[scope.index()],
            self.newest_out[scope.index()],
        )
    }

    /// Whether a campaign of `purpose` may message this recipient, per the table of design §2.
    pub fn permits(&self, purpose: Purpose) -> Result<(), SkipReason> {
        let scope = purpose.scope().index();
        let all = Scope::All.index();
        let newest_in = self.newest_in[scope].max(self.newest_in[all]);
        let newest_out = self.newest_out[scope].max(self.newest_out[all]);
        match (purpose, newest(newest_in, newest_out)) {
            (_, Some(ConsentKind::OptOut)) => Err(SkipReason::OptedOut),
            (_, Some(ConsentKind::OptIn)) => Ok(()),
            (Purpose::Marketing, None) => Err(SkipReason::NoConsent),
            (Purpose::Transactional | Purpose::Service, None) => Ok(()),
        }
    }
}

fn newest(opt_in: Option<DateTime<Utc>>, opt_out: Option<DateTime<Utc>>) -> Option<ConsentKind> {
    match (opt_in, opt_out) {
        (None, None) => None,
        (Some(_), None) => Some(ConsentKind::OptIn),
        (None, Some(_)) => Some(ConsentKind::OptOut),
        (Some(i), Some(o)) if o >= i => Some(ConsentKind::OptOut),
        (Some(_), Some(_)) => Some(ConsentKind::OptIn),
    }
}

#[cfg(test)]
mod tests;
