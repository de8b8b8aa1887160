//! Frequency caps: at most N messages per period to one phone.
//!
//! Counting happens over the phone's past sends, which the engine loads from the ledger; the cap
//! decides whether one more is allowed. Calendar-day periods start at local midnight in the
//! recipient's zone; for an unknown zone the earliest midnight of the candidate zones is used,
//! which counts more sends and so errs on the side of not sending.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDate, TimeDelta, TimeZone as _, Utc};

use crate::consent::Purpose;
use crate::id::CampaignId;
use crate::window::Place;

/// Why a cap was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// Not `<n>d` or `<n>h`.
    #[error("invalid cap period {input:?}: expected a number of days or hours such as 7d or 24h")]
    Period {
        /// The rejected input.
        input: String,
    },
    /// A calendar-day cap over hours.
    #[error("invalid cap period {input:?}: calendar periods count whole days (e.g. 1d)")]
    CalendarHours {
        /// The rejected input.
        input: String,
    },
    /// Not campaign, purpose or all.
    #[error("invalid cap scope {input:?}: expected campaign, purpose or all")]
    Scope {
        /// The rejected input.
        input: String,
    },
    /// A cap of zero.
    #[error("a cap's max must be at least 1 (to stop a campaign, do not run it)")]
    ZeroMax,
}

/// Which past sends count toward the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapScope {
    /// Sends of this campaign (all its runs).
    Campaign,
    /// Sends of any campaign with the same purpose.
    Purpose,
    /// Every send.
    All,
}

impl FromStr for CapScope {
    type Err = CapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "campaign" => Ok(CapScope::Campaign),
            "purpose" => Ok(CapScope::Purpose),
            "all" => Ok(CapScope::All),
            _ => Err(CapError::Scope {
                input: s.to_owned(),
            }),
        }
    }
}

/// The period a cap counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapPeriod {
    /// The last `TimeDelta` before now.
    Rolling(TimeDelta),
    /// Today and the `n - 1` previous local calendar days.
    CalendarDays(u32),
}

impl CapPeriod {
    /// Parses `7d` or `24h`; `calendar` asks for local calendar days instead of a rolling span.
    pub fn parse(input: &str, calendar: bool) -> Result<Self, CapError> {
        let error = || CapError::Period {
            input: input.to_owned(),
        };
        let trimmed = input.trim();
        // Split off the unit by character, not byte: `7д` must be an error, not a panic.
        let (number, unit) = match trimmed.char_indices().last() {
            Some((i, _)) => trimmed.split_at(i),
            None => return Err(error()),
        };
        let n: u32 = number.parse().map_err(|_| error())?;
        if n == 0 || n > 366 * 24 {
            return Err(error());
        }
        match (unit, calendar) {
            ("d", false) => Ok(CapPeriod::Rolling(TimeDelta::days(i64::from(n)))),
            ("h", false) => Ok(CapPeriod::Rolling(TimeDelta::hours(i64::from(n)))),
            ("d", true) => Ok(CapPeriod::CalendarDays(n)),
            ("h", true) => Err(CapError::CalendarHours {
                input: input.to_owned(),
            }),
            _ => Err(error()),
        }
    }
}

impl fmt::Display for CapPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapPeriod::Rolling(span) if span.num_hours() % 24 == 0 => {
                write!(f, "{}d", span.num_days())
            }
            CapPeriod::Rolling(span) => write!(f, "{}h", span.num_hours()),
            CapPeriod::CalendarDays(n) => write!(f, "{n} calendar day(s)"),
        }
    }
}

/// A message already sent to the phone, as the ledger remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastSend {
    /// When it was sent.
    pub at: DateTime<Utc>,
    /// Its campaign.
    pub campaign: CampaignId,
    /// Its campaign's purpose.
    pub purpose: Purpose,
}

/// `max` sends per `period` within `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrequencyCap {
    /// The most sends allowed in the period.
    pub max: u32,
    /// The period.
    pub period: CapPeriod,
    /// Which sends count.
    pub scope: CapScope,
}

impl FrequencyCap {
    /// Builds a cap, rejecting `max: 0`.
    pub fn new(max: u32, period: CapPeriod, scope: CapScope) -> Result<Self, CapError> {
        if max == 0 {
            return Err(CapError::ZeroMax);
        }
        Ok(Self { max, period, scope })
    }

    /// The first instant of the period that ends at `now`.
    pub fn period_start(&self, now: DateTime<Utc>, place: &Place) -> DateTime<Utc> {
        match self.period {
            CapPeriod::Rolling(span) => now
                .checked_sub_signed(span)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            CapPeriod::CalendarDays(days) => place
                .zones()
                .iter()
                .map(|zone| {
                    let today = zone.local(now).date();
                    let first = today - TimeDelta::days(i64::from(days) - 1);
                    local_day_start(zone.tz(), first)
                })
                .min()
                .unwrap_or(now - TimeDelta::days(i64::from(days))),
        }
    }

    /// Whether one more send to this phone, for `campaign` of `purpose`, would exceed the cap.
    pub fn is_reached(
        &self,
        now: DateTime<Utc>,
        campaign: &CampaignId,
        purpose: Purpose,
        history: &[PastSend],
        place: &Place,
    ) -> bool {
        let start = self.period_start(now, place);
        let counted = history
            .iter()
            // A send recorded after `now` still counts: a claim records its send at its rate
            // slot, which may lie a few milliseconds past the deciding worker's now, and the
            // store's check at the claim counts it (`HistorySeen`). Leaving it out let a second
            // campaign claim the phone while the first one's request was leaving.
            .filter(|send| send.at >= start)
            .filter(|send| match self.scope {
                CapScope::Campaign => send.campaign == *campaign,
                CapScope::Purpose => send.purpose == purpose,
                CapScope::All => true,
            })
            .count();
        counted >= self.max as usize
    }
}

