//! `Runs::create_run`: insert once, keyed by the run id.

use herald_store::{NewRun, StoreResult};
use rusqlite::Connection;

use crate::db::backend;

/// Records `run` created at `now` (unix seconds); `false` if the run id is taken.
pub(crate) fn create_run(conn: &mut Connection, run: &NewRun, now: i64) -> StoreResult<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO runs (run_id, campaign, purpose, source, at_least_once, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (run_id) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute((
                run.run.as_str(),
                run.campaign.as_str(),
                run.purpose.as_str(),
                run.source.as_str(),
                run.at_least_once,
                now,
            ))
        })
        .map_err(backend)?;
    Ok(inserted == 1)
}
