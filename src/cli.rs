//! Command-line flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use herald_core::{ConsentChannel, Scope};

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
    /// Config file (default: $HERALD_CONFIG, then ./herald.toml): a regular file of at most 1 MiB.
    #[arg(long, global = true)]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check campaign files; every problem is printed as file:line:col: message.
    ///
    /// A campaign is a regular file of at most 1 MiB; its YAML nests at most 128 levels and
    /// builds at most 1,000,000 nodes (aliases included). A marketing campaign needs a
    /// send_window with open hours; a transactional or service one without it sends at any hour.
    Validate(ValidateArgs),
    /// Show who would get what, when: per recipient the planned instant or skip reason, and a
    /// summary. Sends nothing.
    ///
    /// The audience must be a regular file; a row over 64 KiB is that row's error, and a quote
    /// left open to the end of a CSV file is an error for the whole plan.
    Plan(PlanArgs),
    /// Print the JSON Schema of the campaign format (campaigns/schema.json).
    Schema,
    /// Create the configured store, once per deployment. Required on Redis before any other
    /// command: no other command creates a Redis store, so a Redis that came back empty (it
    /// lost its data) is refused instead of being taken for a new deployment, which would expand
    /// every campaign again and forget every opt-out. Never run it on a Redis that lost its data:
    /// restore that. Checks the server's persistence first (AOF with `appendfsync always`).
    /// Running it on an existing store changes nothing. A SQLite file is created by any command
    /// (init creates it too).
    Init,
    /// Send one campaign in one process on the configured store (SQLite by default): schedule
    /// it and work only its runs. Run it again to resume after Ctrl-C or a crash; nothing is
    /// sent twice. Without a config file, the implicit `main` sender appends to
    /// ./herald-outbox.jsonl (and says so).
    ///
    /// Exits 1 without sending when the campaign's sender is blocked by the provider (clear it
    /// with `herald resume --sender NAME`), and when the run is paused (template errors, an
    /// operator; resume it with `herald resume RUN`), with the reason. Several `herald run` of
    /// different campaigns may share one store: claims carry leases, not a lock on the file.
    Run(RunArgs),
    /// Expand campaigns into the store (one run each, with its sender and the campaign's text):
    /// workers (`herald worker`) send them. Recurring (cron) campaigns, and a watched
    /// --campaigns directory, keep it running: each fire makes one run, recorded in the store,
    /// however many schedulers share the store.
    ///
    /// Prints each run and its counts, and each fire (run or skipped, and why). Expansion is
    /// idempotent: restarted after a crash mid-expansion, it adds only what is missing. Fires
    /// missed while no scheduler ran follow the campaign's schedule.catch_up (latest, within
    /// expires_after; or none); a fire while the previous run is still pending follows
    /// schedule.overlap (skip, recorded; or allow).
    Scheduler(SchedulerArgs),
    /// Send every active run in the store, of every configured sender (or only those named by
    /// --sender), until SIGTERM or Ctrl-C.
    ///
    /// Any number of workers sharing the store (the SQLite file: processes on one machine) may
    /// run at once: each claims deliveries under a lease ([worker] lease_seconds, default 60)
    /// that it renews while it works; a crashed worker's claims are recovered by the others once
    /// the lease ends (ended unknown, or requeued under at_least_once). On SIGTERM or Ctrl-C the requests in flight
    /// finish and are recorded, then it exits 0.
    Worker(WorkerArgs),
    /// Scheduler and worker in one process: expand the campaigns given (and keep firing the
    /// recurring ones and those of --campaigns DIR), then work every active run of the
    /// configured senders until SIGTERM or Ctrl-C. With `[admin] listen` set it also
    /// serves the admin API and the WhatsApp webhooks there (stopped when the worker fails).
    Serve(ServeArgs),
    /// The admin HTTP API alone (campaigns, runs, senders, consent, /healthz, /readyz,
    /// /metrics, /openapi.json, the WhatsApp webhooks) on `[admin] listen` (default
    /// 127.0.0.1:8080), until SIGTERM or Ctrl-C. `/v1` needs the bearer token from the variable
    /// `[admin] token_env` names; without one it listens on loopback only. `herald serve` serves
    /// the same API when `[admin] listen` is set.
    Admin(AdminArgs),
    /// Let things go again: `herald resume --sender NAME` clears a provider block of that sender
    /// (every worker of it resumes claiming); `herald resume RUN` sets a paused run active.
    Resume(ResumeArgs),
    /// Pause a run: none of its deliveries is claimed, by any process, until `herald resume
    /// RUN`. It stays paused across restarts: running its campaign again does not resume it.
    /// `status` shows who paused it and why.
    Pause(PauseArgs),
    /// Cancel a run for good: every queued delivery of it ends skipped(cancelled); those in
    /// flight end as their worker records them. A cancelled run is never resumed.
    Cancel(CancelArgs),
    /// Each sender's state (ok, throttled until when, blocked by the provider and why), then per
    /// run: its sender, counts by state and reason, the queue by what it waits for (window,
    /// schedule, spread, throttle, retry, tier, pause) with the next instant of each, the next
    /// deferred wave, and the deliveries in flight by the worker holding them.
    Status(StatusArgs),
    /// Record and inspect consent, per channel (opt-in, opt-out, show, import).
    ///
    /// Consent is kept per channel: an opt-in on sms is not consent on whatsapp. Every consent
    /// command takes --channel NAME (default whatsapp, the channel a WhatsApp sender checks;
    /// an outbox or webhook sender checks its consent_channel, default whatsapp).
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
pub(crate) struct SchedulerArgs {
    /// Campaign files. One-off campaigns are scheduled once; with only those (and no
    /// --campaigns) the command exits when they are. A recurring one (schedule.cron) keeps the
    /// scheduler running, firing it until SIGTERM or Ctrl-C.
    #[arg(required_unless_present = "campaigns")]
    pub(crate) files: Vec<PathBuf>,
    /// Watch this directory of campaign files (*.yaml, *.yml; rescanned every 2 s): a new or
    /// changed file takes effect without a restart, an invalid edit is reported with its
    /// file:line:col and the previous valid version keeps firing, a removed file fires no more.
    #[arg(long, value_name = "DIR")]
    pub(crate) campaigns: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// Requests in flight at once, per sender (default: [worker] batch).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) concurrency: Option<u32>,
    /// Work only this sender's runs (repeat for several); default every configured sender.
    #[arg(long = "sender", value_name = "NAME")]
    pub(crate) senders: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Campaign files to expand before working (recurring ones keep firing while it serves).
    pub(crate) files: Vec<PathBuf>,
    /// Watch this directory of campaign files, as `herald scheduler --campaigns DIR` does.
    #[arg(long, value_name = "DIR")]
    pub(crate) campaigns: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) worker: WorkerArgs,
}

