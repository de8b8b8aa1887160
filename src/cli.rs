//! Command-line flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Herald: consent- and window-safe broadcast campaigns.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, propagate_version = true)]
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
    /// Ctrl-C or a crash; nothing is sent twice. Without a config file, the implicit `main`
    /// sender appends to ./herald-outbox.jsonl (and says so). Exits 1 when the run is paused
    /// (the provider blocked the sender, or rejected the template repeatedly), with the reason.
    Run(RunArgs),
    /// Counts by state and reason, the queue by what it waits for (window, schedule, spread,
    /// throttle, retry, tier, pause) with the next instant of each, and the next deferred wave.
    Status(StatusArgs),
    /// Record and inspect consent.
    #[command(subcommand)]
    Consent(ConsentCommand),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The campaign file.
    pub(crate) file: PathBuf,
    /// Send what falls due within the campaign's spread (deliveries released a few seconds or
    /// minutes ahead into an open window included), then exit once what is left waits for a
    /// window to open, its scheduled time, the provider (a throttle, a retry) or an operator,
    /// saying which, how many and when the next is due. A sender throttled past the spread
    /// (Retry-After is obeyed up to 15 minutes) ends it at once, naming the sender and until
    /// when. What is left stays queued for the next `herald run`.
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
