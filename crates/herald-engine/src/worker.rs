//! The worker step: take what is due, decide each delivery at the moment of sending, and send,
//! defer (to an exact instant, not a poll) or end it.
//!
//! At most once (design §1.3): the ledger claim ([`Deliveries::begin_send`]) happens after the
//! rate permit and the last decision, right before the request. A crash after the claim leaves
//! the delivery `sending`; [`Worker::recover`] ends those `unknown` (or requeues them under
//! `at_least_once`), so a restart never repeats a request that may have reached the provider.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use herald_campaign::Campaign;
use herald_campaign::audience::Recipient;
use herald_campaign::campaign::{Header, MediaKind};
use herald_channel::{Channel, OutgoingMessage, SendError};
use herald_core::cap::CapPeriod;
use herald_core::clock::Clock;
use herald_core::{
    ConsentState, Decision, Delivery as CoreDelivery, Facts, Outcome, PastSend, Policy, RunId,
    decide,
};
use herald_store::{
    Consents, Deliveries, Delivery, DeliveryKey, RunState, Runs, StoreError, Stores, Terminal,
};

use crate::prepare::{Prepared, prepare};

/// The consent channel unless configured otherwise.
pub const DEFAULT_CONSENT_CHANNEL: &str = "whatsapp";

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Deliveries were looked at.
    Worked(usize),
    /// Nothing is due now; the next delivery is due then (if any is queued).
    Idle(Option<DateTime<Utc>>),
}

/// Deliveries handled by this process, by what happened to them.
#[derive(Debug, Default)]
pub struct Progress {
    /// Sent.
    pub sent: AtomicU64,
    /// Deferred to a later instant.
    pub deferred: AtomicU64,
    /// Skipped or expired.
    pub skipped: AtomicU64,
    /// Failed or unknown.
    pub failed: AtomicU64,
    /// Requeued after back-pressure or a retryable error.
    pub retried: AtomicU64,
}

struct RunContext {
    campaign: Campaign,
    at_least_once: bool,
}

/// Processes due deliveries of every active run against one channel.
pub struct Worker<S: Stores, C: Channel> {
    stores: Arc<S>,
    channel: Arc<C>,
    clock: Arc<dyn Clock>,
    runs: Mutex<HashMap<RunId, Option<Arc<RunContext>>>>,
    limiter: DefaultDirectRateLimiter,
    throttled_until: Mutex<Option<tokio::time::Instant>>,
    batch: usize,
    stopping: AtomicBool,
    progress: Progress,
    consent_channel: String,
}

