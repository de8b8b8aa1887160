//! `Deliveries::insert_batch`: the expansion's bulk write, idempotent per (run, recipient).
//!
//! One transaction and one prepared statement per batch: the commit, not the row, is what costs
//! in SQLite, so a batch of 1,000 pays for one. `ON CONFLICT DO NOTHING` against the
//! `deliveries_key` index keeps the first version of a row, so re-expanding after a crash neither
//! duplicates nor rewinds a delivery.

use herald_core::{RunId, SkipReason};
use herald_store::{Initial, NewDelivery, StoreResult, WaitReason};
use rusqlite::{Connection, TransactionBehavior};

use super::{RunIds, RunRow, no_run};
use crate::codec::{SnapshotColumns, secs, secs_ceil, terminal_columns};
use crate::db::{backend, invalid};
use crate::tally::{Tally, label};

/// A delivery encoded for its row, built before the connection is taken.
pub(crate) struct Row {
    run: RunId,
    recipient: String,
    state: &'static str,
    due_at: Option<i64>,
    wait_reason: Option<&'static str>,
    scheduled_at: Option<i64>,
    expires_at: Option<i64>,
    reason: Option<&'static str>,
    code: Option<String>,
    detail: Option<String>,
    snapshot: Option<SnapshotColumns>,
}

impl Row {
    /// Encodes `delivery`. A queued delivery needs a recipient (the worker could not send without
    /// one); its planned instant defaults to its first due instant.
    pub(crate) fn new(delivery: &NewDelivery) -> StoreResult<Self> {
        let (state, due_at, reason, code, detail) = match &delivery.initial {
            Initial::Queued { due_at, .. } => {
                ("queued", Some(secs_ceil(*due_at)), None, None, None)
            }
            Initial::Ended(terminal) => {
                let (state, reason, code) = terminal_columns(terminal);
                (state, None, reason, code, terminal.detail.clone())
            }
        };
        let wait_reason = match &delivery.initial {
            Initial::Queued { wait, .. } => wait.map(WaitReason::as_str),
            Initial::Ended(_) => None,
        };
        if state == "queued" && delivery.recipient.is_none() {
            return Err(invalid(format!(
                "delivery {}/{} is queued without a recipient",
                delivery.key.run, delivery.key.recipient
            )));
        }
        Ok(Self {
            run: delivery.key.run.clone(),
            recipient: delivery.key.recipient.to_string(),
            state,
            due_at,
            wait_reason,
            scheduled_at: delivery.scheduled_at.map(secs).or(due_at),
            expires_at: delivery.expires_at.map(secs),
            reason,
            code,
            detail,
            snapshot: delivery.recipient.as_ref().map(SnapshotColumns::new),
        })
    }
}

/// Inserts `rows`, returning how many were new. Queued rows of a run cancelled meanwhile go in
/// as `skipped(cancelled)`, as the cancel would have ended them. The new rows are added to
/// `run_counts` once per (run, state, label) at the end, in the same transaction.
pub(crate) fn insert_batch(conn: &mut Connection, rows: Vec<Row>) -> StoreResult<u64> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut runs = RunIds::default();
    let mut tally = Tally::default();
    let mut inserted = 0u64;
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO deliveries (run, recipient, state, due_at, scheduled_at, expires_at,
                     reason, code, detail, phone, zone, locale, country, attributes, line, phone_region,
                     wait_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT (run, recipient) DO NOTHING",
            )
            .map_err(backend)?;
        for row in rows {
            let RunRow {
                id: run, cancelled, ..
            } = runs
                .get(&tx, &row.run)?
                .ok_or_else(|| no_run(row.run.as_str()))?;
            let (state, reason) = match (row.state, cancelled) {
                ("queued", true) => ("skipped", Some(SkipReason::Cancelled.as_str())),
                _ => (row.state, row.reason),
            };
            let snapshot = row.snapshot.as_ref();
            let new = insert
                .execute(rusqlite::params![
                    run,
                    row.recipient,
                    state,
                    row.due_at,
                    row.scheduled_at,
                    row.expires_at,
                    reason,
                    row.code,
                    row.detail,
                    snapshot.map(|s| s.phone.as_str()),
                    snapshot.and_then(|s| s.zone),
                    snapshot.and_then(|s| s.locale.as_deref()),
                    snapshot.and_then(|s| s.country.as_deref()),
                    snapshot.and_then(|s| s.attributes.as_deref()),
                    snapshot.map(|s| s.line),
                    snapshot.and_then(|s| s.phone_region),
                    row.wait_reason,
                ])
                .map_err(backend)?;
            if new == 1 {
                inserted += 1;
                let label = label(reason, row.code.as_deref());
                tally.added(run, state, label, 1);
            }
        }
    }
    tally.flush(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(inserted)
}
