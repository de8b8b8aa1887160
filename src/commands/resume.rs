//! `herald resume --sender NAME | RUN`

use std::path::Path;

use chrono::SecondsFormat;
use herald_app::AppError;
use herald_app::resume::{SenderResumed, resume_sender};
use herald_app::run_control::{Operator, RunResumed, parse_run, resume_run};

use crate::cli::ResumeArgs;
use crate::commands::{Failure, environment, runtime, settings};
use crate::output::Output;

pub(crate) fn run(
    config: Option<&Path>,
    args: &ResumeArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    // Checked before anything is read: a bare `herald resume` is a usage mistake, not a
    // question about the config.
    if args.sender.is_none() && args.run.is_none() {
        return Err(Failure::User(
            "herald resume needs what to resume: `herald resume --sender NAME` clears a \
             provider's block of a sender, `herald resume RUN` sets a paused run active"
                .to_owned(),
        ));
    }
    let env = environment()?;
    let settings = settings(config, &env)?;
    let runtime = runtime()?;
    if let Some(name) = &args.sender {
        match runtime.block_on(resume_sender(&settings, &env, name))? {
            SenderResumed::Unblocked(Some(block)) => writeln!(
                out,
                "sender {name} resumed: cleared the provider's block of {} ({}: {}); its \
                 workers claim again",
                block.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                block.code,
                block.reason
            )?,
            SenderResumed::Unblocked(None) => {
                writeln!(out, "sender {name} resumed: cleared the provider's block")?;
            }
            SenderResumed::NotBlocked(None) => {
                writeln!(out, "sender {name} was not blocked; nothing to resume")?;
            }
            SenderResumed::NotBlocked(Some(until)) => writeln!(
                out,
                "sender {name} was not blocked; nothing to resume (the provider's throttle \
                 stays until {}: it ends by itself)",
                until.to_rfc3339_opts(SecondsFormat::Secs, true)
            )?,
        }
    }
    if let Some(text) = &args.run {
        let run = parse_run(text).map_err(AppError::from)?;
        let resumed = runtime.block_on(async {
            let stores = herald_app::open_store(&settings, &env).await?;
            Ok::<_, AppError>(resume_run(&stores, &run, Operator::Cli).await?)
        })?;
        match resumed {
            RunResumed::Resumed { by, reason } => writeln!(
                out,
                "run {run} resumed (it was {})",
                crate::commands::pause::describe_pause(by.as_deref(), reason.as_deref())
            )?,
            RunResumed::AlreadyActive => {
                writeln!(out, "run {run} is not paused; nothing to resume")?;
            }
        }
    }
    Ok(())
}
