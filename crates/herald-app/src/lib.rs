//! Herald's composition root: the only crate that names concrete stores and channels. The
//! binary maps each command to one function here; the engine and the ports stay generic.
#![deny(clippy::disallowed_methods)]

pub mod channel;
pub mod config;
pub mod consent;
pub mod run;
pub mod sender;

use std::collections::BTreeMap;

pub use config::Settings;

/// A failure, split by whose fault it is (exit 1 for the user's, 2 for ours).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input or a refused operation, phrased for the user.
    #[error("{0}")]
    User(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl From<herald_store::StoreError> for AppError {
    fn from(error: herald_store::StoreError) -> Self {
        match error {
            herald_store::StoreError::Conflict(message) => AppError::User(message),
            unusable @ herald_store::StoreError::Unusable { .. } => AppError::User(format!(
                "{unusable} (the store's file is set by `[store] sqlite` in the config or \
                 HERALD_STORE__SQLITE)"
            )),
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// Opens the SQLite store the settings point at, creating its directory.
pub fn open_store(
    settings: &Settings,
    env: &BTreeMap<String, String>,
) -> Result<herald_store_sqlite::SqliteStores, AppError> {
    let path = settings.sqlite_path(env);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            AppError::User(format!(
                "cannot create the store's directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    herald_store_sqlite::SqliteStores::open(&path).map_err(AppError::from)
}
