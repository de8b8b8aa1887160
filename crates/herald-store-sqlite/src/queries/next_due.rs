//! `Deliveries::next_due`: how long the worker may sleep. The first entry of the queue index whose
//! run is active; the same plan as `due` with a limit of one.

use chrono::{DateTime, Utc};
use herald_store::StoreResult;
use rusqlite::{Connection, OptionalExtension};

use crate::codec::instant;
use crate::db::backend;

/// The earliest due instant of a queued delivery of an active run.
pub(crate) fn next_due(conn: &mut Connection) -> StoreResult<Option<DateTime<Utc>>> {
    let first: Option<i64> = conn
        .prepare_cached(
            "SELECT d.due_at FROM deliveries AS d INDEXED BY deliveries_due
             CROSS JOIN runs AS r ON r.id = d.run
             WHERE d.state = 'queued' AND r.state = 'active'
             ORDER BY d.due_at LIMIT 1",
        )
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
        .map_err(backend)?;
    first
        .map(|at| instant(at, &|| String::from("deliveries/next_due")))
        .transpose()
}
