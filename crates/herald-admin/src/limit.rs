//! `?limit=` of the list endpoints (`GET /v1/runs`, `GET /v1/campaigns`): how many, newest
//! first. Every list is bounded: [`DEFAULT_LIMIT`] when absent, at most [`MAX_LIMIT`]; more, a
//! non-number, or any other query key is a 400 naming it (a key we do not understand is an
//! error, never ignored).

use axum::extract::RawQuery;

use crate::{ApiError, ApiResult};

/// How many items a list answers when `?limit=` is absent.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `?limit=` accepted.
pub const MAX_LIMIT: usize = 1000;

/// The `limit` of a list request's query string.
pub(crate) fn limit(RawQuery(query): &RawQuery) -> ApiResult<usize> {
    let mut limit = None;
    for pair in query.as_deref().unwrap_or("").split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "limit" {
            return Err(ApiError::bad_request(format!(
                "query: unknown key `{}` (only `limit` is accepted)",
                key.chars().take(64).collect::<String>()
            )));
        }
        if limit.is_some() {
            return Err(ApiError::bad_request("limit: given more than once"));
        }
        let n: usize = value.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "limit: `{}` is not a whole number from 1 to {MAX_LIMIT}",
                value.chars().take(64).collect::<String>()
            ))
        })?;
        if !(1..=MAX_LIMIT).contains(&n) {
            return Err(ApiError::bad_request(format!(
                "limit: {n} is outside 1 to {MAX_LIMIT}"
            )));
        }
        limit = Some(n);
    }
    Ok(limit.unwrap_or(DEFAULT_LIMIT))
}
