//! `Runs::runs`: every run, newest first.

use herald_store::{RunRecord, StoreResult};
use rusqlite::Connection;

use super::run::{COLUMNS, StoredRun};
use crate::db::backend;

/// Every run, newest first (ties: the later created first).
pub(crate) fn runs(conn: &mut Connection) -> StoreResult<Vec<RunRecord>> {
    let stored = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM runs ORDER BY created_at DESC, id DESC"
        ))
        .and_then(|mut stmt| {
            stmt.query_map([], StoredRun::read)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    stored.into_iter().map(StoredRun::decode).collect()
}
