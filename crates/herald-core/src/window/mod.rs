//! Send windows: when, in a recipient's local time, a message may go out.
//!
//! A window is weekly hours (several intervals a day), minus holidays, plus working days moved
//! onto weekends by decree, intersected with any legal quiet hours. It is evaluated on the
//! recipient's wall clock, so DST gaps and overlaps fall out of the tz database rather than
//! special cases: an interval starting inside a skipped hour opens when the clocks jump, a
//! repeated hour is open twice if it lies inside an interval.
//!
//! A recipient with no known zone is a [`Place`] with every zone of their country: the window is
//! open only when it is open in all of them (design §3, `unknown_timezone: conservative`).

mod hours;
mod search;

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc, Weekday};

pub use hours::{Days, HoursError, LocalInterval, WeeklyHours};

use crate::holiday::{Calendar, DayKind};
use crate::phone::PhoneNumber;
use crate::presets::{Preset, PresetKind};
use crate::region::Region;
use crate::tz::TimeZone;

/// How far ahead [`SendWindow::next_open`] looks before concluding the window never opens.
/// A little over a year, so a yearly pattern of holidays cannot hide an opening.
pub const NEXT_OPEN_HORIZON: TimeDelta = TimeDelta::days(400);

/// How far ahead [`SendWindow::open_until`] looks for the window to close.
pub const OPEN_UNTIL_HORIZON: TimeDelta = TimeDelta::days(8);

/// Instants the window answers for: years 1900 to 9999. Outside them the window is closed and
/// never opens, which keeps date arithmetic near chrono's limits from overflowing; no campaign
/// is planned there.
fn supported(instant: DateTime<Utc>) -> bool {
    (1900..=9999).contains(&instant.year())
}

/// Why a window specification was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendWindowError {
    /// Two convention presets: their hours would silently override each other.
    #[error(
        "presets {first} and {second} both set business hours: keep one and adjust it with `hours`"
    )]
    TwoConventions {
        /// The first convention preset.
        first: Preset,
        /// The second.
        second: Preset,
    },
    /// Neither hours nor a preset: nothing says when the window is open. Fail closed: a window
    /// is never "any time" by default (a campaign without a window is a separate, explicit
    /// case, [`SendWindow::always`]).
    #[error(
        "the send window has no open hours: give `hours` (such as mon-fri: 09:00-20:00) or a `preset`"
    )]
    NoOpenHours,
    /// The hours, after legal limits, leave no open minute in the week.
    #[error("the send window is never open (after applying legal quiet hours)")]
    NeverOpen,
}

/// The parts a campaign's `send_window` is made of.
#[derive(Debug, Clone, Default)]
pub struct WindowSpec {
    /// Presets, law and convention.
    pub presets: Vec<Preset>,
    /// Explicit hours per day set, applied in order over a convention preset's hours.
    pub hours: Vec<(Days, Vec<LocalInterval>)>,
    /// Named calendars that apply to every recipient.
    pub calendars: Vec<Calendar>,
    /// Whether each recipient's own country's calendar applies (`holidays: [country]`).
    pub country_calendar: bool,
    /// Extra non-working dates.
    pub closed_dates: Vec<NaiveDate>,
    /// Extra working dates (open with the transfer hours even on a weekend).
    pub working_dates: Vec<NaiveDate>,
    /// Hours of a working day moved onto a weekend; by default Monday's (the first weekday with
    /// hours), since a decree moves "a working day", not particular hours.
    pub transfer_hours: Option<Vec<LocalInterval>>,
}

/// A validated send window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendWindow {
    weekly: WeeklyHours,
    transfer: Vec<LocalInterval>,
    calendars: Vec<Calendar>,
    country_calendar: bool,
    closed: BTreeSet<NaiveDate>,
    working: BTreeSet<NaiveDate>,
    presets: Vec<Preset>,
}

