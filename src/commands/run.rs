//! `herald run FILE [--until-idle]`

use std::path::Path;
use std::sync::Arc;

use chrono::SecondsFormat;
use herald_app::metrics_listener::MetricsListener;
use herald_app::run::{Ending, ProgressView, RunOptions, SenderBlocked, run_campaign};
use herald_engine::SystemClock;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::RunArgs;
use crate::commands::status::{describe_waits, write_counts};
use crate::commands::{Failure, environment, runtime, settings, shutdown_on_signals};
use crate::output::Output;

pub(crate) fn run(config: Option<&Path>, args: &RunArgs, out: &mut Output) -> Result<(), Failure> {
    let env = environment()?;
    let settings = settings(config, &env)?;
    let runtime = runtime()?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {pos}/{len} ended [{bar:30}] {per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = runtime.block_on(async {
        let shutdown = shutdown_on_signals();
        let on_progress = |view: &ProgressView| {
            bar.set_length(view.total);
            bar.set_position(view.done);
            let next = view
                .next_due
                .map(|t| format!(", next due {}", t.format("%Y-%m-%d %H:%M:%SZ")))
                .unwrap_or_default();
            bar.set_message(format!(
                "sent {} deferred {} skipped {} failed {}{next}",
                view.sent, view.deferred, view.skipped, view.failed
            ));
        };
        let options = RunOptions {
            until_idle: args.until_idle,
            ..RunOptions::default()
        };
        // Dropped when the run returns: the listener lives as long as the run.
        let _metrics = MetricsListener::start_if_configured(&settings, shutdown.clone()).await?;
        run_campaign(
            &args.file,
            &settings,
            &env,
            options,
            Arc::new(SystemClock),
            shutdown,
            on_progress,
        )
        .await
    });
    bar.finish_and_clear();
    let report = report?;
    if report.recovered > 0 {
        writeln!(
            out.stderr(),
            "{} deliveries were left in flight by a crashed process; their lease ended and they ended unknown (or were requeued under at_least_once)",
            report.recovered
        );
    }
    if let Some(outbox) = report
        .implicit_outbox
        .as_ref()
        .filter(|_| !matches!(report.ending, Ending::NoFireDue { .. }))
    {
        writeln!(
            out.stderr(),
            "no config file (--config, HERALD_CONFIG, ./herald.toml): the implicit `main` sender appended the messages to the outbox {}; nothing reached a provider",
            outbox.display()
        );
    }
    if let Ending::NoFireDue { next } = &report.ending {
        let next = next.map_or_else(
            || "the schedule fires no more".to_owned(),
            |at| {
                format!(
                    "the next fire is {}",
                    at.to_rfc3339_opts(SecondsFormat::Secs, true)
                )
            },
        );
        writeln!(
            out,
            "no fire is due now (under the campaign's catch_up) and no run of it is pending; {next}"
        )?;
        return Ok(());
    }
    writeln!(out, "run {}", report.run)?;
    write_counts(out, &report.counts)?;
    match &report.ending {
        Ending::Done | Ending::NextFire(_) | Ending::NoFireDue { .. } => {}
        Ending::Interrupted => writeln!(out, "stopped; run the same command again to resume")?,
        Ending::Idle(waits) if waits.total() > 0 => writeln!(
            out,
            "{}; run again (or without --until-idle) to send them",
            describe_waits(waits)
        )?,
        Ending::Idle(_) => {}
        Ending::Throttled {
            sender,
            until,
            waits,
        } => writeln!(
            out,
            "the provider throttles sender `{sender}` until {}; {}; run again after that",
            until.to_rfc3339_opts(SecondsFormat::Secs, true),
            describe_waits(waits)
        )?,
        Ending::Paused { by, reason } => {
            return Err(Failure::User(format!(
                "run {run} is {}; {} deliveries stay queued and nothing is sent until it is \
                 resumed: fix the cause, then `herald resume {run}` and run the same command again",
                crate::commands::pause::describe_pause(by.as_deref(), Some(reason)),
                report.counts.queued,
                run = report.run,
            )));
        }
        Ending::Blocked { sender, block } => {
            let blocked = SenderBlocked {
                sender: sender.clone(),
                block: block.clone(),
            };
            return Err(Failure::User(format!(
                "{}; {} deliveries of run {} stay queued: {}",
                blocked.describe(),
                report.counts.queued,
                report.run,
                blocked.remedy()
            )));
        }
    }
    Ok(())
}
