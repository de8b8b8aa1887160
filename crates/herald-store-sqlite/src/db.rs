//! The shared connection and the one edge where rusqlite errors become [`StoreError`]s.
//!
//! One connection behind a mutex, not a pool: SQLite allows one writer at a time anyway, and almost
//! every port call writes. Queries run on tokio's blocking pool so that waiting for the disk or for
//! the lock never blocks an async worker thread.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_store::{Durability, StoreError, StoreResult, StoreTime};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode};

/// A handle on the store's connection; cheap to clone.
#[derive(Clone)]
pub(crate) struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) the file and applies the connection settings.
    pub(crate) fn open(path: &Path, durability: Durability) -> StoreResult<Self> {
        let conn = Connection::open(path).map_err(backend)?;
        configure(&conn, durability)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic inside a query drops its `Transaction`, which rolls back, so the connection
            // behind a poisoned lock is still consistent and can be used.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|join| StoreError::Backend(Box::new(join)))?
    }

    /// Runs `f` with the connection on the current thread (for `open`, before any runtime is
    /// needed).
    pub(crate) fn call_now<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }
}

/// The connection settings, each for a reason:
/// - WAL: readers (`herald status` in another process) never block the run, nor it them, and a
///   commit appends to the log instead of rewriting pages in place.
/// - `synchronous = NORMAL` ([`Durability::ProcessCrash`], the default): in WAL mode a commit
///   survives a crash or kill of the process, which is what a resumed `herald run` relies on;
///   only an OS crash or power loss can drop the last commits (not corrupt the file). `FULL`
///   ([`Durability::PowerLoss`]) closes that gap at the price of an fsync per commit (a claim and
///   a finish per message), which is why it is the operator's choice, not the default.
/// - A 5 s busy timeout: another connection's short write turns into a wait, not an error; a
///   longer one into [`StoreError::Unavailable`].
/// - Foreign keys: no delivery can point at a missing run, no history entry at a missing delivery.
/// - 64 MiB of page cache: the queue and key indexes of a million deliveries stay in memory.
fn configure(conn: &Connection, durability: Durability) -> StoreResult<()> {
    conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(invalid(format!(
            "could not switch the journal to WAL (still {mode})"
        )));
    }
    let synchronous = match durability {
        Durability::ProcessCrash => "NORMAL",
        Durability::PowerLoss => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous};
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;"
    ))
    .map_err(backend)?;
    // Query planner stability: without it, the bundled SQLite (built with STAT4) marks statements
    // whose plan could depend on a bound value (ranges, ORDER BY, LIMIT ?, partial indexes) for a
    // re-prepare on every new binding, which cost 10-20 us per call, more than the query itself.
    // The plans here are pinned (INDEXED BY) and checked with EXPLAIN QUERY PLAN anyway.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(backend)?;
    // Every hot statement stays prepared; there are about twenty of them.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// The store's now: leases and rate slots are timed by it, never by a caller's `now`.
pub(crate) fn store_now(time: &StoreTime) -> DateTime<Utc> {
    match time {
        StoreTime::Backend => Utc::now(),
        StoreTime::Clock(clock) => clock.now(),
    }
}

/// Maps a rusqlite error: busy and locked are worth retrying, everything else is not.
pub(crate) fn backend(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(Box::new(error))
        }
        _ => StoreError::Backend(Box::new(error)),
    }
}

/// A caller error the ports have no variant for (e.g. a queued delivery without a phone).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Invalid(pub(crate) String);

/// Wraps [`Invalid`] as a backend error.
pub(crate) fn invalid(message: String) -> StoreError {
    StoreError::Backend(Box::new(Invalid(message)))
}

#[cfg(test)]
mod tests {
    use herald_store::{Durability, StoreTime};

    use crate::SqliteStores;

    fn synchronous(stores: &SqliteStores) -> i64 {
        stores
            .db()
            .call_now(|conn| {
                conn.query_row("PRAGMA synchronous", [], |row| row.get(0))
                    .map_err(super::backend)
            })
            .unwrap()
    }

    /// `durability = "power-loss"` is `synchronous = FULL` (2) on the connection every port
    /// uses; the default stays `NORMAL` (1).
    #[test]
    fn power_loss_durability_commits_with_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.db");
        let full =
            SqliteStores::open_durable(&path, StoreTime::Backend, Durability::PowerLoss).unwrap();
        assert_eq!(synchronous(&full), 2);
        drop(full);
        assert_eq!(synchronous(&SqliteStores::open(&path).unwrap()), 1);
    }
}
