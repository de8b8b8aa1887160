//! One step: recover expired claims when it is time, read the due batch of the worker's scope,
//! decide it from one read of consent and one of send history, and hand what may be sent to the
//! claim loop.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, TimeDelta, Utc};
use herald_campaign::Campaign;
use herald_campaign::audience::Recipient;
use herald_channel::Channel;
use herald_core::cap::CapPeriod;
use herald_core::{
    ConsentState, Decision, Delivery as CoreDelivery, Facts, Outcome, PastSend, PhoneNumber,
    Policy, decide,
};
use herald_store::{
    Change, Claim, ConsentSeen, Consents, Deliveries, Delivery, DeliveryKey, HistorySeen, Stores,
    Terminal, WaitReason,
};

use super::metrics;
use super::runs::RunContext;
use super::{Step, Worker, WorkerError};
use crate::prepare::{Prepared, prepare};

/// A due delivery with its campaign and rendered template.
pub(super) struct Item {
    pub(super) delivery: Delivery,
    pub(super) context: Arc<RunContext>,
    pub(super) prepared: Prepared,
}

/// An item whose decision was to send, with what that decision saw: the claim carries it so
/// the store refuses the claim if any of it moved.
pub(super) struct Ready {
    pub(super) item: Item,
    pub(super) consent: ConsentState,
    pub(super) history: Vec<PastSend>,
    /// Consent events the decision saw.
    pub(super) consent_seen: u64,
    /// The history horizon of the step.
    pub(super) since: DateTime<Utc>,
}

impl Item {
    /// The policy core's decision for this delivery at `now`.
    pub(super) fn decide(
        &self,
        now: DateTime<Utc>,
        consent: &ConsentState,
        history: &[PastSend],
    ) -> Decision {
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

impl Ready {
    /// The claim of this delivery as decided at `now`, consent read on `channel`.
    pub(super) fn claim(&self, now: DateTime<Utc>, channel: &str) -> Claim {
        let campaign = &self.item.context.campaign;
        Claim {
            key: self.item.delivery.key.clone(),
            send: PastSend {
                at: now,
                campaign: campaign.id.clone(),
                purpose: campaign.purpose,
            },
            consent: ConsentSeen {
                channel: channel.to_owned(),
                events: self.consent_seen,
            },
            history: HistorySeen {
                since: self.since,
                sends: self.history.len() as u64,
            },
        }
    }
}

impl<S: Stores, C: Channel + 'static> Worker<S, C> {
    /// One step: every delivery of the scope due now (up to the batch size), decided together,
    /// claimed in small groups for send slots just ahead, sent concurrently (at most the
    /// concurrency); returns once every request of the step has been answered and recorded.
    ///
    /// Reads and writes are batched: one read of consent and one of send history for the whole
    /// step, one transaction for its defers and ends, one claim per group, one write per group
    /// of outcomes. The claim group is as large as the rate allows in ~20 ms, so a crash leaves
    /// at most that many claimed deliveries beyond the requests in flight.
    pub async fn step(self: &Arc<Self>) -> Result<Step, WorkerError> {
        if self.shutdown.is_shutdown() {
            return Ok(Step::Idle(None));
        }
        self.recover_when_due().await?;
        self.sample_queue_when_due().await?;
        let now = self.clock.now();
        let due = self
            .stores
            .deliveries()
            .due_in(&self.scope, now, self.batch)
            .await?;
        if due.is_empty() {
            return Ok(Step::Idle(
                self.stores.deliveries().next_due_in(&self.scope).await?,
            ));
        }
        let count = due.len();
        let ready = self.decide_due(now, due).await?;
        self.claim_and_send(ready).await?;
        Ok(Step::Worked(count))
    }

    /// Prepares and decides the due batch at `now`: what must not be sent is deferred or ended
    /// here (one write), what may be sent is returned with what its decision saw.
    async fn decide_due(
        &self,
        now: DateTime<Utc>,
        due: Vec<Delivery>,
    ) -> Result<Vec<Ready>, WorkerError> {
        let mut changes = Vec::new();
        let mut items = Vec::with_capacity(due.len());
        for delivery in due {
            // A run that cannot be worked (logged once) keeps its deliveries queued.
            let Some(context) = self.context(&delivery.key.run).await? else {
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
        let since = now - longest;
        let events = self
            .stores
            .consents()
            .events_for(self.consent_channel.as_str(), &phones)
            .await?;
        let histories = self.stores.deliveries().history_for(&phones, since).await?;
        let mut ready = Vec::new();
        let mut phones_in_step = HashSet::new();
        for ((item, events), history) in items.into_iter().zip(events).zip(histories) {
            let consent = ConsentState::at(now, &events);
            match item.decide(now, &consent, &history) {
                // One send per phone per step: a second delivery to the same phone (another run)
                // waits for the next step, where the first one's send counts toward its caps.
                Decision::Send if !phones_in_step.insert(item.delivery.recipient.phone.clone()) => {
                }
                Decision::Send => ready.push(Ready {
                    item,
                    consent,
                    history,
                    consent_seen: events.len() as u64,
                    since,
                }),
                other => changes.extend(self.apply_decision(&item.delivery.key, other)),
            }
        }
        self.stores.deliveries().apply(&changes, now).await?;
        Ok(ready)
    }

    /// The change a decision not to send makes to a queued delivery, counted in the progress;
    /// `None` for a decision to send (sends are claimed, not applied).
    pub(super) fn apply_decision(&self, key: &DeliveryKey, decision: Decision) -> Option<Change> {
        match decision {
            Decision::Defer { until, reason } => Some(self.wait(key, until, reason.into())),
            Decision::Skip(reason) => Some(self.end(key, Outcome::Skipped(reason), None)),
            Decision::Expire => Some(self.end(key, Outcome::Expired, None)),
            Decision::Send => None,
        }
    }

    /// A queued delivery waits until `until` for `reason`, counted in the progress.
    pub(super) fn wait(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: WaitReason,
    ) -> Change {
        self.progress.deferred.fetch_add(1, Ordering::Relaxed);
        metrics::deferred(&self.scope.sender, Some(reason));
        Change::Defer {
            key: key.clone(),
            until,
            reason,
        }
    }

    /// Ends a queued delivery (never claimed), counted in the progress.
    pub(super) fn end(
        &self,
        key: &DeliveryKey,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Change {
        self.finish(key, outcome, detail, None)
    }

    /// Ends a delivery: a claimed one under this worker's claim, a queued one without.
    pub(super) fn finish(
        &self,
        key: &DeliveryKey,
        outcome: Outcome,
        detail: Option<String>,
        owner: Option<&herald_store::WorkerId>,
    ) -> Change {
        let counter = match outcome {
            Outcome::Sent => &self.progress.sent,
            Outcome::Failed { .. } | Outcome::Unknown => &self.progress.failed,
            Outcome::Expired | Outcome::Skipped(_) => &self.progress.skipped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::delivery_ended(&self.scope.sender, &outcome);
        Change::Finish {
            key: key.clone(),
            terminal: Terminal { outcome, detail },
            owner: owner.cloned(),
        }
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
