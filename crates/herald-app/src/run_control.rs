//! Run control: an operator pauses, resumes or cancels a run. `herald pause|resume|cancel RUN`
//! and the admin API's `POST /v1/runs/{id}/pause|resume|cancel` both call these functions, so
//! the rules live once:
//!
//! - A pause records who paused (`operator (cli)`, `operator (api)`; the engine's own pauses
//!   record `herald`) and why. A paused run stays paused, across restarts of `run`, `serve`,
//!   `worker` and `scheduler`, until someone resumes it: scheduling its campaign again never
//!   resumes it (`herald run` says it is paused and how to resume it instead of sending).
//! - Resuming clears who paused and why; a cancelled run is never resumed (a user error).
//! - Cancelling ends every queued delivery `skipped(cancelled)` in the store's one write, so the
//!   counts still add up to the audience; deliveries already in flight end as their worker
//!   records them. Cancelling is final.
//!
//! A sender block is not a run pause (see [`crate::resume`]): nothing here touches senders.

use herald_core::RunId;
use herald_store::{Deliveries, RunCounts, RunRecord, RunState, Runs, StoreError};

use crate::{AppError, AppStores};

/// Why run control refused or failed: typed, so the admin API answers 400, 404, 409 or 422
/// without reading messages, and the CLI prints the message.
#[derive(Debug, thiserror::Error)]
pub enum RunControlError {
    /// Not a run id (`campaign@time`).
    #[error("run `{text}`: {why}")]
    BadRunId {
        /// What was given.
        text: String,
        /// Why it is not a run id.
        why: String,
    },
    /// No such run in the store.
    #[error("no run {run} in {location}")]
    NoRun {
        /// The run.
        run: RunId,
        /// The store.
        location: String,
    },
    /// The run is cancelled: never paused or resumed again.
    #[error("run {0} is cancelled; a cancelled run is never paused or resumed")]
    Cancelled(RunId),
    /// The pause reason is refused (the message names the field).
    #[error("reason: {0}")]
    BadReason(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RunControlError> for AppError {
    fn from(error: RunControlError) -> Self {
        match error {
            RunControlError::Store(store) => AppError::from(store),
            refused => AppError::User(refused.to_string()),
        }
    }
}

/// The longest pause reason kept, in characters: it is shown by `status` and the API.
pub const MAX_REASON_CHARS: usize = 500;

/// The reason recorded when an operator gives none.
pub const DEFAULT_REASON: &str = "paused by an operator";

/// Who acts on a run, recorded as `paused_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// The `herald` command.
    Cli,
    /// The admin API.
    Api,
}

impl Operator {
    /// As recorded and shown: `operator (cli)` or `operator (api)`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Cli => "operator (cli)",
            Operator::Api => "operator (api)",
        }
    }
}

/// What pausing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunPaused {
    /// It was active and is paused now.
    Paused,
    /// It was paused already (by whom and why, as recorded): nothing changed, so the first
    /// pause's reason is kept.
    AlreadyPaused {
        /// Who paused it, when recorded.
        by: Option<String>,
        /// Why, when recorded.
        reason: Option<String>,
    },
}

/// What resuming found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunResumed {
    /// It was paused (by whom and why, when recorded) and is active again.
    Resumed {
        /// Who had paused it.
        by: Option<String>,
        /// Why.
        reason: Option<String>,
    },
    /// It was active already.
    AlreadyActive,
}

/// What cancelling did: the run's counts after it (every queued delivery now
/// `skipped(cancelled)`), and whether it was cancelled before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCancelled {
    /// It was cancelled already; nothing changed.
    pub already: bool,
    /// Queued deliveries this cancel ended `skipped(cancelled)`.
    pub ended: u64,
    /// The counts after.
    pub counts: RunCounts,
}

/// `text` as a run id, the error naming what was given.
pub fn parse_run(text: &str) -> Result<RunId, RunControlError> {
    RunId::parse(text).map_err(|e| RunControlError::BadRunId {
        text: text.to_owned(),
        why: e.to_string(),
    })
}

