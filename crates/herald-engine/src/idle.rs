//! What `herald run --until-idle` does when a worker step finds nothing due: wait for what falls
//! due within the current spread, or stop and say what the rest waits for.
//!
//! The horizon is fixed when the run starts working: its start plus the campaign's `spread`.
//! Every delivery the spread released into an open window is due before it (a release is at
//! most `spread` after an opening at or before the moment it was decided), so a campaign that
//! starts now is sent in full, seconds to minutes ahead included. A window opening, the
//! schedule, a throttle or a tier slot that comes before the horizon is waited for too, since
//! the run is waiting that long anyway. A retry is not: the provider did not take the request
//! (no connection, "not processed"), and trying a dead endpoint again for minutes is the
//! long-running `herald run`'s job, not a run that was asked to stop at idle; a retry due within
//! a moment is still made. Once nothing worth waiting for is due before the horizon, the run
//! stops; what is left stays queued for a later `herald run`, which the caller reports by
//! reason. A sender throttled past the horizon stops the run at once: nothing could go out
//! before then.
//!
//! Pure: the caller supplies `now`, the near end of the queue and the sender's throttle.

use chrono::{DateTime, TimeDelta, Utc};
use herald_store::{QueueWaits, WaitReason};

/// Due within this is due now: the store keeps whole seconds, and a delivery due a moment from
/// now is not worth stopping for.
pub const MOMENT: TimeDelta = TimeDelta::seconds(2);

/// The instant up to which `--until-idle` keeps working: `start` plus the campaign's spread.
pub fn horizon(start: DateTime<Utc>, spread: TimeDelta) -> DateTime<Utc> {
    start + spread.max(TimeDelta::zero())
}

/// How far ahead [`until_idle`] looks at `now`: the horizon, or a moment once past it. The
/// caller reads the queue up to here (`Deliveries::waits` with `before` just after it).
pub fn reach(now: DateTime<Utc>, horizon: DateTime<Utc>) -> DateTime<Utc> {
    horizon.max(now + MOMENT)
}

/// What to do when nothing is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenIdle {
    /// Something worth waiting for falls due within reach: wait until then and work on.
    WaitUntil(DateTime<Utc>),
    /// The provider holds the sender back until after the horizon: stop now.
    Throttled(DateTime<Utc>),
    /// Nothing worth waiting for is due within reach: stop.
    Stop,
}

/// Whether `--until-idle` waits for a delivery held back by `reason` when it is due within
/// reach (see the module docs for why a retry is not).
fn worth_waiting_for(reason: WaitReason) -> bool {
    match reason {
        WaitReason::Schedule
        | WaitReason::Window
        | WaitReason::Spread
        | WaitReason::Throttle
        | WaitReason::Tier => true,
        WaitReason::Retry | WaitReason::Pause => false,
    }
}

/// Decides for `--until-idle` at `now`. `near` is the run's queue due before [`reach`] (the
/// rest cannot change the answer); `throttled_until` the sender's throttle, if any.
pub fn until_idle(
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    near: &QueueWaits,
    throttled_until: Option<DateTime<Utc>>,
) -> WhenIdle {
    let reach = reach(now, horizon);
    if let Some(until) = throttled_until.filter(|until| *until > reach) {
        return WhenIdle::Throttled(until);
    }
    if near.due > 0 {
        return WhenIdle::WaitUntil(now);
    }
    // A paused run's queue is never due, however soon its instants: only an operator ends it.
    let next = near
        .waiting
        .iter()
        .filter(|(reason, waiting)| {
            **reason != WaitReason::Pause
                && (worth_waiting_for(**reason) || waiting.next <= now + MOMENT)
        })
        .map(|(_, waiting)| waiting.next)
        .min();
    match next {
        Some(at) if at <= reach => WhenIdle::WaitUntil(at),
        _ => WhenIdle::Stop,
    }
}

