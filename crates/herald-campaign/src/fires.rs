//! The real instants a cron schedule fires at in its zone, by the rules in [`crate::cron`]'s
//! module doc: matching wall times first, then each wall time mapped to the instants it names
//! in the zone (one for a fixed-time job, every one for a wildcard job).
//!
//! Across a fall-back the instants are not in wall-time order (the second 02:15 comes after the
//! first 02:45), so [`Fires`] keeps a look-ahead buffer and only hands out an instant once no
//! later wall time can map before it.

use std::collections::{BTreeSet, VecDeque};

use chrono::{DateTime, LocalResult, Months, NaiveDateTime, TimeDelta, TimeZone as _, Utc};
use herald_core::TimeZone;

use crate::cron::{HORIZON_YEARS, is_fixed_time};

/// Wall times and instants differ by a zone's offset, which tzdata keeps within ±14 hours (a
/// change moves it by at most a day, Samoa 2011): two days is a safe margin both ways.
const MARGIN: TimeDelta = TimeDelta::days(2);

/// A cron schedule in a zone, with the DST rule that goes with its expression.
#[derive(Debug, Clone, Copy)]
pub struct CronFires<'a> {
    /// The parsed schedule (6 fields, seconds first); its matches are read as wall times.
    pub schedule: &'a cron::Schedule,
    /// The zone the wall times are read in.
    pub zone: TimeZone,
    /// A fixed-time job (neither minute nor hour has `*`, `?` or `/`): one fire per wall time.
    pub fixed: bool,
}

impl<'a> CronFires<'a> {
    /// `schedule` parsed from `expression` (5-field POSIX), which decides fixed or wildcard.
    pub fn new(schedule: &'a cron::Schedule, expression: &str, zone: TimeZone) -> Self {
        CronFires {
            schedule,
            zone,
            fixed: is_fixed_time(expression),
        }
    }

    /// Every fire strictly after `after`, ascending and deduplicated, in whole seconds, up to
    /// [`HORIZON_YEARS`] after `after` (the iterator ends there, so every loop is bounded).
    pub fn after(&self, after: DateTime<Utc>) -> Fires<'a> {
        let horizon = after
            .checked_add_months(Months::new(12 * HORIZON_YEARS))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        // A wall time earlier than this maps to an instant at or before `after`.
        let start = after.naive_utc().checked_sub_signed(MARGIN);
        Fires {
            cron: *self,
            walls: start.map(|start| self.schedule.after(&Utc.from_utc_datetime(&start))),
            after,
            horizon,
            cursor: start.unwrap_or(NaiveDateTime::MIN),
            buffer: BTreeSet::new(),
        }
    }

    /// The next `n` fires strictly after `now`.
    pub fn next(&self, now: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.after(now).take(n).collect()
    }

    /// The newest `limit` fires in `(after, until]`, ascending. Only `limit` are kept while
    /// the window is walked, so a minutely schedule over two months costs no more memory than
    /// `limit` instants. Like [`CronFires::after`], it looks no further than [`HORIZON_YEARS`]
    /// past `after`.
    pub fn between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        if limit == 0 || until <= after {
            return Vec::new();
        }
        let mut newest = VecDeque::with_capacity(limit.min(1024));
        for fire in self.after(after).take_while(|fire| *fire <= until) {
            if newest.len() == limit {
                newest.pop_front();
            }
            newest.push_back(fire);
        }
        newest.into()
    }

    /// The instants the wall time `wall` names, by the job's rule.
    fn instants(&self, wall: NaiveDateTime) -> Instants {
        match self.zone.tz().from_local_datetime(&wall) {
            LocalResult::Single(t) => Instants::One(t.to_utc()),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.to_utc(), b.to_utc());
                let (first, second) = if a <= b { (a, b) } else { (b, a) };
                if self.fixed {
                    Instants::One(first)
                } else {
                    Instants::Two(first, second)
                }
            }
            LocalResult::None if self.fixed => match gap_jump(self.zone, wall) {
                Some(t) => Instants::One(t),
                None => Instants::Zero,
            },
            LocalResult::None => Instants::Zero,
        }
    }
}

enum Instants {
    Zero,
    One(DateTime<Utc>),
    Two(DateTime<Utc>, DateTime<Utc>),
}

