//! POSIX cron (5 fields, Sunday = 0 or 7) on top of the `cron` crate (seconds first, Sunday = 1).
//!
//! Numeric day-of-week values are rewritten as names, because the two conventions number the
//! days differently and a silently shifted weekly campaign is worse than an error. POSIX ORs a
//! restricted day-of-month with a restricted day-of-week while the `cron` crate ANDs them; rather
//! than pick one silently, a schedule restricting both is rejected.
//!
//! # Fire times across DST changes (Vixie cron's rules)
//!
//! The expression names *wall times* in the schedule's zone; [`crate::fires`] turns them into
//! real instants. How depends on the kind of job, as in Vixie cron (its `MIN_STAR`/`HR_STAR`
//! flags), widened to steps:
//!
//! - A *fixed-time* job has neither `*` (nor its synonym `?`) nor `/` in its minute and hour
//!   fields (`30 2 * * *`, `0,30 1-3 * * MON`). It fires once per matching wall time: a time
//!   inside a spring-forward gap fires at the instant the clocks jump (a daily 02:30 in Berlin
//!   fires at 03:00 CEST on 2026-03-29, as `schedule.at` reads a skipped time), and a time in a
//!   repeated fall-back hour fires at its first occurrence only.
//! - A *wildcard* job (`*/15 * * * *`, `30 * * * *`, `0 */2 * * *`, `*/5 2 * * *`) fires on
//!   every real instant whose wall reading matches: the gap has no such instant and is skipped,
//!   and the repeated hour fires twice.
//!
//! Several wall times naming one instant (02:00 and 02:30 in a gap, or a gap fire and the real
//! 03:00) fire once. Fires are whole seconds, strictly ascending, and looked for up to
//! [`HORIZON_YEARS`] ahead.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::fires::CronFires;

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

/// Whether `expression` is a fixed-time job (see the module doc): neither its minute nor its
/// hour field has `*`, `?` or `/`. Anything that is not five fields counts as a wildcard job.
pub fn is_fixed_time(expression: &str) -> bool {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    match fields.as_slice() {
        [minute, hour, _, _, _] => ![minute, hour]
            .iter()
            .any(|field| field.contains(['*', '?', '/'])),
        _ => false,
    }
}

/// The first fire of `fires` after `now`, if there is one within [`HORIZON_YEARS`].
pub fn first_fire_within_horizon(
    fires: CronFires<'_>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    fires.after(now).next()
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
    use herald_core::TimeZone;

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
        let fire = |expression: &str| {
            let schedule = parse(expression).unwrap();
            first_fire_within_horizon(CronFires::new(&schedule, expression, zone), now)
        };
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
    fn fixed_time_jobs_have_no_wildcard_or_step_in_minute_or_hour() {
        for fixed in [
            "30 2 * * *",
            "0,30 1-3 * * MON",
            "0 10 1 * *",
            "59 23 * 12 *",
        ] {
            assert!(is_fixed_time(fixed), "{fixed}");
        }
        for wild in [
            "*/15 * * * *",
            "30 * * * *",
            "0 */2 * * *",
            "*/5 2 * * *",
            "0-30/10 2 * * *",
            "? 2 * * *",
            "30 2",
        ] {
            assert!(!is_fixed_time(wild), "{wild}");
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
