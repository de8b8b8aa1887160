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
    ConsentChannel, ConsentEvent, ConsentKind, ConsentState, Decision, Delivery as CoreDelivery,
    Facts, Outcome, PastSend, PhoneNumber, Policy, RunId, Scope, decide,
};
use herald_store::{
    Change, ConsentSeen, Consents, Deliveries, Delivery, DeliveryKey, Runs, StoreError,
    StoredConsent, Stores, Terminal, WaitReason,
};

use crate::prepare::{Prepared, prepare};

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
    /// Until when the provider asked the whole sender to hold back (a 429, a throughput code).
    /// Nothing is claimed meanwhile: due deliveries are deferred to it in the queue rather than
    /// held claimed in this process, and a caller can see it ([`Worker::throttled_until`]).
    throttled_until: Mutex<Option<DateTime<Utc>>>,
    batch: usize,
    claim_group: usize,
    stopping: AtomicBool,
    stop_signal: tokio::sync::watch::Sender<bool>,
    /// The messaging tier, when one is configured.
    tier: Option<Mutex<Tier>>,
    /// What the provider's answers ask of the sender or the run, applied after the step's
    /// outcomes are recorded.
    effects: Mutex<Vec<Effect>>,
    /// Template errors per run; a few pause the run (one bad template must not burn the audience).
    template_errors: Mutex<HashMap<RunId, u32>>,
    progress: Progress,
    /// The channel consent is read and recorded on (see [`Worker::with_consent_channel`]).
    consent_channel: ConsentChannel,
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
            // A step reads consent once; at most about a second of sends per step keeps what it
            // acts on at most that old.
            batch: batch.clamp(1, per_second.get() as usize),
            // As many claims as the rate allows in ~20 ms: one at 20/s, 20 at 1,000/s.
            claim_group: (per_second.get() as usize / 50).clamp(1, batch.max(1)),
            stopping: AtomicBool::new(false),
            stop_signal: tokio::sync::watch::Sender::new(false),
            tier: None,
            effects: Mutex::new(Vec::new()),
            template_errors: Mutex::new(HashMap::new()),
            progress: Progress::default(),
            consent_channel: ConsentChannel::whatsapp(),
        }
    }

    /// The channel consent is looked up under (and opt-outs the provider reports are recorded
    /// on). A WhatsApp sender checks `whatsapp`, the default; the outbox and webhook channels
    /// stand in for the messaging channel a recipient actually consented on, which their
    /// sender's `consent_channel` names.
    pub fn with_consent_channel(mut self, channel: ConsentChannel) -> Self {
        self.consent_channel = channel;
        self
    }

    /// Limits the unique recipients messaged in any moving 24 hours (WhatsApp's messaging tier:
    /// 250, 2,000, 10,000, 100,000). Hitting it has no error code, so it is enforced here;
    /// recipients over it are deferred until a slot frees, never failed.
    pub fn with_tier(mut self, unique_per_24h: u64) -> Self {
        self.tier = Some(Mutex::new(Tier {
            limit: unique_per_24h,
            loaded: false,
            latest: HashMap::new(),
        }));
        self
    }

    /// Makes `campaign` known for `run`: only registered runs are worked on.
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
        self.stop_signal.send_replace(true);
    }

    /// Whether [`Worker::stop`] was called (by a caller, or by a sender block): the worker
    /// takes nothing more.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
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
                self.stores.deliveries().requeue(key, now, None).await?;
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

    /// One step: every delivery due now (up to the batch size), decided together, claimed in
    /// small groups just ahead of their rate permits, sent concurrently; returns once every
    /// request of the step has been answered and recorded.
    ///
    /// Reads and writes are batched: one read of consent and one of send history for the whole
    /// step, one transaction for its defers and ends, one per claim group, one for the outcomes.
    /// The claim group is as large as the rate allows in ~20 ms (one request at 20/s), so a crash
    /// leaves at most that many claimed deliveries `unknown` beyond the requests in flight.
    pub async fn step(self: &Arc<Self>) -> Result<Step, WorkerError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Ok(Step::Idle(None));
        }
        let now = self.clock.now();
        self.load_tier(now).await?;
        let runs = self.registered();
        let due = self
            .stores
            .deliveries()
            .due_in(&runs, now, self.batch)
            .await?;
        if due.is_empty() {
            return Ok(Step::Idle(
                self.stores.deliveries().next_due_in(&runs).await?,
            ));
        }
        let count = due.len();
        let mut changes = Vec::new();
        let mut items = Vec::with_capacity(count);
        for delivery in due {
            let Some(context) = self.context(&delivery.key.run) else {
                continue;
            };
            match prepare(
                &context.campaign,
                &recipient_of(&delivery),
                Some(delivery.scheduled_at),
            ) {
                Ok(prepared) => items.push(Item {
                    delivery,
                    context,
                    prepared,
                }),
                Err(not) => changes.push(self.end(
                    &delivery.key,
                    Outcome::Skipped(not.reason),
                    Some(not.detail),
                )),
            }
        }
        let phones: Vec<PhoneNumber> = items
            .iter()
            .map(|i| i.delivery.recipient.phone.clone())
            .collect();
        let longest = items
            .iter()
            .map(|i| longest_cap_span(&i.context.campaign))
            .max()
            .unwrap_or(TimeDelta::zero());
        let events = self
            .stores
            .consents()
            .events_for(self.consent_channel.as_str(), &phones)
            .await?;
        let histories = self
            .stores
            .deliveries()
            .history_for(&phones, now - longest)
            .await?;
        // Each ready item keeps the number of consent events its decision saw: the claim is
        // refused if the log has grown since (a STOP arriving mid-step), see `ConsentSeen`.
        let mut ready: Vec<(Item, ConsentState, Vec<PastSend>, u64)> = Vec::new();
        let mut phones_in_step = std::collections::HashSet::new();
        for ((item, events), history) in items.into_iter().zip(events).zip(histories) {
            let consent = ConsentState::at(now, &events);
            let seen = events.len() as u64;
            match item.decide(now, &consent, &history) {
                // One send per phone per step: a second delivery to the same phone (another run)
                // waits for the next step, where the first one's send counts toward its caps.
                Decision::Send if !phones_in_step.insert(item.delivery.recipient.phone.clone()) => {
                }
                Decision::Send => ready.push((item, consent, history, seen)),
                other => changes.push(self.apply_decision(&item.delivery.key, other)),
            }
        }
        self.stores.deliveries().apply(&changes, now).await?;

        let mut requests = tokio::task::JoinSet::new();
        let mut outcomes = Vec::new();
        let mut failure = None;
        let mut pending = ready.into_iter().peekable();
        while pending.peek().is_some() && failure.is_none() {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            // Decide again at the moment of claiming: time has passed waiting for permits.
            let now = self.clock.now();
            if let Some(until) = self.throttled_until() {
                // Back-pressure: the rest of the step waits for it in the queue, where `status`
                // shows it, instead of asleep here holding claims.
                let waits: Vec<Change> = pending
                    .by_ref()
                    .map(|(item, ..)| self.wait(&item.delivery.key, until, WaitReason::Throttle))
                    .collect();
                if let Err(e) = self.stores.deliveries().apply(&waits, now).await {
                    failure = Some(e);
                }
                break;
            }
            let (mut claims, mut claimed_items, mut ends) = (Vec::new(), Vec::new(), Vec::new());
            for (item, consent, history, seen) in pending.by_ref().take(self.claim_group) {
                let decision = match item.decide(now, &consent, &history) {
                    Decision::Send => match self.tier_admits(&item.delivery.recipient.phone, now) {
                        Ok(()) => Decision::Send,
                        Err(frees) => {
                            ends.push(self.wait(&item.delivery.key, frees, WaitReason::Tier));
                            continue;
                        }
                    },
                    other => other,
                };
                match decision {
                    Decision::Send => {
                        let campaign = &item.context.campaign;
                        let send = PastSend {
                            at: now,
                            campaign: campaign.id.clone(),
                            purpose: campaign.purpose,
                        };
                        claims.push(Change::BeginSend {
                            key: item.delivery.key.clone(),
                            send,
                            consent: Some(ConsentSeen {
                                channel: self.consent_channel.to_string(),
                                events: seen,
                            }),
                        });
                        claimed_items.push((item, consent, history));
                    }
                    other => ends.push(self.apply_decision(&item.delivery.key, other)),
                }
            }
            let won = match self.stores.deliveries().apply(&ends, now).await {
                Ok(_) => self.stores.deliveries().apply(&claims, now).await,
                Err(e) => Err(e),
            };
            let won = match won {
                Ok(won) => won,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            for ((item, consent, history), won) in claimed_items.into_iter().zip(won) {
                if !won {
                    continue;
                }
                match self.wait_for_sender().await {
                    Permit::Granted => {}
                    Permit::Stopping => {
                        // Claimed but no request made, so back to the queue, due at once.
                        outcomes.push(Change::Requeue {
                            key: item.delivery.key.clone(),
                            until: self.clock.now(),
                            reason: None,
                        });
                        continue;
                    }
                    Permit::Throttled(until) => {
                        // A request of this step was throttled after this one was claimed.
                        outcomes.push(Change::Requeue {
                            key: item.delivery.key.clone(),
                            until,
                            reason: Some(WaitReason::Throttle),
                        });
                        continue;
                    }
                }
                let worker = Arc::clone(self);
                requests.spawn(async move { worker.send_claimed(item, consent, history).await });
            }
            // Record what has completed so far, a claim group at a time: a crash then leaves
            // unknown only what was really in flight, not the whole step.
            while let Some(joined) = requests.try_join_next() {
                match joined {
                    Ok(change) => outcomes.push(change),
                    Err(panic) => tracing::error!(error.message = %panic, "request task panicked"),
                }
            }
            if outcomes.len() >= self.claim_group {
                if let Err(WorkerError::Store(e)) = self.record_outcomes(&outcomes).await {
                    failure = Some(e);
                    break;
                }
                outcomes.clear();
            }
        }
        // Whatever happened above, every request already made is awaited and recorded.
        while let Some(joined) = requests.join_next().await {
            match joined {
                Ok(change) => outcomes.push(change),
                Err(panic) => tracing::error!(error.message = %panic, "request task panicked"),
            }
        }
        self.record_outcomes(&outcomes).await?;
        self.apply_effects().await?;
        if let Some(error) = failure {
            return Err(error.into());
        }
        Ok(Step::Worked(count))
    }

    /// The campaign of a registered run. Only registered runs are stepped (`due_in`), so a run
    /// another process or campaign file created is never sent through this worker's sender.
    fn context(&self, run: &RunId) -> Option<Arc<RunContext>> {
        self.lock_runs().get(run).cloned().flatten()
    }

    fn registered(&self) -> Vec<RunId> {
        self.lock_runs().keys().cloned().collect()
    }

    /// The change a non-send decision makes, counted in the progress.
    fn apply_decision(&self, key: &DeliveryKey, decision: Decision) -> Change {
        match decision {
            Decision::Defer { until, reason } => self.wait(key, until, reason.into()),
            Decision::Skip(reason) => self.end(key, Outcome::Skipped(reason), None),
            Decision::Expire => self.end(key, Outcome::Expired, None),
            Decision::Send => unreachable!("sends are claimed, not applied"),
        }
    }

    /// A queued delivery waits until `until` for `reason`, counted in the progress.
    fn wait(&self, key: &DeliveryKey, until: DateTime<Utc>, reason: WaitReason) -> Change {
        self.progress.deferred.fetch_add(1, Ordering::Relaxed);
        Change::Defer {
            key: key.clone(),
            until,
            reason,
        }
    }

    /// Until when the provider has asked the sender to hold back, if that is still ahead.
    pub fn throttled_until(&self) -> Option<DateTime<Utc>> {
        let until = *self
            .throttled_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        until.filter(|until| *until > self.clock.now())
    }

    fn end(&self, key: &DeliveryKey, outcome: Outcome, detail: Option<String>) -> Change {
        let counter = match outcome {
            Outcome::Sent => &self.progress.sent,
            Outcome::Failed { .. } | Outcome::Unknown => &self.progress.failed,
            Outcome::Expired | Outcome::Skipped(_) => &self.progress.skipped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Change::Finish {
            key: key.clone(),
            terminal: Terminal { outcome, detail },
        }
    }

    /// After the permit: a last check of window and expiry (the permit may have taken a moment),
    /// then the request. Returns the change that records what happened.
    async fn send_claimed(
        &self,
        item: Item,
        consent: ConsentState,
        history: Vec<PastSend>,
    ) -> Change {
        let key = item.delivery.key.clone();
        if self.stopping.load(Ordering::SeqCst) {
            // Claimed, no request made: back to the queue, nothing was sent.
            return Change::Requeue {
                key,
                until: self.clock.now(),
                reason: None,
            };
        }
        match item.decide(self.clock.now(), &consent, &history) {
            Decision::Send => {}
            Decision::Expire => return self.end(&key, Outcome::Expired, None),
            // Decided again from the queue at once, where the new reason is stored.
            _ => {
                return Change::Requeue {
                    key,
                    until: self.clock.now(),
                    reason: None,
                };
            }
        }
        let message = message(&item.delivery, &item.context.campaign, &item.prepared);
        let result = self.channel.send(&message).await;
        self.record(&item.delivery, &item.context, result)
    }

    /// Reads the tier's window from the store once, so a restart keeps counting the day's sends.
    async fn load_tier(&self, now: DateTime<Utc>) -> Result<(), WorkerError> {
        let Some(tier) = &self.tier else {
            return Ok(());
        };
        if tier
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .loaded
        {
            return Ok(());
        }
        let recent = self
            .stores
            .deliveries()
            .recent_recipients(now - TIER_WINDOW)
            .await?;
        let mut tier = tier
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tier.latest.extend(
            recent
                .into_iter()
                .map(|(phone, at)| (phone.expose_e164().to_owned(), at)),
        );
        tier.loaded = true;
        Ok(())
    }

    /// `Ok` if messaging `phone` now stays within the tier (and counts it), else when the
    /// oldest recipient of the window drops out of it.
    fn tier_admits(&self, phone: &PhoneNumber, now: DateTime<Utc>) -> Result<(), DateTime<Utc>> {
        let Some(tier) = &self.tier else {
            return Ok(());
        };
        let mut tier = tier
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tier.latest.retain(|_, at| *at + TIER_WINDOW > now);
        let key = phone.expose_e164();
        if !tier.latest.contains_key(key) && tier.latest.len() as u64 >= tier.limit {
            let frees = tier
                .latest
                .values()
                .min()
                .map_or(now, |oldest| *oldest + TIER_WINDOW);
            return Err(frees.max(now + TimeDelta::seconds(1)));
        }
        tier.latest.insert(key.to_owned(), now);
        Ok(())
    }

    /// A rejection, read for what it asks beyond ending the delivery. The WhatsApp adapter marks
    /// the codes that must change the sender's or the run's course with a prefix on the code.
    fn rejected(&self, delivery: &Delivery, code: String, detail: String) -> Change {
        use herald_channel::whatsapp::{
            OPT_OUT_PREFIX, PAUSE_CAMPAIGN_PREFIX, PAUSE_SENDER_PREFIX,
        };
        let key = &delivery.key;
        let mut effects = self
            .effects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(provider_code) = code.strip_prefix(OPT_OUT_PREFIX) {
            // The recipient stopped promotions: never again for marketing, whatever campaign.
            effects.push(Effect::OptOut {
                phone: delivery.recipient.phone.clone(),
                code: provider_code.to_owned(),
            });
            return self.end(
                key,
                Outcome::Failed {
                    code: provider_code.to_owned(),
                },
                Some(detail),
            );
        }
        if let Some(provider_code) = code.strip_prefix(PAUSE_SENDER_PREFIX) {
            // Not accepted; the delivery waits for the sender to be resumed, not failed. The
            // pause is the run's (its whole queue waits for an operator, `WaitReason::Pause`);
            // the delivery itself is due again at once when the run resumes.
            effects.push(Effect::PauseSender {
                code: provider_code.to_owned(),
                reason: detail,
            });
            return Change::Requeue {
                key: key.clone(),
                until: self.clock.now(),
                reason: None,
            };
        }
        if let Some(provider_code) = code.strip_prefix(PAUSE_CAMPAIGN_PREFIX) {
            // Tried again at once, until repeated errors pause the run.
            effects.push(Effect::TemplateError {
                run: key.run.clone(),
                code: provider_code.to_owned(),
                reason: detail,
            });
            return Change::Requeue {
                key: key.clone(),
                until: self.clock.now(),
                reason: None,
            };
        }
        drop(effects);
        self.end(key, Outcome::Failed { code }, Some(detail))
    }

    /// Applies what the step's answers asked: opt-outs become consent events; a sender-level
    /// block pauses every run of this worker; repeated template errors pause their run. A paused
    /// run keeps its deliveries queued until `herald run` is started again after the fix.
    async fn apply_effects(&self) -> Result<(), WorkerError> {
        let effects = std::mem::take(
            &mut *self
                .effects
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let now = self.clock.now();
        for effect in effects {
            match effect {
                Effect::OptOut { phone, code } => {
                    tracing::warn!(phone = %phone, code = %code, "provider reports the recipient opted out of marketing; recorded");
                    let event = ConsentEvent {
                        kind: ConsentKind::OptOut,
                        scope: Scope::Marketing,
                        occurred_at: now,
                        source: format!("webhook:{code}"),
                        proof: None,
                    };
                    let stored = StoredConsent {
                        channel: self.consent_channel.to_string(),
                        phone,
                        event,
                    };
                    self.stores.consents().append(&[stored], now).await?;
                }
                Effect::PauseSender { code, reason } => {
                    tracing::error!(code = %code, reason = %reason, "the provider blocked the sender; pausing its runs (run again to resume after fixing)");
                    let why = format!("the provider blocked the sender (code {code}): {reason}");
                    for run in self.registered() {
                        self.stores.runs().pause(&run, &why).await?;
                    }
                    self.stop();
                }
                Effect::TemplateError { run, code, reason } => {
                    let errors = {
                        let mut counts = self
                            .template_errors
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let n = counts.entry(run.clone()).or_default();
                        *n += 1;
                        *n
                    };
                    if errors >= TEMPLATE_ERRORS_BEFORE_PAUSE {
                        tracing::error!(run = %run, code = %code, reason = %reason, "template rejected repeatedly; pausing the run");
                        let why =
                            format!("template rejected {errors} times (code {code}): {reason}");
                        self.stores.runs().pause(&run, &why).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits for a rate permit, unless the sender is throttled or asked to stop (no permit is
    /// then used). A throttle is never slept through here: the claimed delivery goes back to
    /// the queue until it ends, so a long `Retry-After` neither holds claims nor keeps a caller
    /// that wants to stop at idle (`run --until-idle`) asleep.
    async fn wait_for_sender(&self) -> Permit {
        let mut stop = self.stop_signal.subscribe();
        if *stop.borrow() {
            return Permit::Stopping;
        }
        if let Some(until) = self.throttled_until() {
            return Permit::Throttled(until);
        }
        tokio::select! {
            () = self.limiter.until_ready() => Permit::Granted,
            _ = stop.wait_for(|stopping| *stopping) => Permit::Stopping,
        }
    }

    /// Writes a step's outcomes, retrying while the store is busy: these record requests already
    /// made, and losing them would turn sent messages into `unknown` ones.
    async fn record_outcomes(&self, outcomes: &[Change]) -> Result<(), WorkerError> {
        let mut delay = Duration::from_millis(100);
        for attempt in 0.. {
            match self
                .stores
                .deliveries()
                .apply(outcomes, self.clock.now())
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::Unavailable(e)) if attempt < 8 => {
                    tracing::warn!(error.message = %e, attempt, "store busy while recording outcomes; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn record(
        &self,
        delivery: &Delivery,
        context: &RunContext,
        result: Result<herald_channel::Accepted, SendError>,
    ) -> Change {
        let now = self.clock.now();
        let key = &delivery.key;
        let retry_at = |after: Option<Duration>| {
            let after = after.unwrap_or(backoff(delivery.attempts)).min(MAX_PAUSE);
            now + TimeDelta::from_std(after).unwrap_or(TimeDelta::seconds(1))
        };
        match result {
            Ok(accepted) => self.end(key, Outcome::Sent, accepted.provider_id),
            Err(SendError::Throttled { retry_after, scope }) => {
                // A provider's Retry-After is obeyed up to MAX_PAUSE (15 minutes); beyond that it
                // is a bug or an attack, not back-pressure.
                let until = retry_at(Some(retry_after.unwrap_or(Duration::from_secs(1))));
                if scope == herald_channel::ThrottleScope::Sender {
                    let mut throttled = self
                        .throttled_until
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    *throttled = Some(throttled.map_or(until, |current| current.max(until)));
                }
                tracing::info!(run = %key.run, phone = %delivery.recipient.phone, ?retry_after, %until, "throttled by the provider; requeued");
                self.progress.retried.fetch_add(1, Ordering::Relaxed);
                Change::Requeue {
                    key: key.clone(),
                    until,
                    reason: Some(WaitReason::Throttle),
                }
            }
            Err(SendError::Retryable {
                retry_after,
                reason,
            }) => {
                tracing::info!(run = %key.run, phone = %delivery.recipient.phone, %reason, "not accepted; requeued");
                self.progress.retried.fetch_add(1, Ordering::Relaxed);
                Change::Requeue {
                    key: key.clone(),
                    until: retry_at(retry_after),
                    reason: Some(WaitReason::Retry),
                }
            }
            Err(SendError::Rejected { code, detail }) => self.rejected(delivery, code, detail),
            Err(SendError::Unknown(detail)) if context.at_least_once && delivery.attempts < 10 => {
                tracing::warn!(run = %key.run, phone = %delivery.recipient.phone, %detail, "outcome unknown; retried (at_least_once)");
                self.progress.retried.fetch_add(1, Ordering::Relaxed);
                Change::Requeue {
                    key: key.clone(),
                    until: retry_at(None),
                    reason: Some(WaitReason::Retry),
                }
            }
            Err(SendError::Unknown(detail)) => {
                tracing::warn!(run = %key.run, phone = %delivery.recipient.phone, %detail, "outcome unknown; not retried (at_most_once)");
                self.end(key, Outcome::Unknown, Some(detail))
            }
        }
    }
}

/// Template errors tolerated per run before it is paused: one can be a race with a template
/// edit, three in a row are a broken campaign.
const TEMPLATE_ERRORS_BEFORE_PAUSE: u32 = 3;

/// The moving window of a messaging tier.
const TIER_WINDOW: TimeDelta = TimeDelta::hours(24);

/// Unique recipients messaged in the moving window, each with their latest send.
struct Tier {
    limit: u64,
    loaded: bool,
    latest: HashMap<String, DateTime<Utc>>,
}

/// What [`Worker::wait_for_sender`] allows.
enum Permit {
    /// Send now.
    Granted,
    /// The sender is throttled until then.
    Throttled(DateTime<Utc>),
    /// The worker is stopping.
    Stopping,
}

/// What a provider's answer asks beyond the delivery's own outcome.
enum Effect {
    /// Record an opt-out of marketing for this phone.
    OptOut { phone: PhoneNumber, code: String },
    /// Stop the sender (spam limits, policy block, payment, token).
    PauseSender { code: String, reason: String },
    /// Count a template problem of this run.
    TemplateError {
        run: RunId,
        code: String,
        reason: String,
    },
}

/// A due delivery with its campaign and rendered template.
struct Item {
    delivery: Delivery,
    context: Arc<RunContext>,
    prepared: Prepared,
}

impl Item {
    fn decide(&self, now: DateTime<Utc>, consent: &ConsentState, history: &[PastSend]) -> Decision {
        let campaign = &self.context.campaign;
        let policy = Policy {
            campaign: &campaign.id,
            purpose: campaign.purpose,
            window: &campaign.window,
            caps: &campaign.caps,
            spread: campaign.spread,
        };
        let delivery = CoreDelivery {
            run: &self.delivery.key.run,
            recipient: self.delivery.recipient.id.id(),
            scheduled_at: self.delivery.scheduled_at,
            expires_at: self.delivery.expires_at,
        };
        decide(
            now,
            &policy,
            &delivery,
            &Facts {
                place: &self.prepared.place,
                consent,
                history,
            },
        )
    }
}

fn recipient_of(delivery: &Delivery) -> Recipient {
    Recipient {
        line: delivery.recipient.line,
        id: delivery.recipient.id.clone(),
        phone: delivery.recipient.phone.clone(),
        zone: delivery.recipient.zone,
        locale: delivery.recipient.locale.clone(),
        country: delivery.recipient.country,
        tags: Vec::new(),
        attributes: delivery.recipient.attributes.clone(),
    }
}

/// The longest provider back-pressure pause obeyed: the channel's cap on `Retry-After`, applied
/// again here to what any channel reports.
const MAX_PAUSE: Duration = herald_channel::MAX_RETRY_AFTER;

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
        recipient: delivery.recipient.id.as_str().to_owned(),
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
