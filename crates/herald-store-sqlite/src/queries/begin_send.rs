//! `Deliveries::begin_send`: the at-most-once claim.
//!
//! The `UPDATE ... WHERE state = 'queued'` is the claim: of any number of concurrent callers,
//! exactly one changes the row, and only that one records the send in `sends`, in the same
//! transaction, so the history can never count a send twice nor miss a claimed one. A delivery of
//! a paused or cancelled run is not claimed either: pausing takes effect even for deliveries a
//! worker read from `due` just before, and they stay queued for the resume.

use herald_core::PastSend;
use herald_store::{DeliveryKey, StoreResult};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::codec::secs;
use crate::db::backend;
use crate::tally::{Tally, unlabelled};

/// Claims `key` and records `send` in its phone's history; `false` if it was not claimable.
pub(crate) fn begin_send(
    conn: &mut Connection,
    key: &DeliveryKey,
    send: &PastSend,
) -> StoreResult<bool> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut tally = Tally::default();
    let claimed = begin_send_in(&tx, key, send, &mut tally)?;
    tally.flush(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(claimed)
}

/// The claim inside the caller's transaction (for `apply`, which batches many changes).
pub(crate) fn begin_send_in(
    tx: &Connection,
    key: &DeliveryKey,
    send: &PastSend,
    tally: &mut Tally,
) -> StoreResult<bool> {
    let claimed: Option<(i64, i64, String)> = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'sending', attempts = attempts + 1
             WHERE run = (SELECT id FROM runs WHERE run_id = ?1 AND state = 'active')
               AND recipient = ?2 AND state = 'queued'
             RETURNING id, run, phone",
        )
        .and_then(|mut stmt| {
            stmt.query_row((key.run.as_str(), key.recipient.as_str()), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()
        })
        .map_err(backend)?;
    let Some((delivery, run, phone)) = claimed else {
        return Ok(false);
    };
    tally.moved(run, unlabelled("queued"), unlabelled("sending"), 1);
    // OR REPLACE: a delivery has at most one history entry; a leftover one (there should be none,
    // requeue deletes it) is overwritten rather than failing the claim.
    tx.prepare_cached(
        "INSERT OR REPLACE INTO sends (delivery, phone, at, campaign, purpose) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut stmt| {
        stmt.execute((
            delivery,
            phone,
            secs(send.at),
            send.campaign.as_str(),
            send.purpose.as_str(),
        ))
    })
    .map_err(backend)?;
    Ok(true)
}
