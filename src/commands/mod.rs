//! One module per command. Each turns flags into one library call and formats the output.

pub(crate) mod plan;
pub(crate) mod schema;
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
