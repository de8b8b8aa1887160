//! One module per command. Each turns flags into one library call and formats the output.

pub(crate) mod admin;
pub(crate) mod consent;
pub(crate) mod init;
pub(crate) mod pause;
pub(crate) mod plan;
pub(crate) mod resume;
pub(crate) mod run;
pub(crate) mod scheduler;
pub(crate) mod schema;
pub(crate) mod serve;
pub(crate) mod status;
pub(crate) mod validate;
pub(crate) mod worker;

use crate::output::OutputError;

/// How a command failed, which decides the exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad input: exit 1, message already phrased for the user.
    User(String),
    /// A bug or an environment failure: exit 2.
    Internal(anyhow::Error),
    /// Stdout could not be written (not a closed pipe, which is no failure): exit 2.
    Output(OutputError),
}

impl From<OutputError> for Failure {
    fn from(error: OutputError) -> Self {
        Failure::Output(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Internal(error.into())
    }
}

impl From<herald_app::AppError> for Failure {
    fn from(error: herald_app::AppError) -> Self {
        match error {
            herald_app::AppError::User(message) => Failure::User(message),
            herald_app::AppError::Internal(message) => Failure::Internal(anyhow::anyhow!(message)),
        }
    }
}

/// The process environment, read once and passed down (nothing below reads it itself).
///
/// A variable whose name or value is not UTF-8 is left out (`std::env::vars` would panic on it),
/// unless it is one of ours (`HERALD_…`): then it is an error naming it, not a silent omission.
pub(crate) fn environment() -> Result<std::collections::BTreeMap<String, String>, Failure> {
    let mut env = std::collections::BTreeMap::new();
    for (name, value) in std::env::vars_os() {
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => {
                env.insert(name, value);
            }
            (Ok(name), Err(_)) if name.starts_with("HERALD_") => {
                return Err(Failure::User(format!(
                    "environment variable {name} is not valid UTF-8"
                )));
            }
            (Err(name), _) if name.to_string_lossy().starts_with("HERALD_") => {
                return Err(Failure::User(format!(
                    "environment variable {} has a name that is not valid UTF-8",
                    name.to_string_lossy()
                )));
            }
            _ => {}
        }
    }
    Ok(env)
}

/// Settings from `--config`, the environment and defaults.
pub(crate) fn settings(
    config: Option<&std::path::Path>,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<herald_app::Settings, Failure> {
    let settings =
        herald_app::Settings::load(config, env).map_err(|e| Failure::User(e.to_string()))?;
    tracing::debug!(
        senders = ?settings.senders.keys().collect::<Vec<_>>(),
        store = %settings.store_location(env),
        "settings loaded"
    );
    Ok(settings)
}

/// A runtime for the commands that talk to a store or a channel.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::from)
}

/// The one shutdown of a process: Ctrl-C (SIGINT) or SIGTERM triggers it. In-flight requests
/// then finish and are recorded before the command returns. Must be called inside the runtime.
pub(crate) fn shutdown_on_signals() -> herald_engine::Shutdown {
    signal_on_signals().subscribe()
}

/// The shutdown [`shutdown_on_signals`] listens to, kept so the process can also trigger it
/// itself (`serve` stops its admin API when its worker fails).
pub(crate) fn signal_on_signals() -> herald_engine::ShutdownSignal {
    let signal = herald_engine::ShutdownSignal::new();
    let handle = signal.clone();
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut stream) => {
                    stream.recv().await;
                }
                // Without a SIGTERM handler the default one ends the process: only Ctrl-C is
                // then graceful.
                Err(error) => {
                    tracing::warn!(error.message = %error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        tracing::info!("stopping: the requests in flight finish and are recorded");
        signal.trigger();
    });
    handle
}
