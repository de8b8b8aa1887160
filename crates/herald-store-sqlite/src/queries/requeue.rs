//! `Deliveries::requeue`: a claimed delivery whose request provably did not go out (connection
//! refused, 429, a "not processed" code) returns to the queue, and leaves the send history with
//! the claim: nothing was sent, so nothing counts toward a cap.
//!
//! A run cancelled while the delivery was sending never claims again, so a requeue there would
//! leave it queued for ever: it ends `skipped(cancelled)` instead, as the cancel would have
//! ended it had it still been queued (history removed all the same: nothing was sent).

use herald_core::SkipReason;
use herald_store::{DeliveryKey, StoreResult, WaitReason, WorkerId};
use rusqlite::{Connection, TransactionBehavior};

use super::{RunIds, unchanged};
use crate::db::backend;
use crate::tally::{Tally, unlabelled};

/// Moves the sending delivery `key` back to queued, due at `until` (unix seconds), waiting for
/// `reason`, if it is still `owner`'s claim.
pub(crate) fn requeue(
    conn: &mut Connection,
    key: &DeliveryKey,
    (until, reason): (i64, Option<WaitReason>),
    owner: &WorkerId,
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
        owner,
        &mut tally,
    )?;
    tally.flush(&tx)?;
    tx.commit().map_err(backend)
}

/// Requeues inside the caller's transaction (or, for a cancelled run, ends it
/// `skipped(cancelled)`; see the module doc). The owner and slot stay on the row: `claims`
/// still shows whose claim it was.
pub(crate) fn requeue_in(
    tx: &Connection,
    runs: &mut RunIds,
    key: &DeliveryKey,
    (until, reason): (i64, Option<WaitReason>),
    owner: &WorkerId,
    tally: &mut Tally,
) -> StoreResult<()> {
    let expected = format!("sending under {owner}'s claim");
    let Some(run) = runs.get(tx, &key.run)? else {
        return Err(unchanged(tx, key, &expected));
    };
    if run.cancelled {
        let ended = tx
            .prepare_cached(
                "UPDATE deliveries SET state = 'skipped', reason = ?3, sent_at = NULL,
                     wait_reason = NULL
                 WHERE run = ?1 AND recipient = ?2 AND state = 'sending' AND owner = ?4",
            )
            .and_then(|mut stmt| {
                stmt.execute((
                    run.id,
                    key.recipient.to_string(),
                    SkipReason::Cancelled.as_str(),
                    owner.as_str(),
                ))
            })
            .map_err(backend)?;
        if ended == 0 {
            return Err(unchanged(tx, key, &expected));
        }
        let to = ("skipped", SkipReason::Cancelled.as_str().to_owned());
        tally.moved(run.id, unlabelled("sending"), to, 1);
        return Ok(());
    }
    let requeued = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'queued', due_at = ?3, sent_at = NULL, wait_reason = ?4
             WHERE run = ?1 AND recipient = ?2 AND state = 'sending' AND owner = ?5",
        )
        .and_then(|mut stmt| {
            stmt.execute((
                run.id,
                key.recipient.to_string(),
                until,
                reason.map(WaitReason::as_str),
                owner.as_str(),
            ))
        })
        .map_err(backend)?;
    if requeued == 0 {
        return Err(unchanged(tx, key, &expected));
    }
    tally.moved(run.id, unlabelled("sending"), unlabelled("queued"), 1);
    Ok(())
}
