//! The deliveries port: each method is one function of [`crate::queue`] (expansion, the due
//! queue, defers, outcomes, counts) or [`crate::claims`] (claims, leases, recovery, history).

use chrono::{DateTime, Utc};
use herald_core::{PastSend, PhoneNumber, RunId};
use herald_store::{
    Change, ClaimAnswer, ClaimGroup, ClaimRecord, Deliveries, Delivery, DeliveryKey, NewDelivery,
    QueueWaits, Recovered, RunCounts, StoreResult, Terminal, WaitReason, WorkScope, WorkerId,
};

use crate::conn::Conn;
use crate::{claims, queue};

/// Deliveries in Redis.
#[derive(Clone)]
pub struct RedisDeliveries {
    conn: Conn,
}

impl RedisDeliveries {
    pub(crate) fn new(conn: Conn) -> Self {
        Self { conn }
    }
}

impl Deliveries for RedisDeliveries {
    async fn insert_batch(&self, batch: &[NewDelivery]) -> StoreResult<u64> {
        queue::insert_batch(&self.conn, batch).await
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<Delivery>> {
        queue::due(&self.conn, None, now, limit).await
    }

    async fn defer(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: WaitReason,
    ) -> StoreResult<()> {
        queue::defer(&self.conn, key, until, reason).await
    }

    async fn finish(
        &self,
        key: &DeliveryKey,
        outcome: &Terminal,
        owner: Option<&WorkerId>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        queue::finish(&self.conn, key, outcome, owner, now).await
    }

    async fn requeue(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: Option<WaitReason>,
        owner: &WorkerId,
    ) -> StoreResult<()> {
        queue::requeue(&self.conn, key, until, reason, owner).await
    }

    async fn in_flight(&self) -> StoreResult<Vec<DeliveryKey>> {
        queue::in_flight(&self.conn).await
    }

    async fn counts(&self, run: &RunId) -> StoreResult<RunCounts> {
        queue::counts(&self.conn, run).await
    }

    async fn waits(
        &self,
        run: &RunId,
        now: DateTime<Utc>,
        before: Option<DateTime<Utc>>,
    ) -> StoreResult<QueueWaits> {
        queue::waits(&self.conn, run, now, before).await
    }

    async fn history(
        &self,
        phone: &PhoneNumber,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<PastSend>> {
        let mut all = claims::history_for(&self.conn, std::slice::from_ref(phone), since).await?;
        Ok(all.pop().unwrap_or_default())
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        queue::next_due(&self.conn, None).await
    }

    async fn due_in(
        &self,
        scope: &WorkScope,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        queue::due(&self.conn, Some(scope), now, limit).await
    }

    async fn next_due_in(&self, scope: &WorkScope) -> StoreResult<Option<DateTime<Utc>>> {
        queue::next_due(&self.conn, Some(scope)).await
    }

    async fn claim(&self, group: &ClaimGroup) -> StoreResult<Vec<ClaimAnswer>> {
        claims::claim(&self.conn, group).await
    }

    async fn renew(
        &self,
        owner: &WorkerId,
        keys: &[DeliveryKey],
        lease: std::time::Duration,
    ) -> StoreResult<u64> {
        claims::renew(&self.conn, owner, keys, lease).await
    }

    async fn recover_expired(&self, limit: usize) -> StoreResult<Vec<Recovered>> {
        claims::recover_expired(&self.conn, limit).await
    }

    async fn claims(&self, run: &RunId) -> StoreResult<Vec<ClaimRecord>> {
        claims::claims(&self.conn, run).await
    }

    async fn apply(&self, changes: &[Change], now: DateTime<Utc>) -> StoreResult<Vec<bool>> {
        queue::apply(&self.conn, changes, now).await
    }

    async fn history_for(
        &self,
        phones: &[PhoneNumber],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<Vec<PastSend>>> {
        claims::history_for(&self.conn, phones, since).await
    }

    async fn recent_recipients(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(PhoneNumber, DateTime<Utc>)>> {
        claims::recent_recipients(&self.conn, since).await
    }
}
