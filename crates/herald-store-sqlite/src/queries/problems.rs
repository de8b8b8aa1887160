//! `Fires::set_problem` and `Fires::problems`: the `campaign_problems` table.

use herald_store::{
    CampaignProblem, MAX_PROBLEM_BYTES, MAX_PROBLEMS, StoreError, StoreResult, cut_to,
};
use rusqlite::{Connection, params};

use crate::codec::{from_millis, millis};
use crate::db::backend;

/// Records (or with `None` clears) the problem of `source`; one transaction, so the bound on
/// the number of rows holds whoever writes at once.
pub(crate) fn set_problem(
    conn: &mut Connection,
    source: &str,
    problem: Option<&CampaignProblem>,
) -> StoreResult<()> {
    let tx = conn.transaction().map_err(backend)?;
    match problem {
        None => {
            tx.execute("DELETE FROM campaign_problems WHERE source = ?1", [source])
                .map_err(backend)?;
        }
        Some(problem) => {
            let (count, known): (i64, i64) = tx
                .query_row(
                    "SELECT COUNT(*), COALESCE(SUM(source = ?1), 0) FROM campaign_problems",
                    [source],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(backend)?;
            if known == 0 && count >= MAX_PROBLEMS as i64 {
                return Err(StoreError::Conflict(format!(
                    "{source}: {MAX_PROBLEMS} campaign files already have a recorded problem"
                )));
            }
            tx.execute(
                "INSERT INTO campaign_problems (source, diagnostics, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (source) DO UPDATE SET diagnostics = excluded.diagnostics, at = excluded.at",
                params![
                    source,
                    cut_to(&problem.diagnostics, MAX_PROBLEM_BYTES),
                    millis(problem.at)
                ],
            )
            .map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)
}

/// Every recorded problem, by source.
pub(crate) fn problems(conn: &Connection) -> StoreResult<Vec<CampaignProblem>> {
    let rows = conn
        .prepare_cached(
            "SELECT source, diagnostics, at FROM campaign_problems ORDER BY source LIMIT ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_map([MAX_PROBLEMS as i64], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    rows.into_iter()
        .map(|(source, diagnostics, at)| {
            let key = || format!("campaign_problems/{source}");
            let at = from_millis(at, &key)?;
            Ok(CampaignProblem {
                source,
                diagnostics,
                at,
            })
        })
        .collect()
}
