//! `herald worker` (and the worker half of `herald serve`): every active run in the store of
//! the configured senders, until shutdown.
//!
//! One engine `Worker` per sender, all under this process's one id (`host/pid/random`), so
//! `status` and a recovery name the process that held a claim. Each sender's worker steps on
//! its own task; an idle one looks again at least every [`POLL`], since a scheduler on another
//! process or machine may add runs at any time and an operator may resume a blocked sender.
//! On shutdown each finishes the step it is in (its requests in flight are answered and
//! recorded) and stops.

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use herald_core::clock::Clock;
use herald_engine::worker::{Step, Worker, WorkerError};
use herald_engine::{Shutdown, ShutdownSignal};
use herald_store::{StoreError, WorkScope, WorkerId};

use crate::channel::AnyChannel;
use crate::config::SenderSettings;
use crate::outage::{Outage, halt};
use crate::{AppError, AppStores, Settings};

/// The longest an idle worker sleeps before looking at the queue again.
pub const POLL: Duration = Duration::from_secs(1);

/// How to work.
#[derive(Debug, Clone, Default)]
pub struct WorkOptions {
    /// Requests in flight at once per sender (default: `[worker] batch`).
    pub concurrency: Option<NonZeroUsize>,
    /// Only these senders (default: every configured one).
    pub senders: Vec<String>,
}

/// What one sender's worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderReport {
    /// The sender.
    pub sender: String,
    /// Sent by this process.
    pub sent: u64,
    /// Deferred by this process.
    pub deferred: u64,
    /// Skipped or expired by this process.
    pub skipped: u64,
    /// Failed or unknown in this process.
    pub failed: u64,
}

