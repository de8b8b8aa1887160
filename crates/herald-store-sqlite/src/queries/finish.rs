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
use crate::tally::{Tally, unlabelled};

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
    finish_in(&tx, key, terminal, &mut tally)?;
    tally.flush(&tx)?;
    tx.commit().map_err(backend)
}

/// Ends a delivery inside the caller's transaction. The update is tried from `sending` (the
/// outcome of a request, the common case) and then from `queued` (a skip or an expiry), so the
/// state it left is known for the counts without reading the row first.
pub(crate) fn finish_in(
    tx: &Connection,
    key: &DeliveryKey,
    terminal: &Terminal,
    tally: &mut Tally,
) -> StoreResult<()> {
    let (state, reason, code) = terminal_columns(terminal);
    let label = reason
        .map(str::to_owned)
        .or_else(|| code.clone())
        .unwrap_or_default();
    let mut ended = None;
    for from in ["sending", "queued"] {
        ended = tx
            .prepare_cached(
                "UPDATE deliveries SET state = ?3, reason = ?4, code = ?5, detail = ?6
                 WHERE run = (SELECT id FROM runs WHERE run_id = ?1) AND recipient = ?2
                   AND state = ?7
                 RETURNING id, run",
            )
            .and_then(|mut stmt| {
                stmt.query_row(
                    (
                        key.run.as_str(),
                        key.recipient.as_str(),
                        state,
                        reason,
                        code.as_deref(),
                        terminal.detail.as_deref(),
                        from,
                    ),
                    |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
                )
                .optional()
            })
            .map_err(backend)?
            .map(|(delivery, run)| (delivery, run, from));
        if ended.is_some() {
            break;
        }
    }
    let Some((delivery, run, from)) = ended else {
        return Err(unchanged(tx, key, "queued or sending"));
    };
    tally.moved(run, unlabelled(from), (state, label), 1);
    if proves_no_send(&terminal.outcome) {
        tx.prepare_cached("DELETE FROM sends WHERE delivery = ?1")
            .and_then(|mut stmt| stmt.execute([delivery]))
            .map_err(backend)?;
    }
    Ok(())
}
