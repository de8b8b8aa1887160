//! The request at its slot, and the change that records its answer under the worker's claim.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_campaign::Campaign;
use herald_campaign::campaign::{Header, MediaKind};
use herald_channel::{Channel, OutgoingMessage, SendError, ThrottleScope};
use herald_core::{Decision, Outcome};
use herald_store::{Change, StoreError, Stores, WaitReason};
use tokio::sync::OwnedSemaphorePermit;

use super::Worker;
use super::effects::Hold;
use super::metrics::{self, LimiterWait};
use super::step::Ready;
use crate::prepare::Prepared;

/// A claimed delivery's end in this step: the change recording it, and a store failure met
/// while acting on the answer (a throttle or block not recorded), which fails the step after
/// the outcomes are written.
pub(super) struct Answered {
    pub(super) change: Change,
    pub(super) failure: Option<StoreError>,
}

impl From<Change> for Answered {
    fn from(change: Change) -> Self {
        Self {
            change,
            failure: None,
        }
    }
}

/// The longest provider back-pressure pause obeyed: the channel's cap on `Retry-After`, applied
/// again here to what any channel reports (the store caps it too).
const MAX_PAUSE: Duration = herald_channel::MAX_RETRY_AFTER;

impl<S: Stores, C: Channel + 'static> Worker<S, C> {
    /// Waits for the claim's slot (`wait` on the store's clock), decides a last time (window,
    /// expiry) and sends. Holds `permit`, one of the requests in flight, until answered.
    pub(super) async fn send_at_slot(
        self: Arc<Self>,
        ready: Ready,
        claimed_at: DateTime<Utc>,
        slot: DateTime<Utc>,
        wait: Duration,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Answered {
        let _permit = permit;
        let key = ready.item.delivery.key.clone();
        let mut shutdown = self.shutdown.clone();
        if !wait.is_zero() {
            metrics::limiter_waited(&self.scope.sender, LimiterWait::Slot, wait);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.recv() => {}
            }
        }
        if shutdown.is_shutdown() {
            // Claimed, no request made: back to the queue, nothing was sent.
            return self.requeue(&key, self.clock.now(), None).into();
        }
        let now = self.clock.now();
        // The provider blocked or throttled the sender (answering another request of this
        // worker) after this claim was granted: the store refuses later claims, and this one,
        // not yet sent, goes back to the queue rather than to a provider that said stop.
        match self.told_since(claimed_at, now) {
            Some(Hold::Blocked) => return self.requeue(&key, now, None).into(),
            Some(Hold::Throttled(until)) => {
                return self.requeue(&key, until, Some(WaitReason::Throttle)).into();
            }
            None => {}
        }
        match ready.item.decide(now, &ready.consent, &ready.history) {
            Decision::Send => {}
            Decision::Expire => {
                return self
                    .finish(&key, Outcome::Expired, None, Some(&self.id))
                    .into();
            }
            // Decided again from the queue at once, where the new reason is stored.
            _ => return self.requeue(&key, now, None).into(),
        }
        let item = &ready.item;
        let message = message(&item.delivery, &item.context.campaign, &item.prepared);
        tracing::debug!(run = %key.run, phone = %item.delivery.recipient.phone, %slot, "sending at its slot");
        // Real time, not the worker's clock: the request's duration is a measurement.
        let started = std::time::Instant::now();
        let result = self.channel.send(&message).await;
        metrics::send_took(&self.scope.sender, started.elapsed());
        metrics::provider_answered(&self.scope.sender, &result);
        self.record(&ready, result).await
    }

    /// Back to the queue under this worker's claim: due at `until`, waiting for `reason`.
    pub(super) fn requeue(
        &self,
        key: &herald_store::DeliveryKey,
        until: DateTime<Utc>,
        reason: Option<WaitReason>,
    ) -> Change {
        metrics::deferred(&self.scope.sender, reason);
        Change::Requeue {
            key: key.clone(),
            until,
            reason,
            owner: self.id.clone(),
        }
    }

    /// What a provider's answer does: the delivery's change, and first what it asks of the
    /// sender (throttle, block), the run (template errors) or consent (an opt-out), recorded at
    /// once so every other worker sees it before its next claim.
    async fn record(
        &self,
        ready: &Ready,
        result: Result<herald_channel::Accepted, SendError>,
    ) -> Answered {
        let delivery = &ready.item.delivery;
        let key = &delivery.key;
        let now = self.clock.now();
        let owner = Some(&self.id);
        let retry_at = |after: Option<Duration>| {
            let after = after.unwrap_or(backoff(delivery.attempts)).min(MAX_PAUSE);
            now + TimeDelta::from_std(after).unwrap_or(TimeDelta::seconds(1))
        };
        match result {
            Ok(accepted) => self
                .finish(key, Outcome::Sent, accepted.provider_id, owner)
                .into(),
            Err(SendError::Throttled { retry_after, scope }) => {
                self.progress.retried.fetch_add(1, Ordering::Relaxed);
                let hold = retry_after.unwrap_or(Duration::from_secs(1)).min(MAX_PAUSE);
                let (until, failure) = match scope {
                    ThrottleScope::Sender => match self.throttle_sender(hold).await {
                        Ok(until) => (until, None),
                        Err(e) => (retry_at(Some(hold)), Some(e)),
                    },
                    ThrottleScope::Recipient => (retry_at(Some(hold)), None),
                };
                tracing::info!(run = %key.run, phone = %delivery.recipient.phone, ?scope, ?retry_after, %until, "throttled by the provider; requeued");
                Answered {
                    change: self.requeue(key, until, Some(WaitReason::Throttle)),
                    failure,
                }
            }
            Err(SendError::Retryable {
                retry_after,
                reason,
            }) => {
                tracing::info!(run = %key.run, phone = %delivery.recipient.phone, %reason, "not accepted; requeued");
                self.progress.retried.fetch_add(1, Ordering::Relaxed);
                self.requeue(key, retry_at(retry_after), Some(WaitReason::Retry))
                    .into()
            }
            Err(SendError::Rejected {
                code,
                detail,
                action,
            }) => self.rejected(delivery, code, detail, action).await,
            Err(SendError::Unknown(detail))
                if ready.item.context.at_least_once && delivery.attempts < 10 =>
            {
                tracing::warn!(run = %key.run, phone = %delivery.recipient.phone, %detail, "outcome unknown; retried (at_least_once)");
                self.progress.retried.fetch_add(1, Ordering::Relaxed);
                self.requeue(key, retry_at(None), Some(WaitReason::Retry))
                    .into()
            }
            Err(SendError::Unknown(detail)) => {
                tracing::warn!(run = %key.run, phone = %delivery.recipient.phone, %detail, "outcome unknown; not retried (at_most_once)");
                self.finish(key, Outcome::Unknown, Some(detail), owner)
                    .into()
            }
        }
    }
}

/// Retry delay after `attempts` requests: 2, 4, 8 … seconds, at most five minutes.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempts.clamp(1, 9)).min(300))
}

fn message(
    delivery: &herald_store::Delivery,
    campaign: &Campaign,
    prepared: &Prepared,
) -> OutgoingMessage {
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
        recipient_key: delivery.key.recipient.to_string(),
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
