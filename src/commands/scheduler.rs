//! `herald scheduler [FILE…] [--campaigns DIR]`

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use herald_app::recurring::{CampaignSet, Event, run_scheduler};
use herald_app::schedule::{CampaignFile, Scheduled};
use herald_store::FireOutcome;

use crate::cli::SchedulerArgs;
use crate::commands::status::write_counts;
use crate::commands::{Failure, environment, runtime, settings, shutdown_on_signals};
use crate::output::Output;

pub(crate) fn run(
    config: Option<&Path>,
    args: &SchedulerArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let env = environment()?;
    let settings = settings(config, &env)?;
    let files = load_all(&args.files, &settings, out)?;
    let dir = campaign_dir(args.campaigns.as_deref())?;
    let runtime = runtime()?;
    let stores = runtime.block_on(herald_app::open_store(&settings, &env))?;
    let mut set = CampaignSet::new(files, dir);
    if !set.keeps_firing() {
        // One-off campaigns only: schedule them once and exit, as always.
        let events = runtime.block_on(set.step(&stores, &settings, Utc::now()))?;
        let mut failed = false;
        for event in &events {
            failed |= write_event(out, event)?;
        }
        if failed {
            return Err(Failure::User(String::new()));
        }
        return Ok(());
    }
    if let Some(dir) = &args.campaigns {
        writeln!(
            out.stderr(),
            "scheduler on {}: watching {} (rescanned every {} s); Ctrl-C or SIGTERM stops it",
            herald_app::AppStores::location(&stores),
            dir.display(),
            herald_app::recurring::SCAN_INTERVAL.as_secs()
        );
    } else {
        writeln!(
            out.stderr(),
            "scheduler on {}: firing the recurring campaigns given; Ctrl-C or SIGTERM stops it",
            herald_app::AppStores::location(&stores)
        );
    }
    out.finish()?;
    let mut failure = None;
    runtime.block_on(async {
        let shutdown = shutdown_on_signals();
        run_scheduler(&stores, &settings, &mut set, shutdown, |events| {
            for event in events {
                if let Err(error) = write_event(out, event) {
                    failure.get_or_insert(error);
                }
            }
            if let Err(error) = out.finish() {
                failure.get_or_insert(error.into());
            }
        })
        .await
    })?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    writeln!(out, "stopped")?;
    Ok(())
}

/// `--campaigns DIR`, checked to be a directory now (its files are read by the scheduler).
pub(crate) fn campaign_dir(dir: Option<&Path>) -> Result<Option<PathBuf>, Failure> {
    let Some(dir) = dir else { return Ok(None) };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(Some(dir.to_owned())),
        Ok(_) => Err(Failure::User(format!(
            "--campaigns {}: not a directory",
            dir.display()
        ))),
        Err(error) => Err(Failure::User(format!(
            "--campaigns {}: {error}",
            dir.display()
        ))),
    }
}

/// One scheduler event, as a line (or a few); `true` for a failure.
pub(crate) fn write_event(out: &mut Output, event: &Event) -> Result<bool, Failure> {
    match event {
        Event::Scheduled(scheduled) => write_scheduled(out, scheduled)?,
        Event::Loaded { path, campaign } => {
            writeln!(out, "loaded {} (campaign {campaign})", path.display())?;
        }
        Event::Invalid { path, diagnostics } => {
            writeln!(
                out.stderr(),
                "{}: not loaded; its previous version, if any, stays in effect:\n{diagnostics}",
                path.display()
            );
        }
        Event::Removed { path, campaign } => {
            let what = campaign
                .as_deref()
                .map(|c| format!(": campaign {c} fires no more"))
                .unwrap_or_default();
            writeln!(out, "removed {}{what}", path.display())?;
        }
        Event::Fired(record) => {
            let fire = record.fire.to_rfc3339_opts(SecondsFormat::Secs, true);
            match &record.outcome {
                FireOutcome::Run(run) => {
                    writeln!(out, "fire {fire} of {}: run {run}", record.campaign)?
                }
                FireOutcome::Skipped(skip) => writeln!(
                    out,
                    "fire {fire} of {}: skipped ({})",
                    record.campaign,
                    herald_app::status::describe_skip(skip)
                )?,
            }
        }
        Event::Expanded { run, expansion } => {
            let how = if expansion.already_expanded {
                "already expanded".to_owned()
            } else {
                format!("{} deliveries added", expansion.inserted)
            };
            writeln!(out, "run {run}: {how}")?;
        }
        Event::Failed { path: _, message } => {
            writeln!(out.stderr(), "{message}");
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads and validates every file first, reporting every problem of every file; nothing is
/// scheduled unless all are valid.
pub(crate) fn load_all(
    paths: &[PathBuf],
    settings: &herald_app::Settings,
    out: &mut Output,
) -> Result<Vec<CampaignFile>, Failure> {
    let now = Utc::now();
    let mut files = Vec::with_capacity(paths.len());
    let mut invalid = false;
    for path in paths {
        match CampaignFile::load(path, now).and_then(|file| file.sender(settings).map(|_| file)) {
            Ok(file) => files.push(file),
            Err(herald_app::AppError::User(message)) => {
                writeln!(out.stderr(), "{message}");
                invalid = true;
            }
            Err(other) => return Err(other.into()),
        }
    }
    if invalid {
        return Err(Failure::User(
            "nothing was scheduled: fix the campaigns above and run again".to_owned(),
        ));
    }
    Ok(files)
}

/// A scheduled run: its id, file, sender, what expansion did, and its counts.
pub(crate) fn write_scheduled(out: &mut Output, scheduled: &Scheduled) -> Result<(), Failure> {
    let expansion = &scheduled.expansion;
    let how = if expansion.already_expanded {
        "already expanded".to_owned()
    } else {
        format!("{} deliveries added", expansion.inserted)
    };
    writeln!(
        out,
        "run {} ({}, sender {}): {how}",
        scheduled.run,
        scheduled.file.display(),
        scheduled.sender
    )?;
    write_counts(out, &scheduled.counts)?;
    Ok(())
}
