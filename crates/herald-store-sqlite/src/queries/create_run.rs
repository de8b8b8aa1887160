//! `Runs::create_run`: insert once, keyed by the run id. A second submission changes nothing,
//! not even the audience hash: the run stays tied to the file it was created with. The one
//! exception is a run stored by schema 7 or older, without sender and campaign text: it adopts
//! the resubmission's, which is what makes it workable by any worker.

use herald_store::{NewRun, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

use crate::db::backend;

/// Records `run` created at `now` (unix seconds); `false` if the run id is taken.
pub(crate) fn create_run(conn: &mut Connection, run: &NewRun, now: i64) -> StoreResult<bool> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO runs (run_id, campaign, purpose, source, at_least_once, created_at,
                 audience_sha256, sender, campaign_text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
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
                run.sender.as_deref(),
                run.campaign_text.as_deref(),
            ))
        })
        .map_err(backend)?;
    if inserted == 0 {
        tx.prepare_cached(
            "UPDATE runs SET sender = ?2, campaign_text = ?3
             WHERE run_id = ?1 AND sender IS NULL AND campaign_text IS NULL",
        )
        .and_then(|mut stmt| {
            stmt.execute((
                run.run.as_str(),
                run.sender.as_deref(),
                run.campaign_text.as_deref(),
            ))
        })
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)?;
    Ok(inserted == 1)
}
