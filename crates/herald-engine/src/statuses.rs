//! What a provider's error code asks beyond the delivery's own outcome, in one place for the
//! two ways WhatsApp reports it: a synchronous reply (the worker,
//! [`crate::worker`]'s effects) and a later `failed` status (the webhook,
//! [`crate::feedback::apply_status`]). The same code does the same thing either way: 131050
//! opts the phone out of marketing, a sender block (131048, 368, 131042, 190) blocks the
//! sender for every worker, a template error (132000–132016) pauses the run.
//!
//! One difference, decided here because the issue is silent: the worker pauses a run after
//! [`TEMPLATE_ERRORS_BEFORE_PAUSE`] template errors in its own replies (one can be a race with a
//! template edit), while a late template failure pauses the run at once: Meta accepted the
//! message and then could not deliver it with that template, so it is no race, and the webhook
//! process keeps no per-run counter shared with the workers.

use chrono::{DateTime, Utc};
use herald_channel::whatsapp::{Classification, classify_code};
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, RunId, Scope};
use herald_store::{Consents, Runs, Senders, StoreError, StoredConsent, Stores};

/// Template errors tolerated per run in a worker's replies before it is paused: one can be a
/// race with a template edit, three in a row are a broken campaign.
pub const TEMPLATE_ERRORS_BEFORE_PAUSE: u32 = 3;

/// Who pauses a run on a provider's answer (`RunRecord::paused_by`).
pub const PAUSED_BY: &str = "herald";

/// Records that `phone` stopped marketing messages, as the provider reported with `code`.
pub async fn record_opt_out<S: Stores>(
    stores: &S,
    consent_channel: &str,
    phone: &PhoneNumber,
    code: &str,
    occurred_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tracing::warn!(phone = %phone, code = %code, "provider reports the recipient opted out of marketing; recorded");
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
    Ok(())
}

/// Blocks `sender` for every worker of it until an operator resumes it.
pub async fn block_sender<S: Stores>(
    stores: &S,
    sender: &str,
    code: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tracing::error!(sender = %sender, %code, %reason, "the provider blocked the sender; every worker of it stops claiming until `herald resume --sender`");
    stores.senders().block(sender, code, reason, now).await
}

/// Pauses `run` for a template the provider refuses (an operator fixes it and resumes).
pub async fn pause_for_template<S: Stores>(
    stores: &S,
    run: &RunId,
    code: &str,
    why: &str,
) -> Result<(), StoreError> {
    tracing::error!(run = %run, code = %code, reason = %why, "template rejected; pausing the run");
    stores.runs().pause(run, PAUSED_BY, why).await
}

/// Whom a late `failed` status concerns, as far as the webhook knows.
#[derive(Debug, Clone, Copy)]
pub struct LateFailure<'a> {
    /// The consent channel of the sender the payload names.
    pub consent_channel: &'a str,
    /// The sender the payload's `phone_number_id` maps to, if any is configured.
    pub sender: Option<&'a str>,
    /// The phone: the delivery's, else the report's `recipient_id`.
    pub phone: Option<&'a PhoneNumber>,
    /// The delivery's run, when the delivery (or the callback data) is known.
    pub run: Option<&'a RunId>,
}

/// What a late failure did beyond its delivery (bounded; metrics `verdict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureEffect {
    /// The code asks nothing beyond the delivery's `failed(code)`.
    None,
    /// The phone was opted out of marketing (131050).
    OptedOut,
    /// The sender was blocked.
    SenderBlocked,
    /// The run was paused.
    RunPaused,
    /// The code asks for an effect Herald could not apply: no phone, no configured sender, or
    /// no known run (logged).
    Unresolved,
}

impl FailureEffect {
    /// Stable, bounded label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureEffect::None => "none",
            FailureEffect::OptedOut => "opted_out",
            FailureEffect::SenderBlocked => "sender_blocked",
            FailureEffect::RunPaused => "run_paused",
            FailureEffect::Unresolved => "unresolved",
        }
    }
}

/// Does what a late `failed` status with `code` asks, as a synchronous reply with the same
/// code does (module docs).
pub async fn apply_late_failure<S: Stores>(
    stores: &S,
    who: LateFailure<'_>,
    code: i64,
    at: DateTime<Utc>,
) -> Result<FailureEffect, StoreError> {
    let text = code.to_string();
    match classify_code(code, None) {
        Classification::OptOut { .. } => match who.phone {
            Some(phone) => {
                record_opt_out(stores, who.consent_channel, phone, &text, at).await?;
                Ok(FailureEffect::OptedOut)
            }
            None => {
                tracing::warn!(
                    code,
                    "failed status without a usable recipient phone: no opt-out recorded"
                );
                Ok(FailureEffect::Unresolved)
            }
        },
        Classification::PauseSender { reason, .. } => match who.sender {
            Some(sender) => {
                block_sender(stores, sender, &text, &reason, at).await?;
                Ok(FailureEffect::SenderBlocked)
            }
            None => {
                tracing::warn!(
                    code,
                    "failed status asks to block a sender no configured sender is: not blocked"
                );
                Ok(FailureEffect::Unresolved)
            }
        },
        Classification::PauseCampaign { reason, .. } => match who.run {
            Some(run) => {
                let why = format!("template rejected in a later status (code {code}): {reason}");
                pause_for_template(stores, run, &text, &why).await?;
                Ok(FailureEffect::RunPaused)
            }
            None => {
                tracing::warn!(
                    code,
                    "failed status asks to pause a run Herald cannot find: not paused"
                );
                Ok(FailureEffect::Unresolved)
            }
        },
        _ => Ok(FailureEffect::None),
    }
}

/// Applies what a `failed` status with `code` for `phone` means for consent, and returns the
/// classification. Kept for callers that know only the phone; the webhook uses
/// [`apply_late_failure`].
pub async fn record_failed_status<S: Stores>(
    stores: &S,
    consent_channel: &str,
    phone: &PhoneNumber,
    code: i64,
    occurred_at: DateTime<Utc>,
) -> Result<Classification, StoreError> {
    let classification = classify_code(code, None);
    if let Classification::OptOut { .. } = classification {
        record_opt_out(
            stores,
            consent_channel,
            phone,
            &code.to_string(),
            occurred_at,
        )
        .await?;
    }
    Ok(classification)
}
