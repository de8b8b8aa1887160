//! Status reports: onto the ladder by message id (or the callback's delivery key), and a
//! `failed` 131050 also opts the phone out of marketing.

use chrono::{DateTime, Utc};
use herald_channel::whatsapp::inbound::{StatusKind, StatusUpdate};
use herald_channel::whatsapp::parse_callback_data;
use herald_core::{RecipientKey, RunId};
use herald_store::{
    DeliveryKey, Feedback, Progress, ReportedStatus, StatusReport, StatusVerdict, StoreError,
    Stores,
};

use super::{Verdict, phone};
use crate::statuses::record_failed_status;

/// Applies one status report. A `failed` status's consent effect (131050: opt-out of
/// marketing on `consent_channel`) is recorded for the delivery's phone when the report moved
/// it, else for the report's `recipient_id`: the phone said "stop promotions" whatever
/// became of the delivery.
pub async fn apply_status<S: Stores>(
    stores: &S,
    consent_channel: &str,
    update: &StatusUpdate,
    now: DateTime<Utc>,
) -> Result<Verdict, StoreError> {
    let status = match &update.status {
        StatusKind::Sent => ReportedStatus::Reached(Progress::Sent),
        StatusKind::Delivered => ReportedStatus::Reached(Progress::Delivered),
        StatusKind::Read => ReportedStatus::Reached(Progress::Read),
        StatusKind::Failed => ReportedStatus::Failed {
            code: update
                .error_code
                .map_or_else(String::new, |code| code.to_string()),
        },
        StatusKind::Other(_) => return Ok(Verdict::Ignored),
    };
    let report = StatusReport {
        provider_id: update.id.clone(),
        callback: update.callback_data.as_deref().and_then(delivery_key),
        status,
        at: update.timestamp,
    };
    let verdict = stores.feedback().record_status(&report, now).await?;
    if let (StatusKind::Failed, Some(code)) = (&update.status, update.error_code) {
        let phone = match &verdict {
            StatusVerdict::Applied { phone, .. } => Some(phone.clone()),
            _ => phone(&update.recipient_id),
        };
        match phone {
            // A report dated ahead of Herald's clock counts from now (an opt-out counts from
            // the earlier of the two anyway).
            Some(phone) => {
                let at = update.timestamp.min(now);
                record_failed_status(stores, consent_channel, &phone, code, at).await?;
            }
            None => tracing::warn!(
                wamid = %update.id,
                code,
                "failed status without a usable recipient phone: no opt-out recorded"
            ),
        }
    }
    Ok(match verdict {
        StatusVerdict::Applied { .. } => Verdict::Applied,
        StatusVerdict::Unchanged { .. } => Verdict::Unchanged,
        StatusVerdict::Refused { .. } => Verdict::Refused,
        StatusVerdict::Kept => Verdict::Kept,
        StatusVerdict::Dropped => Verdict::Dropped,
    })
}

/// The delivery key the callback data names, when it parses as one (another system's data on
/// the same number parses as nothing and is ignored).
fn delivery_key(data: &str) -> Option<DeliveryKey> {
    let (run, recipient) = parse_callback_data(data)?;
    Some(DeliveryKey {
        run: RunId::parse(run).ok()?,
        recipient: RecipientKey::parse(recipient).ok()?,
    })
}
