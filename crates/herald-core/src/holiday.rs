//! Built-in holiday calendars, as data: every date carries the text that makes it a day off (or a
//! working day), so an operator asking "why did nothing go out on 9 January?" gets a citation.
//!
//! Coverage is explicit ([`Calendar::covers`]): outside the covered years a calendar knows
//! nothing, and the campaign validator warns rather than pretending a year has no holidays.
//!
//! US choice: both the holiday itself and its observed weekday are closed (4 July 2026 is a
//! Saturday and 3 July the observed day; a marketer who sends on Saturdays still should not send
//! on Independence Day).

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

use crate::region::Region;

/// What a calendar says about one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// A non-working day: closed all day.
    Holiday,
    /// A weekend day made a working day by decree: open with weekday hours.
    TransferredWorkday,
}

/// One dated entry of a calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarEntry {
    /// The date, `(year, month, day)`.
    pub date: (i32, u32, u32),
    /// Holiday or transferred working day.
    pub kind: DayKind,
    /// What the day is.
    pub name: &'static str,
    /// The legal text that makes it so.
    pub source: &'static str,
}

impl CalendarEntry {
    /// The entry's date.
    pub fn naive_date(&self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.date.0, self.date.1, self.date.2)
    }
}

/// Why a calendar name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown holiday calendar {input:?}: expected one of ru, us (or `country`)")]
pub struct CalendarError {
    /// The rejected input.
    pub input: String,
}

/// A built-in holiday calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Calendar {
    /// Russian Federation: non-working days.
    Ru,
    /// United States: federal holidays and their observed days.
    Us,
}

impl Calendar {
    /// Every built-in calendar.
    pub const ALL: [Calendar; 2] = [Calendar::Ru, Calendar::Us];

    /// The calendar's name as written in campaign files.
    pub fn name(self) -> &'static str {
        match self {
            Calendar::Ru => "ru",
            Calendar::Us => "us",
        }
    }

    /// The calendar of a country, for the `country` holiday option.
    pub fn of_region(region: Region) -> Option<Calendar> {
        match region.as_str() {
            "RU" => Some(Calendar::Ru),
            "US" => Some(Calendar::Us),
            _ => None,
        }
    }

    /// The dated entries.
    pub fn entries(self) -> &'static [CalendarEntry] {
        match self {
            Calendar::Ru => RU,
            Calendar::Us => US,
        }
    }

    /// The years the data is complete for.
    pub fn covered_years(self) -> std::ops::RangeInclusive<i32> {
        2026..=2027
    }

    /// Whether the data is complete for `year`.
    pub fn covers(self, year: i32) -> bool {
        self.covered_years().contains(&year)
    }

    /// What the calendar says about `date`, with the entry that says it.
    pub fn lookup(self, date: NaiveDate) -> Option<&'static CalendarEntry> {
        let key = (date.year(), date.month(), date.day());
        let entries = self.entries();
        entries
            .binary_search_by(|e| e.date.cmp(&key))
            .ok()
            .map(|i| &entries[i])
    }
}

impl FromStr for Calendar {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Calendar::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| CalendarError {
                input: s.to_owned(),
            })
    }
}

impl fmt::Display for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const fn holiday(date: (i32, u32, u32), name: &'static str, source: &'static str) -> CalendarEntry {
    CalendarEntry {
        date,
        kind: DayKind::Holiday,
        name,
        source,
    }
}

const fn workday(date: (i32, u32, u32), name: &'static str, source: &'static str) -> CalendarEntry {
    CalendarEntry {
        date,
        kind: DayKind::TransferredWorkday,
        name,
        source,
    }
}

const TK_112: &str = "Labour Code of the Russian Federation, art. 112 part 1";
const TK_112_MOVED: &str = "Labour Code of the Russian Federation, art. 112 part 2 (holiday on a weekend moves to the next working day)";
const RU_2026: &str =
    "Government decree No. 1466 of 2025-09-24 \"On the transfer of days off in 2026\"";
const RU_2027: &str =
    "Government decree No. 1187 of 2026-09-17 \"On the transfer of days off in 2027\"";

