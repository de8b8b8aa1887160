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

/// Runs seen so far: `None` for a run that cannot be worked (no campaign text, text that no
/// longer parses, another sender), remembered so it is logged once, not at every step.
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
        let record = self.stores.runs().run(run).await?;
        let context = record
            .and_then(|record| self.rebuild(&record))
            .map(Arc::new);
        let mut known = lock(&self.runs.known);
        Ok(known.entry(run.clone()).or_insert(context).clone())
    }

    /// The campaign a stored run was created from, or `None` (logged) when it cannot be had.
    fn rebuild(&self, record: &RunRecord) -> Option<RunContext> {
        let run = &record.run.run;
        if record.run.sender.as_deref() != Some(self.scope.sender.as_str()) {
            tracing::warn!(run = %run, sender = ?record.run.sender, worker_sender = %self.scope.sender, "run of another sender; not worked here");
            return None;
        }
        let Some(text) = &record.run.campaign_text else {
            tracing::error!(run = %run, source = %record.run.source, "run stored without its campaign text (an older schema); not worked until its campaign is submitted again");
            return None;
        };
        let source = &record.run.source;
        let base = Path::new(source).parent().unwrap_or_else(|| Path::new("."));
        match herald_campaign::parse_stored(source, base, text, self.clock.now()) {
            Ok(campaign) => Some(self.context_of(campaign, record.run.at_least_once)),
            Err(problems) => {
                tracing::error!(run = %run, source = %source, problems = %problems, "the run's stored campaign no longer parses; not worked");
                None
            }
        }
    }
}
