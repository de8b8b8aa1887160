//! `herald run FILE`: the one-command path on the configured store. One process schedules the
//! campaign (expands it into the store, with its sender and text) and works only that
//! campaign's runs until none is left (or, with `--until-idle`, until nothing is due now),
//! resuming whatever an earlier, interrupted run left.
//!
//! It takes no lock on the store: its claims carry an owner and a lease like any worker's, so
//! two `herald run` of different campaigns (or a `herald worker`) share one store. A claim left
//! by a crashed process is recovered once its lease ends, by whichever worker looks first.

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::RunId;
use herald_core::clock::Clock;
use herald_engine::Shutdown;
use herald_engine::expand::Expansion;
use herald_engine::idle::{WhenIdle, reach, until_idle};
use herald_engine::worker::{Step, Worker, WorkerError, process_worker_id};
use herald_store::{
    Block, Deliveries, QueueWaits, RunCounts, RunState, Runs, Senders, StoreError, StoreTime,
    Stores, WorkScope,
};

use crate::channel::AnyChannel;
use crate::outage::{Outage, halt};
use crate::schedule::{CampaignFile, schedule};
use crate::{AppError, AppStores, Settings, open_store_with};

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
    let (sender_name, sender) = file.sender(settings)?;
    let stores = Arc::new(open_store_with(settings, env, options.store_time.clone()).await?);
    if let Some(block) = stores.senders().sender(&sender_name).await?.blocked {
        let blocked = SenderBlocked {
            sender: sender_name,
            block,
        };
        return Err(AppError::User(format!(
            "{}; nothing was sent: {}",
            blocked.describe(),
            blocked.remedy()
        )));
    }
    let implicit_outbox = settings
        .implicit_outbox()
        .filter(|_| sender_name == crate::config::IMPLICIT_SENDER)
        .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned()));
    let channel = Arc::new(AnyChannel::build(&sender_name, sender, env)?);
    let scheduled = schedule(&*stores, &file, settings, clock.now()).await?;
    let run = scheduled.run.clone();
    // A paused run stays paused until someone resumes it (`herald resume RUN`, the admin API):
    // running its campaign again does not, or an operator's pause would last only until the
    // next restart. Nothing is sent; the report says who paused it and why.
    if let Some(record) = stores.runs().run(&run).await?
        && record.state == RunState::Paused
    {
        tracing::warn!(run = %run, paused_by = record.paused_by.as_deref().unwrap_or(""), reason = record.state_reason.as_deref().unwrap_or(""), "the run is paused; nothing is sent until it is resumed");
        return Ok(RunReport {
            counts: stores.deliveries().counts(&run).await?,
            run,
            expansion: scheduled.expansion,
            recovered: 0,
            ending: paused(record),
            implicit_outbox,
        });
    }
    let scope = WorkScope {
        sender: sender_name.clone(),
        runs: Some(vec![run.clone()]),
    };
    let rate = NonZeroU32::new(sender.rate()).unwrap_or(NonZeroU32::MIN);
    let mut worker = Worker::new(
        Arc::clone(&stores),
        channel,
        Arc::clone(&clock),
        process_worker_id(),
        scope,
        rate,
        settings.worker.batch,
    )
    .with_consent_channel(sender.consent_channel())
    .with_lease(settings.worker.lease())
    .with_shutdown(shutdown.clone());
    if let Some(tier) = sender.tier_limit {
        worker = worker.with_tier(tier);
    }
    if let Some(requests) = NonZeroUsize::new(settings.worker.batch) {
        worker = worker.with_concurrency(requests);
    }
    let spread = file.campaign.spread;
    worker.register(&run, file.campaign);
    let worker = Arc::new(worker);
    let recovered = worker.recover().await.map_err(halt)?.len();
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "recovered claims of a crashed process whose lease ended; ended unknown (or requeued under at_least_once)"
        );
    }
    let mut view = ProgressView {
        run: run.to_string(),
        total: scheduled.expansion.total,
        ..ProgressView::default()
    };
    let horizon = herald_engine::idle::horizon(clock.now(), spread);
    // Woken at least this often while idle: a claim left by a crashed process is recovered once
    // its lease ends, and a run resumed or a sender unblocked elsewhere is noticed.
    let poll = (settings.worker.lease() / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut last_counts = tokio::time::Instant::now() - Duration::from_secs(10);
    let mut wake_on = shutdown.clone();
    let mut outage = Outage::new(stores.outage_budget());
    let ending = loop {
        if shutdown.is_shutdown() {
            break Ending::Interrupted;
        }
        let step = match worker.step().await {
            Ok(step) => {
                outage.ended();
                step
            }
            // Another process holds the file's write lock past the busy timeout (a long
            // expansion batch of another campaign), or Redis restarts: waited out with a capped
            // back-off up to the store's outage budget, never skipped.
            Err(WorkerError::Store(StoreError::Unavailable(e))) => {
                let delay = outage.wait(&*e, &sender_name)?;
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = wake_on.recv() => {}
                }
                continue;
            }
            // A store that lost its state halts the run: never retried, never re-expanded.
            Err(e) => return Err(halt(e)),
        };
        let progress = worker.progress();
        view.sent = progress.sent.load(Ordering::Relaxed);
        view.deferred = progress.deferred.load(Ordering::Relaxed);
        view.skipped = progress.skipped.load(Ordering::Relaxed);
        view.failed = progress.failed.load(Ordering::Relaxed);
        let idle_next = match step {
            Step::Worked(_) => None,
            Step::Idle(next) => Some(next),
        };
        // Counting is an aggregate over the run: refresh it every second, and whenever idle.
        let mut in_flight = 0;
        if idle_next.is_some() || last_counts.elapsed() >= Duration::from_secs(1) {
            let counts = stores.deliveries().counts(&run).await?;
            view.done = counts.total() - counts.queued - counts.sending;
            view.next_due = counts.next_wave.map(|(at, _)| at);
            last_counts = tokio::time::Instant::now();
            on_progress(&view);
            if counts.queued == 0 && counts.sending == 0 {
                break Ending::Done;
            }
            in_flight = counts.sending;
        }
        let Some(next) = idle_next else { continue };
        if shutdown.is_shutdown() {
            break Ending::Interrupted;
        }
        // Nothing is due while the sender is blocked, by this process or any other.
        if let Some(block) = stores.senders().sender(&sender_name).await?.blocked {
            break Ending::Blocked {
                sender: sender_name.clone(),
                block,
            };
        }
        let now = clock.now();
        let wake = if options.until_idle {
            // Only the near end of the queue can keep the run going: a bounded read.
            let within = reach(now, horizon) + chrono::TimeDelta::seconds(1);
            let near = stores.deliveries().waits(&run, now, Some(within)).await?;
            let throttled = worker.throttled_until().await.map_err(halt)?;
            match until_idle(now, horizon, &near, throttled) {
                WhenIdle::WaitUntil(at) => at,
                // Told apart from a pause below.
                WhenIdle::Stop => {
                    let waits = stores.deliveries().waits(&run, now, None).await?;
                    break if waits.total() == 0 {
                        Ending::Done
                    } else {
                        Ending::Idle(waits)
                    };
                }
                WhenIdle::Throttled(until) => {
                    break Ending::Throttled {
                        sender: sender_name.clone(),
                        until,
                        waits: stores.deliveries().waits(&run, now, None).await?,
                    };
                }
            }
        } else {
            match next {
                Some(at) => at,
                // Claims still held (by a crashed process, until their lease ends): wait for
                // their recovery.
                None if in_flight > 0 => {
                    now + chrono::TimeDelta::from_std(poll).unwrap_or_default()
                }
                // Nothing queued in an active run: done, or paused (told apart below).
                None => break Ending::Done,
            }
        };
        if wake <= now {
            continue;
        }
        let wait = (wake - now).to_std().unwrap_or_default().min(poll);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake_on.recv() => {}
        }
    };
    let counts = stores.deliveries().counts(&run).await?;
    // A pause ends the run whatever the mode: an operator must act before anything more goes.
    let ending = match stores.runs().run(&run).await? {
        Some(record) if record.state == RunState::Paused => paused(record),
        _ => ending,
    };
    Ok(RunReport {
        run,
        expansion: scheduled.expansion,
        recovered,
        counts,
        ending,
        implicit_outbox,
    })
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
