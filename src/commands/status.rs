//! `herald status [RUN] [--format json]`

use std::path::Path;

use chrono::{SecondsFormat, Utc};
use herald_app::run::RunStatus;
use herald_store::{QueueWaits, RunCounts, WaitReason};
use serde_json::json;

use crate::cli::{Format, StatusArgs};
use crate::commands::{Failure, environment, runtime, settings};
use crate::output::{Output, OutputError};

pub(crate) fn run(
    config: Option<&Path>,
    args: &StatusArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let env = environment()?;
    let settings = settings(config, &env)?;
    let runs = runtime()?.block_on(herald_app::run::status(
        &settings,
        &env,
        args.run.as_deref(),
        Utc::now(),
    ))?;
    match args.format {
        Format::Json => {
            let doc: Vec<_> = runs
                .iter()
                .map(|RunStatus { record, counts, waits }| {
                    let consent = match herald_app::run::consent_channel_of(&settings, record, chrono::Utc::now()) {
                        Ok((sender, channel)) => {
                            json!({"channel": channel.as_str(), "sender": sender})
                        }
                        Err(why) => json!({"channel": null, "unknown": why}),
                    };
                    json!({
                        "run": record.run.run.as_str(),
                        "campaign": record.run.campaign.as_str(),
                        "state": record.state.as_str(),
                        "state_reason": record.state_reason,
                        "consent": consent,
                        "total": counts.total(),
                        "queued": counts.queued,
                        "sending": counts.sending,
                        "sent": counts.sent,
                        "failed": counts.failed,
                        "unknown": counts.unknown,
                        "expired": counts.expired,
                        "skipped": counts.skipped,
                        "next_wave": counts.next_wave.map(|(at, n)| json!({"at": at.to_rfc3339_opts(SecondsFormat::Secs, true), "count_within_hour": n})),
                        "waits": waits_json(waits),
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(doc))?;
        }
        Format::Table => {
            if runs.is_empty() {
                writeln!(out, "no runs yet")?;
            }
            for RunStatus {
                record,
                counts,
                waits,
            } in &runs
            {
                let why = record
                    .state_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "run {} ({}{why})",
                    record.run.run,
                    record.state.as_str()
                )?;
                match herald_app::run::consent_channel_of(&settings, record, chrono::Utc::now()) {
                    Ok((sender, channel)) => {
                        writeln!(out, "  consent checked on {channel} (sender {sender})")?;
                    }
                    Err(why) => writeln!(out, "  consent channel unknown: {why}")?,
                }
                write_counts(out, counts)?;
                write_waits(out, waits)?;
                writeln!(out)?;
            }
        }
    }
    Ok(())
}

/// Counts as aligned lines; they add up to `total`.
pub(crate) fn write_counts(out: &mut Output, counts: &RunCounts) -> Result<(), OutputError> {
    writeln!(out, "  total    {}", counts.total())?;
    writeln!(out, "  sent     {}", counts.sent)?;
    writeln!(out, "  queued   {}", counts.queued)?;
    if counts.sending > 0 {
        writeln!(out, "  sending  {}", counts.sending)?;
    }
    for (code, n) in &counts.failed {
        writeln!(out, "  failed({code}) {n}")?;
    }
    if counts.unknown > 0 {
        writeln!(out, "  unknown  {}", counts.unknown)?;
    }
    if counts.expired > 0 {
        writeln!(out, "  expired  {}", counts.expired)?;
    }
    for (reason, n) in &counts.skipped {
        writeln!(out, "  skipped({reason}) {n}")?;
    }
    if let Some((at, n)) = counts.next_wave {
        writeln!(
            out,
            "  next deferred wave: {} ({n} due within the hour)",
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )?;
    }
    Ok(())
}

/// What a wait reason means, completing "N wait …".
fn waiting_for(reason: WaitReason) -> &'static str {
    match reason {
        WaitReason::Schedule => "for their scheduled time",
        WaitReason::Window => "for their send window to open",
        WaitReason::Spread => "for their spread offset",
        WaitReason::Throttle => "for the provider's throttle to pass",
        WaitReason::Retry => "to be retried after the provider did not take them",
        WaitReason::Tier => "for room in the messaging tier",
        WaitReason::Pause => "for an operator (the run is paused)",
    }
}

fn utc(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The queue by why it waits, one line per reason under `queued`.
fn write_waits(out: &mut Output, waits: &QueueWaits) -> Result<(), OutputError> {
    if waits.due > 0 {
        writeln!(out, "    due now  {}", waits.due)?;
    }
    for (reason, waiting) in &waits.waiting {
        writeln!(
            out,
            "    {:<9}{} (next {})",
            reason.as_str(),
            waiting.count,
            utc(waiting.next)
        )?;
    }
    Ok(())
}

/// The queue by why it waits, as one sentence: "12 deliveries wait: 8 for …, 4 …".
pub(crate) fn describe_waits(waits: &QueueWaits) -> String {
    let mut parts = Vec::new();
    if waits.due > 0 {
        parts.push(format!("{} are due now", waits.due));
    }
    for (reason, waiting) in &waits.waiting {
        parts.push(format!(
            "{} {} (next {})",
            waiting.count,
            waiting_for(*reason),
            utc(waiting.next)
        ));
    }
    format!("{} deliveries wait: {}", waits.total(), parts.join(", "))
}

/// The queue by reason for `--format json`: `{"due": n, "<reason>": {"count": n, "next": t}}`.
fn waits_json(waits: &QueueWaits) -> serde_json::Value {
    let mut doc = serde_json::Map::new();
    doc.insert("due".into(), json!(waits.due));
    for (reason, waiting) in &waits.waiting {
        doc.insert(
            reason.as_str().into(),
            json!({"count": waiting.count, "next": utc(waiting.next)}),
        );
    }
    serde_json::Value::Object(doc)
}