#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// Listen here instead of `[admin] listen` (such as 127.0.0.1:0 for any free port; the
    /// address is printed).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// A paused run (`campaign@time`) to set active.
    #[arg(conflicts_with = "sender")]
    pub(crate) run: Option<String>,
    /// A sender the provider blocked: clear the block.
    #[arg(long, value_name = "NAME")]
    pub(crate) sender: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PauseArgs {
    /// The run (`campaign@time`, as `herald status` lists it).
    pub(crate) run: String,
    /// Why, shown by `status` and the admin API (at most 500 characters; default "paused by an
    /// operator").
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The run (`campaign@time`, as `herald status` lists it).
    pub(crate) run: String,
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
    /// Import events from a CSV file (columns phone, kind, occurred_at; optionally scope,
    /// channel, source, proof).
    ///
    /// A header row names the columns, in any order; a column the import does not know is an
    /// error for the whole file. Fields may be quoted ("Web form, landing page"), with commas and
    /// line breaks inside. Each row:
    ///
    /// - kind: opt_in or opt_out.
    ///
    /// - scope: marketing, transactional, service or all. An opt_in row must name it; an opt_out
    ///   row without it withdraws all.
    ///
    /// - occurred_at: when it happened (RFC 3339). A date more than 5 minutes after the import
    ///   is refused.
    ///
    /// - channel: the channel it was given on ([a-z][a-z0-9_-]*, e.g. sms). Without the column
    ///   every row is on --channel; with it, an empty cell is an error, and if --channel is
    ///   also given a row on another channel is an error.
    ///
    /// - source (default import), proof (default FILE:LINE of the row).
    ///
    /// The file must be a regular file; a record over 64 KiB is a row error. Bad rows are
    /// printed as FILE:LINE: message and the others stored (exit 1 if any row was bad). A quote
    /// that never closes stops the import at the line it opened on; the rows before it are
    /// stored.
    Import(ImportArgs),
    /// Record an opt-in (--scope required).
    ///
    /// The opt-in counts from --at (default now); a date more than 5 minutes ahead is refused.
    OptIn(ConsentArgs),
    /// Record an opt-out (--scope default all).
    ///
    /// The opt-out counts from --at (default now), or from now if --at is up to 5 minutes
    /// ahead; a date further ahead is refused.
    OptOut(ConsentArgs),
    /// The state per scope and the audit trail of a phone on one channel.
    ///
    /// Events stored with a date after the moment they were recorded are marked: an opt-in
    /// counts from its date and not before, an opt-out from when it was recorded.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The CSV file.
    pub(crate) file: PathBuf,
    /// The channel of rows in a file without a `channel` column (default whatsapp); with the
    /// column, the channel every row must name.
    #[arg(long, value_name = "NAME")]
    pub(crate) channel: Option<ConsentChannel>,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The phone (E.164).
    pub(crate) phone: String,
    /// The channel to show.
    #[arg(long, value_name = "NAME", default_value = "whatsapp")]
    pub(crate) channel: ConsentChannel,
}

#[derive(Debug, Args)]
pub(crate) struct ConsentArgs {
    /// The phone (E.164).
    pub(crate) phone: String,
    /// marketing, transactional, service or all: required for an opt-in (it never defaults to
    /// all); an opt-out without it withdraws all.
    #[arg(long)]
    pub(crate) scope: Option<Scope>,
    /// The channel it was given or withdrawn on ([a-z][a-z0-9_-]*).
    #[arg(long, value_name = "NAME", default_value = "whatsapp")]
    pub(crate) channel: ConsentChannel,
    /// When it happened (RFC 3339); default now. At most 5 minutes ahead of now.
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
