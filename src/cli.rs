//! Command-line flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The rules every command shares.
const AFTER_HELP: &str = "\
Exit codes: 0 ok; 1 your input (campaign, config, store path); 2 an internal error, or output
that could not be written (a full disk). When the reader of the output goes away (`| head`),
herald stops writing quietly and exits with the code it would have had.

Environment: HERALD_CONFIG (the config file); HERALD_<SECTION>__<KEY> sets a config key
(HERALD_SENDERS__MAIN__PER_SECOND=5); HERALD_LOG, else RUST_LOG, filters the logs on stderr
(e.g. debug; default warn); NO_COLOR turns colours off (they are only used on a terminal).";

/// Herald: consent- and window-safe broadcast campaigns.
#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about,
    propagate_version = true,
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    /// Config file (default: $HERALD_CONFIG, then ./herald.toml).
    #[arg(long, global = true)]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check campaign files; every problem is printed as file:line:col: message.
    Validate(ValidateArgs),
    /// Show who would get what, when: per recipient the planned instant or skip reason, and a
    /// summary. Sends nothing.
    Plan(PlanArgs),
    /// Print the JSON Schema of the campaign format (campaigns/schema.json).
    Schema,
    /// Send a campaign with the embedded engine (SQLite, no Redis). Run it again to resume after
    /// Ctrl-C or a crash; nothing is sent twice.
    Run(RunArgs),
    /// Counts by state and reason, and the next deferred wave.
    Status(StatusArgs),
    /// Record and inspect consent.
    #[command(subcommand)]
    Consent(ConsentCommand),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The campaign file.
    pub(crate) file: PathBuf,
    /// Exit once nothing is due now; deferred deliveries wait for the next `herald run`.
    #[arg(long)]
    pub(crate) until_idle: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// A run id (`campaign@time`); all runs when omitted.
    pub(crate) run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConsentCommand {
    /// Import events from a CSV: phone,kind,occurred_at[,scope,source,proof].
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// Record an opt-in.
    OptIn(ConsentArgs),
    /// Record an opt-out.
    OptOut(ConsentArgs),
    /// The state per scope and the audit trail of a phone.
    Show {
        /// The phone (E.164).
        phone: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ConsentArgs {
    /// The phone (E.164).
    pub(crate) phone: String,
    /// marketing, transactional, service or all.
    #[arg(long, default_value = "all")]
    pub(crate) scope: String,
    /// When it happened (RFC 3339); default now.
    #[arg(long)]
    pub(crate) at: Option<String>,
    /// Where it came from.
    #[arg(long, default_value = "cli")]
    pub(crate) source: String,
    /// Evidence (form URL, text shown, IP).
    #[arg(long)]
    pub(crate) proof: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Campaign files.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// The campaign file.
    pub(crate) file: PathBuf,
    /// Plan as of this instant (RFC 3339, e.g. 2026-11-27T06:00:00Z) instead of now.
    #[arg(long)]
    pub(crate) now: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON document for programs.
    Json,
}