/// Sorted by date (binary search relies on it; a test checks).
const RU: &[CalendarEntry] = &[
    holiday((2026, 1, 1), "New Year holidays", TK_112),
    holiday((2026, 1, 2), "New Year holidays", TK_112),
    holiday((2026, 1, 3), "New Year holidays", TK_112),
    holiday((2026, 1, 4), "New Year holidays", TK_112),
    holiday((2026, 1, 5), "New Year holidays", TK_112),
    holiday((2026, 1, 6), "New Year holidays", TK_112),
    holiday((2026, 1, 7), "Christmas", TK_112),
    holiday((2026, 1, 8), "New Year holidays", TK_112),
    holiday(
        (2026, 1, 9),
        "day off transferred from Saturday 2026-01-03",
        RU_2026,
    ),
    holiday((2026, 2, 23), "Defender of the Fatherland Day", TK_112),
    holiday(
        (2026, 3, 9),
        "for International Women's Day (Sunday 2026-03-08)",
        TK_112_MOVED,
    ),
    holiday((2026, 5, 1), "Spring and Labour Day", TK_112),
    holiday(
        (2026, 5, 11),
        "for Victory Day (Saturday 2026-05-09)",
        TK_112_MOVED,
    ),
    holiday((2026, 6, 12), "Russia Day", TK_112),
    holiday((2026, 11, 4), "National Unity Day", TK_112),
    holiday(
        (2026, 12, 31),
        "day off transferred from Sunday 2026-01-04",
        RU_2026,
    ),
    holiday((2027, 1, 1), "New Year holidays", TK_112),
    holiday((2027, 1, 2), "New Year holidays", TK_112),
    holiday((2027, 1, 3), "New Year holidays", TK_112),
    holiday((2027, 1, 4), "New Year holidays", TK_112),
    holiday((2027, 1, 5), "New Year holidays", TK_112),
    holiday((2027, 1, 6), "New Year holidays", TK_112),
    holiday((2027, 1, 7), "Christmas", TK_112),
    holiday((2027, 1, 8), "New Year holidays", TK_112),
    workday(
        (2027, 2, 20),
        "working Saturday, its day off moved to 2027-02-22",
        RU_2027,
    ),
    holiday(
        (2027, 2, 22),
        "day off transferred from Saturday 2027-02-20",
        RU_2027,
    ),
    holiday((2027, 2, 23), "Defender of the Fatherland Day", TK_112),
    holiday((2027, 3, 8), "International Women's Day", TK_112),
    holiday(
        (2027, 5, 3),
        "for Spring and Labour Day (Saturday 2027-05-01)",
        TK_112_MOVED,
    ),
    holiday(
        (2027, 5, 10),
        "for Victory Day (Sunday 2027-05-09)",
        TK_112_MOVED,
    ),
    holiday(
        (2027, 6, 14),
        "for Russia Day (Saturday 2027-06-12)",
        TK_112_MOVED,
    ),
    holiday((2027, 11, 4), "National Unity Day", TK_112),
    holiday(
        (2027, 11, 5),
        "day off transferred from Saturday 2027-01-02",
        RU_2027,
    ),
    holiday(
        (2027, 12, 31),
        "day off transferred from Sunday 2027-01-03",
        RU_2027,
    ),
];

const US_6103: &str = "5 U.S.C. 6103(a)";
const US_SAT: &str = "5 U.S.C. 6103(b)(1) (a Saturday holiday is observed the Friday before)";
const US_SUN: &str =
    "Executive Order 11582 s. 3(a) (a Sunday holiday is observed the Monday after)";

