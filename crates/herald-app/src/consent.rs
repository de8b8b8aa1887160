//! `herald consent`: record and inspect consent events.
//!
//! Every way in applies the rules of design §1.1 before anything is stored: the event names its
//! channel (consent on `sms` is not consent on `whatsapp`), an opt-in names its scope (an
//! opt-out without one withdraws `all`), and nothing dated more than five minutes after it is
//! recorded is accepted.

mod import;

use chrono::{DateTime, Utc};
use herald_core::consent::DatedAhead;
use herald_core::{
    ConsentChannel, ConsentEvent, ConsentKind, ConsentState, PhoneNumber, RecordedConsent, Scope,
};
use herald_store::{Consents, StoredConsent, Stores};

use crate::AppError;

pub use import::{ImportReport, import};

/// One consent event as given on the command line or in an import row.
#[derive(Debug, Clone)]
pub struct ConsentInput {
    /// The channel it was given or withdrawn on.
    pub channel: ConsentChannel,
    /// The phone as written.
    pub phone: String,
    /// opt_in or opt_out.
    pub kind: ConsentKind,
    /// What it covers, as given: an opt-in must name it, an opt-out without one is `all`.
    pub scope: Option<Scope>,
    /// When it happened (default: now).
    pub occurred_at: Option<DateTime<Utc>>,
    /// Where it came from.
    pub source: String,
    /// Evidence.
    pub proof: Option<String>,
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The phone does not parse.
    #[error("{0}")]
    Phone(String),
    /// An opt-in that does not say what it covers: reading it as `all` would grant marketing
    /// to someone who may have agreed to receipts only.
    #[error("an opt-in needs a scope (marketing, transactional, service or all)")]
    MissingScope,
    /// Dated too far ahead.
    #[error(transparent)]
    DatedAhead(#[from] DatedAhead),
}

impl ConsentInput {
    /// The event to store, recorded at `now`.
    pub fn to_stored(&self, now: DateTime<Utc>) -> Result<StoredConsent, InputError> {
        let phone =
            PhoneNumber::parse(&self.phone, None).map_err(|e| InputError::Phone(e.to_string()))?;
        let scope = match (self.kind, self.scope) {
            (_, Some(scope)) => scope,
            (ConsentKind::OptIn, None) => return Err(InputError::MissingScope),
            (ConsentKind::OptOut, None) => Scope::All,
        };
        let event = ConsentEvent {
            kind: self.kind,
            scope,
            occurred_at: self.occurred_at.unwrap_or(now),
            source: self.source.clone(),
            proof: self.proof.clone(),
        };
        event.check_dated(now)?;
        Ok(StoredConsent {
            channel: self.channel.to_string(),
            phone,
            event,
        })
    }
}

/// Stores an event [`ConsentInput::to_stored`] accepted, recorded at `now`; returns whether it
/// was new (an identical event already in the log is not stored twice).
pub async fn store<S: Stores>(
    stores: &S,
    stored: StoredConsent,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    Ok(stores.consents().append(&[stored], now).await? > 0)
}

/// A phone's consent on one channel, as of `now`.
#[derive(Debug, Clone)]
pub struct ConsentView {
    /// The channel.
    pub channel: ConsentChannel,
    /// The state each purpose is decided on.
    pub state: ConsentState,
    /// The audit trail, in the order the events happened.
    pub records: Vec<RecordedConsent>,
    /// The instant the state is for.
    pub now: DateTime<Utc>,
}

/// The state per scope and the audit trail of a phone on `channel`.
pub async fn show<S: Stores>(
    stores: &S,
    channel: &ConsentChannel,
    phone: &str,
    now: DateTime<Utc>,
) -> Result<ConsentView, AppError> {
    let phone = PhoneNumber::parse(phone, None).map_err(|e| AppError::User(e.to_string()))?;
    let records = stores.consents().events(channel.as_str(), &phone).await?;
    Ok(ConsentView {
        channel: channel.clone(),
        state: ConsentState::at(now, &records),
        records,
        now,
    })
}
