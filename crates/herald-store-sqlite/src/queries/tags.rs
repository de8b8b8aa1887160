//! `Feedback::add_tag` and `Feedback::tags_for`: the tags replies stored per phone.

use std::collections::BTreeSet;

use herald_store::{MAX_TAGS_PER_PHONE, StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

use crate::db::backend;

/// Stores `tag` for the phone `e164`; `false` if stored already. The count and the insert are
/// one transaction, so two replies at once cannot take a phone past [`MAX_TAGS_PER_PHONE`].
pub(crate) fn add_tag(
    conn: &mut Connection,
    e164: &str,
    tag: &str,
    now_ms: i64,
) -> StoreResult<bool> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let stored = tx
        .prepare_cached("SELECT 1 FROM tags WHERE phone = ?1 AND tag = ?2")
        .and_then(|mut stmt| stmt.exists((e164, tag)))
        .map_err(backend)?;
    if stored {
        return Ok(false);
    }
    let held: i64 = tx
        .prepare_cached("SELECT count(*) FROM tags WHERE phone = ?1")
        .and_then(|mut stmt| stmt.query_row([e164], |row| row.get(0)))
        .map_err(backend)?;
    if usize::try_from(held).unwrap_or(usize::MAX) >= MAX_TAGS_PER_PHONE {
        return Err(StoreError::Conflict(format!(
            "tag: the phone holds {MAX_TAGS_PER_PHONE} tags already, the most it may"
        )));
    }
    tx.prepare_cached("INSERT INTO tags (phone, tag, added_at) VALUES (?1, ?2, ?3)")
        .and_then(|mut stmt| stmt.execute((e164, tag, now_ms)))
        .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(true)
}

/// The stored tags of the phone `e164` (a seek of the primary key).
pub(crate) fn tags(conn: &Connection, e164: &str) -> StoreResult<BTreeSet<String>> {
    conn.prepare_cached("SELECT tag FROM tags WHERE phone = ?1")
        .and_then(|mut stmt| {
            stmt.query_map([e164], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(backend)
}
