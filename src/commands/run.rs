//! `herald run FILE [--until-idle]`

use std::path::Path;
use std::sync::Arc;

use herald_app::run::{ProgressView, RunOptions, run_campaign};
use herald_engine::SystemClock;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::RunArgs;
use crate::commands::status::write_counts;
use crate::commands::{Failure, environment, runtime, settings};
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
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
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
        };
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
            "{} deliveries were interrupted in flight by an earlier crash and ended unknown (or were requeued under at_least_once)",
            report.recovered
        );
    }
    writeln!(out, "run {}", report.run)?;
    write_counts(out, &report.counts)?;
    if report.interrupted {
        writeln!(out, "stopped; run the same command again to resume")?;
    } else if report.counts.queued > 0 {
        writeln!(
            out,
            "{} deliveries wait for their window; run again (or without --until-idle) to send them",
            report.counts.queued
        )?;
    }
    Ok(())
}
