//! One process working one run of its campaign: the worker part of `herald run`, shared by
//! one-off and recurring campaigns.

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_campaign::Campaign;
use herald_core::RunId;
use herald_core::clock::Clock;
use herald_engine::Shutdown;
use herald_engine::expand::Expansion;
use herald_engine::idle::{WhenIdle, reach, until_idle};
use herald_engine::worker::{Step, Worker, WorkerError, process_worker_id};
use herald_store::{Deliveries, RunState, Runs, Senders, StoreError, Stores, WorkScope};

use super::{Ending, ProgressView, RunOptions, RunReport, SenderBlocked, paused};
use crate::channel::AnyChannel;
use crate::config::SenderSettings;
use crate::outage::{Outage, halt};
use crate::schedule::CampaignFile;
use crate::{AnyStores, AppError, AppStores, Settings, open_store_with};

/// The store, channel and sender of a `herald run`.
pub(super) struct Session {
    pub(super) stores: Arc<AnyStores>,
    channel: Arc<AnyChannel>,
    pub(super) settings: Settings,
    pub(super) sender_name: String,
    sender: SenderSettings,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) shutdown: Shutdown,
    pub(super) options: RunOptions,
    implicit_outbox: Option<PathBuf>,
}

impl Session {
    /// Opens the store and the channel of `file`'s sender; refuses a blocked sender (nothing
    /// is scheduled or sent).
    pub(super) async fn open(
        file: &CampaignFile,
        settings: &Settings,
        env: &BTreeMap<String, String>,
        options: RunOptions,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> Result<Self, AppError> {
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
        Ok(Self {
            stores,
            channel,
            settings: settings.clone(),
            sender_name,
            sender: sender.clone(),
            clock,
            shutdown,
            options,
            implicit_outbox,
        })
    }

    /// A report of `run` with nothing worked (found paused, or no run at all).
    pub(super) fn report(
        &self,
        run: RunId,
        expansion: Expansion,
        counts: herald_store::RunCounts,
        ending: Ending,
    ) -> RunReport {
        RunReport {
            run,
            expansion,
            recovered: 0,
            counts,
            ending,
            implicit_outbox: self.implicit_outbox.clone(),
        }
    }

    /// Works `run` (its campaign given, or rebuilt from the store by the worker) until it is
    /// done, idle (with `until_idle`), the shutdown fires or, with `stop_at`, that instant comes
    /// (ending [`Ending::NextFire`]).
    pub(super) async fn work_run(
        &self,
        run: RunId,
        expansion: Expansion,
        campaign: Option<Campaign>,
        spread: chrono::TimeDelta,
        stop_at: Option<DateTime<Utc>>,
        on_progress: &mut impl FnMut(&ProgressView),
    ) -> Result<RunReport, AppError> {
        let (stores, clock, shutdown, options, settings) = (
            &self.stores,
            &self.clock,
            &self.shutdown,
            &self.options,
            &self.settings,
        );
        let sender_name = &self.sender_name;
        let sender = &self.sender;
        let implicit_outbox = self.implicit_outbox.clone();
        // A paused run stays paused until someone resumes it (`herald resume RUN`, the admin
        // API): running its campaign again does not, or an operator's pause would last only
        // until the next restart. Nothing is sent; the report says who paused it and why.
        if let Some(record) = stores.runs().run(&run).await?
            && record.state == RunState::Paused
        {
            tracing::warn!(run = %run, paused_by = record.paused_by.as_deref().unwrap_or(""), reason = record.state_reason.as_deref().unwrap_or(""), "the run is paused; nothing is sent until it is resumed");
            let counts = stores.deliveries().counts(&run).await?;
            return Ok(self.report(run, expansion, counts, paused(record)));
        }
        let scope = WorkScope {
            sender: sender_name.clone(),
            runs: Some(vec![run.clone()]),
        };
        let rate = NonZeroU32::new(sender.rate()).unwrap_or(NonZeroU32::MIN);
        let mut worker = Worker::new(
            Arc::clone(stores),
            Arc::clone(&self.channel),
            Arc::clone(clock),
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
        if let Some(campaign) = campaign {
            worker.register(&run, campaign);
        }
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
            total: expansion.total,
            ..ProgressView::default()
        };
        let horizon = herald_engine::idle::horizon(clock.now(), spread);
        // Woken at least this often while idle: a claim left by a crashed process is recovered once
        // its lease ends, and a run resumed or a sender unblocked elsewhere is noticed.
        let poll =
            (settings.worker.lease() / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut last_counts = tokio::time::Instant::now() - Duration::from_secs(10);
        let mut wake_on = shutdown.clone();
        let mut outage = Outage::new(stores.outage_budget());
        let ending = loop {
            if shutdown.is_shutdown() {
                break Ending::Interrupted;
            }
            if let Some(at) = stop_at
                && clock.now() >= at
            {
                break Ending::NextFire(at);
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
                    let delay = outage.wait(&*e, sender_name)?;
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
            if let Some(block) = stores.senders().sender(sender_name).await?.blocked {
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
            let wake = stop_at.map_or(wake, |at| wake.min(at));
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
            expansion,
            recovered,
            counts,
            ending,
            implicit_outbox,
        })
    }
}
