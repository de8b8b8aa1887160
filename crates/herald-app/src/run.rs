//! `herald run FILE`: the embedded default. One process expands the campaign into the SQLite
//! store and works its deliveries until none is left (or, with `--until-idle`, until nothing is
//! due now), resuming whatever an earlier, interrupted run left.

use std::collections::BTreeMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::RunId;
use herald_core::clock::Clock;
use herald_engine::ShutdownSignal;
use herald_engine::expand::{Expansion, RunSource, expand};
use herald_engine::idle::{WhenIdle, reach, until_idle};
use herald_engine::worker::{Step, Worker, process_worker_id};
use herald_store::{Deliveries, QueueWaits, RunCounts, Runs, Stores, WorkScope};

use crate::channel::AnyChannel;
use crate::{AppError, Settings, open_store};

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Send what falls due within the current spread, then stop once what is left waits for a
    /// window, the schedule, the provider or an operator (it stays queued for a later run); see
    /// `herald_engine::idle`.
    pub until_idle: bool,
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
    /// Deliveries found in flight from an interrupted process.
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
    /// The run is paused (the provider blocked the sender, or its template was rejected
    /// repeatedly): nothing more goes out until an operator fixes it and runs it again.
    Paused {
        /// Why, as recorded with the pause.
        reason: String,
    },
}

