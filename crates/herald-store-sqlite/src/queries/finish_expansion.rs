//! `Runs::finish_expansion`: the audience size, once known.

use herald_core::RunId;
use herald_store::StoreResult;
use rusqlite::Connection;

use super::no_run;
use crate::db::backend;

/// Records that `run` has `total` deliveries.
pub(crate) fn finish_expansion(conn: &mut Connection, run: &RunId, total: u64) -> StoreResult<()> {
    let total = i64::try_from(total).unwrap_or(i64::MAX);
    let changed = conn
        .prepare_cached("UPDATE runs SET total = ?2 WHERE run_id = ?1")
        .and_then(|mut stmt| stmt.execute((run.as_str(), total)))
        .map_err(backend)?;
    if changed == 0 {
        return Err(no_run(run.as_str()));
    }
    Ok(())
}