/// Sorted by date.
const US: &[CalendarEntry] = &[
    holiday((2026, 1, 1), "New Year's Day", US_6103),
    holiday(
        (2026, 1, 19),
        "Birthday of Martin Luther King, Jr.",
        US_6103,
    ),
    holiday((2026, 2, 16), "Washington's Birthday", US_6103),
    holiday((2026, 5, 25), "Memorial Day", US_6103),
    holiday(
        (2026, 6, 19),
        "Juneteenth National Independence Day",
        US_6103,
    ),
    holiday((2026, 7, 3), "Independence Day (observed)", US_SAT),
    holiday((2026, 7, 4), "Independence Day", US_6103),
    holiday((2026, 9, 7), "Labor Day", US_6103),
    holiday((2026, 10, 12), "Columbus Day", US_6103),
    holiday((2026, 11, 11), "Veterans Day", US_6103),
    holiday((2026, 11, 26), "Thanksgiving Day", US_6103),
    holiday((2026, 12, 25), "Christmas Day", US_6103),
    holiday((2027, 1, 1), "New Year's Day", US_6103),
    holiday(
        (2027, 1, 18),
        "Birthday of Martin Luther King, Jr.",
        US_6103,
    ),
    holiday((2027, 2, 15), "Washington's Birthday", US_6103),
    holiday((2027, 5, 31), "Memorial Day", US_6103),
    holiday(
        (2027, 6, 18),
        "Juneteenth National Independence Day (observed)",
        US_SAT,
    ),
    holiday(
        (2027, 6, 19),
        "Juneteenth National Independence Day",
        US_6103,
    ),
    holiday((2027, 7, 4), "Independence Day", US_6103),
    holiday((2027, 7, 5), "Independence Day (observed)", US_SUN),
    holiday((2027, 9, 6), "Labor Day", US_6103),
    holiday((2027, 10, 11), "Columbus Day", US_6103),
    holiday((2027, 11, 11), "Veterans Day", US_6103),
    holiday((2027, 11, 25), "Thanksgiving Day", US_6103),
    holiday((2027, 12, 24), "Christmas Day (observed)", US_SAT),
    holiday((2027, 12, 25), "Christmas Day", US_6103),
    holiday((2027, 12, 31), "New Year's Day 2028 (observed)", US_SAT),
];

#[cfg(test)]
mod tests {
    use chrono::Weekday;

    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn entries_are_sorted_valid_dates_with_sources() {
        for calendar in Calendar::ALL {
            let entries = calendar.entries();
            assert!(
                entries.windows(2).all(|w| w[0].date < w[1].date),
                "{calendar} not sorted"
            );
            for e in entries {
                let d = e
                    .naive_date()
                    .unwrap_or_else(|| panic!("{calendar}: bad date {:?}", e.date));
                assert!(calendar.covers(d.year()));
                assert!(!e.source.is_empty() && !e.name.is_empty());
            }
        }
    }

    #[test]
    fn transferred_workdays_are_weekend_days_and_observed_days_are_weekdays() {
        for calendar in Calendar::ALL {
            for e in calendar.entries() {
                let d = e.naive_date().unwrap();
                let weekend = matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
                if e.kind == DayKind::TransferredWorkday {
                    assert!(weekend, "{d} is not a weekend day");
                }
                if e.name.contains("observed")
                    || e.name.contains("transferred")
                    || e.name.starts_with("for ")
                {
                    assert!(!weekend, "{d} ({}) falls on a weekend", e.name);
                }
            }
        }
    }

    #[test]
    fn russian_new_year_2027_runs_to_the_tenth() {
        for day in 1..=8 {
            let d = NaiveDate::from_ymd_opt(2027, 1, day).unwrap();
            assert_eq!(
                Calendar::Ru.lookup(d).map(|e| e.kind),
                Some(DayKind::Holiday),
                "{d}"
            );
        }
        assert!(Calendar::Ru.lookup(date("2027-01-11")).is_none());
        assert_eq!(
            Calendar::Ru.lookup(date("2026-12-31")).unwrap().source,
            RU_2026
        );
        assert_eq!(
            Calendar::Ru.lookup(date("2027-02-20")).unwrap().kind,
            DayKind::TransferredWorkday
        );
    }

    #[test]
    fn names_and_regions() {
        assert_eq!("RU".parse::<Calendar>().unwrap(), Calendar::Ru);
        assert!("fr".parse::<Calendar>().is_err());
        assert_eq!(
            Calendar::of_region(Region::parse("us").unwrap()),
            Some(Calendar::Us)
        );
        assert_eq!(Calendar::of_region(Region::parse("ca").unwrap()), None);
        assert!(Calendar::Us.lookup(date("2027-12-31")).is_some());
    }
}
