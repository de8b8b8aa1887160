//! `Deliveries::finish`: the ledger's terminal write.
//!
//! An outcome that proves nothing reached the provider (`failed`, `expired`, `skipped`) also
//! clears the delivery's `sent_at`, taking it out of the send history, so a rejected request does
//! not use up the recipient's frequency cap; `sent` and `unknown` keep theirs (an unknown one may
//! have been delivered).

use herald_core::Outcome;
use herald_store::{DeliveryKey, StoreResult, Terminal};
use rusqlite::{Connection, TransactionBehavior};

use super::{RunIds, unchanged};
use crate::codec::{proves_no_send, terminal_columns};
use crate::db::backend;
use crate::tally::{Tally, label, unlabelled};

/// Ends the queued or sending delivery `key` with `terminal`.
pub(crate) fn finish(
    conn: &mut Connection,
    key: &DeliveryKey,
    terminal: &Terminal,
) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut tally = Tally::default();
    finish_in(&tx, &mut RunIds::default(), key, terminal, &mut tally)?;
    tally.flush(&tx)?;
    tx.commit().map_err(backend)
}

/// Ends a delivery inside the caller's transaction. The update is tried from the state the
/// outcome usually ends (`queued` for a skip, `sending` for the rest) and then from the other,
/// so the state it left is known for the counts without reading the row first.
pub(crate) fn finish_in(
    tx: &Connection,
    runs: &mut RunIds,
    key: &DeliveryKey,
    terminal: &Terminal,
    tally: &mut Tally,
) -> StoreResult<()> {
    let Some(run) = runs.get(tx, &key.run)? else {
        return Err(unchanged(tx, key, "queued or sending"));
    };
    let (state, reason, code) = terminal_columns(terminal);
    let label = label(reason, code.as_deref());
    // Two statements rather than one with a CASE: assigning `sent_at` at all, even to itself,
    // would rewrite its index entry.
    let sql = if proves_no_send(&terminal.outcome) {
        "UPDATE deliveries SET state = ?3, reason = ?4, code = ?5, detail = ?6, sent_at = NULL
         WHERE run = ?1 AND recipient = ?2 AND state = ?7"
    } else {
        "UPDATE deliveries SET state = ?3, reason = ?4, code = ?5, detail = ?6
         WHERE run = ?1 AND recipient = ?2 AND state = ?7"
    };
    // A skip ends a delivery still queued; any other outcome is a request's, from sending.
    let order = if matches!(terminal.outcome, Outcome::Skipped(_)) {
        ["queued", "sending"]
    } else {
        ["sending", "queued"]
    };
    for from in order {
        let ended = tx
            .prepare_cached(sql)
            .and_then(|mut stmt| {
                stmt.execute((
                    run.id,
                    key.recipient.to_string(),
                    state,
                    reason,
                    code.as_deref(),
                    terminal.detail.as_deref(),
                    from,
                ))
            })
            .map_err(backend)?;
        if ended == 1 {
            tally.moved(run.id, unlabelled(from), (state, label), 1);
            return Ok(());
        }
    }
    Err(unchanged(tx, key, "queued or sending"))
}
