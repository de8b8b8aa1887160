//! `Deliveries::finish`: the ledger's terminal write.
//!
//! An outcome that proves nothing reached the provider (`failed`, `expired`, `skipped`) also drops
//! the delivery's history entry, so a rejected request does not use up the recipient's frequency
//! cap; `sent` and `unknown` keep theirs (an unknown one may have been delivered).

use herald_store::{DeliveryKey, StoreResult, Terminal};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::unchanged;
use crate::codec::{proves_no_send, terminal_columns};
use crate::db::backend;

/// Ends the queued or sending delivery `key` with `terminal`.
pub(crate) fn finish(
    conn: &mut Connection,
    key: &DeliveryKey,
    terminal: &Terminal,
) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    finish_in(&tx, key, terminal)?;
    tx.commit().map_err(backend)
}

/// Ends a delivery inside the caller's transaction.
pub(crate) fn finish_in(
    tx: &Connection,
    key: &DeliveryKey,
    terminal: &Terminal,
) -> StoreResult<()> {
    let (state, reason, code) = terminal_columns(terminal);
    let ended: Option<i64> = tx
        .prepare_cached(
            "UPDATE deliveries SET state = ?3, reason = ?4, code = ?5, detail = ?6
             WHERE run = (SELECT id FROM runs WHERE run_id = ?1) AND recipient = ?2
               AND state IN ('queued', 'sending')
             RETURNING id",
        )
        .and_then(|mut stmt| {
            stmt.query_row(
                (
                    key.run.as_str(),
                    key.recipient.as_str(),
                    state,
                    reason,
                    code,
                    terminal.detail.as_deref(),
                ),
                |row| row.get(0),
            )
            .optional()
        })
        .map_err(backend)?;
    let Some(delivery) = ended else {
        return Err(unchanged(tx, key, "queued or sending"));
    };
    if proves_no_send(&terminal.outcome) {
        tx.prepare_cached("DELETE FROM sends WHERE delivery = ?1")
            .and_then(|mut stmt| stmt.execute([delivery]))
            .map_err(backend)?;
    }
    Ok(())
}
