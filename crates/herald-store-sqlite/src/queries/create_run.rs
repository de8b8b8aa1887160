//! `Runs::create_run`: insert once, keyed by the run id. A second submission changes nothing,
//! not even the audience hash: the run stays tied to the file it was created with.

use herald_store::{NewRun, StoreResult};
use rusqlite::Connection;

use crate::db::backend;

/// Records `run` created at `now` (unix seconds); `false` if the run id is taken.
pub(crate) fn create_run(conn: &mut Connection, run: &NewRun, now: i64) -> StoreResult<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO runs (run_id, campaign, purpose, source, at_least_once, created_at,
                 audience_sha256)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
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
                run.audience_sha256.map(|hash| hash.to_string()),
            ))
        })
        .map_err(backend)?;
    Ok(inserted == 1)
}
