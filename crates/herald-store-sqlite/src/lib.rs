//! Herald's embedded store: the [`herald_store`] ports on one SQLite file, for `herald run`.
//!
//! # Why SQLite, and why not apalis-sqlite
//! The embedded mode must need nothing installed, survive a crash or Ctrl-C and resume, and drain
//! a million deliveries at a cost per job that does not grow with the backlog. apalis-sqlite's
//! drain is quadratic (see `shared/dependencies.md`), so the queue is this crate's own: the
//! deliveries table is queue and ledger at once, the queue being a partial index of the queued
//! rows ordered by due instant. A claim ([`herald_store::Deliveries::claim`]) is one `BEGIN
//! IMMEDIATE` transaction per group: it re-checks what the worker's decision saw (run state,
//! sender throttle and block, consent log, send history), admits the phone to the sender's tier,
//! hands out the sender's next rate slot and marks the delivery `sending` under the worker's
//! lease, stamping `sent_at`, the send history frequency caps count. SQLite's write lock
//! serializes claims of every connection to the file, so several worker processes on one file
//! share the rate, the tier, the caps and the sender's state exactly.
//!
//! # Store time
//! Leases and slots are timed by the store's [`StoreTime`]: the system clock of the process
//! ([`SqliteStores::open`]) or a caller's clock ([`SqliteStores::open_with`], for tests). Every
//! process on one file must therefore share a clock, which processes on one machine do.
//!
//! # Layout
//! - [`SqliteStores`]: opens the file, applies the migrations, hands out the ports.
//! - [`SqliteFeedback`]: provider statuses on the ladder, early reports, the message-id index
//!   and stored tags (`herald_store::Feedback`).
//! - [`SqliteFires`]: recurring campaigns' current versions and their fire records, each fire
//!   recorded once (`herald_store::Fires`).
//! - `queries/`: one file per port operation, SQL inline.
//! - `tally`: the `run_counts` changes of a write transaction, applied once at its end.
//! - `migrations/`: the schema, versioned with `PRAGMA user_version`.
//! - [`RunLock`]: the lock an older herald's `run` holds, which an upgrade waits for.

mod codec;
mod db;
mod feedback;
mod fires;
mod location;
mod lock;
mod migrations;
mod ports;
mod queries;
mod senders;
mod tally;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use herald_store::{Durability, StoreResult, StoreTime, Stores};

pub use feedback::SqliteFeedback;
pub use fires::SqliteFires;
pub use lock::RunLock;
pub use ports::{SqliteConsents, SqliteDeliveries, SqliteRuns};
pub use senders::SqliteSenders;

use db::Db;

/// The SQLite-backed ports over one database file, sharing one connection.
pub struct SqliteStores {
    path: PathBuf,
    time: StoreTime,
    runs: SqliteRuns,
    deliveries: SqliteDeliveries,
    consents: SqliteConsents,
    senders: SqliteSenders,
    feedback: SqliteFeedback,
    fires: SqliteFires,
}

impl SqliteStores {
    /// Opens the database at `path`, creating the file and its schema if needed and migrating an
    /// older one. Opening does not lock out other processes: read-only commands (`status`,
    /// `consent show`) and other workers open the same file while a run works on it (claims
    /// serialize in SQLite's write lock). Timed by the system clock: every process sharing the
    /// file must share that clock, which processes of one machine do.
    ///
    /// Upgrading an existing file waits for no one: it fails with
    /// [`herald_store::StoreError::Conflict`] while a run holds the file's lock, since that run is
    /// an older herald (a current one would have upgraded the file itself) whose writes assume
    /// the old schema (migration 4, for one, hands the counts over from a trigger to the writers).
    ///
    /// A location that cannot be used (a directory, a file that is not a database, no
    /// permission) is [`herald_store::StoreError::Unusable`]; every error names the path.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with(path, StoreTime::Backend)
    }

    /// [`SqliteStores::open`] timed by `time`: leases and rate slots are measured on it
    /// ([`StoreTime::Backend`] is the system clock).
    pub fn open_with(path: &Path, time: StoreTime) -> StoreResult<Self> {
        Self::open_durable(path, time, Durability::ProcessCrash)
    }

    /// [`SqliteStores::open_with`] with the durability asked for: [`Durability::PowerLoss`]
    /// commits with `synchronous = FULL` (an fsync per commit), so a claim also survives an OS
    /// crash; the default survives the crash of any process.
    pub fn open_durable(path: &Path, time: StoreTime, durability: Durability) -> StoreResult<Self> {
        Self::open_at(path, time, durability).map_err(|error| location::at(path, error))
    }

    fn open_at(path: &Path, time: StoreTime, durability: Durability) -> StoreResult<Self> {
        let db = Db::open(path, durability)?;
        let version = db.call_now(|conn| migrations::user_version(conn))?;
        let upgrading = version > 0 && version < migrations::SCHEMA_VERSION;
        let _no_run = upgrading
            .then(|| RunLock::acquire(path))
            .transpose()
            .map_err(|e| match e {
                herald_store::StoreError::Conflict(_) => {
                    herald_store::StoreError::Conflict(format!(
                        "{} has schema version {version} and a herald run is using it; this \
                         herald would upgrade it to version {}: let that run finish or stop it \
                         first",
                        path.display(),
                        migrations::SCHEMA_VERSION
                    ))
                }
                other => other,
            })?;
        db.call_now(migrations::migrate)?;
        Ok(Self {
            path: path.to_owned(),
            runs: SqliteRuns::new(db.clone()),
            deliveries: SqliteDeliveries::new(db.clone(), time.clone()),
            consents: SqliteConsents::new(db.clone()),
            senders: SqliteSenders::new(db.clone(), time.clone()),
            feedback: SqliteFeedback::new(db.clone()),
            fires: SqliteFires::new(db),
            time,
        })
    }

    /// Takes the run lock of this file (an advisory lock on `<path>.lock`) for as long as the
    /// returned guard lives. Fails at once with [`herald_store::StoreError::Conflict`] while
    /// another process holds it. The OS releases it if the process dies. Workers of schema 8 or
    /// newer need no lock to share the file (claims serialize in SQLite); what still needs it is
    /// the upgrade guard above: a herald of schema 7 or older takes it for its whole run.
    pub fn lock_exclusive(&self) -> StoreResult<RunLock> {
        RunLock::acquire(&self.path)
            .map_err(|error| location::at(&lock::lock_path(&self.path), error))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the file, `PRAGMA user_version` (for `herald status` and support).
    pub fn schema_version(&self) -> StoreResult<i64> {
        self.runs
            .db()
            .call_now(|conn| migrations::user_version(conn))
    }

    #[cfg(test)]
    fn db(&self) -> &Db {
        self.runs.db()
    }
}

impl Stores for SqliteStores {
    type Runs = SqliteRuns;
    type Deliveries = SqliteDeliveries;
    type Consents = SqliteConsents;
    type Senders = SqliteSenders;
    type Feedback = SqliteFeedback;
    type Fires = SqliteFires;

    fn fires(&self) -> &SqliteFires {
        &self.fires
    }

    fn feedback(&self) -> &SqliteFeedback {
        &self.feedback
    }

    fn senders(&self) -> &SqliteSenders {
        &self.senders
    }

    async fn now(&self) -> StoreResult<DateTime<Utc>> {
        Ok(db::store_now(&self.time))
    }

    fn runs(&self) -> &SqliteRuns {
        &self.runs
    }

    fn deliveries(&self) -> &SqliteDeliveries {
        &self.deliveries
    }

    fn consents(&self) -> &SqliteConsents {
        &self.consents
    }
}
