//! The campaign of each run a worker works: registered by the caller (`herald run FILE` has
//! it loaded already) or rebuilt from the text the run stored, so a `herald worker` on any
//! machine works every active run of its sender without the campaign file or its audience.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, Mutex};

use herald_campaign::Campaign;
use herald_campaign::campaign::DeliveryMode;
use herald_channel::Channel;
use herald_core::RunId;
use herald_store::{RunRecord, Runs, StoreError, Stores};

use super::{Worker, lock};

/// A run as the worker needs it.
pub(super) struct RunContext {
    pub(super) campaign: Campaign,
    /// Unknown outcomes are retried.
    pub(super) at_least_once: bool,
    /// Requests per second for this run: the sender's rate, or the campaign's when lower.
    pub(super) per_second: NonZeroU32,
}

/// Runs seen so far: `None` for a run of another sender, remembered so it is logged once.
///
/// A run that cannot be worked for want of its campaign (no stored text, text that no longer
/// parses) is paused with the reason instead: its
/// due deliveries would otherwise head every step's batch and starve the runs that can be
/// worked. `status` shows the reason (and `herald` as who paused it); running its campaign file
/// again stores the text, and `herald resume RUN` then resumes it (a paused run stays paused
/// until someone resumes it).
#[derive(Default)]
pub(super) struct RunContexts {
    known: Mutex<HashMap<RunId, Option<Arc<RunContext>>>>,
}

impl<S: Stores, C: Channel + 'static> Worker<S, C> {
    /// Makes `campaign` known for `run`, so the worker uses it rather than rebuilding it from
    /// the store (the caller has just loaded it from its file).
    pub fn register(&self, run: &RunId, campaign: Campaign) {
        let at_least_once = campaign.delivery == DeliveryMode::AtLeastOnce;
        let context = self.context_of(campaign, at_least_once);
        lock(&self.runs.known).insert(run.clone(), Some(Arc::new(context)));
    }

    fn context_of(&self, campaign: Campaign, at_least_once: bool) -> RunContext {
        let per_second = campaign
            .rate_per_second
            .and_then(NonZeroU32::new)
            .map_or(self.sender_rate, |rate| rate.min(self.sender_rate));
        RunContext {
            campaign,
            at_least_once,
            per_second,
        }
    }

    /// The campaign of `run`: registered, cached, or rebuilt from its stored text.
    pub(super) async fn context(&self, run: &RunId) -> Result<Option<Arc<RunContext>>, StoreError> {
        if let Some(known) = lock(&self.runs.known).get(run) {
            return Ok(known.clone());
        }
        let context = match self.stores.runs().run(run).await? {
            None => None,
            Some(record) => match self.rebuild(&record) {
                Ok(context) => Some(Arc::new(context)),
                Err(Unworkable::OtherSender) => None,
                Err(Unworkable::Campaign(why)) => {
                    // Not remembered: once paused it is not due here, and when an operator
                    // resumes it (its text stored again) it is rebuilt afresh.
                    tracing::error!(run = %run, source = %record.run.source, reason = %why, "run not worked; pausing it");
                    self.stores.runs().pause(run, "herald", &why).await?;
                    return Ok(None);
                }
            },
        };
        let mut known = lock(&self.runs.known);
        Ok(known.entry(run.clone()).or_insert(context).clone())
    }

    /// The campaign a stored run was created from.
    fn rebuild(&self, record: &RunRecord) -> Result<RunContext, Unworkable> {
        if record.run.sender.as_deref() != Some(self.scope.sender.as_str()) {
            tracing::warn!(run = %record.run.run, sender = ?record.run.sender, worker_sender = %self.scope.sender, "run of another sender; not worked here");
            return Err(Unworkable::OtherSender);
        }
        let Some(text) = &record.run.campaign_text else {
            return Err(Unworkable::Campaign(
                "stored without its campaign text (by an older herald): run its campaign file \
                 again to store it"
                    .to_owned(),
            ));
        };
        let source = &record.run.source;
        let base = Path::new(source).parent().unwrap_or_else(|| Path::new("."));
        herald_campaign::parse_stored(source, base, text, self.clock.now())
            .map(|campaign| self.context_of(campaign, record.run.at_least_once))
            .map_err(|problems| {
                Unworkable::Campaign(format!("its stored campaign does not parse: {problems}"))
            })
    }
}

/// Why a stored run cannot be worked by this worker.
enum Unworkable {
    /// It sends through another sender (its workers work it).
    OtherSender,
    /// Its campaign cannot be rebuilt; why, for the run's pause reason.
    Campaign(String),
}
