//! What the worker records through the `metrics` facade (the app installs the one Prometheus
//! recorder and serves its text at `/metrics`; without a recorder these calls do nothing).
//!
//! # Labels are bounded sets
//! Every label value comes from a closed set or from the config: `sender` (a configured sender
//! name), `outcome` and `reason` (Herald's own enums), and `code`, the provider's error code,
//! which the provider chooses: the first [`MAX_CODES`] distinct codes a process sees are kept as
//! they are and any later one is `other`, so a provider inventing codes cannot grow the series
//! without bound. No phone number, recipient id, run id or campaign id is ever a label: run ids
//! are unbounded (a cron campaign makes a run per fire) and per-run numbers are what `herald
//! status` and the admin's `/v1/runs/{id}` are for. So the text holds no personal data.
//!
//! Counters count what this process decided or was told: a change the store then refuses (a
//! late outcome after a lost lease) was still counted, as the provider's answer was real.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use chrono::TimeDelta;
use herald_channel::{Accepted, Channel, SendError};
use herald_core::{Outcome, RunId};
use herald_store::{Deliveries, RunState, Runs, StoreError, Stores, WaitReason};

use super::{Worker, lock};

/// Deliveries ended by this process: `{sender, outcome, reason}` (`reason` is the skip reason
/// or the provider's failure code, empty for the other outcomes).
pub const DELIVERIES: &str = "herald_deliveries_total";
/// Deliveries deferred or put back in the queue: `{sender, reason}` (a [`WaitReason`], or
/// `decide_again` for a claim put back to be decided again at once).
pub const DEFERRALS: &str = "herald_deferrals_total";
/// Provider answers to send requests: `{sender, result, code}` (`result` is `accepted`,
/// `throttled`, `retryable`, `rejected` or `unknown`; `code` is the provider's code for a
/// rejection, empty otherwise).
pub const PROVIDER_RESPONSES: &str = "herald_provider_responses_total";
/// Waits for the sender's rate limiter, in seconds: `{sender, kind}` (`slot`: a granted claim
/// waiting for its slot; `rate`: no slot free, waiting before claiming again). A summary: its
/// `_count` is the number of waits and its `_sum` the seconds waited.
pub const LIMITER_WAIT_SECONDS: &str = "herald_limiter_wait_seconds";
/// The provider request's duration in seconds, answered or not: `{sender}` (a summary).
pub const SEND_SECONDS: &str = "herald_send_seconds";
/// Queued deliveries of the sender's active runs, as last sampled: `{sender}`.
pub const QUEUE_DEPTH: &str = "herald_queue_depth";
/// Deliveries claimed with a request in flight, as last sampled: `{sender}`.
pub const IN_FLIGHT: &str = "herald_in_flight";
/// Claims of a dead worker recovered after their lease: `{requeued}` (`true` under
/// `at_least_once`, `false` when they ended `unknown`).
pub const RECOVERED: &str = "herald_recovered_claims_total";

/// Distinct provider codes kept as labels per process; later ones are `other`.
pub const MAX_CODES: usize = 64;

static CODES: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// `code` as a label value: itself when it is one of the first [`MAX_CODES`] distinct short
/// codes seen, `other` otherwise (a code is at most 16 ASCII letters, digits, `_` or `-`).
pub fn code_label(code: &str) -> String {
    let plain = !code.is_empty()
        && code.len() <= 16
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !plain {
        return "other".to_owned();
    }
    let mut codes = lock(&CODES);
    if codes.contains(code) || codes.len() < MAX_CODES {
        codes.insert(code.to_owned());
        code.to_owned()
    } else {
        "other".to_owned()
    }
}

pub(super) fn delivery_ended(sender: &str, outcome: &Outcome) {
    let (name, reason) = match outcome {
        Outcome::Sent => ("sent", String::new()),
        Outcome::Failed { code } => ("failed", code_label(code)),
        Outcome::Unknown => ("unknown", String::new()),
        Outcome::Expired => ("expired", String::new()),
        Outcome::Skipped(reason) => ("skipped", reason.as_str().to_owned()),
    };
    metrics::counter!(DELIVERIES, "sender" => sender.to_owned(), "outcome" => name, "reason" => reason)
        .increment(1);
}

pub(super) fn deferred(sender: &str, reason: Option<WaitReason>) {
    let reason = reason.map_or("decide_again", WaitReason::as_str);
    metrics::counter!(DEFERRALS, "sender" => sender.to_owned(), "reason" => reason).increment(1);
}

