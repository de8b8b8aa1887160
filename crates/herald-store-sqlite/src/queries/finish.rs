//! `Deliveries::finish`: the ledger's terminal write.
//!
//! An outcome that proves nothing reached the provider (`failed`, `expired`, `skipped`) also
//! clears the delivery's `sent_at`, taking it out of the send history, so a rejected request does
//! not use up the recipient's frequency cap; `sent` and `unknown` keep theirs (an unknown one may
//! have been delivered).
//!
//! A `sent` outcome's detail is the provider's message id: it is indexed (`provider_id`), and
//! the early reports kept for it (or, for `sent` and `unknown`, naming the delivery in their
//! callback) are applied in the same transaction (`queries/status.rs`).
//!
//! Which row an outcome may end is the caller's to say: a worker ends its own claim (`owner`),
//! a decision made before any request (a skip, an expiry) ends a queued delivery.

use herald_core::Outcome;
use herald_store::{DeliveryKey, StoreResult, Terminal, WorkerId};
use rusqlite::{Connection, TransactionBehavior};

use super::{RunIds, status, unchanged};
use crate::codec::{proves_no_send, terminal_columns};
use crate::db::backend;
use crate::tally::{Tally, label, unlabelled};

/// Ends the delivery `key` with `terminal`: `owner`'s sending claim, or a queued delivery.
pub(crate) fn finish(
    conn: &mut Connection,
    key: &DeliveryKey,
    terminal: &Terminal,
    owner: Option<&WorkerId>,
    now_ms: i64,
) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut tally = Tally::default();
    finish_in(
        &tx,
        &mut RunIds::default(),
        key,
        terminal,
        owner,
        now_ms,
        &mut tally,
    )?;
    tally.flush(&tx)?;
    tx.commit().map_err(backend)
}

/// Ends a delivery inside the caller's transaction: with `owner`, only a `sending` row still
/// under that owner's claim (a claim recovered or ended meanwhile is a `Conflict`: the first
/// terminal write wins); without, only a `queued` one.
pub(crate) fn finish_in(
    tx: &Connection,
    runs: &mut RunIds,
    key: &DeliveryKey,
    terminal: &Terminal,
    owner: Option<&WorkerId>,
    now_ms: i64,
    tally: &mut Tally,
) -> StoreResult<()> {
    let expected = match owner {
        Some(owner) => format!("sending under {owner}'s claim"),
        None => "queued".to_owned(),
    };
    let Some(run) = runs.get(tx, &key.run)? else {
        return Err(unchanged(tx, key, &expected));
    };
    let (state, reason, code) = terminal_columns(terminal);
    let label = label(reason, code.as_deref());
    // Two statements rather than one with a CASE: assigning `sent_at` at all, even to itself,
    // would rewrite its index entry.
    let sql = if proves_no_send(&terminal.outcome) {
        "UPDATE deliveries SET state = ?3, reason = ?4, code = ?5, detail = ?6, sent_at = NULL,
             provider_id = ?9
         WHERE run = ?1 AND recipient = ?2 AND state = ?7 AND (?8 IS NULL OR owner = ?8)"
    } else {
        "UPDATE deliveries SET state = ?3, reason = ?4, code = ?5, detail = ?6, provider_id = ?9
         WHERE run = ?1 AND recipient = ?2 AND state = ?7 AND (?8 IS NULL OR owner = ?8)"
    };
    let from = if owner.is_some() { "sending" } else { "queued" };
    // For `sent`, the detail is the provider's message id: indexed for statuses and replies.
    let provider_id = match terminal.outcome {
        Outcome::Sent => terminal.detail.as_deref(),
        _ => None,
    };
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
                owner.map(WorkerId::as_str),
                provider_id,
            ))
        })
        .map_err(backend)?;
    if ended == 0 {
        return Err(unchanged(tx, key, &expected));
    }
    tally.moved(run.id, unlabelled(from), (state, label), 1);
    // Reports that came before the send was recorded apply now, in this transaction.
    if matches!(terminal.outcome, Outcome::Sent | Outcome::Unknown) {
        let recipient = key.recipient.to_string();
        let delivery = (key.run.as_str(), recipient.as_str());
        status::apply_kept(tx, delivery, provider_id, now_ms, tally)?;
    }
    Ok(())
}
