//! The one place the app names a store backend. Everything else holds an [`AppStores`]: the
//! ports (`Stores`) plus the little `status` and messages need to say which store they mean.
//!
//! Today there is one backend, SQLite. The Redis backend (next issue) adds its branch to
//! [`open_store`]; since `impl AppStores` is one type, it then returns an enum over both that
//! implements the ports by delegating, as [`crate::channel::AnyChannel`] does for channels.

use std::collections::BTreeMap;

use herald_store::{StoreTime, Stores};

use crate::{AppError, Settings};

/// A store as the app uses it: the ports, and what describes the store to a person.
pub trait AppStores: Stores {
    /// Where the store is, for messages and `status` (a file path, a URL without secrets).
    fn location(&self) -> String;
    /// The version of the stored schema, for `status` and support.
    fn schema_version(&self) -> Result<i64, AppError>;
}

impl AppStores for herald_store_sqlite::SqliteStores {
    fn location(&self) -> String {
        self.path().display().to_string()
    }

    fn schema_version(&self) -> Result<i64, AppError> {
        herald_store_sqlite::SqliteStores::schema_version(self).map_err(AppError::from)
    }
}

/// Opens the store the settings point at (the SQLite file, creating its directory), timed by
/// the backend's own clock.
pub fn open_store(
    settings: &Settings,
    env: &BTreeMap<String, String>,
) -> Result<impl AppStores + use<>, AppError> {
    open_store_with(settings, env, StoreTime::Backend)
}

/// [`open_store`] with the store's time given: in-process tests drive leases and rate slots
/// with the clock they drive the run with.
pub fn open_store_with(
    settings: &Settings,
    env: &BTreeMap<String, String>,
    time: StoreTime,
) -> Result<impl AppStores + use<>, AppError> {
    let path = settings.sqlite_path(env);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            AppError::User(format!(
                "cannot create the store's directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    herald_store_sqlite::SqliteStores::open_with(&path, time).map_err(AppError::from)
}
