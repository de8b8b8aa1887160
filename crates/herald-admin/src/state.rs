//! What every handler shares: cheap to clone (everything behind `Arc`s).

use std::collections::BTreeMap;
use std::sync::Arc;

use herald_app::metrics::Metrics;
use herald_app::{AnyStores, Settings};
use herald_core::clock::Clock;

use crate::auth::Token;

/// The admin's shared state.
#[derive(Clone)]
pub struct AdminState {
    /// The store (either backend: one router serves both).
    pub stores: AnyStores,
    /// The settings the process runs with.
    pub settings: Arc<Settings>,
    /// The environment (secrets are read from the variables the config names).
    pub env: Arc<BTreeMap<String, String>>,
    /// The clock (injected, so tests control time).
    pub clock: Arc<dyn Clock>,
    /// The process's metrics recorder.
    pub metrics: Metrics,
    /// The bearer token; `None` when none is configured: then the admin refuses to listen
    /// anywhere but loopback, and every `/v1` request from there passes without a token
    /// (`auth::require_token`).
    pub token: Option<Token>,
}

impl AdminState {
    /// State for this store and settings; the token is read from the variable
    /// `[admin] token_env` names (an error when named but unset or empty).
    pub fn new(
        stores: AnyStores,
        settings: Settings,
        env: BTreeMap<String, String>,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
    ) -> Result<Self, crate::StartError> {
        let token = Token::from_settings(&settings.admin, &env)?;
        Ok(Self {
            stores,
            settings: Arc::new(settings),
            env: Arc::new(env),
            clock,
            metrics,
            token,
        })
    }
}
