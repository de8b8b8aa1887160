//! `herald run FILE`: the embedded default. One process expands the campaign into the SQLite
//! store and works its deliveries until none is left (or, with `--until-idle`, until nothing is
//! due now), resuming whatever an earlier, interrupted run left.

use std::collections::BTreeMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::RunId;
use herald_core::clock::Clock;
use herald_engine::expand::{Expansion, expand};
use herald_engine::worker::{Step, Worker};
use herald_store::{Deliveries, RunCounts, Stores};

use crate::channel::AnyChannel;
use crate::{AppError, Settings, open_store};

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Exit once nothing is due now (deferred deliveries stay queued for a later run).
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
    /// Stopped by a signal.
    pub interrupted: bool,
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
    let stores = Arc::new(open_store(settings, env)?);
    let _lock = stores.lock_exclusive()?;
    let sender_name = campaign
        .sender
        .as_ref()
        .map_or("main", |s| s.as_str())
        .to_owned();
    let sender = settings.senders.get(&sender_name).ok_or_else(|| {
        let known: Vec<&str> = settings.senders.keys().map(String::as_str).collect();
        AppError::User(format!(
            "{}: unknown sender `{sender_name}` (configured: {})",
            file.display(),
            known.join(", ")
        ))
    })?;
    let channel = Arc::new(AnyChannel::build(&sender_name, sender, env)?);
    let rate = campaign
        .rate_per_second
        .map_or(sender.rate(), |r| r.min(sender.rate()));
    let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
    let mut worker = Worker::new(
        Arc::clone(&stores),
        channel,
        Arc::clone(&clock),
        rate,
        settings.worker.batch,
    )
    .with_consent_channel(sender.consent_channel());
    if let Some(tier) = sender.tier_limit {
        worker = worker.with_tier(tier);
    }
    let worker = Arc::new(worker);
    let recovered = worker
        .recover()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "found deliveries interrupted in flight; ended unknown (or requeued under at_least_once)"
        );
    }
    let source = file.display().to_string();
    let (run, expansion) = expand(&*stores, &campaign, &source, clock.now())
        .await
        .map_err(|e| match e {
            herald_engine::expand::ExpandError::Store(s) => AppError::from(s),
            other => AppError::User(format!("{source}: {other}")),
        })?;
    // Running a campaign again is how an operator resumes it after a pause (a provider block,
    // template errors): the pause was logged with its reason when it happened.
    {
        use herald_store::Runs;
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
    worker.register(&run, campaign);

    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (worker, stop, stopped) =
            (Arc::clone(&worker), Arc::clone(&stop), Arc::clone(&stopped));
        tokio::spawn(async move {
            shutdown.await;
            stopped.store(true, Ordering::SeqCst);
            worker.stop();
            stop.notify_one();
        });
    }
    let mut view = ProgressView {
        run: run.to_string(),
        total: expansion.total,
        ..ProgressView::default()
    };
    let mut last_counts = tokio::time::Instant::now() - Duration::from_secs(10);
    loop {
        if stopped.load(Ordering::SeqCst) {
            break;
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
                break;
            }
        }
        let Some(next) = idle_next else { continue };
        let now = clock.now();
        match next {
            Some(at) if at <= now => continue,
            // Due within a moment (the store keeps whole seconds): that is "now", not idle.
            Some(at) if at - now <= chrono::TimeDelta::seconds(2) => {
                tokio::time::sleep((at - now).to_std().unwrap_or_default()).await;
            }
            _ if options.until_idle => break,
            None => break,
            Some(at) => {
                // Sleep until the next deferred delivery is due (at most a minute, so a paused
                // run resumed elsewhere is noticed), or until asked to stop.
                let wait = (at - now)
                    .to_std()
                    .unwrap_or_default()
                    .min(Duration::from_secs(60));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.notified() => {}
                }
            }
        }
    }
    let counts = stores.deliveries().counts(&run).await?;
    Ok(RunReport {
        run,
        expansion,
        recovered,
        counts,
        interrupted: stopped.load(Ordering::SeqCst),
    })
}

/// Counts of one run, or of every run.
pub async fn status(
    settings: &Settings,
    env: &BTreeMap<String, String>,
    run: Option<&str>,
) -> Result<Vec<(herald_store::RunRecord, RunCounts)>, AppError> {
    use herald_store::Runs;
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
        out.push((record, counts));
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
