//! POSIX cron (5 fields, Sunday = 0 or 7) on top of the `cron` crate (seconds first, Sunday = 1).
//!
//! Numeric day-of-week values are rewritten as names, because the two conventions number the
//! days differently and a silently shifted weekly campaign is worse than an error. POSIX ORs a
//! restricted day-of-month with a restricted day-of-week while the `cron` crate ANDs them; rather
//! than pick one silently, a schedule restricting both is rejected.

use std::str::FromStr;

use chrono::{DateTime, Months, Utc};
use herald_core::TimeZone;

/// A cron schedule must fire within this many years of the instant it is checked at: one that
/// does not (`0 10 30 2 *`, February 30th) would be accepted and then never run.
pub const HORIZON_YEARS: u32 = 5;

const DAY_NAMES: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// Parses a 5-field POSIX expression.
pub fn parse(expression: &str) -> Result<cron::Schedule, String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let [minute, hour, day_of_month, month, day_of_week] = fields.as_slice() else {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
            fields.len()
        ));
    };
    if *day_of_month != "*" && *day_of_month != "?" && *day_of_week != "*" && *day_of_week != "?" {
        return Err("restrict either day-of-month or day-of-week, not both".into());
    }
    let day_of_week = posix_days(day_of_week)?;
    let six = format!("0 {minute} {hour} {day_of_month} {month} {day_of_week}");
    cron::Schedule::from_str(&six).map_err(|e| e.to_string())
}

/// The first fire of `schedule` in `zone` after `now`, if there is one within
/// [`HORIZON_YEARS`].
pub fn first_fire_within_horizon(
    schedule: &cron::Schedule,
    zone: TimeZone,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let horizon = now.checked_add_months(Months::new(12 * HORIZON_YEARS))?;
    schedule
        .after(&now.with_timezone(&zone.tz()))
        .next()
        .map(|fire| fire.to_utc())
        .filter(|fire| *fire <= horizon)
}

fn posix_days(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    let mut days = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<usize>()
                    .map_err(|_| format!("invalid step in `{item}`"))?,
            ),
            None => (item, 1),
        };
        if step == 0 {
            return Err(format!("invalid step in `{item}`"));
        }
        let (from, to) = match range {
            "*" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => (day_number(a)?, day_number(b)?),
                None if item.contains('/') => (day_number(range)?, 6),
                None => {
                    let d = day_number(range)?;
                    (d, d)
                }
            },
        };
        if from > to {
            return Err(format!("day range `{range}` runs backwards"));
        }
        days.extend((from..=to).step_by(step).map(|d| DAY_NAMES[d]));
    }
    days.dedup();
    Ok(days.join(","))
}

fn day_number(token: &str) -> Result<usize, String> {
    if let Ok(n) = token.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("day-of-week `{token}` is not 0-7"))
        };
    }
    let upper = token.to_ascii_uppercase();
    DAY_NAMES[..7]
        .iter()
        .position(|d| *d == upper.get(..3).unwrap_or_default() && upper.len() == 3)
        .ok_or_else(|| format!("unknown day `{token}`"))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};

    use super::*;

    fn fires(expression: &str, n: usize) -> Vec<DateTime<Utc>> {
        let from: DateTime<Utc> = "2026-11-26T00:00:00Z".parse().unwrap();
        parse(expression).unwrap().after(&from).take(n).collect()
    }

    #[test]
    fn posix_day_numbers_mean_posix_days() {
        assert!(
            fires("0 10 * * 1", 3)
                .iter()
                .all(|t| t.weekday() == Weekday::Mon && t.hour() == 10)
        );
        assert!(
            fires("0 10 * * 0", 2)
                .iter()
                .all(|t| t.weekday() == Weekday::Sun)
        );
        assert!(
            fires("0 10 * * 7", 2)
                .iter()
                .all(|t| t.weekday() == Weekday::Sun)
        );
        let weekdays = fires("30 9 * * 1-5", 10);
        assert!(
            weekdays
                .iter()
                .all(|t| !matches!(t.weekday(), Weekday::Sat | Weekday::Sun))
        );
        assert!(
            fires("0 10 * * MON", 2)
                .iter()
                .all(|t| t.weekday() == Weekday::Mon)
        );
        assert!(
            fires("0 10 * * 5-7", 6)
                .iter()
                .all(|t| matches!(t.weekday(), Weekday::Fri | Weekday::Sat | Weekday::Sun))
        );
    }

    #[test]
    fn schedules_must_fire_within_the_horizon() {
        let now: DateTime<Utc> = "2026-11-26T00:00:00Z".parse().unwrap();
        let zone = TimeZone::parse("Europe/Moscow").unwrap();
        let fire =
            |expression: &str| first_fire_within_horizon(&parse(expression).unwrap(), zone, now);
        assert!(fire("0 10 * * MON").is_some());
        // Next February 29th is in 2028: within five years.
        assert_eq!(
            fire("0 10 29 2 *").map(|t| t.to_rfc3339()),
            Some("2028-02-29T07:00:00+00:00".to_owned())
        );
        for never in ["0 10 30 2 *", "0 10 31 4 *", "0 10 31 11 *"] {
            assert_eq!(fire(never), None, "{never}");
        }
    }

    #[test]
    fn rejects_what_it_cannot_mean_exactly() {
        for bad in [
            "0 10 * *",
            "0 10 1 * MON",
            "0 10 * * 8",
            "0 25 * * *",
            "0 10 * * FRI-MON",
            "a b c d e",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
