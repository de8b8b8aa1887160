//! `herald plan FILE [--now T] [--format table|json]`

use chrono::{DateTime, SecondsFormat, Utc};
use herald_campaign::ScheduleKind;
use herald_core::{ConsentChannel, TimeZone};
use herald_engine::plan::{PlanSummary, PlannedOutcome, PlannedRow, local_time, plan};
use serde_json::{Value, json};

use crate::cli::{Format, PlanArgs};
use crate::commands::Failure;
use crate::output::{Output, OutputError};

pub(crate) fn run(
    config: Option<&std::path::Path>,
    args: &PlanArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let now = match &args.now {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.to_utc())
            .map_err(|e| {
                Failure::User(format!(
                    "invalid --now {text:?}: {e} (expected RFC 3339, e.g. 2026-11-27T06:00:00Z)"
                ))
            })?,
        None => Utc::now(),
    };
    let campaign =
        herald_campaign::load(&args.file, now).map_err(|d| Failure::User(d.to_string()))?;
    let settings = crate::commands::validate::config_settings(config)?;
    if let Some(settings) = &settings
        && let Some(diagnostic) = herald_app::sender::check(&args.file, &campaign, settings)
    {
        return Err(Failure::User(diagnostic.to_string()));
    }
    let consent = ConsentOn::of(&campaign, settings.as_ref());
    let mut write_error: Option<OutputError> = None;
    let mut first = true;
    if args.format == Format::Json {
        write!(
            out,
            "{{\"campaign\":{},\"now\":{},\"consent\":{},\"recipients\":[",
            json!(campaign.id.as_str()),
            json!(utc(now)),
            json!({"channel": consent.channel.as_str(), "sender": consent.sender}),
        )?;
    } else {
        writeln!(
            out,
            "{:<6} {:<16} {:<14} {:<24} {:<26} {:<25} UTC",
            "LINE", "RECIPIENT", "PHONE", "ZONE", "OUTCOME", "LOCAL"
        )?;
    }
    let summary = plan(&campaign, now, |row| {
        if write_error.is_some() {
            return;
        }
        if let Some(detail) = row.detail.as_deref().filter(|_| row.recipient.is_none()) {
            writeln!(out.stderr(), "{detail}");
        }
        // Once stdout's reader has left, the rest of the plan is still worked out (its errors
        // decide the exit code) but not formatted.
        if out.is_closed() {
            return;
        }
        let result = match args.format {
            Format::Json => {
                let separator = if first { "\n" } else { ",\n" };
                first = false;
                write!(out, "{separator}{}", row_json(row))
            }
            Format::Table => writeln!(out, "{}", row_table(row)),
        };
        if let Err(e) = result {
            write_error = Some(e);
        }
    })
    .map_err(|e| Failure::User(format!("{}: {e}", args.file.display())))?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    match args.format {
        Format::Json => writeln!(out, "\n],\"summary\":{}}}", summary_json(&summary))?,
        Format::Table => write_summary(out, &summary, &consent, cron_zone(&campaign))?,
    }
    Ok(())
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn outcome_name(row: &PlannedRow) -> String {
    match row.outcome {
        PlannedOutcome::Send(_) => "send".into(),
        PlannedOutcome::Skip(reason) => format!("skipped({reason})"),
        PlannedOutcome::Expire => "expired".into(),
    }
}

fn row_json(row: &PlannedRow) -> Value {
    let (send_at, local) = match row.outcome {
        PlannedOutcome::Send(at) => (Some(utc(at)), local_time(row, at)),
        _ => (None, None),
    };
    let reason = match row.outcome {
        PlannedOutcome::Skip(reason) => Some(reason.as_str()),
        _ => None,
    };
    json!({
        "line": row.line,
        "recipient": row.recipient,
        "phone": row.phone,
        "zones": row.zones.iter().map(|z| z.name()).collect::<Vec<_>>(),
        "outcome": match row.outcome { PlannedOutcome::Send(_) => "send", PlannedOutcome::Skip(_) => "skipped", PlannedOutcome::Expire => "expired" },
        "reason": reason,
        "send_at_utc": send_at,
        "send_at_local": local,
        "language": row.language,
        "detail": row.detail,
    })
}

