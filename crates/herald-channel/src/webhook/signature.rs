//! The webhook signature, so a receiver can tell Herald's requests from anyone else's.
//!
//! # Scheme
//! ```text
//! X-Herald-Timestamp: <unix seconds when the request was made>
//! X-Herald-Signature: sha256=<lowercase hex of HMAC-SHA256(key, "<timestamp>.<body>")>
//! ```
//! The key is the configured secret's UTF-8 bytes (not hex- or base64-decoded). `<timestamp>` is
//! the header's value exactly as sent, `.` is one ASCII dot and `<body>` the raw request body
//! bytes, before any JSON parsing (re-serialising changes the bytes).
//!
//! Signing the timestamp with the body lets a receiver reject replays: it should refuse a
//! timestamp more than a few minutes from its own clock, and deduplicate what passes by the
//! `Idempotency-Key` header. [`verify_signature`] checks only the MAC, in constant time; it reads
//! no clock, so the freshness window stays the receiver's choice.

use crate::sha256_mac;

/// The `X-Herald-Signature` value for `body` sent at `timestamp`.
pub(crate) fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    sha256_mac::sign(secret.as_bytes(), &[timestamp.as_bytes(), b".", body])
}

/// Whether `header` (an `X-Herald-Signature` value) signs `body` sent at `timestamp` with
/// `secret`, per the scheme in this module's docs. Compares in constant time; a malformed header
/// is simply `false`.
///
/// ```
/// # use herald_channel::webhook::verify_signature;
/// let header = "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163";
/// assert!(verify_signature("secret", "1700000000", b"{}", header));
/// assert!(!verify_signature("secret", "1700000001", b"{}", header));
/// ```
pub fn verify_signature(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    sha256_mac::verify(
        secret.as_bytes(),
        &[timestamp.as_bytes(), b".", body],
        header,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed independently with Python: `hmac.new(b"topsecret", b"1700000000.{\"a\":1}",
    /// hashlib.sha256).hexdigest()`.
    const KNOWN: &str = "sha256=6a939b0c71853d606167625a15168ee9188c6a511c773ef4f42d307f3849e50f";

    #[test]
    fn signs_timestamp_dot_body_as_documented() {
        assert_eq!(sign("topsecret", "1700000000", br#"{"a":1}"#), KNOWN);
    }

    #[test]
    fn verifies_its_own_signature_and_nothing_else() {
        let header = sign("topsecret", "1700000000", b"{}");
        assert!(verify_signature("topsecret", "1700000000", b"{}", &header));
        assert!(verify_signature(
            "topsecret",
            "1700000000",
            b"{}",
            &format!(" {header} ")
        ));
        let rejected = [
            ("other", "1700000000", &b"{}"[..], header.clone()),
            ("topsecret", "1700000001", b"{}", header.clone()),
            ("topsecret", "1700000000", b"{ }", header.clone()),
            (
                "topsecret",
                "1700000000",
                b"{}",
                header.replace("sha256=", "sha1="),
            ),
            (
                "topsecret",
                "1700000000",
                b"{}",
                header.replace("sha256=", ""),
            ),
            ("topsecret", "1700000000", b"{}", "sha256=zz".to_owned()),
            (
                "topsecret",
                "1700000000",
                b"{}",
                header[..header.len() - 2].to_owned(),
            ),
        ];
        for (secret, timestamp, body, header) in rejected {
            assert!(
                !verify_signature(secret, timestamp, body, &header),
                "{secret} {timestamp} {body:?} {header}"
            );
        }
    }
}
