//! `herald status [RUN] [--format json]`

use std::path::Path;

use chrono::{SecondsFormat, Utc};
use herald_app::status::{CampaignStatus, RunStatus, SenderStatus, describe_outcome};
use herald_store::{QueueWaits, RunCounts, WaitReason};

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
    let now = Utc::now();
    let status = runtime()?.block_on(herald_app::status::status(
        &settings,
        &env,
        args.run.as_deref(),
        now,
    ))?;
    match args.format {
        Format::Json => writeln!(out, "{}", status.runs_json(now))?,
        Format::Table => {
            write_senders(out, &status.senders, now)?;
            write_campaigns(out, &status.campaigns)?;
            for problem in &status.problems {
                writeln!(
                    out,
                    "campaign file {} not loaded (since {}); its previous version, if any, stays in effect:\n{}",
                    problem.source,
                    utc(problem.at),
                    problem.diagnostics
                )?;
            }
            if status.runs.is_empty() {
                writeln!(out, "no runs yet")?;
            }
            for run in &status.runs {
                write_run(out, run)?;
            }
        }
    }
    Ok(())
}

/// Each recurring campaign: its current version (source, hash, since when), then its newest
/// fires with what each did (a run, or skipped and why).
fn write_campaigns(out: &mut Output, campaigns: &[CampaignStatus]) -> Result<(), OutputError> {
    for campaign in campaigns {
        let version = &campaign.version;
        writeln!(
            out,
            "campaign {} ({}, version {} since {})",
            version.campaign,
            version.source,
            version.hash.get(..12).unwrap_or(&version.hash),
            utc(version.stored_at)
        )?;
        for fire in &campaign.fires {
            writeln!(
                out,
                "  fire {}: {}",
                utc(fire.fire),
                describe_outcome(&fire.outcome)
            )?;
        }
    }
    if !campaigns.is_empty() {
        writeln!(out)?;
    }
    Ok(())
}

/// One line per sender: ok, throttled until when, or blocked with the provider's code and
/// reason and how to clear it.
fn write_senders(
    out: &mut Output,
    senders: &[SenderStatus],
    now: chrono::DateTime<Utc>,
) -> Result<(), OutputError> {
    for sender in senders {
        let unconfigured = if sender.configured {
            ""
        } else {
            " (not in the config)"
        };
        let name = &sender.name;
        match (&sender.state.blocked, sender.state.throttled_until) {
            (Some(block), _) => writeln!(
                out,
                "sender {name}{unconfigured}: blocked since {} by the provider ({}: {}); \
                 nothing is sent through it until `herald resume --sender {name}`",
                utc(block.at),
                block.code,
                block.reason
            )?,
            (None, Some(until)) if until > now => writeln!(
                out,
                "sender {name}{unconfigured}: throttled by the provider until {}",
                utc(until)
            )?,
            (None, _) => writeln!(out, "sender {name}{unconfigured}: ok")?,
        }
    }
    if !senders.is_empty() {
        writeln!(out)?;
    }
    Ok(())
}

fn write_run(out: &mut Output, run: &RunStatus) -> Result<(), OutputError> {
    let RunStatus {
        record,
        counts,
        waits,
        consent,
        in_flight,
        ..
    } = run;
    let by = record
        .paused_by
        .as_deref()
        .map(|by| format!(" by {by}"))
        .unwrap_or_default();
    let why = record
        .state_reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    writeln!(
        out,
        "run {} ({}{by}{why})",
        record.run.run,
        record.state.as_str()
    )?;
    if record.state == herald_store::RunState::Paused {
        writeln!(
            out,
            "  nothing of it is claimed until `herald resume {}`",
            record.run.run
        )?;
    }
    match consent {
        Ok((sender, channel)) => {
            writeln!(out, "  consent checked on {channel} (sender {sender})")?;
        }
        Err(why) => writeln!(out, "  consent channel unknown: {why}")?,
    }
    write_counts(out, counts)?;
    write_waits(out, waits)?;
    for (owner, n) in in_flight.iter().flatten() {
        writeln!(out, "  in flight  {n} claimed by worker {owner}")?;
    }
    writeln!(out)?;
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