fn row_table(row: &PlannedRow) -> String {
    let zone = match row.zones.as_slice() {
        [] => "-".to_owned(),
        [one] => one.name().to_owned(),
        many => format!("any of {} zones", many.len()),
    };
    let (local, at) = match row.outcome {
        PlannedOutcome::Send(at) => (local_time(row, at).unwrap_or_default(), utc(at)),
        _ => (String::new(), row.detail.clone().unwrap_or_default()),
    };
    format!(
        "{:<6} {:<16} {:<14} {:<24} {:<26} {:<25} {}",
        row.line,
        row.recipient.as_deref().unwrap_or("-"),
        row.phone.as_deref().unwrap_or("-"),
        zone,
        outcome_name(row),
        local,
        at
    )
}

fn summary_json(summary: &PlanSummary) -> Value {
    json!({
        "run": summary.run,
        "audience": summary.audience,
        "filtered_out": summary.filtered_out,
        "send": summary.sends,
        "expired": summary.expired,
        "skipped": summary.skipped,
        "by_hour_utc": summary.by_hour.iter().map(|(h, n)| (utc(*h), json!(n))).collect::<serde_json::Map<_, _>>(),
        "next_fires": summary.next_fires.iter().map(|t| utc(*t)).collect::<Vec<_>>(),
        "send_window": if summary.always_open { "always_open" } else { "campaign" },
        "stored_tags_unseen": summary.stored_tags_unseen,
        "note": "consent and frequency caps are checked at the moment of each send; the plan assumes they allow it",
    })
}

/// The channel consent will be checked on: the sender's `consent_channel` in the given config,
/// or, with no config to look in, `whatsapp` (what every sender checks unless configured).
struct ConsentOn {
    channel: ConsentChannel,
    /// The sender it comes from, when a config was given.
    sender: Option<String>,
}

impl ConsentOn {
    fn of(campaign: &herald_campaign::Campaign, settings: Option<&herald_app::Settings>) -> Self {
        let name = campaign.sender.as_ref().map_or("main", |s| s.as_str());
        match settings.and_then(|s| s.senders.get(name)) {
            Some(sender) => Self {
                channel: sender.consent_channel(),
                sender: Some(name.to_owned()),
            },
            None => Self {
                channel: ConsentChannel::whatsapp(),
                sender: None,
            },
        }
    }

    fn describe(&self) -> String {
        match &self.sender {
            Some(sender) => format!(
                "consent is checked on channel {} (sender {sender})",
                self.channel
            ),
            None => format!(
                "consent is checked on channel {} (the default; give --config to see the \
                 sender's consent_channel)",
                self.channel
            ),
        }
    }
}

/// The zone a cron campaign's fires are read in (none for a one-off campaign).
fn cron_zone(campaign: &herald_campaign::Campaign) -> Option<TimeZone> {
    match &campaign.schedule.kind {
        ScheduleKind::Cron { zone, .. } => Some(*zone),
        ScheduleKind::At { .. } => None,
    }
}

fn write_summary(
    out: &mut Output,
    summary: &PlanSummary,
    consent: &ConsentOn,
    zone: Option<TimeZone>,
) -> Result<(), OutputError> {
    writeln!(out)?;
    writeln!(out, "run {}", summary.run.as_deref().unwrap_or("-"))?;
    if let Some(zone) = zone.filter(|_| !summary.next_fires.is_empty()) {
        // Local time first: that is what the expression says; UTC beside it shows what a DST
        // change did to it.
        writeln!(out, "next fires ({zone}):")?;
        for fire in &summary.next_fires {
            let local = fire.with_timezone(&zone.tz()).format("%Y-%m-%d %H:%M %:z");
            writeln!(out, "  {local}  {}", utc(*fire))?;
        }
    }
    if summary.always_open {
        writeln!(
            out,
            "send window: none; a transactional or service campaign without one sends at any hour"
        )?;
    }
    writeln!(
        out,
        "audience {} (filtered out by `where`: {})",
        summary.audience, summary.filtered_out
    )?;
    if summary.stored_tags_unseen {
        writeln!(out, "  {}", herald_engine::plan::STORED_TAGS_NOTE)?;
    }
    writeln!(out, "  send     {}", summary.sends)?;
    writeln!(out, "  expired  {}", summary.expired)?;
    for (reason, n) in &summary.skipped {
        writeln!(out, "  skipped({reason}) {n}")?;
    }
    writeln!(out, "sends by hour (UTC):")?;
    for (hour, n) in &summary.by_hour {
        writeln!(out, "  {}  {n}", hour.format("%Y-%m-%d %H:00"))?;
    }
    writeln!(
        out,
        "consent and frequency caps are checked at the moment of each send; this plan assumes they allow it."
    )?;
    writeln!(out, "{}", consent.describe())
}