pub(super) fn provider_answered(sender: &str, answer: &Result<Accepted, SendError>) {
    let (result, code) = match answer {
        Ok(_) => ("accepted", String::new()),
        Err(SendError::Throttled { .. }) => ("throttled", String::new()),
        Err(SendError::Retryable { .. }) => ("retryable", String::new()),
        Err(SendError::Rejected { code, .. }) => ("rejected", code_label(code)),
        Err(SendError::Unknown(_)) => ("unknown", String::new()),
    };
    metrics::counter!(PROVIDER_RESPONSES, "sender" => sender.to_owned(), "result" => result, "code" => code)
        .increment(1);
}

/// What a limiter wait was for.
#[derive(Debug, Clone, Copy)]
pub(super) enum LimiterWait {
    /// A granted claim waiting for its slot.
    Slot,
    /// No slot free: waiting before claiming again.
    Rate,
}

pub(super) fn limiter_waited(sender: &str, kind: LimiterWait, waited: Duration) {
    let kind = match kind {
        LimiterWait::Slot => "slot",
        LimiterWait::Rate => "rate",
    };
    metrics::histogram!(LIMITER_WAIT_SECONDS, "sender" => sender.to_owned(), "kind" => kind)
        .record(waited.as_secs_f64());
}

pub(super) fn send_took(sender: &str, took: Duration) {
    metrics::histogram!(SEND_SECONDS, "sender" => sender.to_owned()).record(took.as_secs_f64());
}

pub(super) fn queue_sampled(sender: &str, queued: u64, sending: u64) {
    metrics::gauge!(QUEUE_DEPTH, "sender" => sender.to_owned()).set(queued as f64);
    metrics::gauge!(IN_FLIGHT, "sender" => sender.to_owned()).set(sending as f64);
}

/// How often a worker samples its queue depth, on its clock: a few reads of the runs' counts
/// at most this often, whatever the step rate.
pub const QUEUE_SAMPLE_EVERY: TimeDelta = TimeDelta::seconds(10);

/// At most this many runs are counted per sample (the newest active ones of the sender).
pub const MAX_SAMPLED_RUNS: usize = 100;

impl<S: Stores, C: Channel + 'static> Worker<S, C> {
    /// Samples the queue depth of the worker's scope when [`QUEUE_SAMPLE_EVERY`] has passed
    /// since the last sample (or none was taken): one read of the runs and one of the counts
    /// of each active run of the sender, at most [`MAX_SAMPLED_RUNS`].
    pub(super) async fn sample_queue_when_due(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        {
            let mut last = lock(&self.last_sample);
            if last.is_some_and(|at| now - at < QUEUE_SAMPLE_EVERY) {
                return Ok(());
            }
            *last = Some(now);
        }
        let runs: Vec<RunId> = match &self.scope.runs {
            Some(runs) => runs.iter().take(MAX_SAMPLED_RUNS).cloned().collect(),
            None => self
                .stores
                .runs()
                .runs()
                .await?
                .into_iter()
                .filter(|r| {
                    r.state == RunState::Active
                        && r.run.sender.as_deref() == Some(self.scope.sender.as_str())
                })
                .take(MAX_SAMPLED_RUNS)
                .map(|r| r.run.run)
                .collect(),
        };
        let (mut queued, mut sending) = (0, 0);
        for run in &runs {
            let counts = self.stores.deliveries().counts(run).await?;
            queued += counts.queued;
            sending += counts.sending;
        }
        queue_sampled(&self.scope.sender, queued, sending);
        Ok(())
    }
}

pub(super) fn recovered(requeued: bool) {
    metrics::counter!(RECOVERED, "requeued" => if requeued { "true" } else { "false" })
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_label_is_bounded_and_never_free_text() {
        assert_eq!(code_label("131050"), "131050");
        assert_eq!(code_label("template name is wrong"), "other");
        assert_eq!(code_label(""), "other");
        assert_eq!(code_label(&"9".repeat(17)), "other");
        for i in 0..(MAX_CODES * 2) {
            let _ = code_label(&format!("x{i}"));
        }
        assert!(lock(&CODES).len() <= MAX_CODES);
        assert_eq!(
            code_label("131050"),
            "131050",
            "a code seen early stays itself"
        );
        assert_eq!(code_label("never-seen-before"), "other");
    }
}
