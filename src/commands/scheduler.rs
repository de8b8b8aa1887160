//! `herald scheduler FILE…`

use std::path::{Path, PathBuf};

use chrono::Utc;
use herald_app::schedule::{CampaignFile, Scheduled, schedule};

use crate::cli::SchedulerArgs;
use crate::commands::status::write_counts;
use crate::commands::{Failure, environment, runtime, settings};
use crate::output::Output;

pub(crate) fn run(
    config: Option<&Path>,
    args: &SchedulerArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let env = environment()?;
    let settings = settings(config, &env)?;
    let files = load_all(&args.files, &settings, out)?;
    let runtime = runtime()?;
    let stores = runtime.block_on(herald_app::open_store(&settings, &env))?;
    let mut failed = false;
    for file in &files {
        match runtime.block_on(schedule(&stores, file, &settings, Utc::now())) {
            Ok(scheduled) => write_scheduled(out, &scheduled)?,
            // One campaign's audience failing (changed since its run started, unreadable) does
            // not keep the others from being scheduled; the exit code says something failed.
            Err(herald_app::AppError::User(message)) => {
                writeln!(out.stderr(), "{message}");
                failed = true;
            }
            Err(other) => return Err(other.into()),
        }
    }
    if failed {
        return Err(Failure::User(String::new()));
    }
    Ok(())
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