/// The first instant of a local date; midnight itself may be skipped by a DST jump (e.g. in
/// America/Santiago), in which case the day starts when the clocks land.
fn local_day_start(tz: chrono_tz::Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for minutes in (0..=180).step_by(15) {
        match tz.from_local_datetime(&(midnight + TimeDelta::minutes(minutes))) {
            LocalResult::Single(t) => return t.to_utc(),
            LocalResult::Ambiguous(earliest, _) => return earliest.to_utc(),
            LocalResult::None => {}
        }
    }
    midnight.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tz::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn send(s: &str, campaign: &str, purpose: Purpose) -> PastSend {
        PastSend {
            at: at(s),
            campaign: CampaignId::parse(campaign).unwrap(),
            purpose,
        }
    }

    #[test]
    fn parses_periods() {
        assert_eq!(
            CapPeriod::parse("7d", false).unwrap(),
            CapPeriod::Rolling(TimeDelta::days(7))
        );
        assert_eq!(
            CapPeriod::parse("24h", false).unwrap(),
            CapPeriod::Rolling(TimeDelta::hours(24))
        );
        assert_eq!(
            CapPeriod::parse("1d", true).unwrap(),
            CapPeriod::CalendarDays(1)
        );
        for bad in ["", "d", "0d", "7w", "-1d", "1.5d"] {
            assert!(CapPeriod::parse(bad, false).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            CapPeriod::parse("24h", true),
            Err(CapError::CalendarHours { .. })
        ));
        assert_eq!(
            FrequencyCap::new(0, CapPeriod::CalendarDays(1), CapScope::All),
            Err(CapError::ZeroMax)
        );
    }

    #[test]
    fn rolling_caps_count_the_scope_within_the_span() {
        let place = Place::in_zone(TimeZone::parse("Europe/Moscow").unwrap(), None);
        let promo = CampaignId::parse("promo").unwrap();
        let history = [
            send("2026-11-20T10:00:00Z", "promo", Purpose::Marketing),
            send("2026-11-24T10:00:00Z", "other", Purpose::Marketing),
            send("2026-11-25T10:00:00Z", "receipt", Purpose::Transactional),
        ];
        let now = at("2026-11-26T12:00:00Z");
        let two_per_week =
            |scope| FrequencyCap::new(2, CapPeriod::Rolling(TimeDelta::days(7)), scope).unwrap();
        assert!(!two_per_week(CapScope::Campaign).is_reached(
            now,
            &promo,
            Purpose::Marketing,
            &history,
            &place
        ));
        assert!(two_per_week(CapScope::Purpose).is_reached(
            now,
            &promo,
            Purpose::Marketing,
            &history,
            &place
        ));
        assert!(two_per_week(CapScope::All).is_reached(
            now,
            &promo,
            Purpose::Marketing,
            &history,
            &place
        ));
        let later = at("2026-11-27T10:00:01Z");
        assert!(!two_per_week(CapScope::Purpose).is_reached(
            later,
            &promo,
            Purpose::Marketing,
            &history,
            &place
        ));
    }

    #[test]
    fn a_send_recorded_for_a_slot_just_after_now_counts() {
        let place = Place::in_zone(TimeZone::parse("Europe/Moscow").unwrap(), None);
        let promo = CampaignId::parse("promo").unwrap();
        let now = at("2026-11-26T12:00:00Z");
        let claimed_ahead = [send(
            "2026-11-26T12:00:00.020Z",
            "other",
            Purpose::Marketing,
        )];
        let once_a_day =
            FrequencyCap::new(1, CapPeriod::Rolling(TimeDelta::days(1)), CapScope::Purpose)
                .unwrap();
        assert!(once_a_day.is_reached(now, &promo, Purpose::Marketing, &claimed_ahead, &place));
    }

    #[test]
    fn calendar_days_start_at_the_recipients_midnight() {
        let promo = CampaignId::parse("promo").unwrap();
        // 22:30 UTC on the 25th is already the 26th in Moscow (UTC+3) but still the 25th in New York.
        let history = [send("2026-11-25T22:30:00Z", "promo", Purpose::Marketing)];
        let now = at("2026-11-26T12:00:00Z");
        let once_a_day =
            FrequencyCap::new(1, CapPeriod::CalendarDays(1), CapScope::Campaign).unwrap();
        let moscow = Place::in_zone(TimeZone::parse("Europe/Moscow").unwrap(), None);
        let new_york = Place::in_zone(TimeZone::parse("America/New_York").unwrap(), None);
        assert!(once_a_day.is_reached(now, &promo, Purpose::Marketing, &history, &moscow));
        // New York's 26th starts at 05:00Z; the send was on its 25th.
        assert!(!once_a_day.is_reached(now, &promo, Purpose::Marketing, &history, &new_york));
        assert_eq!(
            once_a_day.period_start(now, &new_york),
            at("2026-11-26T05:00:00Z")
        );
        // Unknown zone in the US: the earliest local midnight of its zones (the east coast) opens the
        // period, so the period is the widest any of them would give.
        let anywhere_in_us =
            Place::anywhere_in(crate::region::Region::parse("US").unwrap()).unwrap();
        assert_eq!(
            once_a_day.period_start(now, &anywhere_in_us),
            at("2026-11-26T05:00:00Z")
        );
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn non_ascii_units_are_errors_not_panics() {
        for bad in ["7д", "1日", "é", "7 д"] {
            assert!(CapPeriod::parse(bad, false).is_err(), "{bad:?} accepted");
            assert!(CapPeriod::parse(bad, true).is_err(), "{bad:?} accepted");
        }
    }
}
