//! Test helpers, written once (zero2prod's `spawn_app`): clocks for in-process tests, and for
//! end-to-end tests an isolated `herald` command ([`process`]), a capped polling helper
//! ([`poll`]), a strict Prometheus text reader ([`prometheus`]), a fake provider ([`provider`], feature `provider`) and a real `redis-server` per
//! test ([`redis`]).
//!
//! By default it depends on herald-core, tokio's clock and tempfile alone, so every crate can
//! dev-depend on it cheaply; the fake provider pulls in axum, so it is behind a feature only the
//! end-to-end tests turn on.

pub mod poll;
pub mod process;
pub mod prometheus;
#[cfg(feature = "provider")]
pub mod provider;
pub mod redis;

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::clock::Clock;

/// A clock that moves only when told to: tests jump to a window's opening instead of waiting.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves to `instant`.
    pub fn set(&self, instant: DateTime<Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = instant;
    }

    /// Moves forward by `by`.
    pub fn advance(&self, by: TimeDelta) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A clock that reads tokio's clock, starting at `start`. In a test runtime started paused
/// (`#[tokio::test(start_paused = true)]`), tokio's time moves only when every task waits, and
/// then jumps straight to the next timer: code that sleeps until a due instant it read from this
/// clock gets there at once, and finds this clock there too. For testing loops that sleep (such
/// as `run --until-idle`) without waiting in real time.
#[derive(Debug)]
pub struct TokioClock {
    start: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start` now, and moving as tokio's clock moves.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().duration_since(self.origin);
        TimeDelta::from_std(elapsed)
            .ok()
            .and_then(|elapsed| self.start.checked_add_signed(elapsed))
            .expect("a test clock within chrono's range")
    }
}
