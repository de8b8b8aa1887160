//! Waiting for something another process does, with a cap.
//!
//! # Why a cap and no timing assertion
//! End-to-end tests drive real processes, so they wait in real time; but how long something
//! takes on a loaded machine is no part of what they prove. The cap is only a guard that turns a
//! broken build into a failure naming what never happened, instead of a hung test: tests pass a
//! generous one and never assert on durations.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How often a condition is checked: often enough not to slow tests down, rarely enough that a
/// check spawning `herald status` does not load the machine.
const EVERY: Duration = Duration::from_millis(25);

/// Checks `check` until it gives `Some`, at most for `cap`; panics naming `what` and the last
/// observation otherwise.
pub fn wait_until<T, O: Debug>(
    what: &str,
    cap: Duration,
    mut check: impl FnMut() -> Result<T, O>,
) -> T {
    let deadline = Instant::now() + cap;
    loop {
        match check() {
            Ok(value) => return value,
            Err(observed) => {
                assert!(
                    Instant::now() < deadline,
                    "gave up after {cap:?} waiting for {what}; last seen: {observed:?}"
                );
            }
        }
        std::thread::sleep(EVERY);
    }
}

/// [`wait_until`] for a condition without a value to report.
pub fn wait_for(what: &str, cap: Duration, mut condition: impl FnMut() -> bool) {
    wait_until(what, cap, || if condition() { Ok(()) } else { Err(()) });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value_and_gives_up_at_the_cap() {
        let mut n = 0;
        let got = wait_until("three checks", Duration::from_secs(5), || {
            n += 1;
            if n == 3 { Ok(n) } else { Err(n) }
        });
        assert_eq!(got, 3);
        let gave_up = std::panic::catch_unwind(|| {
            wait_for("never", Duration::from_millis(60), || false);
        });
        let message = gave_up.unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains("waiting for never"), "{message}");
    }
}
