//! `herald resume`: an operator lets things go again after fixing what stopped them.
//!
//! A sender block (the provider answered 131048, 368, 131042 or 190) is the sender's state in
//! the store: every worker of that sender stops claiming until someone clears it here. A run
//! pause (an operator, or template errors) is the run's state and is cleared by resuming the run
//! (see [`crate::run_control`]).
//! The two are kept apart on purpose: clearing a block must not resume a run an operator
//! paused, and resuming a run must not send through a sender the provider refuses.

use std::collections::BTreeMap;

use herald_store::{Block, Senders};

use crate::{AppError, AppStores, Settings, open_store};

/// What resuming a sender found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderResumed {
    /// It was blocked and the block is cleared: the block as read just before (`None` if it
    /// was recorded between that read and the resume).
    Unblocked(Option<Block>),
    /// It was not blocked; nothing changed. A throttle the provider asked for is kept: this
    /// is when it ends, if one is recorded.
    NotBlocked(Option<chrono::DateTime<chrono::Utc>>),
}

/// Why a sender's resume was refused: typed, so the admin API answers 404 without reading
/// messages. (A run's resume is [`crate::run_control::resume_run`].)
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// A name neither configured nor known to the store (most likely a typo).
    #[error(
        "no sender `{name}`: it is not configured (configured: {configured}) and the store \
         {location} has no state for it"
    )]
    NoSender {
        /// The name.
        name: String,
        /// The configured senders, comma-separated (`none` when there are none).
        configured: String,
        /// The store.
        location: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] herald_store::StoreError),
}

impl From<ResumeError> for AppError {
    fn from(error: ResumeError) -> Self {
        match error {
            ResumeError::Store(store) => AppError::from(store),
            refused => AppError::User(refused.to_string()),
        }
    }
}

/// Clears the block of sender `name`. A name neither configured nor known to the store is a
/// user error (most likely a typo), naming the configured senders.
pub async fn resume_sender(
    settings: &Settings,
    env: &BTreeMap<String, String>,
    name: &str,
) -> Result<SenderResumed, AppError> {
    let stores = open_store(settings, env).await?;
    Ok(resume_sender_in(&stores, settings, name).await?)
}

/// [`resume_sender`] on an open store (the admin API holds one).
pub async fn resume_sender_in<S: AppStores>(
    stores: &S,
    settings: &Settings,
    name: &str,
) -> Result<SenderResumed, ResumeError> {
    let state = stores.senders().sender(name).await?;
    let known = settings.senders.contains_key(name)
        || state.blocked.is_some()
        || state.throttled_until.is_some();
    if !known {
        let configured: Vec<&str> = settings.senders.keys().map(String::as_str).collect();
        return Err(ResumeError::NoSender {
            name: name.to_owned(),
            configured: if configured.is_empty() {
                "none".to_owned()
            } else {
                configured.join(", ")
            },
            location: stores.location(),
        });
    }
    // A sender that is not blocked is left as it is: resuming must not clear a throttle the
    // provider asked for (its `Retry-After` still holds; it ends by itself).
    if state.blocked.is_none() {
        return Ok(SenderResumed::NotBlocked(state.throttled_until));
    }
    let was_blocked = stores.senders().resume(name).await?;
    Ok(if was_blocked {
        SenderResumed::Unblocked(state.blocked)
    } else {
        SenderResumed::NotBlocked(None)
    })
}
