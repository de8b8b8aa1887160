//! The claim loop: groups of decided deliveries claimed through the store, each answer acted
//! on by its type. A claimed delivery's request leaves at its slot; a refused one is deferred,
//! left queued or decided again, never sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_channel::Channel;
use herald_core::Decision;
use herald_store::{
    Change, ClaimAnswer, ClaimGroup, Deliveries, Refusal, SenderLimits, StoreError, Stores,
    WaitReason,
};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;

use super::metrics::{self, LimiterWait};
use super::send::Answered;
use super::step::Ready;
use super::{SLOT_HORIZON, Worker, WorkerError};

/// The longest wait for a rate slot before claiming again: the store's answer names the next
/// slot, but other workers may take it; a bounded wait keeps the loop responsive.
const MAX_RATE_WAIT: Duration = Duration::from_secs(1);

/// Why the claim loop stopped before its batch was claimed.
enum Halt {
    /// The sender is throttled until then: the rest waits for it in the queue.
    Throttled(DateTime<Utc>),
    /// The sender is blocked: nothing more is claimed for it (its queue is not read while
    /// blocked, so the rest stays queued until an operator resumes it).
    Blocked(String),
}

impl<S: Stores, C: Channel + 'static> Worker<S, C> {
    /// Claims and sends the step's decided deliveries; returns once every request made is
    /// answered and recorded.
    pub(super) async fn claim_and_send(
        self: &Arc<Self>,
        ready: Vec<Ready>,
    ) -> Result<(), WorkerError> {
        // Renews this worker's held claims while the step runs; stops with the step (even if
        // the step is dropped mid-request: a dead worker's claims must expire).
        let _renewal = self.start_renewal();
        let mut pending: VecDeque<Ready> = ready.into();
        let mut requests: JoinSet<Answered> = JoinSet::new();
        let mut outcomes = Vec::new();
        let mut failure = None;
        let mut shutdown = self.shutdown.clone();
        while !pending.is_empty() && failure.is_none() && !shutdown.is_shutdown() {
            // Permits for the requests of one group: one awaited, more only if free now, so a
            // claim is never made for a request that would then wait for another to finish.
            let first = tokio::select! {
                permit = Arc::clone(&self.in_flight).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = shutdown.recv() => break,
            };
            let mut permits = vec![first];
            while permits.len() < self.claim_group.min(pending.len()) {
                match Arc::clone(&self.in_flight).try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            match self
                .claim_group_of(&mut pending, permits, &mut requests)
                .await
            {
                Ok(Some(Halt::Throttled(until))) => {
                    // Back-pressure: the rest of the step waits for it in the queue, where
                    // `status` shows it, instead of asleep here.
                    let now = self.clock.now();
                    let waits: Vec<Change> = pending
                        .drain(..)
                        .map(|r| self.wait(&r.item.delivery.key, until, WaitReason::Throttle))
                        .collect();
                    if let Err(e) = self.stores.deliveries().apply(&waits, now).await {
                        failure = Some(e);
                    }
                }
                Ok(Some(Halt::Blocked(reason))) => {
                    tracing::error!(sender = %self.scope.sender, %reason, "the sender is blocked; nothing more is claimed for it until `herald resume --sender`");
                    pending.clear();
                }
                Ok(None) => {}
                Err(e) => failure = Some(e),
            }
            // Record what has completed so far, a claim group at a time: a crash then leaves
            // unknown only what was really in flight, not the whole step.
            while let Some(joined) = requests.try_join_next() {
                collect(joined, &mut outcomes, &mut failure);
            }
            if outcomes.len() >= self.claim_group {
                if let Err(WorkerError::Store(e)) = self.record_outcomes(&outcomes).await {
                    failure = Some(e);
                }
                outcomes.clear();
            }
        }
        // Whatever happened above, every request already made is awaited and recorded.
        while let Some(joined) = requests.join_next().await {
            collect(joined, &mut outcomes, &mut failure);
        }
        self.record_outcomes(&outcomes).await?;
        match failure {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    /// One claim group: as many deliveries as `permits`, decided again at the moment of
    /// claiming (time passed waiting for slots), claimed at once, the claimed ones sent.
    async fn claim_group_of(
        self: &Arc<Self>,
        pending: &mut VecDeque<Ready>,
        mut permits: Vec<OwnedSemaphorePermit>,
        requests: &mut JoinSet<Answered>,
    ) -> Result<Option<Halt>, StoreError> {
        let now = self.clock.now();
        let (mut group, mut changes) = (Vec::new(), Vec::new());
        while group.len() < permits.len() {
            let Some(ready) = pending.pop_front() else {
                break;
            };
            match ready.item.decide(now, &ready.consent, &ready.history) {
                Decision::Send => group.push(ready),
                other => changes.extend(self.apply_decision(&ready.item.delivery.key, other)),
            }
        }
        self.stores.deliveries().apply(&changes, now).await?;
        changes.clear();
        if group.is_empty() {
            return Ok(None);
        }
        let per_second = group
            .iter()
            .map(|r| r.item.context.per_second)
            .min()
            .unwrap_or(self.sender_rate);
        let claims = ClaimGroup {
            owner: self.id.clone(),
            lease: self.lease,
            sender: SenderLimits {
                name: self.scope.sender.clone(),
                per_second,
                tier: self.tier,
                horizon: SLOT_HORIZON,
            },
            claims: group
                .iter()
                .map(|r| r.claim(now, self.consent_channel.as_str()))
                .collect(),
        };
        let answers = match self.stores.deliveries().claim(&claims).await {
            Ok(answers) => answers,
            Err(e) => {
                // Nothing was claimed: the group stays queued for the next step.
                return Err(e);
            }
        };
        let (mut halt, mut rate_ahead, mut again) = (None, None, Vec::new());
        for (ready, answer) in group.into_iter().zip(answers) {
            let key = &ready.item.delivery.key;
            match answer {
                ClaimAnswer::Claimed { slot, wait } => {
                    self.held.insert(key.clone());
                    self.forget_template_pause(&key.run);
                    // One permit per claim: the group is no larger than its permits.
                    let permit = permits.pop();
                    let worker = Arc::clone(self);
                    requests.spawn(async move {
                        worker.send_at_slot(ready, now, slot, wait, permit).await
                    });
                }
                ClaimAnswer::Refused(refusal) => match refusal {
                    // Another worker has it, or an operator stopped its run: nothing to do.
                    Refusal::Taken | Refusal::RunPaused | Refusal::RunCancelled => {
                        tracing::debug!(run = %key.run, refusal = refusal.as_str(), "claim refused; left as it is");
                    }
                    // What the decision saw moved: still queued and due, decided again next
                    // step with the new consent event or send counted.
                    Refusal::ConsentChanged | Refusal::CapChanged => {
                        tracing::debug!(run = %key.run, refusal = refusal.as_str(), "claim refused; decided again next step");
                    }
                    Refusal::TierFull { frees } => {
                        let until = frees.max(now + TimeDelta::seconds(1));
                        changes.push(self.wait(key, until, WaitReason::Tier));
                    }
                    Refusal::Throttled { until } => {
                        changes.push(self.wait(key, until, WaitReason::Throttle));
                        halt = Some(Halt::Throttled(until));
                    }
                    Refusal::Blocked { reason } => halt = Some(Halt::Blocked(reason)),
                    Refusal::RateAhead { next } => {
                        rate_ahead = Some(rate_ahead.map_or(next, |n: DateTime<Utc>| n.min(next)));
                        again.push(ready);
                    }
                },
            }
        }
        // Unclaimed for want of a slot: first in line for the next group, in order.
        for ready in again.into_iter().rev() {
            pending.push_front(ready);
        }
        self.stores.deliveries().apply(&changes, now).await?;
        if halt.is_some() {
            return Ok(halt);
        }
        if let Some(next) = rate_ahead {
            drop(permits);
            self.wait_for_slot(next).await?;
        }
        Ok(None)
    }

    /// Sleeps until about `next` less the horizon, on the store's clock (capped, and cut short
    /// by shutdown): the slot is then within reach of a claim.
    async fn wait_for_slot(&self, next: DateTime<Utc>) -> Result<(), StoreError> {
        let store_now = self.stores.now().await?;
        let horizon = TimeDelta::from_std(SLOT_HORIZON).unwrap_or(TimeDelta::zero());
        let wait = (next - horizon - store_now)
            .to_std()
            .unwrap_or_default()
            .clamp(Duration::from_millis(1), MAX_RATE_WAIT);
        metrics::limiter_waited(&self.scope.sender, LimiterWait::Rate, wait);
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.recv() => {}
        }
        Ok(())
    }
}

/// One answered request into the outcomes to record (and the first store failure it met).
fn collect(
    joined: Result<Answered, tokio::task::JoinError>,
    outcomes: &mut Vec<Change>,
    failure: &mut Option<StoreError>,
) {
    match joined {
        Ok(answered) => {
            outcomes.push(answered.change);
            if let Some(e) = answered.failure
                && failure.is_none()
            {
                *failure = Some(e);
            }
        }
        Err(panic) => tracing::error!(error.message = %panic, "request task panicked"),
    }
}
