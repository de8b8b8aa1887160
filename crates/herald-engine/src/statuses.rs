//! Asynchronous delivery statuses: WhatsApp reports some failures later, in a `failed` status
//! with the same error codes as a synchronous reply. The webhook endpoint (admin API) parses the
//! status and calls [`record_failed_status`], so a late 131050 has the same effect as one in a
//! reply: the phone is opted out of marketing for every later campaign.

use chrono::{DateTime, Utc};
use herald_channel::whatsapp::{Classification, classify_code};
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, Scope};
use herald_store::{Consents, StoreError, StoredConsent, Stores};

/// Applies what a `failed` status with `code` for `phone` means for consent, and returns the
/// classification so the caller can also update the run's counts or pause the sender.
pub async fn record_failed_status<S: Stores>(
    stores: &S,
    consent_channel: &str,
    phone: &PhoneNumber,
    code: i64,
    occurred_at: DateTime<Utc>,
) -> Result<Classification, StoreError> {
    let classification = classify_code(code, None);
    if let Classification::OptOut { .. } = classification {
        let event = ConsentEvent {
            kind: ConsentKind::OptOut,
            scope: Scope::Marketing,
            occurred_at,
            source: format!("webhook:{code}"),
            proof: None,
        };
        let stored = StoredConsent {
            channel: consent_channel.to_owned(),
            phone: phone.clone(),
            event,
        };
        stores.consents().append(&[stored], occurred_at).await?;
    }
    Ok(classification)
}
