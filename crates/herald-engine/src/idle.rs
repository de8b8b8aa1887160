//! What `herald run --until-idle` does when a worker step finds nothing due: wait for what falls
//! due within the current spread, or stop and say what the rest waits for.
//!
//! The horizon is fixed when the run starts working: its start plus the campaign's `spread`.
//! Every delivery the spread released into an open window is due before it (a release is at
//! most `spread` after an opening at or before the moment it was decided), so a campaign that
//! starts now is sent in full, seconds to minutes ahead included. Whatever else falls due
//! before the horizon (a window opening, a retry, a short throttle) is sent too, since the run
//! waits that long anyway. What is due later waits for a window, the schedule, the provider or
//! an operator: the run stops, and a later `herald run` picks it up. A sender throttled past the
//! horizon stops the run at once: nothing it holds could go out before then.
//!
//! Pure: the caller supplies `now`, the next due instant and the sender's throttle.

use chrono::{DateTime, TimeDelta, Utc};

/// Due within this is due now: the store keeps whole seconds, and a delivery due a moment from
/// now is not worth stopping for.
pub const MOMENT: TimeDelta = TimeDelta::seconds(2);

/// The instant up to which `--until-idle` keeps working: `start` plus the campaign's spread.
pub fn horizon(start: DateTime<Utc>, spread: TimeDelta) -> DateTime<Utc> {
    start + spread.max(TimeDelta::zero())
}

/// What to do when nothing is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenIdle {
    /// Nothing of this run is queued in an active state: stop (the caller tells done from
    /// paused by the run's state).
    Stop,
    /// The next delivery falls due within the horizon: wait until then and work on.
    WaitUntil(DateTime<Utc>),
    /// The provider holds the sender back until after the horizon: stop now.
    Throttled(DateTime<Utc>),
    /// What is left is due after the horizon: stop.
    Beyond,
}

/// Decides for `--until-idle`, at `now`, given the next due instant of the run's queue (`None`
/// when nothing is queued in an active run) and the sender's throttle.
pub fn until_idle(
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    next_due: Option<DateTime<Utc>>,
    throttled_until: Option<DateTime<Utc>>,
) -> WhenIdle {
    let Some(next) = next_due else {
        return WhenIdle::Stop;
    };
    let reach = horizon.max(now + MOMENT);
    match throttled_until {
        Some(until) if until > reach => WhenIdle::Throttled(until),
        _ if next <= reach => WhenIdle::WaitUntil(next),
        _ => WhenIdle::Beyond,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn waits_for_what_falls_due_within_the_spread_and_no_longer() {
        let start = at("2026-11-30T10:00:00Z");
        let horizon = horizon(start, TimeDelta::minutes(10));
        assert_eq!(horizon, at("2026-11-30T10:10:00Z"));
        let now = at("2026-11-30T10:03:00Z");
        let soon = at("2026-11-30T10:09:59Z");
        assert_eq!(
            until_idle(now, horizon, Some(soon), None),
            WhenIdle::WaitUntil(soon)
        );
        assert_eq!(
            until_idle(now, horizon, Some(horizon), None),
            WhenIdle::WaitUntil(horizon)
        );
        let tomorrow = at("2026-12-01T06:00:00Z");
        assert_eq!(
            until_idle(now, horizon, Some(tomorrow), None),
            WhenIdle::Beyond
        );
        assert_eq!(until_idle(now, horizon, None, None), WhenIdle::Stop);
    }

    #[test]
    fn past_the_horizon_only_a_moment_is_waited_for() {
        let horizon = at("2026-11-30T10:00:05Z");
        let now = at("2026-11-30T10:02:00Z");
        let in_a_moment = now + TimeDelta::seconds(2);
        assert_eq!(
            until_idle(now, horizon, Some(in_a_moment), None),
            WhenIdle::WaitUntil(in_a_moment)
        );
        assert_eq!(
            until_idle(now, horizon, Some(in_a_moment + TimeDelta::seconds(1)), None),
            WhenIdle::Beyond
        );
    }

    #[test]
    fn a_throttle_beyond_the_horizon_stops_at_once_and_a_short_one_is_waited_for() {
        let start = at("2026-11-30T10:00:00Z");
        let horizon = horizon(start, TimeDelta::seconds(5));
        let now = start + TimeDelta::seconds(1);
        let spread_due = start + TimeDelta::seconds(4);
        let quarter_hour = start + TimeDelta::minutes(15);
        // Deliveries still due within the spread do not keep a run whose sender is throttled
        // for 15 minutes waiting: none of them could go out.
        assert_eq!(
            until_idle(now, horizon, Some(spread_due), Some(quarter_hour)),
            WhenIdle::Throttled(quarter_hour)
        );
        let short = start + TimeDelta::seconds(3);
        assert_eq!(
            until_idle(now, horizon, Some(short), Some(short)),
            WhenIdle::WaitUntil(short)
        );
    }
}
