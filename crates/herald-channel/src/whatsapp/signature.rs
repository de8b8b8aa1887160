//! Meta's signature on inbound webhooks: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256
//! of the raw request body (the bytes as received, before any JSON parsing) keyed with the app
//! secret's UTF-8 bytes. Unlike Herald's own webhook signature it signs no timestamp: Meta
//! retries a webhook for days, so receivers must be idempotent anyway (statuses are, on the
//! ladder; consent events fold by date).

use crate::sha256_mac;

/// Whether `header` (an `X-Hub-Signature-256` value) signs `body` with `app_secret`. Constant
/// time; a missing prefix, bad hex or a wrong length is simply `false`.
///
/// ```
/// # use herald_channel::whatsapp::verify_hub_signature;
/// let header = "sha256=bd9549eb87a414d3df28b5a60ea86d4a11e2f1c6258edbd18f56d3c23c0f908d";
/// assert!(verify_hub_signature("app-secret", b"{}", header));
/// assert!(!verify_hub_signature("app-secret", b"{ }", header));
/// ```
pub fn verify_hub_signature(app_secret: &str, body: &[u8], header: &str) -> bool {
    sha256_mac::verify(app_secret.as_bytes(), &[body], header)
}

/// The header value Meta would send for `body` (tests and fakes sign with it).
pub fn hub_signature(app_secret: &str, body: &[u8]) -> String {
    sha256_mac::sign(app_secret.as_bytes(), &[body])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed independently with Python: `hmac.new(b"app-secret", b'{"object":"x"}',
    /// hashlib.sha256).hexdigest()`.
    const KNOWN: &str = "sha256=d5155d7b870af79a2eef5f1d9bb1f504a6b118b5754ebad8462822594f4425ec";

    #[test]
    fn signs_the_raw_body_only() {
        assert_eq!(hub_signature("app-secret", br#"{"object":"x"}"#), KNOWN);
    }

    #[test]
    fn refuses_another_body_another_secret_and_malformed_headers() {
        let body = br#"{"object":"x"}"#;
        let good = hub_signature("app-secret", body);
        assert!(verify_hub_signature("app-secret", body, &good));
        assert!(!verify_hub_signature(
            "app-secret",
            br#"{"object":"y"}"#,
            &good
        ));
        assert!(!verify_hub_signature("other", body, &good));
        for header in [
            String::new(),
            good.replace("sha256=", ""),
            good.replace("sha256=", "sha1="),
            good[..good.len() - 2].to_owned(),
            "sha256=zz".to_owned(),
            good.to_uppercase(),
        ] {
            assert!(
                !verify_hub_signature("app-secret", body, &header),
                "{header}"
            );
        }
    }
}
