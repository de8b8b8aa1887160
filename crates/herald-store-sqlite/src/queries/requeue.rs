//! `Deliveries::requeue`: a claimed delivery whose request provably did not go out (connection
//! refused, 429, a "not processed" code) returns to the queue, and leaves the send history with
//! the claim: nothing was sent, so nothing counts toward a cap.

use herald_store::{DeliveryKey, StoreResult, WaitReason};
use rusqlite::{Connection, TransactionBehavior};

use super::{RunIds, unchanged};
use crate::db::backend;
use crate::tally::{Tally, unlabelled};

/// Moves the sending delivery `key` back to queued, due at `until` (unix seconds), waiting for
/// `reason`.
pub(crate) fn requeue(
    conn: &mut Connection,
    key: &DeliveryKey,
    until: i64,
    reason: Option<WaitReason>,
) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut tally = Tally::default();
    requeue_in(
        &tx,
        &mut RunIds::default(),
        key,
        (until, reason),
        &mut tally,
    )?;
    tally.flush(&tx)?;
    tx.commit().map_err(backend)
}

/// Requeues inside the caller's transaction.
pub(crate) fn requeue_in(
    tx: &Connection,
    runs: &mut RunIds,
    key: &DeliveryKey,
    (until, reason): (i64, Option<WaitReason>),
    tally: &mut Tally,
) -> StoreResult<()> {
    let Some(run) = runs.get(tx, &key.run)? else {
        return Err(unchanged(tx, key, "sending"));
    };
    let requeued = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'queued', due_at = ?3, sent_at = NULL, wait_reason = ?4
             WHERE run = ?1 AND recipient = ?2 AND state = 'sending'",
        )
        .and_then(|mut stmt| {
            stmt.execute((
                run.id,
                key.recipient.to_string(),
                until,
                reason.map(WaitReason::as_str),
            ))
        })
        .map_err(backend)?;
    if requeued == 0 {
        return Err(unchanged(tx, key, "sending"));
    }
    tally.moved(run.id, unlabelled("sending"), unlabelled("queued"), 1);
    Ok(())
}
