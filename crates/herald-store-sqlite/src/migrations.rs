//! The schema, versioned with `PRAGMA user_version` (a header field of the file: no extra table,
//! and readable before any table exists).
//!
//! Each migration runs in its own `BEGIN IMMEDIATE` transaction that also bumps the version, and
//! the version is read again inside it, so two processes opening a new file at once apply each
//! migration exactly once.

use herald_store::{StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

use crate::db::backend;

/// The migrations in order; the version after applying `MIGRATIONS[i]` is `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_phone_region.sql"),
    include_str!("../migrations/0003_run_state_reason.sql"),
    include_str!("../migrations/0004_counts_per_transaction.sql"),
    include_str!("../migrations/0005_history_in_the_ledger.sql"),
    include_str!("../migrations/0006_audience_hash.sql"),
    include_str!("../migrations/0007_wait_reason.sql"),
    include_str!("../migrations/0008_claims_and_senders.sql"),
    include_str!("../migrations/0009_feedback.sql"),
    include_str!("../migrations/0010_fires.sql"),
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the file up to [`SCHEMA_VERSION`]. A file written by a newer Herald is refused rather
/// than half understood.
pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let target = index as i64 + 1;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let current = user_version(&tx)?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::Conflict(format!(
                "the database has schema version {current}, newer than this herald's {SCHEMA_VERSION}; upgrade herald"
            )));
        }
        if current < target {
            tx.execute_batch(sql).map_err(backend)?;
            tx.execute_batch(&format!("PRAGMA user_version = {target}"))
                .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

/// The file's schema version (0 for a new file).
pub(crate) fn user_version(conn: &Connection) -> StoreResult<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(backend)
}
