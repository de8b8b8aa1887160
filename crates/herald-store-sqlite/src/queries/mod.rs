//! One file per port operation, each a plain function over a `&mut Connection` that runs on the
//! blocking pool. Write operations open `BEGIN IMMEDIATE` transactions: taking the write lock up
//! front means a concurrent writer waits on the busy timeout instead of failing halfway with an
//! unresolvable lock upgrade.
//!
//! Deliveries are addressed by their run's integer id plus the recipient (one seek of the
//! `deliveries_key` index); [`RunIds`] looks each run up once per transaction rather than once per
//! row.

pub(crate) mod append_consent;
pub(crate) mod apply;
pub(crate) mod campaign_row;
pub(crate) mod claim;
pub(crate) mod consent_events;
pub(crate) mod counts;
pub(crate) mod create_run;
pub(crate) mod defer;
pub(crate) mod due;
pub(crate) mod finish;
pub(crate) mod finish_expansion;
pub(crate) mod fire_row;
pub(crate) mod history;
pub(crate) mod in_flight;
pub(crate) mod insert_batch;
pub(crate) mod lease;
pub(crate) mod next_due;
pub(crate) mod problems;
pub(crate) mod put_campaign;
pub(crate) mod record_fire;
pub(crate) mod requeue;
pub(crate) mod run;
pub(crate) mod runs;
pub(crate) mod sender_row;
pub(crate) mod senders;
pub(crate) mod set_run_state;
pub(crate) mod status;
pub(crate) mod tags;
pub(crate) mod waits;

use std::collections::HashMap;

use herald_core::RunId;
use herald_store::{DeliveryKey, RunState, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension};

use crate::db::backend;

/// Why an update of `key` that required state `expected` changed nothing: the delivery does not
/// exist ([`StoreError::NotFound`]) or is in another state or claim ([`StoreError::Conflict`]).
pub(crate) fn unchanged(conn: &Connection, key: &DeliveryKey, expected: &str) -> StoreError {
    let state = conn
        .prepare_cached(
            "SELECT d.state FROM deliveries AS d JOIN runs AS r ON r.id = d.run
             WHERE r.run_id = ?1 AND d.recipient = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row((key.run.as_str(), key.recipient.to_string()), |row| {
                row.get::<_, String>(0)
            })
            .optional()
        });
    match state {
        Ok(None) => StoreError::NotFound(format!("delivery {}/{}", key.run, key.recipient)),
        Ok(Some(state)) => StoreError::Conflict(format!(
            "delivery {}/{} is {state}, not {expected}",
            key.run, key.recipient
        )),
        Err(e) => backend(e),
    }
}

/// The error for a run that does not exist.
pub(crate) fn no_run(run: &str) -> StoreError {
    StoreError::NotFound(format!("run {run}"))
}

/// A run's row id and whether it is active, looked up once per transaction: a write transaction
/// holds the lock, so neither can change under it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunRow {
    pub(crate) id: i64,
    pub(crate) active: bool,
    pub(crate) cancelled: bool,
}

/// The runs a transaction has addressed so far, by their text id.
#[derive(Debug, Default)]
pub(crate) struct RunIds(HashMap<String, Option<RunRow>>);

impl RunIds {
    /// The run `run`, or `None` if there is no such run.
    pub(crate) fn get(&mut self, tx: &Connection, run: &RunId) -> StoreResult<Option<RunRow>> {
        if let Some(found) = self.0.get(run.as_str()) {
            return Ok(*found);
        }
        let found = tx
            .prepare_cached("SELECT id, state FROM runs WHERE run_id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([run.as_str()], |row| {
                    let state = row.get::<_, String>(1)?;
                    Ok(RunRow {
                        id: row.get(0)?,
                        active: state == RunState::Active.as_str(),
                        cancelled: state == RunState::Cancelled.as_str(),
                    })
                })
                .optional()
            })
            .map_err(backend)?;
        self.0.insert(run.as_str().to_owned(), found);
        Ok(found)
    }
}

/// Runs `read` inside one read transaction. Outside a transaction every statement is its own,
/// and each takes and releases the file's shared lock (several `fcntl` calls): for the hundred
/// per-phone lookups of a worker step that was a tenth of the drain. One transaction also gives
/// the lookups one consistent snapshot.
pub(crate) fn in_one_read<T>(
    conn: &mut Connection,
    read: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let tx = conn.transaction().map_err(backend)?;
    let result = read(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(result)
}

/// The steps of SQLite's plan for `sql` with `params`, on a new store file: the queries whose
/// speed depends on an index pin it with a test over these lines.
#[cfg(test)]
pub(crate) fn query_plan(sql: &str, params: impl rusqlite::Params) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let stores = crate::SqliteStores::open(&dir.path().join("herald.db")).unwrap();
    let sql = format!("EXPLAIN QUERY PLAN {sql}");
    stores
        .db()
        .call_now(move |conn| {
            let mut stmt = conn.prepare(&sql).unwrap();
            let rows = stmt
                .query_map(params, |row| row.get::<_, String>(3))
                .unwrap();
            Ok(rows.map(Result::unwrap).collect())
        })
        .unwrap()
}
