//! Local wall-clock hours: intervals of a day, day sets (`mon-fri`) and the weekly table.

use std::fmt;

use chrono::{NaiveTime, Weekday};

/// Why an hours or day expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    /// Not `HH:MM-HH:MM`.
    #[error("invalid hours {input:?}: expected HH:MM-HH:MM, e.g. 09:00-20:00")]
    Syntax {
        /// The rejected input.
        input: String,
    },
    /// The end is not after the start (intervals never wrap midnight: write two).
    #[error(
        "invalid hours {input:?}: the end must be after the start (split an overnight window in two)"
    )]
    Empty {
        /// The rejected input.
        input: String,
    },
    /// Not a day name or range.
    #[error(
        "invalid days {input:?}: expected e.g. mon-fri, sat, mon,wed,fri, daily, weekdays, weekend"
    )]
    Days {
        /// The rejected input.
        input: String,
    },
}

/// A half-open interval `[start, end)` of a local day, in whole minutes. `end` may be 24:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalInterval {
    start: u16,
    end: u16,
}

impl LocalInterval {
    /// The whole day.
    pub const ALL_DAY: LocalInterval = LocalInterval {
        start: 0,
        end: 24 * 60,
    };

    /// Builds an interval from minutes since midnight.
    pub fn from_minutes(start: u16, end: u16) -> Option<Self> {
        (start < end && end <= 24 * 60).then_some(Self { start, end })
    }

    /// Parses `09:00-20:00` (`24:00` allowed as an end).
    pub fn parse(input: &str) -> Result<Self, HoursError> {
        let syntax = || HoursError::Syntax {
            input: input.to_owned(),
        };
        let (start, end) = input.trim().split_once('-').ok_or_else(syntax)?;
        let start = parse_clock(start.trim())
            .filter(|m| *m < 24 * 60)
            .ok_or_else(syntax)?;
        let end = parse_clock(end.trim()).ok_or_else(syntax)?;
        Self::from_minutes(start, end).ok_or_else(|| HoursError::Empty {
            input: input.to_owned(),
        })
    }

    /// Start, minutes after local midnight.
    pub fn start_minute(&self) -> u16 {
        self.start
    }

    /// End (exclusive), minutes after local midnight; 1440 is the end of the day.
    pub fn end_minute(&self) -> u16 {
        self.end
    }

    /// Whether the wall-clock time `time` lies inside.
    pub fn contains(&self, time: NaiveTime) -> bool {
        let second = chrono::Timelike::num_seconds_from_midnight(&time);
        u32::from(self.start) * 60 <= second && second < u32::from(self.end) * 60
    }

    /// The overlap of two intervals, if any.
    pub fn intersect(&self, other: &LocalInterval) -> Option<LocalInterval> {
        Self::from_minutes(self.start.max(other.start), self.end.min(other.end))
    }
}

impl fmt::Display for LocalInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

fn parse_clock(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty()
        || h.len() > 2
        || m.len() != 2
        || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Sorts and merges overlapping or touching intervals, so that each day is a minimal sorted list.
pub(crate) fn normalise(mut intervals: Vec<LocalInterval>) -> Vec<LocalInterval> {
    intervals.sort();
    let mut merged: Vec<LocalInterval> = Vec::with_capacity(intervals.len());
    for interval in intervals {
        match merged.last_mut() {
            Some(last) if interval.start <= last.end => last.end = last.end.max(interval.end),
            _ => merged.push(interval),
        }
    }
    merged
}

/// A set of weekdays, written `mon-fri`, `sat`, `mon,wed,fri`, `daily`, `weekdays` or `weekend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Days(u8);

impl Days {
    /// Every day of the week.
    pub const ALL: Days = Days(0b111_1111);

    /// Parses a day expression.
    pub fn parse(input: &str) -> Result<Self, HoursError> {
        let error = || HoursError::Days {
            input: input.to_owned(),
        };
        let lower = input.trim().to_ascii_lowercase();
        match lower.as_str() {
            "daily" | "every day" | "all" => return Ok(Self::ALL),
            "weekdays" => return Ok(Self(0b001_1111)),
            "weekend" | "weekends" => return Ok(Self(0b110_0000)),
            _ => {}
        }
        let mut bits = 0u8;
        for part in lower.split(',').map(str::trim) {
            match part.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (
                        day_index(from.trim()).ok_or_else(error)?,
                        day_index(to.trim()).ok_or_else(error)?,
                    );
                    if from > to {
                        return Err(error());
                    }
                    (from..=to).for_each(|i| bits |= 1 << i);
                }
                None => bits |= 1 << day_index(part).ok_or_else(error)?,
            }
        }
        Ok(Self(bits))
    }

    /// Whether `day` is in the set.
    pub fn contains(&self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
}

