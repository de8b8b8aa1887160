//! `herald run FILE`: the one-command path on the configured store. One process schedules the
//! campaign (expands it into the store, with its sender and text) and works only that
//! campaign's runs until none is left (or, with `--until-idle`, until nothing is due now),
//! resuming whatever an earlier, interrupted run left.
//!
//! It takes no lock on the store: its claims carry an owner and a lease like any worker's, so
//! two `herald run` of different campaigns (or a `herald worker`) share one store. A claim left
//! by a crashed process is recovered once its lease ends, by whichever worker looks first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_core::RunId;
use herald_core::clock::Clock;
use herald_engine::Shutdown;
use herald_engine::expand::Expansion;
use herald_store::{Block, QueueWaits, RunCounts, StoreTime};

use crate::schedule::{CampaignFile, schedule};
use crate::{AppError, Settings};

mod cron;
mod session;

use session::Session;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Send what falls due within the current spread, then stop once what is left waits for a
    /// window, the schedule, the provider or an operator (it stays queued for a later run); see
    /// `herald_engine::idle`.
    pub until_idle: bool,
    /// What the store's leases and rate slots are timed by: the backend's own clock, or (in
    /// tests) the same clock the run is driven by.
    pub store_time: StoreTime,
}

/// A snapshot for the progress display.
#[derive(Debug, Clone, Default)]
pub struct ProgressView {
    /// The run.
    pub run: String,
    /// Deliveries in the run.
    pub total: u64,
    /// Ended so far (all processes, all time).
    pub done: u64,
    /// Sent by this process.
    pub sent: u64,
    /// Deferred by this process.
    pub deferred: u64,
    /// Skipped or expired by this process.
    pub skipped: u64,
    /// Failed or unknown in this process.
    pub failed: u64,
    /// The next deferred delivery, when idle.
    pub next_due: Option<DateTime<Utc>>,
}

/// How the run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run.
    pub run: RunId,
    /// What expansion did.
    pub expansion: Expansion,
    /// Claims of a crashed process whose lease had ended, recovered at the start.
    pub recovered: usize,
    /// Final counts.
    pub counts: RunCounts,
    /// Why the run stopped.
    pub ending: Ending,
    /// Where the messages went when no config file exists and the implicit `main` outbox sent
    /// them (the user should be told: nothing reached a provider).
    pub implicit_outbox: Option<PathBuf>,
}

/// Why `run_campaign` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Every delivery of the run has ended.
    Done,
    /// Stopped by a signal; the same command resumes.
    Interrupted,
    /// `--until-idle`: what is left is due after the horizon (a window, the schedule, a retry,
    /// the tier); by reason.
    Idle(QueueWaits),
    /// `--until-idle`: the provider throttles the sender beyond the horizon.
    Throttled {
        /// The sender.
        sender: String,
        /// Until when.
        until: DateTime<Utc>,
        /// The queue, by reason.
        waits: QueueWaits,
    },
    /// The run is paused (its template was rejected repeatedly, or an operator paused it),
    /// found paused at the start (nothing was sent) or paused while it ran: nothing more goes
    /// out until someone resumes it (`herald resume RUN`, or the admin API).
    Paused {
        /// Who paused it, when recorded (`herald`, `operator (cli)`, `operator (api)`).
        by: Option<String>,
        /// Why, as recorded with the pause.
        reason: String,
    },
    /// A recurring campaign's next fire came while this run was worked: `herald run` (without
    /// `--until-idle`) records that fire and goes on with the oldest pending run.
    NextFire(DateTime<Utc>),
    /// `--until-idle` of a recurring campaign with no fire due under its `catch_up` and no run
    /// pending: nothing was sent.
    NoFireDue {
        /// The next fire, if the schedule has one.
        next: Option<DateTime<Utc>>,
    },
    /// The provider blocked the campaign's sender (seen by this process or any other worker of
    /// the sender): nothing goes out through it until `herald resume --sender`.
    Blocked {
        /// The sender.
        sender: String,
        /// The block, as recorded.
        block: Block,
    },
}

/// `herald run` refuses to start on a blocked sender: nothing is scheduled or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderBlocked {
    /// The sender.
    pub sender: String,
    /// The block, as recorded.
    pub block: Block,
}

impl SenderBlocked {
    /// "sender `X` is blocked by the provider since T (code: reason)".
    pub fn describe(&self) -> String {
        let Self { sender, block } = self;
        format!(
            "sender `{sender}` is blocked by the provider since {} ({}: {})",
            block.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            block.code,
            block.reason
        )
    }

    /// What the operator does about it.
    pub fn remedy(&self) -> String {
        format!(
            "fix the cause with the provider, then `herald resume --sender {}` and run again",
            self.sender
        )
    }
}

/// Runs `file` until done, idle (with `until_idle`) or `shutdown` fires. In-flight requests
/// always finish and are recorded before this returns.
///
/// A recurring campaign (`schedule.cron`) is registered in the store and its fires are
/// recorded there like any scheduler's (see `herald_engine::recurring`): with `until_idle`
/// the fire due now under its `catch_up` (or the newest run of the campaign still pending,
/// which is how a `herald run` killed after a fire resumes that fire's run) is expanded and
/// worked until idle; without, it keeps firing until `shutdown`, working one run at a time,
/// oldest pending first, each until it is done or the next fire is due.
pub async fn run_campaign(
    file: &Path,
    settings: &Settings,
    env: &BTreeMap<String, String>,
    options: RunOptions,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    mut on_progress: impl FnMut(&ProgressView),
) -> Result<RunReport, AppError> {
    let file = CampaignFile::load(file, clock.now())?;
    let session = Session::open(&file, settings, env, options, clock, shutdown).await?;
    if file.is_recurring() {
        return cron::run_recurring(&session, &file, &mut on_progress).await;
    }
    let scheduled = schedule(&*session.stores, &file, settings, session.clock.now()).await?;
    session
        .work_run(
            scheduled.run,
            scheduled.expansion,
            Some(file.campaign.clone()),
            file.campaign.spread,
            None,
            &mut on_progress,
        )
        .await
}

/// The ending of a run found paused.
fn paused(record: herald_store::RunRecord) -> Ending {
    Ending::Paused {
        by: record.paused_by,
        reason: record
            .state_reason
            .unwrap_or_else(|| "paused without a recorded reason".to_owned()),
    }
}
