//! `Fires::put_campaign`: one `BEGIN IMMEDIATE` transaction reads the stored hash and inserts,
//! replaces or leaves the row, so two schedulers loading one new version answer `Added` once.

use herald_store::{CampaignVersion, StoreResult, VersionChange};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::codec::{corrupt, millis};
use crate::db::backend;
use crate::fires::is_hash;

/// Makes `version` the current version of its campaign unless its hash is already stored.
pub(crate) fn put_campaign(
    conn: &mut Connection,
    version: &CampaignVersion,
) -> StoreResult<VersionChange> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let stored: Option<String> = tx
        .prepare_cached("SELECT hash FROM campaigns WHERE campaign = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([&version.campaign], |row| row.get(0))
                .optional()
        })
        .map_err(backend)?;
    let change = match stored {
        Some(hash) if hash == version.hash => return Ok(VersionChange::Unchanged),
        Some(hash) if !is_hash(&hash) => {
            return Err(corrupt(
                format!("campaigns/{}", version.campaign),
                "hash is not 64 lowercase hex digits",
            ));
        }
        Some(previous_hash) => VersionChange::Replaced { previous_hash },
        None => VersionChange::Added,
    };
    tx.prepare_cached(
        "INSERT INTO campaigns (campaign, hash, text, source, stored_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (campaign) DO UPDATE SET
             hash = excluded.hash, text = excluded.text, source = excluded.source,
             stored_at = excluded.stored_at",
    )
    .and_then(|mut stmt| {
        stmt.execute((
            &version.campaign,
            &version.hash,
            &version.text,
            &version.source,
            millis(version.stored_at),
        ))
    })
    .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(change)
}
