//! Command-line flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Herald: consent- and window-safe broadcast campaigns.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, propagate_version = true)]
pub(crate) struct Cli {
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
