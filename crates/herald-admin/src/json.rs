//! JSON request bodies: read with serde_json so a bad body gets the one error shape (axum's
//! `Json` rejection is plain text), naming the field; unknown keys are errors (every request
//! type is `deny_unknown_fields`).

use serde::de::DeserializeOwned;

use crate::{ApiError, ApiResult};

/// The body as `T`.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// The body as `T`, or `T::default()` when the body is empty.
pub(crate) fn parse_optional<T: DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse(body)
}
