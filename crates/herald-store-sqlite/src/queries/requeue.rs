//! `Deliveries::requeue`: a claimed delivery whose request provably did not go out (connection
//! refused, 429, a "not processed" code) returns to the queue, and its history entry goes with the
//! claim: nothing was sent, so nothing counts toward a cap.

use herald_store::{DeliveryKey, StoreResult};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::unchanged;
use crate::db::backend;
use crate::tally::{Tally, unlabelled};

/// Moves the sending delivery `key` back to queued, due at `until` (unix seconds).
pub(crate) fn requeue(conn: &mut Connection, key: &DeliveryKey, until: i64) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut tally = Tally::default();
    requeue_in(&tx, key, until, &mut tally)?;
    tally.flush(&tx)?;
    tx.commit().map_err(backend)
}

/// Requeues inside the caller's transaction.
pub(crate) fn requeue_in(
    tx: &Connection,
    key: &DeliveryKey,
    until: i64,
    tally: &mut Tally,
) -> StoreResult<()> {
    let requeued: Option<(i64, i64)> = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'queued', due_at = ?3
             WHERE run = (SELECT id FROM runs WHERE run_id = ?1) AND recipient = ?2 AND state = 'sending'
             RETURNING id, run",
        )
        .and_then(|mut stmt| {
            stmt.query_row((key.run.as_str(), key.recipient.as_str(), until), |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(backend)?;
    let Some((delivery, run)) = requeued else {
        return Err(unchanged(tx, key, "sending"));
    };
    tally.moved(run, unlabelled("sending"), unlabelled("queued"), 1);
    tx.prepare_cached("DELETE FROM sends WHERE delivery = ?1")
        .and_then(|mut stmt| stmt.execute([delivery]))
        .map_err(backend)?;
    Ok(())
}
