//! The `herald` command: parse flags, dispatch to one command, map the result to an exit code
//! (0 ok, 1 the user's mistake, 2 ours).

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::commands::Failure;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version are successes; every other parse error is a user error.
            let code = if error.use_stderr() { 1 } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    init_telemetry();
    let config = cli.config.as_deref();
    let result = match cli.command {
        Command::Validate(args) => commands::validate::run(config, &args),
        Command::Plan(args) => commands::plan::run(config, &args),
        Command::Schema => commands::schema::run(),
        Command::Run(args) => commands::run::run(config, &args),
        Command::Status(args) => commands::status::run(config, &args),
        Command::Consent(command) => commands::consent::run(config, &command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::User(message)) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            ExitCode::from(1)
        }
        Err(Failure::Internal(error)) => {
            eprintln!("herald: internal error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr, filtered by `HERALD_LOG` (default: warnings). Phone numbers are masked by
/// their `Display`; the full number is only ever logged at debug level.
fn init_telemetry() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