/// Why a step failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<S: Stores, C: Channel + 'static> Worker<S, C> {
    /// A worker sending at most `per_second` requests per second (GCRA, burst of one: every
    /// request counts, retries included), looking at up to `batch` deliveries per step.
    pub fn new(
        stores: Arc<S>,
        channel: Arc<C>,
        clock: Arc<dyn Clock>,
        per_second: NonZeroU32,
        batch: usize,
    ) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(NonZeroU32::MIN);
        Self {
            stores,
            channel,
            clock,
            runs: Mutex::new(HashMap::new()),
            limiter: RateLimiter::direct(quota),
            throttled_until: Mutex::new(None),
            batch: batch.max(1),
            stopping: AtomicBool::new(false),
            progress: Progress::default(),
            consent_channel: DEFAULT_CONSENT_CHANNEL.to_owned(),
        }
    }

    /// The channel consent is looked up under. The outbox and webhook channels stand in for the
    /// messaging channel a recipient actually consented on, so by default that is `whatsapp`.
    pub fn with_consent_channel(mut self, channel: &str) -> Self {
        self.consent_channel = channel.to_owned();
        self
    }

    /// Makes `campaign` known for `run` (otherwise it is loaded from the run's source file).
    pub fn register(&self, run: &RunId, campaign: Campaign) {
        let at_least_once =
            campaign.delivery == herald_campaign::campaign::DeliveryMode::AtLeastOnce;
        let context = Arc::new(RunContext {
            campaign,
            at_least_once,
        });
        self.lock_runs().insert(run.clone(), Some(context));
    }

    /// Counters of this process.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Asks in-progress work to stop claiming new deliveries; requests already made finish and
    /// are recorded.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn lock_runs(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Option<Arc<RunContext>>>> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After a crash: deliveries left `sending` end `unknown`, or are requeued under
    /// `at_least_once`. Returns how many were found.
    pub async fn recover(&self) -> Result<usize, WorkerError> {
        let now = self.clock.now();
        let in_flight = self.stores.deliveries().in_flight().await?;
        for key in &in_flight {
            let at_least_once = self
                .stores
                .runs()
                .run(&key.run)
                .await?
                .is_some_and(|r| r.run.at_least_once);
            if at_least_once {
                self.stores.deliveries().requeue(key, now).await?;
            } else {
                let detail =
                    Some("interrupted while its request may have been in flight".to_owned());
                self.stores
                    .deliveries()
                    .finish(
                        key,
                        &Terminal {
                            outcome: Outcome::Unknown,
                            detail,
                        },
                        now,
                    )
                    .await?;
            }
        }
        Ok(in_flight.len())
    }

    /// One step: every delivery due now, concurrently; returns once all are handled.
    pub async fn step(self: &Arc<Self>) -> Result<Step, WorkerError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Ok(Step::Idle(None));
        }
        let now = self.clock.now();
        let due = self.stores.deliveries().due(now, self.batch).await?;
        if due.is_empty() {
            return Ok(Step::Idle(self.stores.deliveries().next_due().await?));
        }
        let count = due.len();
        let mut tasks = tokio::task::JoinSet::new();
        for delivery in due {
            let worker = Arc::clone(self);
            tasks.spawn(async move { worker.process(delivery).await });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(result) => result?,
                Err(panic) => tracing::error!(error.message = %panic, "delivery task panicked"),
            }
        }
        Ok(Step::Worked(count))
    }

    async fn context(&self, run: &RunId) -> Result<Option<Arc<RunContext>>, WorkerError> {
        if let Some(known) = self.lock_runs().get(run) {
            return Ok(known.clone());
        }
        let record = self.stores.runs().run(run).await?;
        let loaded = match record
            .as_ref()
            .map(|r| herald_campaign::load(std::path::Path::new(&r.run.source)))
        {
            Some(Ok(campaign)) => {
                let at_least_once =
                    campaign.delivery == herald_campaign::campaign::DeliveryMode::AtLeastOnce;
                Some(Arc::new(RunContext {
                    campaign,
                    at_least_once,
                }))
            }
            Some(Err(diagnostics)) => {
                tracing::warn!(run = %run, error.message = %diagnostics, "campaign of a queued run cannot be loaded; pausing the run");
                self.stores
                    .runs()
                    .set_run_state(run, RunState::Paused)
                    .await?;
                None
            }
            None => None,
        };
        self.lock_runs().insert(run.clone(), loaded.clone());
        Ok(loaded)
    }

    async fn finish(
        &self,
        key: &DeliveryKey,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<(), WorkerError> {
        let counter = match outcome {
            Outcome::Sent => &self.progress.sent,
            Outcome::Failed { .. } | Outcome::Unknown => &self.progress.failed,
            Outcome::Expired | Outcome::Skipped(_) => &self.progress.skipped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.stores
            .deliveries()
            .finish(key, &Terminal { outcome, detail }, self.clock.now())
            .await?;
        Ok(())
    }

    async fn process(&self, delivery: Delivery) -> Result<(), WorkerError> {
        let Some(context) = self.context(&delivery.key.run).await? else {
            return Ok(());
        };
        let campaign = &context.campaign;
        let recipient = Recipient {
            line: delivery.recipient.line,
            id: delivery.recipient.id.clone(),
            phone: delivery.recipient.phone.clone(),
            zone: delivery.recipient.zone,
            locale: delivery.recipient.locale.clone(),
            country: delivery.recipient.country,
            tags: Vec::new(),
            attributes: delivery.recipient.attributes.clone(),
        };
        let prepared = match prepare(campaign, &recipient, Some(delivery.scheduled_at)) {
            Ok(prepared) => prepared,
            Err(not) => {
                return self
                    .finish(
                        &delivery.key,
                        Outcome::Skipped(not.reason),
                        Some(not.detail),
                    )
                    .await;
            }
        };
        // First decision, with consent and caps as they are now.
        if !self
            .decide_and_apply(&delivery, campaign, &prepared)
            .await?
        {
            return Ok(());
        }
        // Wait for the sender: provider back-pressure first, then our own rate.
        self.wait_for_sender().await;
        if self.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        // The wait may have crossed the end of the window or the expiry: decide again.
        if !self
            .decide_and_apply(&delivery, campaign, &prepared)
            .await?
        {
            return Ok(());
        }
        let now = self.clock.now();
        let send = PastSend {
            at: now,
            campaign: campaign.id.clone(),
            purpose: campaign.purpose,
        };
        if !self
            .stores
            .deliveries()
            .begin_send(&delivery.key, &send, now)
            .await?
        {
            return Ok(());
        }
        let message = message(&delivery, campaign, &prepared);
        let result = self.channel.send(&message).await;
        self.record(&delivery, &context, result).await
    }

    /// Decides at `now`; applies a defer or an end. Returns whether to go on towards sending.
    async fn decide_and_apply(
        &self,
        delivery: &Delivery,
        campaign: &Campaign,
        prepared: &Prepared,
    ) -> Result<bool, WorkerError> {
        let now = self.clock.now();
        let phone = &delivery.recipient.phone;
        let events = self
            .stores
            .consents()
            .events(&self.consent_channel, phone)
            .await?;
        let consent = ConsentState::from_events(&events);
        let since = now - longest_cap_span(campaign);
        let history = self.stores.deliveries().history(phone, since).await?;
        let policy = Policy {
            campaign: &campaign.id,
            purpose: campaign.purpose,
            window: &campaign.window,
            caps: &campaign.caps,
            spread: campaign.spread,
        };
        let core_delivery = CoreDelivery {
            run: &delivery.key.run,
            recipient: &delivery.key.recipient,
            scheduled_at: delivery.scheduled_at,
            expires_at: delivery.expires_at,
        };
        let facts = Facts {
            place: &prepared.place,
            consent: &consent,
            history: &history,
        };
        match decide(now, &policy, &core_delivery, &facts) {
            Decision::Send => Ok(true),
            Decision::Defer { until } => {
                self.progress.deferred.fetch_add(1, Ordering::Relaxed);
                self.stores.deliveries().defer(&delivery.key, until).await?;
                Ok(false)
            }
            Decision::Skip(reason) => self
                .finish(&delivery.key, Outcome::Skipped(reason), None)
                .await
                .map(|()| false),
            Decision::Expire => self
                .finish(&delivery.key, Outcome::Expired, None)
                .await
                .map(|()| false),
        }
    }

    async fn wait_for_sender(&self) {
        loop {
            let until = *self
                .throttled_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match until {
                Some(until) if until > tokio::time::Instant::now() => {
                    tokio::time::sleep_until(until).await
                }
                _ => break,
            }
        }
        self.limiter.until_ready().await;
    }

    async fn record(
        &self,
        delivery: &Delivery,
        context: &RunContext,
        result: Result<herald_channel::Accepted, SendError>,
    ) -> Result<(), WorkerError> {
        let now = self.clock.now();
        let key = &delivery.key;
        let retry_at = |after: Option<Duration>| {
            now + TimeDelta::from_std(after.unwrap_or(backoff(delivery.attempts)))
                .unwrap_or(TimeDelta::seconds(1))
        };
        match result {
            Ok(accepted) => self.finish(key, Outcome::Sent, accepted.provider_id).await,
            Err(SendError::Throttled { retry_after, scope }) => {
                if scope == herald_channel::ThrottleScope::Sender {
                    let pause = retry_after.unwrap_or(Duration::from_secs(1));
                    *self
                        .throttled_until
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some(tokio::time::Instant::now() + pause);
                }
                tracing::info!(run = %key.run, phone = %delivery.recipient.phone, ?retry_after, "throttled by the provider; requeued");
                self.progress.retried.fetch_add(1, Ordering::Relaxed);
                self.stores
                    .deliveries()
                    .requeue(key, retry_at(retry_after.or(Some(Duration::from_secs(1)))))
                    .await?;
                Ok(())
            }
            Err(SendError::Retryable {
                retry_after,
                reason,
            }) => {
                tracing::info!(run = %key.run, phone = %delivery.recipient.phone, %reason, "not accepted; requeued");
                self.progress.retried.fetch_add(1, Ordering::Relaxed);
                self.stores
                    .deliveries()
                    .requeue(key, retry_at(retry_after))
                    .await?;
                Ok(())
            }
            Err(SendError::Rejected { code, detail }) => {
                self.finish(key, Outcome::Failed { code }, Some(detail))
                    .await
            }
            Err(SendError::Unknown(detail)) if context.at_least_once && delivery.attempts < 10 => {
                tracing::warn!(run = %key.run, phone = %delivery.recipient.phone, %detail, "outcome unknown; retried (at_least_once)");
                self.progress.retried.fetch_add(1, Ordering::Relaxed);
                self.stores
                    .deliveries()
                    .requeue(key, retry_at(None))
                    .await?;
                Ok(())
            }
            Err(SendError::Unknown(detail)) => {
                tracing::warn!(run = %key.run, phone = %delivery.recipient.phone, %detail, "outcome unknown; not retried (at_most_once)");
                self.finish(key, Outcome::Unknown, Some(detail)).await
            }
        }
    }
}

/// Retry delay after `attempts` requests: 2, 4, 8 … seconds, at most five minutes.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempts.clamp(1, 9)).min(300))
}