#[cfg(test)]
mod tests {
    use herald_store::Waiting;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn waiting(reasons: &[(WaitReason, DateTime<Utc>)]) -> QueueWaits {
        QueueWaits {
            due: 0,
            waiting: reasons
                .iter()
                .map(|(reason, next)| {
                    let next = *next;
                    (*reason, Waiting { count: 1, next })
                })
                .collect(),
        }
    }

    #[test]
    fn waits_for_what_falls_due_within_the_spread_and_no_longer() {
        let start = at("2026-11-30T10:00:00Z");
        let horizon = horizon(start, TimeDelta::minutes(10));
        assert_eq!(horizon, at("2026-11-30T10:10:00Z"));
        let now = at("2026-11-30T10:03:00Z");
        let soon = at("2026-11-30T10:09:59Z");
        for reason in [
            WaitReason::Spread,
            WaitReason::Schedule,
            WaitReason::Window,
            WaitReason::Throttle,
            WaitReason::Tier,
        ] {
            assert_eq!(
                until_idle(now, horizon, &waiting(&[(reason, soon)]), None),
                WhenIdle::WaitUntil(soon),
                "{reason:?}"
            );
        }
        let near = waiting(&[(WaitReason::Spread, soon), (WaitReason::Window, horizon)]);
        assert_eq!(
            until_idle(now, horizon, &near, None),
            WhenIdle::WaitUntil(soon)
        );
        assert_eq!(
            until_idle(now, horizon, &QueueWaits::default(), None),
            WhenIdle::Stop
        );
        let due = QueueWaits {
            due: 1,
            waiting: Default::default(),
        };
        assert_eq!(
            until_idle(now, horizon, &due, None),
            WhenIdle::WaitUntil(now)
        );
    }

    #[test]
    fn a_retry_is_not_waited_for_beyond_a_moment_nor_a_paused_run() {
        let horizon = at("2026-11-30T10:10:00Z");
        let now = at("2026-11-30T10:00:00Z");
        let in_a_minute = now + TimeDelta::minutes(1);
        for reason in [WaitReason::Retry, WaitReason::Pause] {
            assert_eq!(
                until_idle(now, horizon, &waiting(&[(reason, in_a_minute)]), None),
                WhenIdle::Stop,
                "{reason:?}"
            );
        }
        let in_a_moment = now + MOMENT;
        assert_eq!(
            until_idle(
                now,
                horizon,
                &waiting(&[(WaitReason::Retry, in_a_moment)]),
                None
            ),
            WhenIdle::WaitUntil(in_a_moment)
        );
        // A paused run's deliveries keep their instants, past or near: still not due.
        assert_eq!(
            until_idle(now, horizon, &waiting(&[(WaitReason::Pause, now)]), None),
            WhenIdle::Stop
        );
    }

    #[test]
    fn past_the_horizon_only_a_moment_is_waited_for() {
        let horizon = at("2026-11-30T10:00:05Z");
        let now = at("2026-11-30T10:02:00Z");
        assert_eq!(reach(now, horizon), now + MOMENT);
        let in_a_moment = now + MOMENT;
        let near = waiting(&[(WaitReason::Spread, in_a_moment)]);
        assert_eq!(
            until_idle(now, horizon, &near, None),
            WhenIdle::WaitUntil(in_a_moment)
        );
        let later = waiting(&[(WaitReason::Window, in_a_moment + TimeDelta::seconds(1))]);
        assert_eq!(until_idle(now, horizon, &later, None), WhenIdle::Stop);
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
        let near = waiting(&[(WaitReason::Spread, spread_due)]);
        assert_eq!(
            until_idle(now, horizon, &near, Some(quarter_hour)),
            WhenIdle::Throttled(quarter_hour)
        );
        let short = start + TimeDelta::seconds(3);
        let near = waiting(&[(WaitReason::Throttle, short)]);
        assert_eq!(
            until_idle(now, horizon, &near, Some(short)),
            WhenIdle::WaitUntil(short)
        );
    }
}