/// Runs `file` until done, idle (with `until_idle`) or `shutdown` resolves. In-flight requests
/// always finish and are recorded before this returns.
pub async fn run_campaign(
    file: &Path,
    settings: &Settings,
    env: &BTreeMap<String, String>,
    options: RunOptions,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut on_progress: impl FnMut(&ProgressView),
) -> Result<RunReport, AppError> {
    let campaign =
        herald_campaign::load(file, clock.now()).map_err(|d| AppError::User(d.to_string()))?;
    let (sender_name, sender) = crate::sender::configured(file, &campaign, settings)?;
    let stores = Arc::new(open_store(settings, env)?);
    let _lock = stores.lock_exclusive()?;
    let implicit_outbox = settings
        .implicit_outbox()
        .filter(|_| sender_name == crate::config::IMPLICIT_SENDER)
        .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned()));
    let channel = Arc::new(AnyChannel::build(&sender_name, sender, env)?);
    let rate = campaign
        .rate_per_second
        .map_or(sender.rate(), |r| r.min(sender.rate()));
    let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
    let source = file.display().to_string();
    let text =
        herald_campaign::input::read_document(file, herald_campaign::input::MAX_DOCUMENT_BYTES)
            .map_err(|e| AppError::User(format!("{source}: {}", e.kind)))?;
    let run_source = RunSource {
        path: &source,
        sender: &sender_name,
        text: &text,
    };
    let (run, expansion) = expand(&*stores, &campaign, run_source, clock.now())
        .await
        .map_err(|e| match e {
            herald_engine::expand::ExpandError::Store(s) => AppError::from(s),
            other => AppError::User(format!("{source}: {other}")),
        })?;
    // Running a campaign again is how an operator resumes it after a pause (a provider block,
    // template errors): the pause was logged with its reason when it happened.
    {
        if let Some(record) = stores.runs().run(&run).await?
            && record.state == herald_store::RunState::Paused
        {
            tracing::warn!(run = %run, "resuming a paused run");
            stores
                .runs()
                .set_run_state(&run, herald_store::RunState::Active)
                .await?;
        }
    }
    let spread = campaign.spread;
    let signal = ShutdownSignal::new();
    let scope = WorkScope {
        sender: sender_name.clone(),
        runs: Some(vec![run.clone()]),
    };
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
    .with_shutdown(signal.subscribe());
    if let Some(tier) = sender.tier_limit {
        worker = worker.with_tier(tier);
    }
    let worker = Arc::new(worker);
    let recovered = worker
        .recover()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .len();
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "found deliveries whose claims expired; ended unknown (or requeued under at_least_once)"
        );
    }
    worker.register(&run, campaign);

    let mut stop = signal.subscribe();
    {
        let signal = signal.clone();
        tokio::spawn(async move {
            shutdown.await;
            signal.trigger();
        });
    }
    let mut view = ProgressView {
        run: run.to_string(),
        total: expansion.total,
        ..ProgressView::default()
    };
    let horizon = herald_engine::idle::horizon(clock.now(), spread);
    let mut last_counts = tokio::time::Instant::now() - Duration::from_secs(10);
    let ending = loop {
        if stop.is_shutdown() {
            break Ending::Interrupted;
        }
        let step = worker
            .step()
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
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
        if idle_next.is_some() || last_counts.elapsed() >= Duration::from_secs(1) {
            let counts = stores.deliveries().counts(&run).await?;
            view.done = counts.total() - counts.queued - counts.sending;
            view.next_due = counts.next_wave.map(|(at, _)| at);
            last_counts = tokio::time::Instant::now();
            on_progress(&view);
            if counts.queued == 0 && counts.sending == 0 {
                break Ending::Done;
            }
        }
        let Some(next) = idle_next else { continue };
        if stop.is_shutdown() {
            break Ending::Interrupted;
        }
        let now = clock.now();
        let wake = if options.until_idle {
            // Only the near end of the queue can keep the run going: a bounded read.
            let within = reach(now, horizon) + chrono::TimeDelta::seconds(1);
            let near = stores.deliveries().waits(&run, now, Some(within)).await?;
            let throttled = worker
                .throttled_until()
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?;
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
            // Nothing queued in an active run: done, or paused (told apart below).
            let Some(at) = next else {
                break Ending::Done;
            };
            at
        };
        if wake <= now {
            continue;
        }
        // Sleep until the next delivery is due (at most a minute, so a paused run resumed
        // elsewhere is noticed), or until asked to stop.
        let wait = (wake - now)
            .to_std()
            .unwrap_or_default()
            .min(Duration::from_secs(60));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.recv() => {}
        }
    };
    let counts = stores.deliveries().counts(&run).await?;
    // A pause ends the run whatever the mode: an operator must act before anything more goes.
    let ending = match stores.runs().run(&run).await? {
        Some(record) if record.state == herald_store::RunState::Paused => Ending::Paused {
            reason: record
                .state_reason
                .unwrap_or_else(|| "paused without a recorded reason".to_owned()),
        },
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

/// One run as `herald status` shows it.
#[derive(Debug, Clone)]
pub struct RunStatus {
    /// The run.
    pub record: herald_store::RunRecord,
    /// Its counts by state and reason.
    pub counts: RunCounts,
    /// Its queue as of the status's `now`: due, and waiting by reason.
    pub waits: QueueWaits,
}

/// Counts of one run, or of every run, with their queues as of `now`.
pub async fn status(
    settings: &Settings,
    env: &BTreeMap<String, String>,
    run: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<RunStatus>, AppError> {
    let stores = open_store(settings, env)?;
    let records = match run {
        Some(id) => {
            let id = RunId::parse(id).map_err(|e| AppError::User(e.to_string()))?;
            let record = stores
                .runs()
                .run(&id)
                .await?
                .ok_or_else(|| AppError::User(format!("no run {id}")))?;
            vec![record]
        }
        None => stores.runs().runs().await?,
    };
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let counts = stores.deliveries().counts(&record.run.run).await?;
        let waits = stores
            .deliveries()
            .waits(&record.run.run, now, None)
            .await?;
        out.push(RunStatus {
            record,
            counts,
            waits,
        });
    }
    Ok(out)
}

/// The sender of a stored run and the channel its consent is checked on, as `herald run` would
/// resolve them now: the store keeps the campaign file's path, not its sender, so this reads
/// the file's `sender` and looks it up in `settings`. `Err` says why it cannot tell. `now` is
/// the instant validation measures a cron horizon from.
pub fn consent_channel_of(
    settings: &Settings,
    record: &herald_store::RunRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(String, herald_core::ConsentChannel), String> {
    let source = Path::new(&record.run.source);
    let campaign = herald_campaign::load(source, now)
        .map_err(|_| format!("campaign file {} cannot be read", source.display()))?;
    let name = campaign.sender.as_ref().map_or("main", |s| s.as_str());
    let sender = settings
        .senders
        .get(name)
        .ok_or_else(|| format!("sender `{name}` is not configured"))?;
    Ok((name.to_owned(), sender.consent_channel()))
}
