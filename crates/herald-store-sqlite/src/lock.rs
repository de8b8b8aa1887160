//! One `herald run` per SQLite file (design §4).
//!
//! SQLite's own locks protect single transactions, not a run: two `herald run`s on one file would
//! both expand, both work the queue and fight over the rate limit. An OS advisory lock on a file
//! beside the database is held for the whole run and released by the OS when the process dies, so
//! a crash never leaves a stale lock behind (a pid file would). It is a separate file because
//! locking the database file itself would interfere with SQLite's own locking.

use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use herald_store::{StoreError, StoreResult};

/// Holds the run lock of one database file; dropping it releases the lock.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock on `<db>.lock`, or fails with [`StoreError::Conflict`] at once if another
    /// process (or another guard in this one) holds it.
    pub(crate) fn acquire(db: &Path) -> StoreResult<Self> {
        let path = lock_path(db);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { file, path }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Conflict(format!(
                "another herald run is using {}",
                db.display()
            ))),
            Err(TryLockError::Error(e)) => Err(StoreError::Backend(Box::new(e))),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the release immediate
        // even if something else still holds a duplicate of the descriptor. The file itself
        // stays: deleting it could let two processes lock two different inodes.
        let _ = self.file.unlock();
    }
}

pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let mut name = OsString::from(db.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}
