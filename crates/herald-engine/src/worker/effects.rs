//! What a provider's answer asks beyond the delivery's own outcome, acted on by its type
//! ([`ProviderAction`], [`herald_channel::ThrottleScope`]): a throttle or a block of the whole
//! sender, recorded in the store for every worker of it; an opt-out, recorded as consent; a
//! template error, which repeated pauses the run. The effects themselves are
//! [`crate::statuses`]'s, shared with a late `failed` status.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_channel::{Channel, ProviderAction};
use herald_core::{Outcome, RunId};
use herald_store::{Delivery, Senders, StoreError, Stores};

use super::send::Answered;
use super::{Worker, lock};
use crate::statuses::{self, TEMPLATE_ERRORS_BEFORE_PAUSE};

/// A run's template-error count once this worker paused it: later errors (requests that were
/// in flight) are not counted, and the next successful claim of the run, which proves it was
/// resumed, clears it.
pub(super) const PAUSED_BY_TEMPLATE_ERRORS: u32 = u32::MAX;

/// What this worker was last told of its sender by the provider, and when (its clock). The
/// store holds the sender's state for every worker and refuses later claims; this is only for
/// the claims already granted (within the slot horizon) and waiting for their slot when the
/// answer came.
#[derive(Debug, Default)]
pub(super) struct Told {
    blocked_at: Option<DateTime<Utc>>,
    /// When a throttle was seen, and until when it holds.
    throttled: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// Why a claim granted earlier must not be sent now.
pub(super) enum Hold {
    /// The sender was blocked since.
    Blocked,
    /// The sender was throttled since, until then.
    Throttled(DateTime<Utc>),
}

impl<S: Stores, C: Channel + 'static> Worker<S, C> {
    /// Records that the provider asked the sender to hold back for `hold`: every worker of it
    /// is refused slots until the returned instant (the store's time).
    pub(super) async fn throttle_sender(
        &self,
        hold: Duration,
    ) -> Result<DateTime<Utc>, StoreError> {
        let seen = self.clock.now();
        let until = self
            .stores
            .senders()
            .throttle(&self.scope.sender, hold)
            .await?;
        lock(&self.told).throttled = Some((seen, until));
        Ok(until)
    }

    /// Whether the sender was blocked or throttled (as this worker was told) at or after
    /// `claimed_at`, a throttle only while it still holds at `now`.
    pub(super) fn told_since(&self, claimed_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Hold> {
        let told = lock(&self.told);
        if told.blocked_at.is_some_and(|at| at >= claimed_at) {
            return Some(Hold::Blocked);
        }
        match told.throttled {
            Some((seen, until)) if seen >= claimed_at && until > now => {
                Some(Hold::Throttled(until))
            }
            _ => None,
        }
    }

    /// A rejection: the delivery's change, after what its action asks.
    pub(super) async fn rejected(
        &self,
        delivery: &Delivery,
        code: String,
        detail: String,
        action: Option<ProviderAction>,
    ) -> Answered {
        let key = &delivery.key;
        let now = self.clock.now();
        let owner = Some(&self.id);
        match action {
            None => self
                .finish(key, Outcome::Failed { code }, Some(detail), owner)
                .into(),
            Some(ProviderAction::OptOut) => {
                // The recipient stopped promotions: never again for marketing, whatever
                // campaign. The delivery fails with the provider's code either way.
                let failure = statuses::record_opt_out(
                    &*self.stores,
                    self.consent_channel.as_str(),
                    &delivery.recipient.phone,
                    &code,
                    now,
                )
                .await
                .err();
                Answered {
                    change: self.finish(key, Outcome::Failed { code }, Some(detail), owner),
                    failure,
                }
            }
            Some(ProviderAction::BlockSender) => {
                // Not accepted: the delivery goes back to the queue, due at once; the sender's
                // block keeps every worker from claiming it until an operator resumes it.
                lock(&self.told).blocked_at = Some(now);
                let failure =
                    statuses::block_sender(&*self.stores, &self.scope.sender, &code, &detail, now)
                        .await
                        .err();
                Answered {
                    change: self.requeue(key, now, None),
                    failure,
                }
            }
            Some(ProviderAction::TemplateError) => {
                // Tried again at once, until repeated errors pause the run.
                let failure = self
                    .count_template_error(&key.run, &code, &detail)
                    .await
                    .err();
                Answered {
                    change: self.requeue(key, now, None),
                    failure,
                }
            }
        }
    }

    /// Counts a template error of `run`; the third since the last pause pauses it (an operator
    /// fixes the template and resumes it).
    async fn count_template_error(
        &self,
        run: &RunId,
        code: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        // Once this worker paused the run, errors of requests already in flight are not
        // counted ([`PAUSED_BY_TEMPLATE_ERRORS`]); the count starts again when a claim of the
        // run succeeds (it was resumed), so a resumed run gets three new chances.
        let errors = {
            let mut counts = lock(&self.template_errors);
            let n = counts.entry(run.clone()).or_default();
            if *n == PAUSED_BY_TEMPLATE_ERRORS {
                return Ok(());
            }
            *n += 1;
            let errors = *n;
            if errors >= TEMPLATE_ERRORS_BEFORE_PAUSE {
                *n = PAUSED_BY_TEMPLATE_ERRORS;
            }
            errors
        };
        if errors >= TEMPLATE_ERRORS_BEFORE_PAUSE {
            let why = format!("template rejected {errors} times (code {code}): {reason}");
            statuses::pause_for_template(&*self.stores, run, code, &why).await?;
        }
        Ok(())
    }

    /// A claim of `run` succeeded, so it is active: if this worker had paused it for template
    /// errors, it was resumed since, and its count starts again.
    pub(super) fn forget_template_pause(&self, run: &RunId) {
        let mut counts = lock(&self.template_errors);
        if counts.get(run) == Some(&PAUSED_BY_TEMPLATE_ERRORS) {
            counts.remove(run);
        }
    }
}