/// The reason an operator gave, checked: at most [`MAX_REASON_CHARS`] characters, no control
/// characters; blank or absent is [`DEFAULT_REASON`].
pub fn pause_reason(reason: Option<&str>) -> Result<String, RunControlError> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(DEFAULT_REASON.to_owned());
    };
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(RunControlError::BadReason(format!(
            "at most {MAX_REASON_CHARS} characters"
        )));
    }
    if reason.chars().any(char::is_control) {
        return Err(RunControlError::BadReason(
            "control characters (line breaks, tabs) are not allowed".to_owned(),
        ));
    }
    Ok(reason.to_owned())
}

async fn record_of<S: AppStores>(stores: &S, run: &RunId) -> Result<RunRecord, RunControlError> {
    stores
        .runs()
        .run(run)
        .await?
        .ok_or_else(|| RunControlError::NoRun {
            run: run.clone(),
            location: stores.location(),
        })
}

/// Pauses `run` for `reason` (see [`pause_reason`]), recording `by`. A paused run is left as it
/// is; a cancelled one is a user error.
pub async fn pause_run<S: AppStores>(
    stores: &S,
    run: &RunId,
    by: Operator,
    reason: Option<&str>,
) -> Result<RunPaused, RunControlError> {
    let reason = pause_reason(reason)?;
    let record = record_of(stores, run).await?;
    match record.state {
        RunState::Cancelled => Err(RunControlError::Cancelled(run.clone())),
        RunState::Paused => Ok(RunPaused::AlreadyPaused {
            by: record.paused_by,
            reason: record.state_reason,
        }),
        RunState::Active => {
            stores.runs().pause(run, by.as_str(), &reason).await?;
            tracing::warn!(run = %run, by = by.as_str(), %reason, "run paused");
            Ok(RunPaused::Paused)
        }
    }
}

/// Sets a paused `run` active again. A cancelled run stays cancelled (a user error).
pub async fn resume_run<S: AppStores>(
    stores: &S,
    run: &RunId,
    by: Operator,
) -> Result<RunResumed, RunControlError> {
    let record = record_of(stores, run).await?;
    match record.state {
        RunState::Active => Ok(RunResumed::AlreadyActive),
        RunState::Cancelled => Err(RunControlError::Cancelled(run.clone())),
        RunState::Paused => {
            stores.runs().set_run_state(run, RunState::Active).await?;
            tracing::warn!(run = %run, by = by.as_str(), paused_by = record.paused_by.as_deref().unwrap_or(""), "run resumed");
            Ok(RunResumed::Resumed {
                by: record.paused_by,
                reason: record.state_reason,
            })
        }
    }
}

/// Cancels `run`: every queued delivery ends `skipped(cancelled)`. Cancelling a cancelled run
/// again ends whatever an interrupted cancel left queued, and nothing else.
pub async fn cancel_run<S: AppStores>(
    stores: &S,
    run: &RunId,
    by: Operator,
) -> Result<RunCancelled, RunControlError> {
    let record = record_of(stores, run).await?;
    let already = record.state == RunState::Cancelled;
    let before = stores.deliveries().counts(run).await?;
    // Always asked of the store, even for a run already cancelled: a cancel interrupted half
    // way (a Redis cancel ends the queued deliveries in chunks) is finished by the next one.
    stores
        .runs()
        .set_run_state(run, RunState::Cancelled)
        .await?;
    if !already {
        tracing::warn!(run = %run, by = by.as_str(), "run cancelled");
    }
    let counts = stores.deliveries().counts(run).await?;
    let cancelled = |c: &RunCounts| {
        c.skipped
            .get(herald_core::SkipReason::Cancelled.as_str())
            .copied()
            .unwrap_or(0)
    };
    Ok(RunCancelled {
        already,
        ended: cancelled(&counts).saturating_sub(cancelled(&before)),
        counts,
    })
}
