//! Claims, leases, recovery, the send history, the tier, and compaction.
#![allow(clippy::todo, unused_variables)]

use chrono::{DateTime, Utc};
use herald_core::{PastSend, PhoneNumber, RunId};
use herald_store::{
    ClaimAnswer, ClaimGroup, ClaimRecord, DeliveryKey, Recovered, StoreResult, WorkerId,
};

use crate::conn::Conn;

/// The store's now: the caller's clock, or Redis's `TIME`.
pub(crate) async fn store_now(conn: &Conn) -> StoreResult<DateTime<Utc>> {
    todo!("A2")
}

pub(crate) async fn claim(conn: &Conn, group: &ClaimGroup) -> StoreResult<Vec<ClaimAnswer>> {
    todo!("A2")
}

pub(crate) async fn renew(
    conn: &Conn,
    owner: &WorkerId,
    keys: &[DeliveryKey],
    lease: std::time::Duration,
) -> StoreResult<u64> {
    todo!("A2")
}

pub(crate) async fn recover_expired(conn: &Conn, limit: usize) -> StoreResult<Vec<Recovered>> {
    todo!("A2")
}

pub(crate) async fn claims(conn: &Conn, run: &RunId) -> StoreResult<Vec<ClaimRecord>> {
    todo!("A2")
}

pub(crate) async fn history_for(
    conn: &Conn,
    phones: &[PhoneNumber],
    since: DateTime<Utc>,
) -> StoreResult<Vec<Vec<PastSend>>> {
    todo!("A2")
}

pub(crate) async fn recent_recipients(
    conn: &Conn,
    since: DateTime<Utc>,
) -> StoreResult<Vec<(PhoneNumber, DateTime<Utc>)>> {
    todo!("A2")
}
