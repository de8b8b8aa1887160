//! Exact searches for the next opening and the next closing.
//!
//! Between two offset changes a zone's wall clock is UTC plus a constant, so within such a
//! segment the search is plain calendar arithmetic on local date-times; at an offset change the
//! search restarts from the change instant with the new offset. This is exact for gaps (an
//! interval starting in a skipped hour opens at the jump), overlaps (the repeated hour is
//! searched twice) and 30/45-minute offsets, without enumerating candidate instants.
//!
//! chrono-tz does not expose its transition list, so offset changes are found by probing every
//! [`PROBE`] and bisecting to the second. Real zones change offset at most a few times a year,
//! never twice within [`PROBE`].

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use super::{Place, SendWindow};
use crate::holiday::Calendar;
use crate::tz::TimeZone;

const PROBE: TimeDelta = TimeDelta::hours(12);

pub(super) fn next_open(
    window: &SendWindow,
    from: DateTime<Utc>,
    place: &Place,
    calendars: &[Calendar],
    limit: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // Each zone's next opening is a lower bound for the common one: jump to the latest of them
    // until every zone is open at the candidate. Nothing before the candidate can be open in
    // all zones, so the first fixed point is the earliest common opening.
    let mut candidate = from;
    'again: loop {
        for zone in place.zones() {
            let opening = next_open_in_zone(window, candidate, zone, calendars, limit)?;
            if opening > candidate {
                candidate = opening;
                continue 'again;
            }
        }
        return Some(candidate);
    }
}

fn next_open_in_zone(
    window: &SendWindow,
    from: DateTime<Utc>,
    zone: &TimeZone,
    calendars: &[Calendar],
    limit: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut cursor = from;
    while cursor < limit {
        let offset = TimeDelta::seconds(i64::from(zone.offset_seconds(cursor)));
        let local_from = cursor.naive_utc() + offset;
        let local_limit = limit.naive_utc() + offset;
        let found = next_open_local(window, local_from, local_limit, calendars)
            .map(|local| (local - offset).and_utc());
        let until = found.unwrap_or(limit);
        match first_offset_change(zone, cursor, until) {
            None => return found,
            Some(change) => cursor = change,
        }
    }
    None
}

/// If open at `at` in `zone`: the first later instant at which it is closed there, `None` if it
/// stays open until `limit`.
pub(super) fn close_in_zone(
    window: &SendWindow,
    at: DateTime<Utc>,
    zone: &TimeZone,
    calendars: &[Calendar],
    limit: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut cursor = at;
    loop {
        let offset = TimeDelta::seconds(i64::from(zone.offset_seconds(cursor)));
        let local_limit = limit.naive_utc() + offset;
        let found = next_close_local(window, cursor.naive_utc() + offset, local_limit, calendars)
            .map(|local| (local - offset).and_utc());
        match first_offset_change(zone, cursor, found.unwrap_or(limit)) {
            None => return found,
            Some(change) if !window.open_in_zone(change, zone, calendars) => return Some(change),
            Some(change) => cursor = change,
        }
    }
}

/// The first local date-time in `[from, to)` at which the window is open.
fn next_open_local(
    window: &SendWindow,
    from: NaiveDateTime,
    to: NaiveDateTime,
    calendars: &[Calendar],
) -> Option<NaiveDateTime> {
    let mut date = from.date();
    while date <= to.date() {
        for interval in window.intervals_on(date, calendars) {
            let start =
                date.and_hms_opt(0, 0, 0)? + TimeDelta::minutes(i64::from(interval.start_minute()));
            let end =
                date.and_hms_opt(0, 0, 0)? + TimeDelta::minutes(i64::from(interval.end_minute()));
            if end <= from {
                continue;
            }
            let opening = start.max(from);
            return (opening < to).then_some(opening);
        }
        date = date.succ_opt()?;
    }
    None
}

/// The first local date-time at or after `from` at which the window is closed, following
/// intervals that touch across midnight; `None` if it does not close before `to`.
fn next_close_local(
    window: &SendWindow,
    from: NaiveDateTime,
    to: NaiveDateTime,
    calendars: &[Calendar],
) -> Option<NaiveDateTime> {
    let mut at = from;
    while at < to {
        let containing = window
            .intervals_on(at.date(), calendars)
            .iter()
            .find(|i| i.contains(at.time()));
        let Some(interval) = containing else {
            return Some(at);
        };
        let midnight = at.date().and_hms_opt(0, 0, 0)?;
        at = midnight + TimeDelta::minutes(i64::from(interval.end_minute()));
        if at >= to {
            // Open from `from` to the end of this interval, which is `to` or later.
            return None;
        }
        let still_open = window
            .intervals_on(at.date(), calendars)
            .iter()
            .any(|i| i.contains(at.time()));
        if !still_open {
            return Some(at);
        }
    }
    None
}

/// The first instant in `(from, until]` whose UTC offset differs from `from`'s.
fn first_offset_change(
    zone: &TimeZone,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let offset = zone.offset_seconds(from);
    let mut before = from;
    while before < until {
        let probe = (before + PROBE).min(until);
        if zone.offset_seconds(probe) != offset {
            // Bisect (before, probe] on whole seconds (tz transitions fall on whole seconds):
            // offset(same) == offset, offset(changed) != offset.
            let (mut same, mut changed) = (before.timestamp(), probe.timestamp());
            if zone.offset_seconds(at_second(changed)?) == offset {
                changed += 1;
            }
            while changed - same > 1 {
                let middle = same + (changed - same) / 2;
                if zone.offset_seconds(at_second(middle)?) == offset {
                    same = middle;
                } else {
                    changed = middle;
                }
            }
            return at_second(changed);
        }
        before = probe;
    }
    None
}

fn at_second(timestamp: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(timestamp, 0)
}
