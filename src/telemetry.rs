//! Logs: `tracing` events to stderr, filtered by `HERALD_LOG`, else `RUST_LOG`, else warnings
//! only. Phone numbers are masked by their `Display`; the full number is only ever logged at
//! debug level.
//!
//! `HERALD_LOG` wins because it is set for herald alone, while `RUST_LOG` is often left in a shell
//! for some other program. For the same reason a `RUST_LOG` herald cannot parse is only warned
//! about (and the default used), while an invalid `HERALD_LOG` is an error: it was meant for us.
//! An empty variable counts as unset. Colours only when stderr is a terminal and `NO_COLOR` is
//! unset or empty (<https://no-color.org>), so escape codes never end up in files or pipes.

use std::ffi::OsString;

use tracing_subscriber::EnvFilter;

use crate::output::{self, Output};

/// The filter when neither variable is set.
const DEFAULT_FILTER: &str = "warn";

/// Installs the subscriber. An unusable `HERALD_LOG` is the user's error, phrased for them.
pub(crate) fn init(out: &mut Output) -> Result<(), String> {
    let herald_log = variable("HERALD_LOG")?;
    let rust_log = variable("RUST_LOG");
    let filter = match (herald_log, rust_log) {
        (Some(text), _) => parse(&text).map_err(|e| format!("invalid HERALD_LOG {text:?}: {e}"))?,
        (None, Ok(Some(text))) => parse(&text).unwrap_or_else(|e| {
            writeln!(
                out.stderr(),
                "herald: ignoring RUST_LOG {text:?} ({e}); logging warnings only"
            );
            default_filter()
        }),
        (None, Ok(None)) => default_filter(),
        (None, Err(message)) => {
            writeln!(out.stderr(), "herald: ignoring RUST_LOG: {message}");
            default_filter()
        }
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(output::log_writer)
        .with_ansi(output::stderr_is_terminal() && !no_color)
        // Its fallback for a failed write is `eprintln!`, which panics when stderr is what failed.
        .log_internal_errors(false)
        .try_init();
    Ok(())
}

/// The variable's value; `None` when unset or empty.
fn variable(name: &str) -> Result<Option<String>, String> {
    match std::env::var_os(name).map(OsString::into_string) {
        None => Ok(None),
        Some(Ok(text)) if text.is_empty() => Ok(None),
        Some(Ok(text)) => Ok(Some(text)),
        Some(Err(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

fn parse(text: &str) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
    EnvFilter::builder().parse(text)
}

fn default_filter() -> EnvFilter {
    EnvFilter::new(DEFAULT_FILTER)
}
