//! The `herald` command: parse flags, dispatch to one command, map the result to an exit code
//! (0 ok, 1 the user's mistake, 2 ours or the environment's, a full disk under stdout included).
//! Every byte for stdout and stderr goes through [`output::Output`]: `println!` and friends
//! panic on a closed pipe or a full disk, so they are denied here.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod output;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::commands::Failure;
use crate::output::Output;

fn main() -> ExitCode {
    let mut out = Output::process();
    let code = match Cli::try_parse() {
        Ok(cli) => match telemetry::init(&mut out) {
            Ok(()) => exit_code(dispatch(cli, &mut out), &mut out),
            Err(message) => exit_code(Err(Failure::User(message)), &mut out),
        },
        Err(error) => clap_error(&error, &mut out),
    };
    ExitCode::from(code)
}

fn dispatch(cli: Cli, out: &mut Output) -> Result<(), Failure> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Validate(args) => commands::validate::run(config, &args, out),
        Command::Plan(args) => commands::plan::run(config, &args, out),
        Command::Schema => commands::schema::run(out),
        Command::Init => commands::init::run(config, out),
        Command::Run(args) => commands::run::run(config, &args, out),
        Command::Scheduler(args) => commands::scheduler::run(config, &args, out),
        Command::Worker(args) => commands::worker::run(config, &args, out),
        Command::Serve(args) => commands::serve::run(config, &args, out),
        Command::Admin(args) => commands::admin::run(config, &args, out),
        Command::Resume(args) => commands::resume::run(config, &args, out),
        Command::Pause(args) => commands::pause::pause(config, &args, out),
        Command::Cancel(args) => commands::pause::cancel(config, &args, out),
        Command::Status(args) => commands::status::run(config, &args, out),
        Command::Consent(command) => commands::consent::run(config, &command, out),
    }
}

/// Flushes stdout and maps the command's result, or the flush's failure, to an exit code.
fn exit_code(result: Result<(), Failure>, out: &mut Output) -> u8 {
    let flushed = out.finish();
    match result {
        Ok(()) => match flushed {
            Ok(()) => 0,
            Err(error) => {
                writeln!(out.stderr(), "herald: {error}");
                2
            }
        },
        Err(Failure::User(message)) => {
            if !message.is_empty() {
                writeln!(out.stderr(), "{message}");
            }
            // Output the user was shown only in part is our failure, whatever else went wrong.
            if let Err(error) = flushed {
                writeln!(out.stderr(), "herald: {error}");
                return 2;
            }
            1
        }
        Err(Failure::Output(error)) => {
            writeln!(out.stderr(), "herald: {error}");
            2
        }
        Err(Failure::Internal(error)) => {
            writeln!(out.stderr(), "herald: internal error: {error:#}");
            2
        }
    }
}

/// Help and version are successes written to stdout (under the same rules as any output); every
/// other parse error is a user error on stderr. Styled only for a terminal.
fn clap_error(error: &clap::Error, out: &mut Output) -> u8 {
    let rendered = error.render();
    if error.use_stderr() {
        let text = if output::stderr_is_terminal() {
            rendered.ansi().to_string()
        } else {
            rendered.to_string()
        };
        write!(out.stderr(), "{text}");
        return 1;
    }
    let text = if out.is_terminal() {
        rendered.ansi().to_string()
    } else {
        rendered.to_string()
    };
    let written = write!(out, "{text}");
    exit_code(written.map_err(Failure::Output), out)
}