fn longest_cap_span(campaign: &Campaign) -> TimeDelta {
    campaign
        .caps
        .iter()
        .map(|cap| match cap.period {
            CapPeriod::Rolling(span) => span,
            // A calendar period of n days starts at most n days plus a day's offsets back.
            CapPeriod::CalendarDays(days) => TimeDelta::days(i64::from(days) + 1),
        })
        .max()
        .unwrap_or(TimeDelta::zero())
}

fn message(delivery: &Delivery, campaign: &Campaign, prepared: &Prepared) -> OutgoingMessage {
    let header_media = match &campaign.template.header {
        Some(Header::Media { kind, link }) => {
            let kind = match kind {
                MediaKind::Image => "image",
                MediaKind::Video => "video",
                MediaKind::Document => "document",
            };
            Some((kind.to_owned(), link.clone()))
        }
        _ => None,
    };
    OutgoingMessage {
        idempotency_key: format!("{}/{}", delivery.key.run, delivery.key.recipient),
        run: delivery.key.run.to_string(),
        recipient: delivery.key.recipient.to_string(),
        to: delivery.recipient.phone.expose_e164().to_owned(),
        template: campaign.template.name.clone(),
        language: prepared.language.clone(),
        header_media,
        header_text: prepared.header_text.clone(),
        params: prepared.params.clone(),
        buttons: campaign
            .template
            .buttons
            .iter()
            .map(|b| b.payload.clone())
            .collect(),
    }
}
