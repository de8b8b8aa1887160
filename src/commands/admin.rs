//! `herald admin [--listen ADDR]`: the admin HTTP API until SIGTERM or Ctrl-C.

use std::path::Path;
use std::sync::Arc;

use crate::cli::AdminArgs;
use crate::commands::{Failure, environment, runtime, settings, shutdown_on_signals};
use crate::output::Output;

pub(crate) fn run(
    config: Option<&Path>,
    args: &AdminArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let env = environment()?;
    let settings = settings(config, &env)?;
    let listen = args
        .listen
        .unwrap_or_else(|| settings.admin.listen_or_default());
    let runtime = runtime()?;
    runtime.block_on(async {
        let stores = herald_app::open_store(&settings, &env).await?;
        let state = admin_state(stores, settings, env)?;
        let listener = herald_admin::bind(&state, listen)
            .await
            .map_err(|e| Failure::User(e.to_string()))?;
        writeln!(
            out.stderr(),
            "admin API on http://{}; Ctrl-C or SIGTERM stops it",
            listener.local_addr()?
        );
        out.finish()?;
        herald_admin::serve(state, listener, shutdown_on_signals()).await?;
        Ok(())
    })
}

/// The admin's state for this process: the system clock, the process's metrics recorder.
pub(crate) fn admin_state(
    stores: herald_app::AnyStores,
    settings: herald_app::Settings,
    env: std::collections::BTreeMap<String, String>,
) -> Result<herald_admin::AdminState, Failure> {
    let metrics = herald_app::metrics::Metrics::install()?;
    herald_admin::AdminState::new(
        stores,
        settings,
        env,
        Arc::new(herald_engine::SystemClock),
        metrics,
    )
    .map_err(|e| Failure::User(e.to_string()))
}
