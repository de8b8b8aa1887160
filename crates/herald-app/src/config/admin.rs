//! `[admin]`: the admin HTTP API (`herald admin`, and inside `herald serve`).
//!
//! Decisions the issue leaves open:
//! - `listen` defaults to `127.0.0.1:8080` for `herald admin`: loopback, so a fresh install
//!   exposes nothing. `herald serve` serves the admin only when `listen` is set: two `serve`
//!   processes on one machine (tests, a worker per sender) must not fight over a default port.
//! - The token is never in the file: `token_env` names the variable that holds it, like every
//!   other secret here. Without one, the admin listens on a loopback address only (checked
//!   when it starts, where the address is known to be final).
//! - Two body limits: `max_body_bytes` for JSON requests (small: a consent event, a pause
//!   reason) and `max_upload_bytes` for the audience part of `POST /v1/campaigns`, spooled to a
//!   private temp file, so the limit bounds disk rather than memory.

use std::net::SocketAddr;

use serde::Deserialize;

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Where the admin API listens (`herald admin`: default [`DEFAULT_ADMIN_LISTEN`]; `herald serve`
    /// serves it only when set).
    pub listen: Option<SocketAddr>,
    /// Name of the environment variable holding the bearer token.
    pub token_env: Option<String>,
    /// Largest JSON request body, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest audience part of `POST /v1/campaigns`, in bytes.
    #[serde(default = "default_max_upload_bytes")]
    pub max_upload_bytes: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: None,
            token_env: None,
            max_body_bytes: default_max_body_bytes(),
            max_upload_bytes: default_max_upload_bytes(),
        }
    }
}

/// Where `herald admin` listens without `[admin] listen`.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

fn default_max_body_bytes() -> usize {
    64 * 1024
}

fn default_max_upload_bytes() -> u64 {
    256 * 1024 * 1024
}

impl AdminSettings {
    /// `listen`, or [`DEFAULT_ADMIN_LISTEN`].
    pub fn listen_or_default(&self) -> SocketAddr {
        self.listen.unwrap_or(DEFAULT_ADMIN_LISTEN)
    }

    /// What is wrong with these settings, naming the key; `None` when nothing.
    pub(super) fn check(&self) -> Option<String> {
        if self.max_body_bytes == 0 {
            return Some("admin.max_body_bytes: must be > 0".into());
        }
        if self.max_upload_bytes == 0 {
            return Some("admin.max_upload_bytes: must be > 0".into());
        }
        if self.token_env.as_deref() == Some("") {
            return Some("admin.token_env: must name a variable".into());
        }
        None
    }
}
