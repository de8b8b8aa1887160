//! `herald status [RUN] [--format json]`

use std::path::Path;

use chrono::SecondsFormat;
use herald_store::RunCounts;
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
    ))?;
    match args.format {
        Format::Json => {
            let doc: Vec<_> = runs
                .iter()
                .map(|(record, counts)| {
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
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(doc))?;
        }
        Format::Table => {
            if runs.is_empty() {
                writeln!(out, "no runs yet")?;
            }
            for (record, counts) in &runs {
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
