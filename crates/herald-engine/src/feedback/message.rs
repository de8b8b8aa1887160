//! Inbound messages: a keyword text becomes a consent event; a button reply is traced through
//! the replied-to message to its delivery, run and stored campaign, and does what the
//! campaign's button says (`on_reply`).

use std::path::Path;

use chrono::{DateTime, Utc};
use herald_campaign::campaign::OnReply;
use herald_channel::whatsapp::inbound::{InboundContent, InboundMessage};
use herald_core::keyword::Keywords;
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, Scope};
use herald_store::{Consents, Feedback, Runs, StoreError, StoredConsent, Stores};

use super::{Verdict, phone};

/// Applies one inbound message from a user of a sender whose consent channel is
/// `consent_channel`.
///
/// - Text that is a keyword (see [`herald_core::keyword`]): opt_out(all) or opt_in(all) (design
///   §2), source `keyword:<word as configured>`, proof the message id. An opt-in dated more
///   than 5 minutes ahead of `now` is refused like any other; an opt-out is dated no later
///   than `now` (it counts from the earlier of the two anyway, and must not be lost).
/// - A button, only from the phone the replied-to message went to (else [`Verdict::Foreign`]):
///   `on_reply: opt_out` is opt_out(marketing), source `button`, proof the message
///   id; `{ tag: x }` stores `x` for the phone.
pub async fn apply_message<S: Stores>(
    stores: &S,
    consent_channel: &str,
    sender: Option<&str>,
    keywords: &Keywords,
    message: &InboundMessage,
    now: DateTime<Utc>,
) -> Result<Verdict, StoreError> {
    let Some(from) = phone(&message.from) else {
        return Ok(Verdict::InvalidPhone);
    };
    match &message.content {
        InboundContent::Text(text) => {
            let Some(keyword) = keywords.classify(text) else {
                return Ok(Verdict::NotKeyword);
            };
            let event = ConsentEvent {
                kind: keyword.kind,
                scope: Scope::All,
                occurred_at: message.timestamp,
                source: format!("keyword:{}", keyword.word),
                proof: Some(message.id.clone()),
            };
            record_consent(stores, consent_channel, from, event, now).await
        }
        InboundContent::Button {
            payload,
            replied_to,
        } => {
            button(
                stores,
                consent_channel,
                sender,
                message,
                from,
                payload,
                replied_to,
                now,
            )
            .await
        }
        InboundContent::Other(_) => Ok(Verdict::Ignored),
    }
}

#[allow(clippy::too_many_arguments)]
async fn button<S: Stores>(
    stores: &S,
    consent_channel: &str,
    _sender: Option<&str>,
    message: &InboundMessage,
    from: PhoneNumber,
    payload: &str,
    replied_to: &Option<String>,
    now: DateTime<Utc>,
) -> Result<Verdict, StoreError> {
    let Some(replied_to) = replied_to else {
        return Ok(Verdict::UnknownMessage);
    };
    let Some(sent) = stores.feedback().message(replied_to).await? else {
        tracing::info!(wamid = %replied_to, "button reply to a message Herald has no record of");
        return Ok(Verdict::UnknownMessage);
    };
    // Fail closed: only the phone the message went to may act on its buttons. Another number
    // naming it (a forwarded message, a forged context id) must not opt someone else out or
    // tag them; the reply is counted and ignored.
    if sent.phone != from {
        tracing::warn!(run = %sent.key.run, wamid = %replied_to, "button reply from a number the message was not sent to: ignored");
        return Ok(Verdict::Foreign);
    }
    let Some(record) = stores.runs().run(&sent.key.run).await? else {
        return Ok(Verdict::UnknownMessage);
    };
    let Some(text) = &record.run.campaign_text else {
        tracing::warn!(run = %sent.key.run, "button reply to a run stored without its campaign text");
        return Ok(Verdict::UnknownMessage);
    };
    let source = &record.run.source;
    let base = Path::new(source).parent().unwrap_or_else(|| Path::new("."));
    let campaign = match herald_campaign::parse_stored(source, base, text, now) {
        Ok(campaign) => campaign,
        Err(problems) => {
            tracing::warn!(run = %sent.key.run, %problems, "button reply: the run's stored campaign does not parse");
            return Ok(Verdict::UnknownButton);
        }
    };
    let Some(button) = campaign
        .template
        .buttons
        .iter()
        .find(|b| b.payload == payload)
    else {
        tracing::info!(run = %sent.key.run, "button reply with a payload the campaign does not define");
        return Ok(Verdict::UnknownButton);
    };
    match &button.on_reply {
        None => Ok(Verdict::NoAction),
        Some(OnReply::OptOut) => {
            let event = ConsentEvent {
                kind: ConsentKind::OptOut,
                scope: Scope::Marketing,
                occurred_at: message.timestamp,
                source: "button".to_owned(),
                proof: Some(message.id.clone()),
            };
            record_consent(stores, consent_channel, from, event, now).await
        }
        Some(OnReply::Tag(tag)) => match stores.feedback().add_tag(&from, tag, now).await {
            Ok(true) => Ok(Verdict::Tagged),
            Ok(false) => Ok(Verdict::AlreadyTagged),
            Err(StoreError::Conflict(why)) => {
                tracing::warn!(run = %sent.key.run, reason = %why, "button tag refused by the store");
                Ok(Verdict::TagRefused)
            }
            Err(error) => Err(error),
        },
    }
}

async fn record_consent<S: Stores>(
    stores: &S,
    channel: &str,
    phone: PhoneNumber,
    mut event: ConsentEvent,
    now: DateTime<Utc>,
) -> Result<Verdict, StoreError> {
    let verdict = match event.kind {
        ConsentKind::OptOut => {
            event.occurred_at = event.occurred_at.min(now);
            Verdict::OptedOut
        }
        ConsentKind::OptIn => {
            if event.check_dated(now).is_err() {
                return Ok(Verdict::DatedAhead);
            }
            Verdict::OptedIn
        }
    };
    tracing::info!(phone = %phone, channel, source = %event.source, "consent from a WhatsApp reply");
    let stored = StoredConsent {
        channel: channel.to_owned(),
        phone,
        event,
    };
    stores.consents().append(&[stored], now).await?;
    Ok(verdict)
}
