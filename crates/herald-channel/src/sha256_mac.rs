//! HMAC-SHA256 over several byte strings, with a `sha256=<hex>` header form: the one MAC both
//! signature schemes use (Herald's outbound webhook signature, [`crate::webhook`], and Meta's
//! `X-Hub-Signature-256` on inbound WhatsApp webhooks, [`crate::whatsapp::inbound`]). Kept once
//! so that the prefix handling and the constant-time comparison cannot drift apart.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The `sha256=` prefix names the algorithm in both schemes.
pub(crate) const PREFIX: &str = "sha256=";

/// `sha256=<lowercase hex of HMAC-SHA256(secret, parts concatenated)>`.
pub(crate) fn sign(secret: &[u8], parts: &[&[u8]]) -> String {
    format!(
        "{PREFIX}{}",
        hex::encode(mac(secret, parts).finalize().into_bytes())
    )
}

/// Whether `header` is `sha256=<hex>` of the MAC of `parts` under `secret`. The digest is
/// compared in constant time (`verify_slice`); a header without the prefix, with bad hex or a
/// digest of the wrong length is simply `false`. Surrounding whitespace is tolerated.
pub(crate) fn verify(secret: &[u8], parts: &[&[u8]], header: &str) -> bool {
    let Some(digest) = header.trim().strip_prefix(PREFIX) else {
        return false;
    };
    let Ok(digest) = hex::decode(digest) else {
        return false;
    };
    mac(secret, parts).verify_slice(&digest).is_ok()
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // Invariant: HMAC accepts a key of any length (long keys are hashed, short ones padded), so
    // this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}
