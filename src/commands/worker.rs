//! `herald worker [--concurrency N] [--sender NAME]…`

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use herald_app::metrics_listener::MetricsListener;
use herald_app::work::{SenderReport, WorkOptions, Workers};
use herald_engine::SystemClock;
use herald_engine::worker::process_worker_id;

use crate::cli::WorkerArgs;
use crate::commands::{Failure, environment, runtime, settings, shutdown_on_signals};
use crate::output::Output;

pub(crate) fn run(
    config: Option<&Path>,
    args: &WorkerArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let env = environment()?;
    let settings = settings(config, &env)?;
    let options = options(args);
    let runtime = runtime()?;
    let stores = Arc::new(runtime.block_on(herald_app::open_store(&settings, &env))?);
    let reports = runtime.block_on(async {
        let shutdown = shutdown_on_signals();
        work_until_stopped(&stores, &settings, &env, &options, shutdown, out).await
    })?;
    write_reports(out, &reports)
}

pub(crate) fn options(args: &WorkerArgs) -> WorkOptions {
    WorkOptions {
        concurrency: args.concurrency.and_then(|n| NonZeroUsize::new(n as usize)),
        senders: args.senders.clone(),
    }
}

/// Works until the shutdown fires, saying on stderr who works what.
pub(crate) async fn work_until_stopped<S: herald_app::AppStores>(
    stores: &Arc<S>,
    settings: &herald_app::Settings,
    env: &std::collections::BTreeMap<String, String>,
    options: &WorkOptions,
    shutdown: herald_engine::Shutdown,
    out: &mut Output,
) -> Result<Vec<SenderReport>, Failure> {
    let metrics = MetricsListener::start_if_configured(settings, shutdown.clone()).await?;
    if let Some(listener) = &metrics {
        writeln!(
            out.stderr(),
            "metrics at http://{}/metrics",
            listener.local_addr()
        );
    }
    let workers = Workers::build(
        stores,
        settings,
        env,
        options,
        process_worker_id(),
        Arc::new(SystemClock),
        shutdown,
    )?;
    writeln!(
        out.stderr(),
        "worker {} on {}: sending for {} (lease {} s); Ctrl-C or SIGTERM stops it after the \
         requests in flight",
        workers.id(),
        stores.location(),
        workers.senders().join(", "),
        settings.worker.lease_seconds
    );
    let reports = workers.work().await?;
    if let Some(listener) = metrics {
        listener.stopped().await?;
    }
    Ok(reports)
}

/// What each sender's worker did, one line each.
pub(crate) fn write_reports(out: &mut Output, reports: &[SenderReport]) -> Result<(), Failure> {
    writeln!(out, "stopped; the requests in flight were recorded")?;
    for r in reports {
        writeln!(
            out,
            "  sender {}: sent {}, deferred {}, skipped {}, failed {}",
            r.sender, r.sent, r.deferred, r.skipped, r.failed
        )?;
    }
    Ok(())
}
