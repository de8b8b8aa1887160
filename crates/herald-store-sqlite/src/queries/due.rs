//! `Deliveries::due`: the queue's read side.
//!
//! `INDEXED BY deliveries_due` pins the plan to the partial index of queued rows: SQLite refuses to
//! prepare the statement rather than fall back to a scan, so the cost of a call stays proportional
//! to `limit` however large the ledger grows. `CROSS JOIN` keeps the index as the outer loop (the
//! planner might otherwise start from the small runs table and sort every delivery of the run);
//! the run's state is checked per candidate with one primary-key lookup.

use chrono::{DateTime, Utc};
use herald_store::{Delivery, StoreResult, WorkScope};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::codec::{StoredSnapshot, delivery_key, instant, parse_key, secs};
use crate::db::backend;

/// The statement, public to the crate so a test can check its plan.
pub(crate) const SQL: &str =
    "SELECT r.run_id, d.recipient, d.due_at, d.attempts, d.scheduled_at, d.expires_at,
        d.phone, d.zone, d.locale, d.country, d.attributes, d.line, d.phone_region
 FROM deliveries AS d INDEXED BY deliveries_due
 CROSS JOIN runs AS r ON r.id = d.run
 WHERE d.state = 'queued' AND d.due_at <= ?1 AND r.state = 'active'
 ORDER BY d.due_at
 LIMIT ?2";

struct Stored {
    run: String,
    recipient: String,
    due_at: i64,
    attempts: i64,
    scheduled_at: Option<i64>,
    expires_at: Option<i64>,
    snapshot: StoredSnapshot,
}

fn read(row: &Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        run: row.get(0)?,
        recipient: row.get(1)?,
        due_at: row.get(2)?,
        attempts: row.get(3)?,
        scheduled_at: row.get(4)?,
        expires_at: row.get(5)?,
        snapshot: StoredSnapshot {
            phone: row.get(6)?,
            zone: row.get(7)?,
            locale: row.get(8)?,
            country: row.get(9)?,
            attributes: row.get(10)?,
            line: row.get(11)?,
            phone_region: row.get(12)?,
        },
    })
}

