//! One module per command. Each turns flags into one library call and formats the output.

pub(crate) mod consent;
pub(crate) mod plan;
pub(crate) mod run;
pub(crate) mod schema;
pub(crate) mod status;
pub(crate) mod validate;

/// How a command failed, which decides the exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad input: exit 1, message already phrased for the user.
    User(String),
    /// A bug or an environment failure: exit 2.
    Internal(anyhow::Error),
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
pub(crate) fn environment() -> std::collections::BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Settings from `--config`, the environment and defaults.
pub(crate) fn settings(
    config: Option<&std::path::Path>,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<herald_app::Settings, Failure> {
    herald_app::Settings::load(config, env).map_err(|e| Failure::User(e.to_string()))
}

/// A runtime for the commands that talk to a store or a channel.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::from)
}