/// The fires of a [`CronFires`] after an instant; see [`CronFires::after`].
pub struct Fires<'a> {
    cron: CronFires<'a>,
    /// Matching wall times, read as UTC; `None` once exhausted.
    walls: Option<cron::ScheduleIterator<'a, Utc>>,
    after: DateTime<Utc>,
    horizon: DateTime<Utc>,
    /// The latest wall time taken from `walls`.
    cursor: NaiveDateTime,
    /// Instants computed but not yet handed out.
    buffer: BTreeSet<DateTime<Utc>>,
}

impl Fires<'_> {
    /// No wall time from the cursor on can map at or before `instant`.
    fn settled(&self, instant: DateTime<Utc>) -> bool {
        self.walls.is_none()
            || instant
                .naive_utc()
                .checked_add_signed(MARGIN)
                .is_none_or(|safe| self.cursor >= safe)
    }

    /// Takes the next wall time into the buffer; ends the walk past the horizon.
    fn advance(&mut self) {
        let Some(walls) = &mut self.walls else {
            return;
        };
        let Some(wall) = walls.next().map(|w| w.naive_utc()) else {
            self.walls = None;
            return;
        };
        self.cursor = wall;
        let past_horizon = self
            .horizon
            .naive_utc()
            .checked_add_signed(MARGIN)
            .is_none_or(|end| wall > end);
        if past_horizon {
            self.walls = None;
            return;
        }
        let mut keep = |t: DateTime<Utc>| {
            if t > self.after && t <= self.horizon {
                self.buffer.insert(t);
            }
        };
        match self.cron.instants(wall) {
            Instants::Zero => {}
            Instants::One(t) => keep(t),
            Instants::Two(a, b) => {
                keep(a);
                keep(b);
            }
        }
    }
}

impl Iterator for Fires<'_> {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        loop {
            match self.buffer.first() {
                Some(first) if self.settled(*first) => return self.buffer.pop_first(),
                None if self.walls.is_none() => return None,
                _ => self.advance(),
            }
        }
    }
}

