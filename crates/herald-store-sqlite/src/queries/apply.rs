//! `Deliveries::apply`: a worker step's changes in one transaction.
//!
//! Each change runs the same statement as its single-change method, inside one IMMEDIATE
//! transaction, so a step of a hundred deliveries costs one commit instead of a hundred. A change
//! that does not apply (a delivery no longer in the expected state, a claim recovered by another
//! worker) is reported as `false` and does not undo the others; any other error rolls back all.

use herald_store::{Change, StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

use super::{RunIds, defer, finish, requeue};
use crate::codec::secs_ceil;
use crate::db::backend;
use crate::tally::Tally;

pub(crate) fn apply(
    conn: &mut Connection,
    changes: &[Change],
    now_ms: i64,
) -> StoreResult<Vec<bool>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut applied = Vec::with_capacity(changes.len());
    let mut tally = Tally::default();
    let mut runs = RunIds::default();
    for change in changes {
        let result = match change {
            Change::Defer { key, until, reason } => {
                defer::defer(&tx, &mut runs, key, secs_ceil(*until), *reason).map(|()| true)
            }
            Change::Finish {
                key,
                terminal,
                owner,
            } => finish::finish_in(
                &tx,
                &mut runs,
                key,
                terminal,
                owner.as_ref(),
                now_ms,
                &mut tally,
            )
            .map(|()| true),
            Change::Requeue {
                key,
                until,
                reason,
                owner,
            } => {
                let wait = (secs_ceil(*until), *reason);
                requeue::requeue_in(&tx, &mut runs, key, wait, owner, &mut tally).map(|()| true)
            }
        };
        match result {
            Ok(done) => applied.push(done),
            Err(StoreError::Conflict(_)) => applied.push(false),
            Err(other) => return Err(other),
        }
    }
    tally.flush(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(applied)
}