impl SendWindow {
    /// Builds a window. With neither hours nor a convention preset the base is "any time", so a
    /// law preset alone means "its legal hours, every day"; with no preset and no hours at all
    /// it is [`SendWindowError::NoOpenHours`].
    pub fn new(spec: WindowSpec) -> Result<Self, SendWindowError> {
        if spec.presets.is_empty() && spec.hours.is_empty() {
            return Err(SendWindowError::NoOpenHours);
        }
        let mut conventions = spec
            .presets
            .iter()
            .filter(|p| p.kind() == PresetKind::Convention);
        let convention = conventions.next().copied();
        if let (Some(first), Some(second)) = (convention, conventions.next()) {
            return Err(SendWindowError::TwoConventions {
                first,
                second: *second,
            });
        }
        let mut weekly = match (
            convention.and_then(Preset::default_hours),
            spec.hours.is_empty(),
        ) {
            (Some(hours), _) => hours,
            (None, true) => WeeklyHours::always(),
            (None, false) => WeeklyHours::default(),
        };
        for (days, intervals) in &spec.hours {
            weekly.set(*days, intervals);
        }
        let mut transfer = match spec.transfer_hours {
            Some(hours) => hours::normalise(hours),
            None => [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ]
            .into_iter()
            .map(|day| weekly.of(day).to_vec())
            .find(|hours| !hours.is_empty())
            .unwrap_or_default(),
        };
        for law in spec.presets.iter().filter_map(|p| p.legal_hours()) {
            weekly.restrict_to(&[law]);
            transfer = transfer.iter().filter_map(|i| i.intersect(&law)).collect();
        }
        let has_transferred_days = !spec.working_dates.is_empty()
            || spec.calendars.iter().any(|c| {
                c.entries()
                    .iter()
                    .any(|e| e.kind == DayKind::TransferredWorkday)
            });
        if weekly.is_never_open() && (transfer.is_empty() || !has_transferred_days) {
            return Err(SendWindowError::NeverOpen);
        }
        let mut calendars = spec.calendars;
        calendars.sort();
        calendars.dedup();
        Ok(Self {
            weekly,
            transfer,
            calendars,
            country_calendar: spec.country_calendar,
            closed: spec.closed_dates.into_iter().collect(),
            working: spec.working_dates.into_iter().collect(),
            presets: spec.presets,
        })
    }

    /// Open at any time: a transactional or service campaign without a window.
    pub fn always() -> Self {
        Self {
            weekly: WeeklyHours::always(),
            transfer: vec![LocalInterval::ALL_DAY],
            calendars: Vec::new(),
            country_calendar: false,
            closed: BTreeSet::new(),
            working: BTreeSet::new(),
            presets: Vec::new(),
        }
    }

    /// The effective weekly hours (after legal limits).
    pub fn weekly_hours(&self) -> &WeeklyHours {
        &self.weekly
    }

    /// The presets the window was built from.
    pub fn presets(&self) -> &[Preset] {
        &self.presets
    }

    /// Whether the window is open at `at` on the wall clock of `zone` (named calendars apply; a
    /// country calendar needs a [`Place`]).
    pub fn is_open(&self, at: DateTime<Utc>, zone: &TimeZone) -> bool {
        self.is_open_at(at, &Place::in_zone(*zone, None))
    }

    /// Whether the window is open at `at` in every zone of `place`.
    pub fn is_open_at(&self, at: DateTime<Utc>, place: &Place) -> bool {
        if !supported(at) {
            return false;
        }
        let calendars = self.calendars_for(place);
        place
            .zones
            .iter()
            .all(|zone| self.open_in_zone(at, zone, &calendars))
    }

    /// The first instant at or after `from` at which the window is open in every zone of `place`,
    /// or `None` if there is none within [`NEXT_OPEN_HORIZON`] (for several zones: they share no
    /// open instant).
    pub fn next_open(&self, from: DateTime<Utc>, place: &Place) -> Option<DateTime<Utc>> {
        if !supported(from) || !supported(from + NEXT_OPEN_HORIZON) {
            return None;
        }
        search::next_open(
            self,
            from,
            place,
            &self.calendars_for(place),
            from + NEXT_OPEN_HORIZON,
        )
    }

    /// If open at `at`: the first later instant at which it is closed in some zone of `place`, or
    /// `at + OPEN_UNTIL_HORIZON` when it stays open that long. `None` if closed at `at`.
    pub fn open_until(&self, at: DateTime<Utc>, place: &Place) -> Option<DateTime<Utc>> {
        self.open_until_within(at, place, OPEN_UNTIL_HORIZON)
    }

    /// As [`Self::open_until`] with the search cut off at `at + horizon` (at most
    /// [`OPEN_UNTIL_HORIZON`]): `open_until(at, place).map(|close| close.min(at + horizon))`.
    /// Clamping a spread of two hours needs to look two hours ahead, not eight days: the
    /// decision made for every delivery of a drain spent a third of its time in that search.
    pub fn open_until_within(
        &self,
        at: DateTime<Utc>,
        place: &Place,
        horizon: TimeDelta,
    ) -> Option<DateTime<Utc>> {
        let horizon = horizon.clamp(TimeDelta::zero(), OPEN_UNTIL_HORIZON);
        if !supported(at) || !supported(at + horizon) {
            return None;
        }
        let calendars = self.calendars_for(place);
        if !place
            .zones
            .iter()
            .all(|zone| self.open_in_zone(at, zone, &calendars))
        {
            return None;
        }
        let limit = at + horizon;
        let earliest = place
            .zones
            .iter()
            .filter_map(|zone| search::close_in_zone(self, at, zone, &calendars, limit))
            .min();
        Some(earliest.unwrap_or(limit))
    }

