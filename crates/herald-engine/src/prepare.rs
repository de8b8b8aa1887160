//! Turning one audience row into a delivery the policy core can decide on: where the recipient
//! is, when their delivery is scheduled, the rendered template. Shared by `plan` and (later)
//! the worker, so both skip for the same reasons.

use chrono::{DateTime, Utc};
use herald_campaign::Campaign;
use herald_campaign::audience::Recipient;
use herald_campaign::campaign::Header;
use herald_core::template::{ParamPlace, check_whatsapp_param};
use herald_core::window::Place;
use herald_core::{SkipReason, TimeZone};

/// A recipient ready for `decide`.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Where their wall clock is.
    pub place: Place,
    /// When their delivery is scheduled.
    pub scheduled_at: DateTime<Utc>,
    /// When it expires, if the campaign has `expires_after`.
    pub expires_at: Option<DateTime<Utc>>,
    /// The template language for their locale.
    pub language: String,
    /// Rendered body parameters, in the campaign's order.
    pub params: Vec<(String, String)>,
    /// Rendered header text, if the header is a text parameter.
    pub header_text: Option<String>,
}

/// Why a recipient cannot be prepared: the skip reason and a human detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotPrepared {
    /// The terminal reason.
    pub reason: SkipReason,
    /// What exactly, for the plan and the log.
    pub detail: String,
}

/// Prepares `recipient` for the run fired at `fire` (cron) or the campaign's `at`.
pub fn prepare(
    campaign: &Campaign,
    recipient: &Recipient,
    fire: Option<DateTime<Utc>>,
) -> Result<Prepared, NotPrepared> {
    let place = Place::of_recipient(&recipient.phone, recipient.zone, campaign.unknown_zone)
        .map_err(|e| NotPrepared {
            reason: SkipReason::InvalidRecipient,
            detail: e.to_string(),
        })?;
    let scheduled_at = campaign
        .scheduled_instant(&place, fire)
        .ok_or_else(|| NotPrepared {
            reason: SkipReason::InvalidRecipient,
            detail: "the scheduled wall time does not exist in the recipient's zone".into(),
        })?;
    let attribute = |name: &str| -> Option<String> {
        match name {
            "locale" => recipient.locale.clone(),
            "id" => Some(recipient.id.as_str().to_owned()),
            _ => recipient.attributes.get(name).cloned(),
        }
    };
    let mut params = Vec::with_capacity(campaign.template.params.len());
    for (name, template) in &campaign.template.params {
        let value = template
            .render(attribute)
            .map_err(|e| not_prepared(name, &e))?;
        check_whatsapp_param(name, ParamPlace::Body, &value).map_err(|e| not_prepared(name, &e))?;
        params.push((name.clone(), value));
    }
    let header_text = match &campaign.template.header {
        Some(Header::Text(template)) => {
            let value = template
                .render(attribute)
                .map_err(|e| not_prepared("header", &e))?;
            check_whatsapp_param("header", ParamPlace::HeaderText, &value)
                .map_err(|e| not_prepared("header", &e))?;
            Some(value)
        }
        _ => None,
    };
    Ok(Prepared {
        scheduled_at,
        expires_at: campaign
            .schedule
            .expires_after
            .map(|after| scheduled_at + after),
        language: campaign
            .template
            .language
            .choose(recipient.locale.as_deref())
            .to_owned(),
        params,
        header_text,
        place,
    })
}

fn not_prepared(param: &str, error: &herald_core::template::RenderError) -> NotPrepared {
    NotPrepared {
        reason: error.skip_reason(),
        detail: format!("{param}: {error}"),
    }
}

/// The zone to show a recipient's local time in: their own, or for an unknown zone the first
/// candidate (the plan lists how many zones were considered).
pub fn display_zone(place: &Place) -> Option<TimeZone> {
    place.zones().first().copied()
}

/// Consent as `plan` and expansion assume it: given. Neither can know it ahead of time; the
/// worker checks the real state at the moment of each send.
pub fn assumed_consent() -> herald_core::ConsentState {
    let mut consent = herald_core::ConsentState::default();
    consent.apply(
        herald_core::ConsentKind::OptIn,
        herald_core::Scope::All,
        DateTime::<Utc>::MIN_UTC,
    );
    consent
}

/// The campaign's policy without caps, for placing deliveries in time (caps depend on sends
/// made meanwhile and are checked by the worker).
pub fn timing_policy(campaign: &Campaign) -> herald_core::Policy<'_> {
    herald_core::Policy {
        campaign: &campaign.id,
        purpose: campaign.purpose,
        window: &campaign.window,
        caps: &[],
        spread: campaign.spread,
    }
}

/// The decision for a prepared row before anything was sent: `consent` as assumed, no history.
/// `plan` and expansion both decide rows this way, so a plan shows what expansion will store.
pub fn decide_prepared(
    now: DateTime<Utc>,
    policy: &herald_core::Policy<'_>,
    run: &herald_core::RunId,
    recipient: &herald_core::RecipientId,
    prepared: &Prepared,
    consent: &herald_core::ConsentState,
) -> herald_core::Decision {
    let delivery = herald_core::Delivery {
        run,
        recipient,
        scheduled_at: prepared.scheduled_at,
        expires_at: prepared.expires_at,
    };
    let facts = herald_core::Facts {
        place: &prepared.place,
        consent,
        history: &[],
    };
    herald_core::decide(now, policy, &delivery, &facts)
}
