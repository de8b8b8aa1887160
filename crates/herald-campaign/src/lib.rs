//! Campaign files and audiences: YAML into herald-core's validated model, with every mistake
//! reported as `file:line:col: message`; CSV and JSONL audiences read as streams with per-row
//! errors.
//!
//! # Layout
//! - [`yaml`]: a YAML tree that keeps positions; [`validate`] walks it into a [`Campaign`].
//! - [`fields`]: the format as data, shared by the validator and [`schema`].
//! - [`cron`] parses schedules and states the DST rules; [`fires`] computes the fire instants.
//! - [`audience`]: streaming CSV/JSONL readers, the `where` segment, the duplicate set.
//! - [`dir`]: a polled directory of campaign files, each in effect while valid.
//! - [`input`]: bounded input for every crate: regular files only, documents of at most 1 MiB,
//!   records of at most 64 KiB (CSV records with their lines and an open quote reported).
#![deny(clippy::disallowed_methods)]

pub mod audience;
pub mod campaign;
pub mod cron;
pub mod diagnostic;
pub mod dir;
pub mod fields;
pub mod fires;
pub mod input;
pub mod schema;
pub mod validate;
pub mod yaml;

pub use campaign::{Campaign, CatchUp, Overlap, Schedule, ScheduleKind};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use validate::{load, parse, parse_stored, parse_uploaded};
