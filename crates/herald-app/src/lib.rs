//! Herald's composition root: the only crate that names concrete stores and channels. The
//! binary maps each command to one function here; the engine and the ports stay generic.
#![deny(clippy::disallowed_methods)]

pub mod channel;
pub mod config;
pub mod consent;
pub mod resume;
pub mod run;
pub mod schedule;
pub mod sender;
pub mod status;
pub mod store;
pub mod work;

pub use config::Settings;
pub use store::{AppStores, open_store, open_store_with};

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
