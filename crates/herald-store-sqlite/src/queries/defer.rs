//! `Deliveries::defer`: a queued delivery waits longer (its window is closed, the tier frees up
//! later, the sender is throttled), and the reason is stored with the new instant.

use herald_store::{DeliveryKey, StoreResult, WaitReason};
use rusqlite::Connection;

use super::{RunIds, unchanged};
use crate::db::backend;

/// Sets the due instant (unix seconds) of the queued delivery `key` and why it waits.
pub(crate) fn defer(
    conn: &Connection,
    runs: &mut RunIds,
    key: &DeliveryKey,
    until: i64,
    reason: WaitReason,
) -> StoreResult<()> {
    let Some(run) = runs.get(conn, &key.run)? else {
        return Err(unchanged(conn, key, "queued"));
    };
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries SET due_at = ?3, wait_reason = ?4
             WHERE run = ?1 AND recipient = ?2 AND state = 'queued'",
        )
        .and_then(|mut stmt| {
            stmt.execute((run.id, key.recipient.to_string(), until, reason.as_str()))
        })
        .map_err(backend)?;
    if changed == 0 {
        return Err(unchanged(conn, key, "queued"));
    }
    Ok(())
}