fn day_index(name: &str) -> Option<u8> {
    const NAMES: [[&str; 2]; 7] = [
        ["mon", "monday"],
        ["tue", "tuesday"],
        ["wed", "wednesday"],
        ["thu", "thursday"],
        ["fri", "friday"],
        ["sat", "saturday"],
        ["sun", "sunday"],
    ];
    NAMES
        .iter()
        .position(|names| names.contains(&name))
        .map(|i| i as u8)
}

/// Open intervals for each day of the week, Monday first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WeeklyHours([Vec<LocalInterval>; 7]);

impl WeeklyHours {
    /// Open all day, every day.
    pub fn always() -> Self {
        Self(std::array::from_fn(|_| vec![LocalInterval::ALL_DAY]))
    }

    /// The same intervals every day.
    pub fn every_day(intervals: &[LocalInterval]) -> Self {
        Self(std::array::from_fn(|_| normalise(intervals.to_vec())))
    }

    /// Replaces the hours of each day in `days` (later entries override earlier ones).
    pub fn set(&mut self, days: Days, intervals: &[LocalInterval]) {
        for (i, slot) in self.0.iter_mut().enumerate() {
            if days.0 & (1 << i) != 0 {
                *slot = normalise(intervals.to_vec());
            }
        }
    }

    /// The intervals of `day`, sorted and disjoint.
    pub fn of(&self, day: Weekday) -> &[LocalInterval] {
        &self.0[day.num_days_from_monday() as usize]
    }

    /// Keeps only the parts of each day that also lie in `limit` (legal quiet hours).
    pub fn restrict_to(&mut self, limit: &[LocalInterval]) {
        for day in &mut self.0 {
            let kept = day
                .iter()
                .flat_map(|a| limit.iter().filter_map(move |b| a.intersect(b)))
                .collect();
            *day = normalise(kept);
        }
    }

    /// Whether no day has any open time.
    pub fn is_never_open(&self) -> bool {
        self.0.iter().all(Vec::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(s: &str) -> LocalInterval {
        LocalInterval::parse(s).unwrap()
    }

    #[test]
    fn parses_intervals_and_rejects_nonsense() {
        assert_eq!(iv("09:00-20:00").to_string(), "09:00-20:00");
        assert_eq!(iv("18:00-24:00").end_minute(), 1440);
        assert_eq!(iv(" 9:30 - 12:00 ").start_minute(), 570);
        for bad in [
            "",
            "09:00",
            "9-20",
            "09:00-25:00",
            "24:00-24:00",
            "20:00-09:00",
            "09:60-10:00",
            "aa:bb-cc:dd",
        ] {
            assert!(LocalInterval::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn edges_are_half_open() {
        let hours = iv("09:00-20:00");
        assert!(hours.contains(NaiveTime::from_hms_opt(9, 0, 0).unwrap()));
        assert!(hours.contains(NaiveTime::from_hms_opt(19, 59, 59).unwrap()));
        assert!(!hours.contains(NaiveTime::from_hms_opt(20, 0, 0).unwrap()));
        assert!(!hours.contains(NaiveTime::from_hms_opt(8, 59, 59).unwrap()));
    }

    #[test]
    fn day_sets() {
        let weekdays = Days::parse("mon-fri").unwrap();
        assert!(weekdays.contains(Weekday::Mon) && weekdays.contains(Weekday::Fri));
        assert!(!weekdays.contains(Weekday::Sat));
        assert_eq!(Days::parse("Mon,Wed-Thu").unwrap(), Days(0b000_1101));
        assert_eq!(Days::parse("daily").unwrap(), Days::ALL);
        for bad in ["", "fri-mon", "mon-", "moon"] {
            assert!(Days::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn law_limits_intersect_and_merging_keeps_days_minimal() {
        let mut week = WeeklyHours::default();
        week.set(
            Days::parse("mon-fri").unwrap(),
            &[iv("07:00-12:00"), iv("11:00-22:00")],
        );
        assert_eq!(week.of(Weekday::Mon), &[iv("07:00-22:00")]);
        week.restrict_to(&[iv("08:00-21:00")]);
        assert_eq!(week.of(Weekday::Tue), &[iv("08:00-21:00")]);
        assert!(week.of(Weekday::Sun).is_empty());
        assert!(!week.is_never_open());
    }
}
