//! `herald serve FILE…`: the scheduler, then the worker, in one process; and the admin API
//! when `[admin] listen` is set.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use herald_app::recurring::{CampaignSet, Event, run_scheduler};

use crate::cli::ServeArgs;
use crate::commands::admin::admin_state;
use crate::commands::scheduler::{campaign_dir, load_all, write_event};
use crate::commands::worker::{options, work_until_stopped, write_reports};
use crate::commands::{Failure, environment, runtime, settings, signal_on_signals};
use crate::output::Output;

pub(crate) fn run(
    config: Option<&Path>,
    args: &ServeArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let env = environment()?;
    let settings = settings(config, &env)?;
    let files = load_all(&args.files, &settings, out)?;
    let dir = campaign_dir(args.campaigns.as_deref())?;
    let options = options(&args.worker);
    // The senders are checked before anything is scheduled: a typo in --sender must not leave
    // campaigns expanded with nobody to send them.
    herald_app::work::selected(&settings, &options)?;
    let runtime = runtime()?;
    let stores = Arc::new(runtime.block_on(herald_app::open_store(&settings, &env))?);
    let reports = runtime.block_on(async {
        let signal = signal_on_signals();
        let shutdown = signal.subscribe();
        // The admin is bound before anything is scheduled, so a port in use or a missing token
        // stops the process before it sends; it then serves until the same shutdown.
        let admin = match settings.admin.listen {
            Some(listen) => {
                let state = admin_state((*stores).clone(), settings.clone(), env.clone())?;
                let listener = herald_admin::bind(&state, listen)
                    .await
                    .map_err(|e| Failure::User(e.to_string()))?;
                writeln!(
                    out.stderr(),
                    "admin API on http://{}",
                    listener.local_addr()?
                );
                Some(tokio::spawn(herald_admin::serve(
                    state,
                    listener,
                    shutdown.clone(),
                )))
            }
            None => None,
        };
        // The first pass schedules the one-off campaigns and fires what is due, before any
        // sending; recurring campaigns and the directory then keep firing beside the worker.
        let mut set = CampaignSet::new(files, dir);
        let mut failed = false;
        if !shutdown.is_shutdown() {
            for event in set.step(&*stores, &settings, Utc::now()).await? {
                // A campaign named on the command line that cannot be scheduled stops serve
                // before it sends; one of the directory is logged and tried again, as the
                // scheduler does, so one broken file never keeps the others from going out.
                let named =
                    matches!(&event, Event::Failed { path, .. } if args.files.contains(path));
                failed |= write_event(out, &event)? && named;
            }
        }
        if failed {
            return Err(Failure::User(String::new()));
        }
        out.finish()?;
        let scheduler = set.keeps_firing().then(|| {
            let (stores, settings, shutdown, signal) = (
                Arc::clone(&stores),
                settings.clone(),
                shutdown.clone(),
                signal.clone(),
            );
            tokio::spawn(async move {
                // Its events are logged by the scheduler itself; stdout is the worker's.
                let result = run_scheduler(&*stores, &settings, &mut set, shutdown, |_| {}).await;
                if result.is_err() {
                    // A scheduler that stopped for good stops the whole process, for the
                    // supervisor to see, rather than leave a worker up that fires nothing.
                    signal.trigger();
                }
                result
            })
        });
        let reports = work_until_stopped(&stores, &settings, &env, &options, shutdown, out).await;
        if let Some(scheduler) = scheduler {
            if reports.is_err() {
                signal.trigger();
            }
            match scheduler.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(error = %error, "the scheduler failed"),
                Err(error) => tracing::error!(error = %error, "the scheduler task failed"),
            }
        }
        if reports.is_err() {
            // The worker failed: stop the admin too (else it, and /healthz, would stay up until
            // a SIGTERM nobody sends), then exit with the worker's error.
            tracing::error!("the worker failed: stopping the admin API");
            signal.trigger();
        }
        if let Some(admin) = admin {
            match admin.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(error = %error, "the admin API failed"),
                Err(error) => tracing::warn!(error = %error, "the admin API task failed"),
            }
        }
        reports
    })?;
    write_reports(out, &reports)
}
