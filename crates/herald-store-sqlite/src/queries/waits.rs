//! `Deliveries::waits`: one run's queue by why it waits, for `status` and `run --until-idle`.
//!
//! A walk of the run's part of the queue index (the `deliveries_due` partial index holds exactly
//! the queued rows) grouped by (reason, due yet?). It costs a row lookup per queued delivery of
//! the run, which `status` can afford; the worker loop passes `before` and reads only the near
//! end of the index. The reason is whatever the last write that queued the delivery stored; a
//! paused run reports its whole queue as waiting for an operator.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::RunId;
use herald_store::{QueueWaits, RunState, StoreResult, WaitReason, Waiting};
use rusqlite::{Connection, OptionalExtension};

use super::no_run;
use crate::codec::{corrupt, instant, secs, secs_ceil};
use crate::db::backend;

/// Queued deliveries of a run due before `?3`, grouped by reason and by whether they are due at
/// `?2`.
const SQL: &str = "SELECT d.wait_reason, d.due_at <= ?2, count(*), min(d.due_at)
 FROM deliveries AS d INDEXED BY deliveries_due
 WHERE d.state = 'queued' AND d.due_at < ?3 AND d.run = ?1
 GROUP BY 1, 2";

/// The queue of `run` as of `now`, looking only at deliveries due before `before` if given.
pub(crate) fn waits(
    conn: &mut Connection,
    run: &RunId,
    now: DateTime<Utc>,
    before: Option<DateTime<Utc>>,
) -> StoreResult<QueueWaits> {
    let key = || format!("runs/{run}");
    let (id, state): (i64, String) = conn
        .prepare_cached("SELECT id, state FROM runs WHERE run_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([run.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(backend)?
        .ok_or_else(|| no_run(run.as_str()))?;
    let paused = state == RunState::Paused.as_str();
    let before = before.map_or(i64::MAX, secs_ceil);
    let groups = conn
        .prepare_cached(SQL)
        .and_then(|mut stmt| {
            stmt.query_map((id, secs(now), before), |row| {
                Ok((
                    row.get::<_, Option<String>>(0)?,
                    row.get::<_, bool>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    let mut waits = QueueWaits {
        due: 0,
        waiting: BTreeMap::new(),
    };
    for (reason, due, count, first) in groups {
        let count = u64::try_from(count).map_err(|_| corrupt(key(), "negative count"))?;
        let first = instant(first, &key)?;
        let reason = match (paused, due, reason) {
            (true, _, _) => WaitReason::Pause,
            // Queued without a reason: nothing holds it back, so it is due whatever its instant.
            (false, true, _) | (false, false, None) => {
                waits.due += count;
                continue;
            }
            (false, false, Some(name)) => WaitReason::parse(&name)
                .ok_or_else(|| corrupt(key(), format!("unknown wait reason {name:?}")))?,
        };
        let entry = waits.waiting.entry(reason).or_insert(Waiting {
            count: 0,
            next: first,
        });
        entry.count += count;
        entry.next = entry.next.min(first);
    }
    Ok(waits)
}

#[cfg(test)]
mod tests {
    use super::SQL;

    /// The walk is a range of the queue index, never a scan of the ledger: `before` bounds it
    /// for the worker loop, and the terminal rows of a finished million never enter it.
    #[test]
    fn the_waits_query_walks_the_queue_index() {
        let plan = crate::queries::query_plan(SQL, (1, 0, 100));
        let joined = plan.join("\n");
        assert!(
            plan.iter()
                .any(|step| step.contains("SEARCH d USING INDEX deliveries_due (due_at<?)")),
            "{joined}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN")),
            "{joined}"
        );
    }
}
