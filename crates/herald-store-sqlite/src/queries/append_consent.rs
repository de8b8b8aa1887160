//! `Consents::append`: the consent log's only write. The table's primary key is the event's
//! identity, so `ON CONFLICT DO NOTHING` makes re-imports harmless and the count returned is the
//! number of events that are new.

use herald_store::StoreResult;
use rusqlite::{Connection, TransactionBehavior};

use crate::db::backend;

/// A consent event encoded for its row.
pub(crate) struct Row {
    pub(crate) channel: String,
    pub(crate) phone: String,
    pub(crate) occurred_at: i64,
    pub(crate) kind: &'static str,
    pub(crate) scope: &'static str,
    pub(crate) source: String,
    pub(crate) proof: Option<String>,
}

/// Appends `rows` recorded at `now` (unix seconds) in one transaction; returns how many were new.
pub(crate) fn append_consent(conn: &mut Connection, rows: &[Row], now: i64) -> StoreResult<u64> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut inserted = 0u64;
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO consents (channel, phone, occurred_at, kind, scope, source, proof, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT DO NOTHING",
            )
            .map_err(backend)?;
        for row in rows {
            inserted += insert
                .execute((
                    row.channel.as_str(),
                    row.phone.as_str(),
                    row.occurred_at,
                    row.kind,
                    row.scope,
                    row.source.as_str(),
                    row.proof.as_deref(),
                    now,
                ))
                .map_err(backend)? as u64;
        }
    }
    tx.commit().map_err(backend)?;
    Ok(inserted)
}
