//! Herald's composition root: the only crate that names concrete stores and channels. The
//! binary maps each command to one function here; the engine and the ports stay generic.
#![deny(clippy::disallowed_methods)]

pub mod channel;
pub mod config;
pub mod consent;
pub mod metrics;
pub mod metrics_listener;
mod outage;
pub mod recurring;
pub mod resume;
pub mod run;
pub mod run_control;
pub mod schedule;
pub mod sender;
pub mod status;
pub mod store;
pub mod work;

pub use config::Settings;
pub use store::{
    AnyStores, AppStores, Initialised, init_store, open_store, open_store_to_inspect,
    open_store_with,
};

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
                "{unusable} (the store is set by `[store] sqlite` or `[store] redis` in the \
                 config, or HERALD_STORE__SQLITE or HERALD_STORE__REDIS)"
            )),
            // Never retried: a store that lost its state (a Redis restarted empty) or holds data
            // Herald cannot read must not be worked on as if it were new, which would expand
            // again and resend.
            corrupt @ herald_store::StoreError::Corrupt { .. } => AppError::Internal(format!(
                "halted, nothing more is sent: {corrupt}. Only the AOF the store was writing up \
                 to the loss restores it safely: an older backup brings back as queued what was \
                 sent since, and forgets the opt-outs recorded since (pause every run, import the \
                 opt-outs again and reconcile with the provider before resuming). If its state is \
                 really gone, find out what was sent before starting anew"
            )),
            other => AppError::Internal(other.to_string()),
        }
    }
}
