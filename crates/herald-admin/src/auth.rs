//! The bearer token on everything but health, metrics and the provider webhooks.
//!
//! The comparison hashes both sides with SHA-256 and compares the digests in constant time
//! (`subtle`): the time taken depends neither on where the presented token first differs nor
//! on its length, so neither the bytes nor the length of the real token leak. The token is
//! never logged: [`Token`]'s `Debug` prints nothing of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_app::config::AdminSettings;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{AdminState, ApiError, StartError};

/// The configured token, kept as its SHA-256 digest.
#[derive(Clone)]
pub struct Token(Arc<[u8; 32]>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A token from its secret value.
    pub fn new(secret: &str) -> Self {
        Self(Arc::new(Sha256::digest(secret.as_bytes()).into()))
    }

    /// The token the variable `[admin] token_env` names; `None` when no variable is named. A
    /// named variable that is unset or empty is an error: a typo must not open the API.
    pub fn from_settings(
        settings: &AdminSettings,
        env: &BTreeMap<String, String>,
    ) -> Result<Option<Self>, StartError> {
        let Some(name) = &settings.token_env else {
            return Ok(None);
        };
        match env.get(name).map(|v| v.trim()) {
            Some(secret) if !secret.is_empty() => Ok(Some(Self::new(secret))),
            _ => Err(StartError::TokenUnset(name.clone())),
        }
    }

    /// Whether `presented` is the token, in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&*self.0).into()
    }
}

/// Middleware: 401 unless the request carries `Authorization: Bearer <token>`. Without a
/// configured token every request passes: the admin then listens on loopback only (see
/// [`crate::serve`]).
pub(crate) async fn require_token(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_credentials);
    match presented {
        Some(presented) if token.matches(presented.trim()) => next.run(request).await,
        _ => ApiError::unauthorized().into_response(),
    }
}

/// The credentials of an `Authorization: Bearer <token>` value. The scheme is matched without
/// regard to case (RFC 9110 §11.1), so `BEARER` and `bearer` work as `Bearer` does.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(credentials)
}
