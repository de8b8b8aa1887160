//! How the long-running loops (worker, `herald run`, scheduling) treat a store that does not
//! answer, and one that lost its state.
//!
//! [`StoreError::Unavailable`] (a Redis restarting or a dropped connection, a SQLite file locked
//! past its busy timeout) is waited out with a capped exponential back-off, each retry logged,
//! for at most the store's [`crate::AppStores::outage_budget`] of continuous unavailability; then
//! the loop stops with the error, for a supervisor to see. Nothing is lost meanwhile: a claim is
//! either acknowledged by the store (and kept) or not made, and a claim whose outcome could not
//! be recorded ends `unknown` once its lease runs out, never sent again.
//!
//! [`StoreError::Corrupt`] is never retried: the loop halts with [`halt`]'s message. That is what
//! a Redis restarted empty answers (its epoch vanished): working on would take it for a new
//! deployment, expand the campaigns again and resend them.

use std::time::Duration;

use herald_engine::worker::WorkerError;
use herald_store::StoreError;
use tokio::time::Instant;

use crate::AppError;

/// The first wait after a failure.
const FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
const CAP: Duration = Duration::from_secs(5);

/// One stretch of consecutive unavailability.
#[derive(Debug)]
pub(crate) struct Outage {
    budget: Duration,
    since: Option<Instant>,
    attempt: u32,
}

impl Outage {
    /// No outage yet; a new one may last `budget`.
    pub(crate) fn new(budget: Duration) -> Self {
        Self {
            budget,
            since: None,
            attempt: 0,
        }
    }

    /// The store answered: an outage, if any, is over.
    pub(crate) fn ended(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                attempts = self.attempt,
                outage_ms = since.elapsed().as_millis() as u64,
                "store available again"
            );
        }
        self.attempt = 0;
    }

    /// The store is unavailable (`error`) for `what`: how long to wait before trying again, or
    /// the error to stop with once the outage has lasted the budget.
    pub(crate) fn wait(
        &mut self,
        error: &(dyn std::error::Error + Send + Sync),
        what: &str,
    ) -> Result<Duration, AppError> {
        let since = *self.since.get_or_insert_with(Instant::now);
        let lasted = since.elapsed();
        if lasted >= self.budget {
            tracing::error!(error.message = %error, what, attempts = self.attempt, outage_s = lasted.as_secs(), "store unavailable for too long; stopping");
            return Err(AppError::Internal(format!(
                "the store was unavailable for {} s ({} attempts), giving up: {error}",
                lasted.as_secs(),
                self.attempt
            )));
        }
        let delay = FIRST
            .saturating_mul(1 << self.attempt.min(16))
            .min(CAP)
            .min(self.budget - lasted);
        self.attempt += 1;
        tracing::warn!(error.message = %error, what, attempt = self.attempt, retry_in_ms = delay.as_millis() as u64, outage_s = lasted.as_secs(), budget_s = self.budget.as_secs(), "store unavailable; trying again");
        Ok(delay)
    }
}

/// The error a loop stops with for a worker's failure: a store that lost its state says so and
/// that nothing more is sent (see [`AppError`]'s conversion from [`StoreError::Corrupt`]).
pub(crate) fn halt(error: WorkerError) -> AppError {
    match error {
        WorkerError::Store(corrupt @ StoreError::Corrupt { .. }) => {
            tracing::error!(error.message = %corrupt, "the store lost its state or cannot be read; halting");
            AppError::from(corrupt)
        }
        other => AppError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The back-off doubles from 100 ms to 5 s, and the outage ends with the error once it has
    /// lasted the budget (tokio's paused clock: no real time passes).
    #[tokio::test(start_paused = true)]
    async fn an_outage_is_waited_out_with_a_capped_backoff_up_to_its_budget() {
        let error = std::io::Error::other("connection refused");
        let mut outage = Outage::new(Duration::from_secs(60));
        let mut waits = Vec::new();
        let failure = loop {
            match outage.wait(&error, "test") {
                Ok(delay) => {
                    waits.push(delay);
                    tokio::time::sleep(delay).await;
                }
                Err(failure) => break failure,
            }
        };
        assert_eq!(waits[..3], [FIRST, FIRST * 2, FIRST * 4]);
        assert!(waits.iter().all(|w| *w <= CAP));
        assert_eq!(waits.iter().sum::<Duration>(), Duration::from_secs(60));
        assert!(
            failure.to_string().contains("unavailable for 60 s"),
            "{failure}"
        );
        assert!(
            failure.to_string().contains("connection refused"),
            "{failure}"
        );

        outage.ended();
        assert_eq!(outage.wait(&error, "test").unwrap(), FIRST);
    }
}