/// Up to `limit` queued deliveries of active runs due at or before `now`, earliest first.
pub(crate) fn due(
    conn: &mut Connection,
    now: DateTime<Utc>,
    limit: usize,
) -> StoreResult<Vec<Delivery>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let stored = conn
        .prepare_cached(SQL)
        .and_then(|mut stmt| {
            stmt.query_map((secs(now), limit), read)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    stored.into_iter().map(decode).collect()
}

/// The same query restricted to one run (`due_in` merges the runs it is given).
const SQL_IN_RUN: &str =
    "SELECT r.run_id, d.recipient, d.due_at, d.attempts, d.scheduled_at, d.expires_at,
        d.phone, d.zone, d.locale, d.country, d.attributes, d.line, d.phone_region
 FROM deliveries AS d INDEXED BY deliveries_due
 CROSS JOIN runs AS r ON r.id = d.run
 WHERE d.state = 'queued' AND d.due_at <= ?1 AND r.state = 'active' AND r.run_id = ?3
 ORDER BY d.due_at
 LIMIT ?2";

/// The runs `scope_runs` looks at: a sender's active runs with something queued, read from
/// the kept counts (a seek per run) rather than from the queue.
const SCOPE_RUNS_SQL: &str =
    "SELECT run_id FROM runs AS r WHERE r.sender = ?1 AND r.state = 'active'
   AND EXISTS (SELECT 1 FROM run_counts AS c
               WHERE c.run = r.id AND c.state = 'queued' AND c.n > 0)";

/// The active runs of `scope` with queued deliveries: its sender's (a run without a sender,
/// stored by schema 7 and not submitted since, is nobody's), only the named ones when it names
/// some, and none while the sender is blocked.
pub(crate) fn scope_runs(conn: &Connection, scope: &WorkScope) -> StoreResult<Vec<String>> {
    let blocked = conn
        .prepare_cached("SELECT block_code IS NOT NULL FROM senders WHERE name = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([&scope.sender], |row| row.get::<_, bool>(0))
                .optional()
        })
        .map_err(backend)?;
    if blocked == Some(true) {
        return Ok(Vec::new());
    }
    let runs = conn
        // Only runs with something queued (their kept counts say so): a long-lived store holds
        // every drained run of the sender, still `active`, and each run here costs a query.
        .prepare_cached(SCOPE_RUNS_SQL)
        .and_then(|mut stmt| {
            stmt.query_map([&scope.sender], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    Ok(match &scope.runs {
        None => runs,
        Some(named) => runs
            .into_iter()
            .filter(|run| named.iter().any(|n| n.as_str() == run))
            .collect(),
    })
}

/// Due deliveries of the given runs only, earliest first: a worker works its scope's runs and
/// never another sender's deliveries.
pub(crate) fn due_in(
    conn: &Connection,
    runs: &[String],
    now: DateTime<Utc>,
    limit: usize,
) -> StoreResult<Vec<Delivery>> {
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stored = Vec::new();
    for run in runs {
        let rows = conn
            .prepare_cached(SQL_IN_RUN)
            .and_then(|mut stmt| {
                stmt.query_map((secs(now), limit_sql, run.as_str()), read)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(backend)?;
        stored.extend(rows);
    }
    stored.sort_by_key(|s| s.due_at);
    stored.truncate(limit);
    stored.into_iter().map(decode).collect()
}

/// The earliest due instant among the given runs' queued deliveries.
pub(crate) fn next_due_in(
    conn: &Connection,
    runs: &[String],
) -> StoreResult<Option<DateTime<Utc>>> {
    let mut first: Option<i64> = None;
    for run in runs {
        let at: Option<i64> = conn
            .prepare_cached(
                "SELECT d.due_at FROM deliveries AS d INDEXED BY deliveries_due
                 CROSS JOIN runs AS r ON r.id = d.run
                 WHERE d.state = 'queued' AND r.state = 'active' AND r.run_id = ?1
                 ORDER BY d.due_at LIMIT 1",
            )
            .and_then(|mut stmt| stmt.query_row([run.as_str()], |row| row.get(0)).optional())
            .map_err(backend)?;
        first = match (first, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    first
        .map(|at| instant(at, &|| String::from("deliveries/next_due")))
        .transpose()
}

fn decode(stored: Stored) -> StoreResult<Delivery> {
    let key = || delivery_key(&stored.run, &stored.recipient);
    let parsed = parse_key(&stored.run, &stored.recipient)?;
    // Only a recipient's own key is ever queued: duplicates and broken rows start ended.
    let id = parsed.recipient.audience_id().cloned().ok_or_else(|| {
        crate::codec::corrupt(
            key(),
            "a queued delivery under a duplicate's or broken row's key",
        )
    })?;
    let due_at = instant(stored.due_at, &key)?;
    Ok(Delivery {
        recipient: stored.snapshot.decode(id, &key)?,
        key: parsed,
        scheduled_at: match stored.scheduled_at {
            Some(at) => instant(at, &key)?,
            None => due_at,
        },
        expires_at: stored.expires_at.map(|at| instant(at, &key)).transpose()?,
        due_at,
        attempts: u32::try_from(stored.attempts)
            .map_err(|_| crate::codec::corrupt(key(), "invalid attempts"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::SQL;
    use crate::SqliteStores;

    /// The claim must be an index range seek: a scan would make draining a million rows quadratic,
    /// which is why apalis-sqlite is not used (dependencies.md).
    #[test]
    fn the_due_query_seeks_the_partial_index() {
        let plan = crate::queries::query_plan(SQL, (0, 100));
        let joined = plan.join("\n");
        assert!(
            plan.iter()
                .any(|step| step.contains("SEARCH d USING INDEX deliveries_due (due_at<?)")),
            "{joined}"
        );
        assert!(
            plan.iter()
                .any(|step| step.contains("SEARCH r USING INTEGER PRIMARY KEY")),
            "{joined}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN")),
            "{joined}"
        );
        assert!(!joined.contains("TEMP B-TREE"), "{joined}");
    }

    /// A drained run costs `due_in` nothing: whether a run has anything queued is a seek of its
    /// kept counts, never a read of the queue.
    #[test]
    fn the_scope_reads_the_kept_counts_by_key() {
        let plan = crate::queries::query_plan(super::SCOPE_RUNS_SQL, ["main"]);
        let joined = plan.join("\n");
        assert!(
            plan.iter()
                .any(|step| step.contains("SEARCH c EXISTS USING PRIMARY KEY (run=? AND state=?)")),
            "{joined}"
        );
        assert!(!joined.contains("deliveries"), "{joined}");
    }

    /// With the query planner stability guarantee on, rebinding `now` reuses the prepared plan;
    /// without it SQLite re-prepared this statement on every call (10-20 us each).
    #[test]
    fn the_due_query_is_not_reprepared_per_call() {
        let dir = tempfile::tempdir().unwrap();
        let stores = SqliteStores::open(&dir.path().join("herald.db")).unwrap();
        let reprepared = stores
            .db()
            .call_now(|conn| {
                for now in 0..5 {
                    let mut stmt = conn.prepare_cached(SQL).unwrap();
                    stmt.query_map((now, 100 + now), |_| Ok(()))
                        .unwrap()
                        .for_each(drop);
                }
                let stmt = conn.prepare_cached(SQL).unwrap();
                Ok(stmt.get_status(rusqlite::StatementStatus::RePrepare))
            })
            .unwrap();
        assert_eq!(reprepared, 0);
    }
}
