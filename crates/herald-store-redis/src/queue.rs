//! Expansion, the due queue, defers, outcomes and counts.
#![allow(clippy::todo, unused_variables)]

use chrono::{DateTime, Utc};
use herald_core::RunId;
use herald_store::{
    Change, Delivery, DeliveryKey, NewDelivery, QueueWaits, RunCounts, StoreResult, Terminal,
    WaitReason, WorkScope, WorkerId,
};

use crate::conn::Conn;

pub(crate) async fn insert_batch(conn: &Conn, batch: &[NewDelivery]) -> StoreResult<u64> {
    todo!("A1")
}

/// `due` (no scope) and `due_in`.
pub(crate) async fn due(
    conn: &Conn,
    scope: Option<&WorkScope>,
    now: DateTime<Utc>,
    limit: usize,
) -> StoreResult<Vec<Delivery>> {
    todo!("A1")
}

pub(crate) async fn next_due(
    conn: &Conn,
    scope: Option<&WorkScope>,
) -> StoreResult<Option<DateTime<Utc>>> {
    todo!("A1")
}

pub(crate) async fn defer(
    conn: &Conn,
    key: &DeliveryKey,
    until: DateTime<Utc>,
    reason: WaitReason,
) -> StoreResult<()> {
    todo!("A1")
}

pub(crate) async fn finish(
    conn: &Conn,
    key: &DeliveryKey,
    outcome: &Terminal,
    owner: Option<&WorkerId>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    todo!("A1")
}

pub(crate) async fn requeue(
    conn: &Conn,
    key: &DeliveryKey,
    until: DateTime<Utc>,
    reason: Option<WaitReason>,
    owner: &WorkerId,
) -> StoreResult<()> {
    todo!("A1")
}

pub(crate) async fn apply(
    conn: &Conn,
    changes: &[Change],
    now: DateTime<Utc>,
) -> StoreResult<Vec<bool>> {
    todo!("A1")
}

pub(crate) async fn in_flight(conn: &Conn) -> StoreResult<Vec<DeliveryKey>> {
    todo!("A1")
}

pub(crate) async fn counts(conn: &Conn, run: &RunId) -> StoreResult<RunCounts> {
    todo!("A1")
}

pub(crate) async fn waits(
    conn: &Conn,
    run: &RunId,
    now: DateTime<Utc>,
    before: Option<DateTime<Utc>>,
) -> StoreResult<QueueWaits> {
    todo!("A1")
}