/// The instant the clocks jump over `wall`, a wall time in a gap: the first instant whose wall
/// reading is past it. Offsets stay within ±14 hours, so a day either side brackets it; every
/// instant reads either before or after a skipped wall time, and the search keeps one of each.
fn gap_jump(zone: TimeZone, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    let mut before = Utc
        .from_utc_datetime(&wall.checked_sub_signed(TimeDelta::days(1))?)
        .timestamp();
    let mut after = Utc
        .from_utc_datetime(&wall.checked_add_signed(TimeDelta::days(1))?)
        .timestamp();
    let reads = |t: i64| DateTime::from_timestamp(t, 0).map(|t| zone.local(t));
    if reads(before)? >= wall || reads(after)? <= wall {
        return None;
    }
    while after - before > 1 {
        let middle = before + (after - before) / 2;
        if reads(middle)? < wall {
            before = middle;
        } else {
            after = middle;
        }
    }
    DateTime::from_timestamp(after, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::parse;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn berlin() -> TimeZone {
        TimeZone::parse("Europe/Berlin").unwrap()
    }

    #[test]
    fn two_wall_times_in_a_gap_fire_once_at_the_jump() {
        // 02:00 and 02:30 on 2026-03-29 do not exist in Berlin; both mean 03:00 CEST (01:00Z),
        // and so does the real 03:00 the next field value names.
        let schedule = parse("0,30 2,3 * * *").unwrap();
        let fires = CronFires::new(&schedule, "0,30 2,3 * * *", berlin());
        assert!(fires.fixed);
        let got = fires.between(utc("2026-03-28T23:00:00Z"), utc("2026-03-29T02:00:00Z"), 10);
        assert_eq!(
            got,
            [utc("2026-03-29T01:00:00Z"), utc("2026-03-29T01:30:00Z")]
        );
    }

    #[test]
    fn next_is_strictly_after_now() {
        let schedule = parse("30 9 * * *").unwrap();
        let fires = CronFires::new(&schedule, "30 9 * * *", berlin());
        let now = utc("2026-06-01T07:30:00Z"); // 09:30 CEST: a fire
        let got = fires.next(now, 2);
        assert_eq!(
            got,
            [utc("2026-06-02T07:30:00Z"), utc("2026-06-03T07:30:00Z")]
        );
    }

    #[test]
    fn between_keeps_the_newest_limit_ascending_with_bounds_exclusive_then_inclusive() {
        let schedule = parse("0 * * * *").unwrap();
        let fires = CronFires::new(&schedule, "0 * * * *", berlin());
        let after = utc("2026-06-01T00:00:00Z");
        let until = utc("2026-06-01T05:00:00Z");
        assert_eq!(
            fires.between(after, until, 3),
            [
                utc("2026-06-01T03:00:00Z"),
                utc("2026-06-01T04:00:00Z"),
                utc("2026-06-01T05:00:00Z")
            ]
        );
        let all = fires.between(after, until, 100);
        assert_eq!(all.len(), 5);
        assert_eq!(all.first(), Some(&utc("2026-06-01T01:00:00Z")));
        assert!(fires.between(after, until, 0).is_empty());
        assert!(fires.between(until, after, 5).is_empty());
    }

    #[test]
    fn a_minutely_schedule_over_sixty_days_returns_only_the_newest() {
        let schedule = parse("* * * * *").unwrap();
        let fires = CronFires::new(&schedule, "* * * * *", berlin());
        let after = utc("2026-09-01T00:00:00Z");
        let until = utc("2026-10-31T00:00:00Z");
        let got = fires.between(after, until, 5);
        assert_eq!(got.len(), 5);
        assert_eq!(got.last(), Some(&until));
        assert_eq!(got[0], until - TimeDelta::minutes(4));
        assert!(got.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_wildcard_job_finds_the_second_repeated_hour_from_inside_it() {
        // Berlin 2026-10-25: 02:00-03:00 CEST is 00:00-01:00Z, 02:00-03:00 CET 01:00-02:00Z.
        let schedule = parse("*/30 * * * *").unwrap();
        let fires = CronFires::new(&schedule, "*/30 * * * *", berlin());
        assert!(!fires.fixed);
        let now = utc("2026-10-25T00:45:00Z"); // 02:45 CEST
        assert_eq!(
            fires.next(now, 3),
            [
                utc("2026-10-25T01:00:00Z"),
                utc("2026-10-25T01:30:00Z"),
                utc("2026-10-25T02:00:00Z")
            ]
        );
        // A fixed job fires in the first 02:30 only.
        let schedule = parse("30 2 * * *").unwrap();
        let fixed = CronFires::new(&schedule, "30 2 * * *", berlin());
        assert_eq!(
            fixed.next(now - TimeDelta::hours(1), 2),
            [utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]
        );
        assert_eq!(fixed.next(now, 1), [utc("2026-10-26T01:30:00Z")]);
    }

    #[test]
    fn the_walk_ends_at_the_horizon() {
        let schedule = parse("0 10 30 2 *").unwrap();
        let fires = CronFires::new(&schedule, "0 10 30 2 *", berlin());
        assert_eq!(fires.after(utc("2026-06-01T00:00:00Z")).next(), None);
        let schedule = parse("0 10 29 2 *").unwrap();
        let leap = CronFires::new(&schedule, "0 10 29 2 *", berlin());
        // 2032-02-29 is past the five years.
        assert_eq!(
            leap.next(utc("2026-06-01T00:00:00Z"), 3),
            [utc("2028-02-29T09:00:00Z")]
        );
    }

    #[test]
    fn gap_jump_finds_the_instant_the_clocks_move() {
        let wall = NaiveDateTime::parse_from_str("2026-03-29T02:30", "%Y-%m-%dT%H:%M").unwrap();
        assert_eq!(gap_jump(berlin(), wall), Some(utc("2026-03-29T01:00:00Z")));
        // Samoa skipped 2011-12-30 entirely: any wall time that day means 00:00 on the 31st.
        let samoa = TimeZone::parse("Pacific/Apia").unwrap();
        let wall = NaiveDateTime::parse_from_str("2011-12-30T12:00", "%Y-%m-%dT%H:%M").unwrap();
        assert_eq!(gap_jump(samoa, wall), Some(utc("2011-12-30T10:00:00Z")));
    }
}
