//! The one error shape every endpoint answers with:
//! `{"error": {"code": "<stable_snake_case>", "message": "..."}}`.
//!
//! Clients branch on `code` (an [`ErrorCode`], stable across releases); `message` is for
//! people and may change. Internal failures are logged with their detail and answered with a
//! generic message, so a store error never leaks a path or a URL to a caller.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The stable codes, one per kind of failure a client may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No bearer token, or a wrong one (401).
    Unauthorized,
    /// The request is malformed: bad JSON, an unknown key, a bad field value (400).
    BadRequest,
    /// No such run, sender or route (404).
    NotFound,
    /// The request conflicts with the current state (409), such as resuming a cancelled run.
    Conflict,
    /// The body is over the configured limit (413).
    PayloadTooLarge,
    /// The campaign does not validate, or its audience is refused (422).
    Invalid,
    /// The store cannot be reached (503).
    Unavailable,
    /// Anything else (500); the detail is in the server's log.
    Internal,
}

impl ErrorCode {
    /// The HTTP status this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
    /// Validation diagnostics (422 on `POST /v1/campaigns`), else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<crate::campaigns::Diagnostic>>,
}

/// An error answer: a code and a message (and diagnostics for a campaign that does not
/// validate).
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    diagnostics: Option<Vec<crate::campaigns::Diagnostic>>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            diagnostics: None,
        }
    }

    /// A 422 carrying validation diagnostics.
    pub(crate) fn invalid_campaign(diagnostics: Vec<crate::campaigns::Diagnostic>) -> Self {
        Self {
            code: ErrorCode::Invalid,
            message: format!(
                "the campaign does not validate ({} diagnostic(s))",
                diagnostics.len()
            ),
            diagnostics: Some(diagnostics),
        }
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "a valid bearer token is required (Authorization: Bearer <token>)",
        )
    }

    /// 404 naming what was not found.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, what)
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// 500: logs the detail, answers a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "admin request failed");
        Self::new(
            ErrorCode::Internal,
            "internal error (the detail is in the server's log)",
        )
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<herald_app::AppError> for ApiError {
    fn from(error: herald_app::AppError) -> Self {
        match error {
            herald_app::AppError::User(message) => ApiError::new(ErrorCode::Conflict, message),
            herald_app::AppError::Internal(message) => ApiError::internal(message),
        }
    }
}

impl From<herald_store::StoreError> for ApiError {
    fn from(error: herald_store::StoreError) -> Self {
        match error {
            herald_store::StoreError::Conflict(message) => {
                ApiError::new(ErrorCode::Conflict, message)
            }
            unavailable @ herald_store::StoreError::Unavailable(_) => {
                tracing::warn!(error = %unavailable, "store unavailable");
                ApiError::new(ErrorCode::Unavailable, "the store is unavailable")
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                diagnostics: self.diagnostics,
            },
        };
        (self.code.status(), Json(body)).into_response()
    }
}

/// Handlers' result.
pub type ApiResult<T> = Result<T, ApiError>;

/// Gives axum's own rejections (a body over the limit, a query string that does not parse, a
/// wrong method), which answer in plain text, the one JSON error shape: a client parses every
/// refusal the same way. Answers that are JSON already, and successes, pass unchanged.
pub(crate) async fn json_rejections(
    response: axum::response::Response,
) -> axum::response::Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::Invalid,
        StatusCode::CONFLICT => ErrorCode::Conflict,
        _ => ErrorCode::BadRequest,
    };
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        message
    };
    let mut answer = ApiError::new(code, message).into_response();
    // Keep the status axum chose (405 stays 405) and its headers (`Allow`), not the code's.
    *answer.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}
