//! Status reports: onto the ladder by message id (or the callback's delivery key), and a
//! `failed` status's code does what it does in a synchronous reply ([`crate::statuses`]).

use chrono::{DateTime, Utc};
use herald_channel::whatsapp::inbound::{StatusKind, StatusUpdate};
use herald_channel::whatsapp::{Classification, classify_code, parse_callback_data};
use herald_core::{RecipientKey, RunId};
use herald_store::{
    DeliveryKey, Feedback, Progress, ReportedStatus, StatusReport, StatusVerdict, StoreError,
    Stores,
};

use super::{Verdict, phone};
use crate::statuses::{FailureEffect, LateFailure, apply_late_failure};

/// What one status report did: its place on the ladder, and what a `failed` status's code did
/// beyond the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusOutcome {
    /// The ladder's verdict.
    pub verdict: Verdict,
    /// The code's effect ([`FailureEffect::None`] for anything but a `failed` status).
    pub effect: FailureEffect,
}

/// Applies one status report from the sender named `sender` (the one the payload's
/// `phone_number_id` maps to, if configured), whose consent channel is `consent_channel`.
///
/// A `failed` status's code does what the same code does in a synchronous reply
/// ([`crate::statuses`]): 131050 opts out of marketing, a sender block blocks `sender`, a
/// template error pauses the delivery's run. When:
/// - the opt-out, on every report: for the delivery's phone when the report moved it, else for
///   the report's `recipient_id` (the phone said "stop promotions" whatever became of the
///   delivery; consent events are deduplicated, so Meta's retries add nothing);
/// - the sender block and the run pause, only when the report moved the delivery to `failed`
///   (once per message, whatever Meta retries: a retry after an operator resumed must not block
///   or pause again) or was kept before its send (the block at once; the run only when the
///   callback names it). A `failed` after `delivered` or after a synchronous failure changes
///   nothing but consent.
pub async fn apply_status<S: Stores>(
    stores: &S,
    consent_channel: &str,
    sender: Option<&str>,
    update: &StatusUpdate,
    now: DateTime<Utc>,
) -> Result<StatusOutcome, StoreError> {
    let status = match &update.status {
        StatusKind::Sent => ReportedStatus::Reached(Progress::Sent),
        StatusKind::Delivered => ReportedStatus::Reached(Progress::Delivered),
        StatusKind::Read => ReportedStatus::Reached(Progress::Read),
        StatusKind::Failed => ReportedStatus::Failed {
            code: update
                .error_code
                .map_or_else(String::new, |code| code.to_string()),
        },
        StatusKind::Other(_) => {
            return Ok(StatusOutcome {
                verdict: Verdict::Ignored,
                effect: FailureEffect::None,
            });
        }
    };
    let callback = update.callback_data.as_deref().and_then(delivery_key);
    let report = StatusReport {
        provider_id: update.id.clone(),
        callback: callback.clone(),
        status,
        at: update.timestamp,
    };
    let verdict = stores.feedback().record_status(&report, now).await?;
    let mut effect = FailureEffect::None;
    if let (StatusKind::Failed, Some(code)) = (&update.status, update.error_code) {
        let (phone, run, moved) = match &verdict {
            StatusVerdict::Applied { phone, key } => (Some(phone.clone()), Some(&key.run), true),
            StatusVerdict::Kept | StatusVerdict::Dropped => (
                phone(&update.recipient_id),
                callback.as_ref().map(|key| &key.run),
                true,
            ),
            StatusVerdict::Unchanged { .. } | StatusVerdict::Refused { .. } => {
                (phone(&update.recipient_id), None, false)
            }
        };
        let who = LateFailure {
            consent_channel,
            sender: sender.filter(|_| moved),
            phone: phone.as_ref(),
            run,
        };
        // A report dated ahead of Herald's clock counts from now (an opt-out counts from
        // the earlier of the two anyway).
        let at = update.timestamp.min(now);
        effect = match classify_code(code, None) {
            Classification::OptOut { .. } => apply_late_failure(stores, who, code, at).await?,
            _ if moved => apply_late_failure(stores, who, code, at).await?,
            _ => FailureEffect::None,
        };
    }
    let verdict = match verdict {
        StatusVerdict::Applied { .. } => Verdict::Applied,
        StatusVerdict::Unchanged { .. } => Verdict::Unchanged,
        StatusVerdict::Refused { .. } => Verdict::Refused,
        StatusVerdict::Kept => Verdict::Kept,
        StatusVerdict::Dropped => Verdict::Dropped,
    };
    Ok(StatusOutcome { verdict, effect })
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
