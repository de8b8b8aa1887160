//! `herald pause RUN [--reason TEXT]` and `herald cancel RUN`: an operator stops a run, for a
//! while or for good (see `herald_app::run_control`).

use std::path::Path;

use herald_app::AppError;
use herald_app::run_control::{Operator, RunPaused, cancel_run, parse_run, pause_run};

use crate::cli::{CancelArgs, PauseArgs};
use crate::commands::status::write_counts;
use crate::commands::{Failure, environment, runtime, settings};
use crate::output::Output;

/// "paused by WHO: WHY", from what the store recorded.
pub(crate) fn describe_pause(by: Option<&str>, reason: Option<&str>) -> String {
    let by = by.map(|by| format!(" by {by}")).unwrap_or_default();
    match reason {
        Some(reason) => format!("paused{by}: {reason}"),
        None => format!("paused{by}"),
    }
}

pub(crate) fn pause(
    config: Option<&Path>,
    args: &PauseArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let run = parse_run(&args.run).map_err(AppError::from)?;
    let env = environment()?;
    let settings = settings(config, &env)?;
    let paused = runtime()?.block_on(async {
        let stores = herald_app::open_store(&settings, &env).await?;
        Ok::<_, AppError>(pause_run(&stores, &run, Operator::Cli, args.reason.as_deref()).await?)
    })?;
    match paused {
        RunPaused::Paused => writeln!(
            out,
            "run {run} paused: nothing of it is claimed until `herald resume {run}`"
        )?,
        RunPaused::AlreadyPaused { by, reason } => writeln!(
            out,
            "run {run} was already {}; nothing changed",
            describe_pause(by.as_deref(), reason.as_deref())
        )?,
    }
    Ok(())
}

pub(crate) fn cancel(
    config: Option<&Path>,
    args: &CancelArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let run = parse_run(&args.run).map_err(AppError::from)?;
    let env = environment()?;
    let settings = settings(config, &env)?;
    let cancelled = runtime()?.block_on(async {
        let stores = herald_app::open_store(&settings, &env).await?;
        Ok::<_, AppError>(cancel_run(&stores, &run, Operator::Cli).await?)
    })?;
    if cancelled.already {
        writeln!(out, "run {run} was already cancelled; nothing changed")?;
    } else {
        writeln!(
            out,
            "run {run} cancelled: {} queued deliveries ended skipped(cancelled)",
            cancelled.ended
        )?;
    }
    write_counts(out, &cancelled.counts)?;
    Ok(())
}
