//! Request logs without phone numbers: each request gets a `tracing` span with its method and
//! its path, in which every segment that looks like a phone number (`GET /v1/consent/{phone}`)
//! is masked as [`herald_core::PhoneNumber`]'s `Display` masks one; query strings are not
//! logged at all. The bearer token is in a header, and headers are never logged.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Middleware: one span per request, one event when it ends.
pub(crate) async fn log_request(request: Request, next: Next) -> Response {
    let path = masked_path(request.uri().path());
    let span = tracing::info_span!("admin_request", method = %request.method(), path = %path);
    async move {
        let response = next.run(request).await;
        tracing::info!(status = response.status().as_u16(), "admin request");
        response
    }
    .instrument(span)
    .await
}

/// `path` with phone-like segments masked.
pub(crate) fn masked_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let decoded = segment.replace("%2B", "+").replace("%2b", "+");
            match herald_core::PhoneNumber::parse(&decoded, None) {
                Ok(phone) => phone.to_string(),
                // Not a number the parser takes, but written like one: hide the digits.
                Err(_) if looks_like_phone(&decoded) => segment
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '*' } else { c })
                    .collect(),
                Err(_) => segment.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Seven digits or more, and nothing but digits, `+`, spaces, dashes, dots and brackets (a run
/// id has digits too, but letters and colons).
fn looks_like_phone(segment: &str) -> bool {
    let segment = segment.replace("%20", " ");
    segment.chars().filter(char::is_ascii_digit).count() >= 7
        && segment
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'))
}

#[cfg(test)]
mod tests {
    use super::masked_path;

    #[test]
    fn phone_segments_are_masked_and_others_kept() {
        let masked = masked_path("/v1/consent/+4915112345678");
        assert!(!masked.contains("15112345678"), "{masked}");
        assert!(masked.starts_with("/v1/consent/+49"), "{masked}");
        let unparsed = masked_path("/v1/consent/+15551234567");
        assert!(!unparsed.contains("5551234567"), "{unparsed}");
        let encoded = masked_path("/v1/consent/%2B4915112345678");
        assert!(!encoded.contains("15112345678"), "{encoded}");
        assert_eq!(masked_path("/v1/runs"), "/v1/runs");
        let digits = masked_path("/v1/consent/00-555-1234567");
        assert!(!digits.contains("1234567"), "{digits}");
        let run = "/v1/runs/spring-sale@2026-03-01T10:00:00Z";
        assert_eq!(masked_path(run), run);
    }
}
