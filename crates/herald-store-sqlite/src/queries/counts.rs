//! `Deliveries::counts`: one run's numbers for `status`, the admin API and the progress bar.
//!
//! The numbers by state, reason and code come from `run_counts`, which every write that inserts a
//! delivery or changes its state keeps in step within its own transaction (`crate::tally`), so
//! reading them costs the same at a million deliveries as at ten. The next wave is read from the queue index.

use std::collections::BTreeMap;

use herald_core::RunId;
use herald_store::{RunCounts, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension};

use super::no_run;
use crate::codec::{corrupt, instant};
use crate::db::backend;

/// How long after the earliest queued delivery still counts as its wave.
const WAVE_SECS: i64 = 3600;

/// Counts by state, skip reason and failure code of `run`, and its next wave.
pub(crate) fn counts(conn: &mut Connection, run: &RunId) -> StoreResult<RunCounts> {
    let key = || format!("runs/{run}");
    let id: i64 = conn
        .prepare_cached("SELECT id FROM runs WHERE run_id = ?1")
        .and_then(|mut stmt| stmt.query_row([run.as_str()], |row| row.get(0)).optional())
        .map_err(backend)?
        .ok_or_else(|| no_run(run.as_str()))?;
    let groups = conn
        .prepare_cached("SELECT state, label, n FROM run_counts WHERE run = ?1 AND n <> 0")
        .and_then(|mut stmt| {
            stmt.query_map([id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    let mut counts = RunCounts::default();
    for (state, label, n) in groups {
        let n =
            u64::try_from(n).map_err(|_| corrupt(key(), format!("negative count of {state}")))?;
        let rung = label.clone();
        let bucket = |map: &mut BTreeMap<String, u64>| *map.entry(label).or_default() += n;
        match state.as_str() {
            "queued" => counts.queued += n,
            "sending" => counts.sending += n,
            // Sent rows are counted under their rung (`queries/status.rs`): '' (accepted),
            // `delivered`, `read`; read implies delivered.
            "sent" => {
                counts.sent += n;
                match rung.as_str() {
                    "delivered" => counts.delivered += n,
                    "read" => {
                        counts.delivered += n;
                        counts.read += n;
                    }
                    _ => {}
                }
            }
            "failed" => bucket(&mut counts.failed),
            "unknown" => counts.unknown += n,
            "expired" => counts.expired += n,
            "skipped" => bucket(&mut counts.skipped),
            other => {
                return Err(corrupt(
                    key(),
                    format!("a delivery has unknown state {other:?}"),
                ));
            }
        }
    }
    counts.next_wave = next_wave(conn, id)?
        .map(|(first, n)| Ok::<_, StoreError>((instant(first, &key)?, n)))
        .transpose()?;
    Ok(counts)
}

/// The earliest due instant of the run's queued deliveries and how many fall in the hour from it.
fn next_wave(conn: &Connection, run: i64) -> StoreResult<Option<(i64, u64)>> {
    let first: Option<i64> = conn
        .prepare_cached(
            "SELECT due_at FROM deliveries INDEXED BY deliveries_due
             WHERE state = 'queued' AND run = ?1 ORDER BY due_at LIMIT 1",
        )
        .and_then(|mut stmt| stmt.query_row([run], |row| row.get(0)).optional())
        .map_err(backend)?;
    let Some(first) = first else {
        return Ok(None);
    };
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM deliveries INDEXED BY deliveries_due
             WHERE state = 'queued' AND due_at >= ?2 AND due_at < ?3 AND run = ?1",
        )
        .and_then(|mut stmt| stmt.query_row((run, first, first + WAVE_SECS), |row| row.get(0)))
        .map_err(backend)?;
    Ok(Some((first, n as u64)))
}
