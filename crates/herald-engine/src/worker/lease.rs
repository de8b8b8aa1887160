//! Leases: the claims this worker holds are renewed while it works on them, the outcomes that
//! end them are recorded under its claim (a late one, for a claim another worker recovered
//! meanwhile, is logged and dropped: the first terminal write wins), and expired claims of
//! dead workers are recovered.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_channel::Channel;
use herald_core::{AudienceId, RecipientKey};
use herald_store::{Change, Deliveries, DeliveryKey, Recovered, StoreError, Stores};
use tokio::task::AbortHandle;

use super::{Worker, WorkerError, lock};

/// Expired claims recovered per store call.
const RECOVER_LIMIT: usize = 500;

/// The claims this worker holds: claimed, outcome not yet recorded.
#[derive(Default)]
pub(super) struct Held(Mutex<HashSet<DeliveryKey>>);

impl Held {
    pub(super) fn insert(&self, key: DeliveryKey) {
        lock(&self.0).insert(key);
    }

    fn remove(&self, key: &DeliveryKey) {
        lock(&self.0).remove(key);
    }

    fn snapshot(&self) -> Vec<DeliveryKey> {
        lock(&self.0).iter().cloned().collect()
    }
}

/// Stops the renewal task when dropped: at the end of a step, or when the step is dropped
/// mid-request (a worker that stops working must let its claims expire).
pub(super) struct Renewal(AbortHandle);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<S: Stores, C: Channel + 'static> Worker<S, C> {
    /// Starts renewing the held claims every third of the lease.
    pub(super) fn start_renewal(self: &Arc<Self>) -> Renewal {
        let worker = Arc::clone(self);
        let every = self.lease / 3;
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                worker.renew_held().await;
            }
        });
        Renewal(task.abort_handle())
    }

    async fn renew_held(&self) {
        let keys = self.held.snapshot();
        if keys.is_empty() {
            return;
        }
        match self
            .stores
            .deliveries()
            .renew(&self.id, &keys, self.lease)
            .await
        {
            Ok(renewed) if renewed < keys.len() as u64 => {
                // Recorded meanwhile (removed from `held` just after), or recovered by another
                // worker: its outcome will then be refused and logged.
                tracing::debug!(
                    held = keys.len(),
                    renewed,
                    "not every held claim was renewed"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error.message = %e, held = keys.len(), "could not renew leases; retried at the next renewal");
            }
        }
    }

    /// Recovers every claim whose lease has expired (its worker died or lost the store): each
    /// ends `unknown`, or is requeued under `at_least_once`, and is logged with its owner.
    /// Claims renewed within their lease are never touched. Also run by every step, every half
    /// lease.
    pub async fn recover(&self) -> Result<Vec<Recovered>, WorkerError> {
        *lock(&self.last_recovery) = Some(self.clock.now());
        let mut all = Vec::new();
        loop {
            let recovered = self
                .stores
                .deliveries()
                .recover_expired(RECOVER_LIMIT)
                .await?;
            for r in &recovered {
                super::metrics::recovered(r.requeued);
                tracing::warn!(run = %r.key.run, recipient = %loggable(&r.key.recipient), owner = %r.owner, requeued = r.requeued, "recovered a claim whose lease expired");
            }
            let more = recovered.len() >= RECOVER_LIMIT;
            all.extend(recovered);
            if !more {
                return Ok(all);
            }
        }
    }

    /// [`Worker::recover`] when half a lease has passed since the last one (or never ran).
    pub(super) async fn recover_when_due(&self) -> Result<(), WorkerError> {
        let now = self.clock.now();
        let half = chrono::TimeDelta::from_std(self.lease / 2).unwrap_or(chrono::TimeDelta::MAX);
        let due = lock(&self.last_recovery).is_none_or(|last| now - last >= half);
        if due {
            self.recover().await?;
        }
        Ok(())
    }

    /// Writes outcomes under this worker's claims, retrying while the store is unavailable for
    /// as long as a lease (capped back-off): these record requests already made, and losing them
    /// would turn sent messages into `unknown` ones. Past a lease the claims are another worker's
    /// to recover (and a write would be refused as late), so the worker stops with the error. An outcome the store refuses (the claim was recovered by another worker after
    /// this lease expired) is logged as late and dropped: the first terminal write wins.
    pub(super) async fn record_outcomes(&self, outcomes: &[Change]) -> Result<(), WorkerError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        let since = tokio::time::Instant::now();
        let applied = loop {
            match self
                .stores
                .deliveries()
                .apply(outcomes, self.clock.now())
                .await
            {
                Ok(applied) => break applied,
                Err(StoreError::Unavailable(e)) if since.elapsed() < self.lease => {
                    tracing::warn!(error.message = %e, attempt, "store unavailable while recording outcomes; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        };
        for (change, applied) in outcomes.iter().zip(applied) {
            let key = change_key(change);
            if !applied {
                tracing::warn!(run = %key.run, recipient = %loggable(&key.recipient), owner = %self.id, "late outcome: the claim was recovered by another worker after its lease expired; not recorded");
            }
            self.held.remove(key);
        }
        Ok(())
    }
}

fn change_key(change: &Change) -> &DeliveryKey {
    match change {
        Change::Defer { key, .. } | Change::Finish { key, .. } | Change::Requeue { key, .. } => key,
    }
}

/// A recipient key as logs above debug may show it: a key made of a phone (a row without an
/// id) is not written out.
fn loggable(key: &RecipientKey) -> String {
    let row = |id: &AudienceId| match id {
        AudienceId::Given(id) => id.as_str().to_owned(),
        AudienceId::Phone(_) => "(a phone-keyed row)".to_owned(),
    };
    match key {
        RecipientKey::Recipient(id) => row(id),
        RecipientKey::Duplicate { row: id, line } => {
            format!("{} (duplicate, line {line})", row(id))
        }
        RecipientKey::Unreadable { line } => format!("(unreadable row, line {line})"),
    }
}
