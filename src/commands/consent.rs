//! `herald consent import FILE | opt-in PHONE | opt-out PHONE | show PHONE`

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use herald_app::consent::{ConsentInput, import, record, show};
use herald_core::{ConsentKind, Scope};

use crate::cli::{ConsentArgs, ConsentCommand};
use crate::commands::{Failure, environment, runtime, settings};
use crate::output::Output;

const CHANNEL: &str = herald_engine::worker::DEFAULT_CONSENT_CHANNEL;

pub(crate) fn run(
    config: Option<&Path>,
    command: &ConsentCommand,
    out: &mut Output,
) -> Result<(), Failure> {
    let env = environment()?;
    let settings = settings(config, &env)?;
    let stores = herald_app::open_store(&settings, &env)?;
    let now = Utc::now();
    let runtime = runtime()?;
    match command {
        ConsentCommand::Import { file } => {
            let report = runtime.block_on(import(&stores, CHANNEL, file, now))?;
            for error in &report.errors {
                writeln!(out.stderr(), "{error}");
            }
            writeln!(
                out,
                "{} rows read, {} events stored, {} rows rejected",
                report.rows,
                report.stored,
                report.errors.len()
            )?;
            if report.errors.is_empty() {
                Ok(())
            } else {
                Err(Failure::User(String::new()))
            }
        }
        ConsentCommand::OptIn(args) => one(&runtime, &stores, ConsentKind::OptIn, args, now, out),
        ConsentCommand::OptOut(args) => one(&runtime, &stores, ConsentKind::OptOut, args, now, out),
        ConsentCommand::Show { phone } => {
            let (state, events) = runtime.block_on(show(&stores, CHANNEL, phone))?;
            for scope in Scope::ALL {
                let current = match state.of_scope(scope) {
                    Some(ConsentKind::OptIn) => "opted in",
                    Some(ConsentKind::OptOut) => "opted out",
                    None => "no event",
                };
                writeln!(out, "{:<14} {current}", scope.as_str())?;
            }
            for purpose in [
                herald_core::Purpose::Marketing,
                herald_core::Purpose::Transactional,
                herald_core::Purpose::Service,
            ] {
                let verdict = match state.permits(purpose) {
                    Ok(()) => "may send".to_owned(),
                    Err(reason) => format!("skip ({reason})"),
                };
                writeln!(out, "{} campaigns: {verdict}", purpose.as_str())?;
            }
            writeln!(out, "audit trail ({} events, oldest first):", events.len())?;
            for e in &events {
                let kind = if e.kind == ConsentKind::OptIn {
                    "opt_in"
                } else {
                    "opt_out"
                };
                let proof = e
                    .proof
                    .as_deref()
                    .map(|p| format!(" proof={p}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  {} {kind}({}) source={}{proof}",
                    e.occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    e.scope.as_str(),
                    e.source
                )?;
            }
            Ok(())
        }
    }
}

fn one(
    runtime: &tokio::runtime::Runtime,
    stores: &herald_store_sqlite::SqliteStores,
    kind: ConsentKind,
    args: &ConsentArgs,
    now: DateTime<Utc>,
    out: &mut Output,
) -> Result<(), Failure> {
    let scope: Scope = args
        .scope
        .parse()
        .map_err(|e: herald_core::consent::ConsentParseError| Failure::User(e.to_string()))?;
    let occurred_at = match &args.at {
        Some(text) => Some(
            DateTime::parse_from_rfc3339(text)
                .map_err(|e| Failure::User(format!("invalid --at {text:?}: {e}")))?
                .to_utc(),
        ),
        None => None,
    };
    let input = ConsentInput {
        phone: args.phone.clone(),
        kind,
        scope,
        occurred_at,
        source: args.source.clone(),
        proof: args.proof.clone(),
    };
    runtime.block_on(record(stores, CHANNEL, &input, now))?;
    writeln!(out, "recorded")?;
    Ok(())
}
