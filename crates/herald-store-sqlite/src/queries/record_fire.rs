//! `Fires::record_fire`: one `BEGIN IMMEDIATE` transaction inserts the record unless its
//! (campaign, fire) is taken, reads back the stored one, and drops the campaign's records beyond
//! the newest [`FIRES_KEPT`]. SQLite's write lock serializes every connection's calls, so of
//! several schedulers recording one fire exactly one inserts, and all read back its record.

use herald_store::{FIRES_KEPT, FireRecord, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

use crate::db::backend;
use crate::queries::fire_row::{COLUMNS, FireRow};

/// Stores `record` unless its fire is recorded; whether it was, and the stored record.
pub(crate) fn record_fire(
    conn: &mut Connection,
    record: &FireRecord,
) -> StoreResult<(bool, FireRecord)> {
    let row = FireRow::new(record);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO fires (campaign, fire, kind, run, hash, recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut stmt| {
            stmt.execute((
                &row.campaign,
                row.fire,
                &row.kind,
                &row.run,
                &row.hash,
                row.recorded_at,
            ))
        })
        .map_err(backend)?;
    let stored = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM fires WHERE campaign = ?1 AND fire = ?2"
        ))
        .and_then(|mut stmt| stmt.query_row((&row.campaign, row.fire), FireRow::read))
        .map_err(backend)?
        .decode()?;
    if inserted == 1 {
        prune(&tx, &row.campaign)?;
    }
    tx.commit().map_err(backend)?;
    Ok((inserted == 1, stored))
}

/// The prune: `?1` the campaign, `?2` how many of its newest records stay, minus one.
const PRUNE: &str = "DELETE FROM fires WHERE campaign = ?1 AND fire < (
    SELECT fire FROM fires WHERE campaign = ?1 ORDER BY fire DESC LIMIT 1 OFFSET ?2
)";

/// Drops the records of `campaign` older than its newest [`FIRES_KEPT`] (after one insert, at
/// most one row: the oldest, possibly the one just inserted), found by one walk of the primary
/// key that stops at the bound.
fn prune(tx: &Connection, campaign: &str) -> StoreResult<()> {
    let offset = i64::try_from(FIRES_KEPT - 1).unwrap_or(i64::MAX);
    tx.prepare_cached(PRUNE)
        .and_then(|mut stmt| stmt.execute((campaign, offset)))
        .map_err(backend)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::PRUNE;

    /// The prune seeks the campaign's records in the primary key, both to find the bound and to
    /// delete below it: its cost is the kept records of one campaign, never the table.
    #[test]
    fn the_prune_walks_one_campaign_in_the_primary_key() {
        let plan = crate::queries::query_plan(PRUNE, ("weekly", 999));
        let joined = plan.join("\n");
        let seeks = plan
            .iter()
            .filter(|step| step.starts_with("SEARCH fires USING PRIMARY KEY (campaign=?"))
            .count();
        assert_eq!(seeks, 2, "{joined}");
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN")),
            "{joined}"
        );
        assert!(!joined.contains("TEMP B-TREE"), "{joined}");
    }
}
