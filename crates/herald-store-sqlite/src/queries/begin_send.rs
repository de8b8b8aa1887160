//! `Deliveries::begin_send`: the at-most-once claim.
//!
//! The `UPDATE ... WHERE state = 'queued'` is the claim: of any number of concurrent callers,
//! exactly one changes the row, and the same statement stamps `sent_at`, which puts the delivery
//! in its phone's send history: the history can never count a send twice nor miss a claimed one.
//! A delivery of a paused or cancelled run is not claimed either: pausing takes effect even for
//! deliveries a worker read from `due` just before, and they stay queued for the resume.
//!
//! The history entry's campaign and purpose are the run's (the columns of `runs`), which is what
//! the worker passes in `send`; only its instant is stored.
//!
//! With a [`ConsentSeen`], the same statement also requires the phone's consent log to hold as
//! many events as the decision saw: the log only grows, so any event recorded since (in this
//! process or another; appends take the same write lock) refuses the claim.

use herald_core::PastSend;
use herald_store::{ConsentSeen, DeliveryKey, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

use super::RunIds;
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
    let claimed = begin_send_in(&tx, &mut RunIds::default(), key, send, None, &mut tally)?;
    tally.flush(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(claimed)
}

/// The claim inside the caller's transaction (for `apply`, which batches many changes).
pub(crate) fn begin_send_in(
    tx: &Connection,
    runs: &mut RunIds,
    key: &DeliveryKey,
    send: &PastSend,
    consent: Option<&ConsentSeen>,
    tally: &mut Tally,
) -> StoreResult<bool> {
    let Some(run) = runs.get(tx, &key.run)?.filter(|run| run.active) else {
        return Ok(false);
    };
    let claimed = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, sent_at = ?3
             WHERE run = ?1 AND recipient = ?2 AND state = 'queued'
               AND (?4 IS NULL
                    OR (SELECT count(*) FROM consents WHERE channel = ?4 AND phone = deliveries.phone) = ?5)",
        )
        .and_then(|mut stmt| {
            stmt.execute((
                run.id,
                key.recipient.to_string(),
                secs(send.at),
                consent.map(|seen| seen.channel.as_str()),
                consent.map_or(0, |seen| i64::try_from(seen.events).unwrap_or(i64::MAX)),
            ))
        })
        .map_err(backend)?;
    if claimed == 0 {
        return Ok(false);
    }
    tally.moved(run.id, unlabelled("queued"), unlabelled("sending"), 1);
    Ok(true)
}
