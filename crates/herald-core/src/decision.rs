//! The send decision: given everything known about one delivery at `now`, send it, defer it to
//! an exact instant, skip it, or let it expire. Pure; the engine supplies `now` and the facts,
//! records the result, and for `Defer` schedules the job at `until` (no polling).
//!
//! Order of checks, and why:
//! 1. consent first: an opted-out recipient is skipped even if the window is closed, so `plan`
//!    and `status` show the real reason and nothing waits for a message that can never go;
//! 2. expiry: once expired, nothing else matters;
//! 3. the release instant: the first window opening at or after the scheduled instant, plus the
//!    recipient's spread offset (clamped inside that open interval and before expiry); a
//!    deferral says which of the three holds it back ([`DeferReason`]);
//! 4. the window at `now` itself (a slow queue may reach a delivery after its interval closed);
//! 5. frequency caps last, at the moment of sending, since they depend on sends made meanwhile.

use chrono::{DateTime, TimeDelta, Utc};

use crate::cap::{FrequencyCap, PastSend};
use crate::consent::{ConsentState, Purpose};
use crate::id::{CampaignId, RecipientId, RunId};
use crate::outcome::{Outcome, SkipReason};
use crate::spread;
use crate::window::{Place, SendWindow};

/// What to do with a delivery now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it now.
    Send,
    /// Not yet: look again at `until`.
    Defer {
        /// When the delivery becomes due.
        until: DateTime<Utc>,
        /// What holds it back until then.
        reason: DeferReason,
    },
    /// Never: end skipped for this reason.
    Skip(SkipReason),
    /// It cannot go out before the campaign's expiry.
    Expire,
}

/// Why the policy holds a delivery back. The engine stores it with the deferral, so `status`
/// can say what a queued delivery waits for and `run --until-idle` can tell a delivery due
/// within the spread (worth waiting for) from one waiting for a window to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeferReason {
    /// The planned instant (the campaign's `at` in the recipient's zone) is still ahead, and the
    /// window is open then.
    Schedule,
    /// The send window is closed in the recipient's zone: it waits for the next opening (plus
    /// its spread offset).
    Window,
    /// The window is open, but the delivery's spread offset (design §1.6) puts it a little later
    /// within the open interval: due within `spread` of now.
    Spread,
}

impl Decision {
    /// The terminal outcome, for decisions that end the delivery.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Decision::Send | Decision::Defer { .. } => None,
            Decision::Skip(reason) => Some(Outcome::Skipped(*reason)),
            Decision::Expire => Some(Outcome::Expired),
        }
    }
}

/// The campaign-wide rules.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// The campaign (for campaign-scoped caps).
    pub campaign: &'a CampaignId,
    /// Its purpose (for consent and purpose-scoped caps).
    pub purpose: Purpose,
    /// Its send window.
    pub window: &'a SendWindow,
    /// Its caps, including those legal presets add.
    pub caps: &'a [FrequencyCap],
    /// The spread width (design §1.6).
    pub spread: TimeDelta,
}

/// One delivery: which run and recipient, when it was planned for, when it expires.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The run.
    pub run: &'a RunId,
    /// The recipient.
    pub recipient: &'a RecipientId,
    /// The planned instant (the campaign's `at` in the recipient's zone).
    pub scheduled_at: DateTime<Utc>,
    /// No send at or after this instant.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What is known about the recipient at `now`.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Where their wall clock is.
    pub place: &'a Place,
    /// Their consent on the campaign's channel.
    pub consent: &'a ConsentState,
    /// Their past sends within the longest cap period.
    pub history: &'a [PastSend],
}

/// Decides what to do with `delivery` at `now`.
pub fn decide(
    now: DateTime<Utc>,
    policy: &Policy<'_>,
    delivery: &Delivery<'_>,
    facts: &Facts<'_>,
) -> Decision {
    if let Err(reason) = facts.consent.permits(policy.purpose) {
        return Decision::Skip(reason);
    }
    if delivery.expires_at.is_some_and(|expiry| now >= expiry) {
        return Decision::Expire;
    }
    let (opening, planned) = match release_at(policy, delivery, facts.place, delivery.scheduled_at)
    {
        Ok(instants) => instants,
        Err(decision) => return decision,
    };
    if now < planned {
        let reason = if opening <= now {
            DeferReason::Spread
        } else if opening > delivery.scheduled_at {
            DeferReason::Window
        } else {
            DeferReason::Schedule
        };
        return Decision::Defer {
            until: planned,
            reason,
        };
    }
    if !policy.window.is_open_at(now, facts.place) {
        return match release(policy, delivery, facts.place, now) {
            Ok(until) => Decision::Defer {
                until,
                reason: DeferReason::Window,
            },
            Err(decision) => decision,
        };
    }
    let capped = policy.caps.iter().any(|cap| {
        cap.is_reached(
            now,
            policy.campaign,
            policy.purpose,
            facts.history,
            facts.place,
        )
    });
    if capped {
        return Decision::Skip(SkipReason::FrequencyCapped);
    }
    Decision::Send
}

/// The release instant at or after `from`: the next window opening plus the spread offset,
/// clamped so it stays inside that open interval and before expiry.
pub fn release(
    policy: &Policy<'_>,
    delivery: &Delivery<'_>,
    place: &Place,
    from: DateTime<Utc>,
) -> Result<DateTime<Utc>, Decision> {
    release_at(policy, delivery, place, from).map(|(_, release)| release)
}

/// [`release`], with the window opening it is spread from: (opening, release).
fn release_at(
    policy: &Policy<'_>,
    delivery: &Delivery<'_>,
    place: &Place,
    from: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Decision> {
    let opening = policy
        .window
        .next_open(from, place)
        .ok_or(Decision::Skip(SkipReason::NoCommonWindow))?;
    if delivery.expires_at.is_some_and(|expiry| opening >= expiry) {
        return Err(Decision::Expire);
    }
    let mut width = policy.spread;
    if let Some(expiry) = delivery.expires_at {
        width = width.min(expiry - opening);
    }
    if let Some(close) = policy.window.open_until_within(opening, place, width) {
        width = width.min(close - opening);
    }
    Ok((
        opening,
        opening + spread::offset(delivery.run, delivery.recipient, width),
    ))
}

#[cfg(test)]
mod tests;