/// The senders `options` select, each with its settings: every configured one by default; a
/// name the config lacks is a user error naming the configured ones.
pub fn selected<'s>(
    settings: &'s Settings,
    options: &WorkOptions,
) -> Result<Vec<(String, &'s SenderSettings)>, AppError> {
    if options.senders.is_empty() {
        return Ok(settings
            .senders
            .iter()
            .map(|(name, sender)| (name.clone(), sender))
            .collect());
    }
    let mut out: Vec<(String, &SenderSettings)> = Vec::new();
    for name in &options.senders {
        let sender = settings.senders.get(name).ok_or_else(|| {
            let known: Vec<&str> = settings.senders.keys().map(String::as_str).collect();
            AppError::User(format!(
                "--sender {name}: no such sender in the config (configured: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.clone(), sender));
        }
    }
    Ok(out)
}

/// The workers of the selected senders, built (every channel, so a missing secret fails before
/// anything works) and ready to [`Workers::work`].
pub struct Workers<S: AppStores> {
    id: WorkerId,
    /// How long a store may stay unavailable before the workers stop with the error.
    outage_budget: Duration,
    clock: Arc<dyn Clock>,
    /// The caller's shutdown.
    shutdown: Shutdown,
    /// What the workers stop on: the caller's shutdown, or one sender's worker failing (the
    /// others then finish their steps and the process exits with the error, for a supervisor
    /// to restart, rather than running on with a sender nobody works).
    stop: ShutdownSignal,
    workers: Vec<(String, Arc<Worker<S, AnyChannel>>)>,
}

impl<S: AppStores> Workers<S> {
    /// One worker per selected sender, all as `id`, on `stores`, stopped by `shutdown`.
    pub fn build(
        stores: &Arc<S>,
        settings: &Settings,
        env: &BTreeMap<String, String>,
        options: &WorkOptions,
        id: WorkerId,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> Result<Self, AppError> {
        let senders = selected(settings, options)?;
        if senders.is_empty() {
            return Err(AppError::User(
                "no sender is configured: a worker needs at least one [senders.NAME]".into(),
            ));
        }
        let stop = ShutdownSignal::new();
        let mut workers = Vec::with_capacity(senders.len());
        for (name, sender) in &senders {
            let channel = Arc::new(AnyChannel::build(name, sender, env)?);
            let rate = NonZeroU32::new(sender.rate()).unwrap_or(NonZeroU32::MIN);
            let scope = WorkScope {
                sender: name.clone(),
                runs: None,
            };
            let mut worker = Worker::new(
                Arc::clone(stores),
                channel,
                Arc::clone(&clock),
                id.clone(),
                scope,
                rate,
                settings.worker.batch,
            )
            .with_consent_channel(sender.consent_channel())
            .with_lease(settings.worker.lease())
            .with_shutdown(stop.subscribe());
            if let Some(tier) = sender.tier_limit {
                worker = worker.with_tier(tier);
            }
            if let Some(requests) = options
                .concurrency
                .or_else(|| NonZeroUsize::new(settings.worker.batch))
            {
                worker = worker.with_concurrency(requests);
            }
            workers.push((name.clone(), Arc::new(worker)));
        }
        Ok(Self {
            id,
            outage_budget: stores.outage_budget(),
            clock,
            shutdown,
            stop,
            workers,
        })
    }

    /// Who the workers are: the owner of their claims.
    pub fn id(&self) -> &WorkerId {
        &self.id
    }

    /// The senders worked, in order.
    pub fn senders(&self) -> Vec<String> {
        self.workers.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Works every active run of the senders until the shutdown fires; returns once every
    /// sender's in-flight requests are recorded, with what each did.
    pub async fn work(self) -> Result<Vec<SenderReport>, AppError> {
        tracing::info!(worker = %self.id, senders = ?self.senders(), "worker started");
        let stop = self.stop.clone();
        let mut outer = self.shutdown.clone();
        let forward = tokio::spawn(async move {
            outer.recv().await;
            stop.trigger();
        });
        let mut tasks = tokio::task::JoinSet::new();
        for (name, worker) in self.workers {
            let (shutdown, clock) = (self.stop.subscribe(), Arc::clone(&self.clock));
            let outage = Outage::new(self.outage_budget);
            tasks.spawn(async move {
                let result = drive(&worker, &*clock, outage, shutdown).await;
                let progress = worker.progress();
                let report = SenderReport {
                    sender: name,
                    sent: progress.sent.load(Ordering::Relaxed),
                    deferred: progress.deferred.load(Ordering::Relaxed),
                    skipped: progress.skipped.load(Ordering::Relaxed),
                    failed: progress.failed.load(Ordering::Relaxed),
                };
                result.map(|()| report)
            });
        }
        let mut reports = Vec::new();
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(report)) => reports.push(report),
                Ok(Err(error)) => {
                    tracing::error!(error.message = %error, "a sender's worker failed; stopping the others");
                    self.stop.trigger();
                    failure = failure.or(Some(error));
                }
                Err(panic) => {
                    self.stop.trigger();
                    failure = failure.or(Some(AppError::Internal(format!(
                        "a sender's worker task failed: {panic}"
                    ))));
                }
            }
        }
        forward.abort();
        if let Some(error) = failure {
            return Err(error);
        }
        reports.sort_by(|a, b| a.sender.cmp(&b.sender));
        Ok(reports)
    }
}

/// Steps one sender's worker until shutdown. A busy or unreachable store is waited out with a
/// capped back-off for up to the store's outage budget (a long-running worker outlives a
/// Redis restart); a store that lost its state halts it at once (see the `outage` module), as
/// does any other store error.
async fn drive<S: AppStores>(
    worker: &Arc<Worker<S, AnyChannel>>,
    clock: &dyn Clock,
    mut outage: Outage,
    mut shutdown: Shutdown,
) -> Result<(), AppError> {
    loop {
        if shutdown.is_shutdown() {
            return Ok(());
        }
        let wait = match worker.step().await {
            Ok(Step::Worked(_)) => {
                outage.ended();
                continue;
            }
            Ok(Step::Idle(next)) => {
                outage.ended();
                let now = clock.now();
                next.and_then(|at| (at - now).to_std().ok())
                    .map_or(POLL, |until| until.min(POLL))
            }
            Err(WorkerError::Store(StoreError::Unavailable(e))) => {
                outage.wait(&*e, &worker.scope().sender)?
            }
            Err(error) => return Err(halt(error)),
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.recv() => {}
        }
    }
}
