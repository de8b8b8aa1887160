//! `Runs::set_run_state`: pause, resume, cancel.
//!
//! Cancelling also ends every queued delivery `skipped(cancelled)` in the same transaction: `due`
//! never returns deliveries of a cancelled run, so nobody else would ever end them, and the run's
//! counts must still add up to its audience. Deliveries already `sending` are left to the worker
//! that claimed them. A cancelled run stays cancelled.

use herald_core::{RunId, SkipReason};
use herald_store::{RunState, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::no_run;
use crate::db::backend;
use crate::tally::{Tally, unlabelled};

/// Sets the state of `run`.
pub(crate) fn set_run_state(
    conn: &mut Connection,
    run: &RunId,
    state: RunState,
) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let (id, current): (i64, String) = tx
        .prepare_cached("SELECT id, state FROM runs WHERE run_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([run.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(backend)?
        .ok_or_else(|| no_run(run.as_str()))?;
    if current == RunState::Cancelled.as_str() && state != RunState::Cancelled {
        return Err(StoreError::Conflict(format!("run {run} is cancelled")));
    }
    tx.prepare_cached(
        "UPDATE runs SET state = ?2, state_reason = NULL, paused_by = NULL WHERE id = ?1",
    )
    .and_then(|mut stmt| stmt.execute((id, state.as_str())))
    .map_err(backend)?;
    if state == RunState::Cancelled {
        let cancelled = tx
            .prepare_cached(
                "UPDATE deliveries SET state = 'skipped', reason = ?2
                 WHERE run = ?1 AND state = 'queued'",
            )
            .and_then(|mut stmt| stmt.execute((id, SkipReason::Cancelled.as_str())))
            .map_err(backend)?;
        let mut tally = Tally::default();
        tally.moved(
            id,
            unlabelled("queued"),
            ("skipped", SkipReason::Cancelled.as_str().to_owned()),
            i64::try_from(cancelled).unwrap_or(i64::MAX),
        );
        tally.flush(&tx)?;
    }
    tx.commit().map_err(backend)
}

/// Pauses, recording who paused and why; a cancelled run stays cancelled. One statement, so
/// its own transaction.
pub(crate) fn pause(conn: &mut Connection, run: &RunId, by: &str, reason: &str) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE runs SET state = 'paused', state_reason = ?2, paused_by = ?3
             WHERE run_id = ?1 AND state != 'cancelled'",
        )
        .and_then(|mut stmt| stmt.execute((run.as_str(), reason, by)))
        .map_err(backend)?;
    if changed == 1 {
        return Ok(());
    }
    let exists: Option<i64> = conn
        .prepare_cached("SELECT id FROM runs WHERE run_id = ?1")
        .and_then(|mut stmt| stmt.query_row([run.as_str()], |row| row.get(0)).optional())
        .map_err(backend)?;
    match exists {
        Some(_) => Err(StoreError::Conflict(format!("run {run} is cancelled"))),
        None => Err(no_run(run.as_str())),
    }
}