    fn calendars_for(&self, place: &Place) -> Vec<Calendar> {
        let mut calendars = self.calendars.clone();
        if self.country_calendar
            && let Some(own) = place.country.and_then(Calendar::of_region)
            && !calendars.contains(&own)
        {
            calendars.push(own);
        }
        calendars
    }

    /// The open intervals of a local date, after holidays and transferred working days.
    fn intervals_on(&self, date: NaiveDate, calendars: &[Calendar]) -> &[LocalInterval] {
        let mut transferred = self.working.contains(&date);
        if self.closed.contains(&date) {
            return &[];
        }
        for calendar in calendars {
            match calendar.lookup(date).map(|e| e.kind) {
                Some(DayKind::Holiday) => return &[],
                Some(DayKind::TransferredWorkday) => transferred = true,
                None => {}
            }
        }
        if transferred {
            &self.transfer
        } else {
            self.weekly.of(date.weekday())
        }
    }

    fn open_in_zone(&self, at: DateTime<Utc>, zone: &TimeZone, calendars: &[Calendar]) -> bool {
        let local = zone.local(at);
        self.intervals_on(local.date(), calendars)
            .iter()
            .any(|i| i.contains(local.time()))
    }
}

/// Why a recipient could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// The number belongs to no country (e.g. +800) and no zone was given.
    #[error("phone {phone} has no country and no time zone was given")]
    NoRegion {
        /// The phone, masked.
        phone: String,
    },
    /// The country has no zones in the tz table.
    #[error("country {region} has no time zones in the tz database's zone.tab")]
    NoZones {
        /// The country.
        region: Region,
    },
}

/// Where a recipient's wall clock is: one zone, or every zone of their country when the zone is
/// unknown; and the country, for the `country` holiday calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    zones: Vec<TimeZone>,
    country: Option<Region>,
}

/// What to do with a recipient whose zone is unknown (design §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownZone {
    /// Open only when open in every zone of the number's country.
    #[default]
    Conservative,
    /// Assume this zone.
    Assume(TimeZone),
}

impl Place {
    /// A recipient in a known zone.
    pub fn in_zone(zone: TimeZone, country: Option<Region>) -> Self {
        Self {
            zones: vec![zone],
            country,
        }
    }

    /// A recipient who must be reached inside every one of `zones` (a custom conservative set).
    pub fn in_zones(zones: Vec<TimeZone>, country: Option<Region>) -> Option<Self> {
        (!zones.is_empty()).then_some(Self { zones, country })
    }

    /// A recipient somewhere in `region`: every zone of it.
    pub fn anywhere_in(region: Region) -> Result<Self, PlaceError> {
        let zones = TimeZone::of_region(region);
        if zones.is_empty() {
            return Err(PlaceError::NoZones { region });
        }
        Ok(Self {
            zones: zones.to_vec(),
            country: Some(region),
        })
    }

    /// A recipient's place from their phone and optional zone.
    pub fn of_recipient(
        phone: &PhoneNumber,
        zone: Option<TimeZone>,
        unknown: UnknownZone,
    ) -> Result<Self, PlaceError> {
        match (zone, unknown, phone.region()) {
            (Some(zone), _, country) => Ok(Self::in_zone(zone, country)),
            (None, UnknownZone::Assume(zone), country) => Ok(Self::in_zone(zone, country)),
            (None, UnknownZone::Conservative, Some(region)) => Self::anywhere_in(region),
            (None, UnknownZone::Conservative, None) => Err(PlaceError::NoRegion {
                phone: phone.to_string(),
            }),
        }
    }

    /// The zones that must all be open.
    pub fn zones(&self) -> &[TimeZone] {
        &self.zones
    }

    /// The country, if known.
    pub fn country(&self) -> Option<Region> {
        self.country
    }

    /// Whether the zone is unknown and several zones stand in for it.
    pub fn is_conservative(&self) -> bool {
        self.zones.len() > 1
    }
}

#[cfg(test)]
mod tests;
