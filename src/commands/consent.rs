//! `herald consent import FILE | opt-in PHONE | opt-out PHONE | show PHONE`, each on one
//! `--channel`.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use herald_app::consent::{ConsentInput, ConsentView, InputError, import, show, store};
use herald_core::{ConsentKind, Purpose, RecordedConsent, Scope};

use crate::cli::{ConsentArgs, ConsentCommand};
use crate::commands::{Failure, environment, runtime, settings};
use crate::output::{Output, OutputError};

pub(crate) fn run(
    config: Option<&Path>,
    command: &ConsentCommand,
    out: &mut Output,
) -> Result<(), Failure> {
    let env = environment()?;
    let settings = settings(config, &env)?;
    let runtime = runtime()?;
    let stores = runtime.block_on(herald_app::open_store(&settings, &env))?;
    let now = Utc::now();
    match command {
        ConsentCommand::Import(args) => {
            let report = runtime.block_on(import(
                &stores,
                &args.file,
                args.channel.as_ref(),
                now,
                |error| {
                    writeln!(out.stderr(), "{error}");
                },
            ))?;
            writeln!(
                out,
                "{} rows read, {} events stored, {} rows rejected",
                report.rows, report.stored, report.rejected
            )?;
            if let Some(stop) = &report.stopped {
                writeln!(
                    out,
                    "stopped early at {stop}; the rows before it were stored, the rest of the \
                     file was not read"
                )?;
            }
            if report.rejected == 0 {
                Ok(())
            } else {
                Err(Failure::User(String::new()))
            }
        }
        ConsentCommand::OptIn(args) => one(&runtime, &stores, ConsentKind::OptIn, args, now, out),
        ConsentCommand::OptOut(args) => one(&runtime, &stores, ConsentKind::OptOut, args, now, out),
        ConsentCommand::Show(args) => {
            let view = runtime.block_on(show(&stores, &args.channel, &args.phone, now))?;
            print_view(&view, out)?;
            Ok(())
        }
    }
}

fn print_view(view: &ConsentView, out: &mut Output) -> Result<(), OutputError> {
    writeln!(out, "channel {}", view.channel)?;
    for scope in Scope::ALL {
        let current = match view.state.of_scope(scope) {
            Some(ConsentKind::OptIn) => "opted in",
            Some(ConsentKind::OptOut) => "opted out",
            None => "no event",
        };
        writeln!(out, "{:<14} {current}", scope.as_str())?;
    }
    for purpose in [Purpose::Marketing, Purpose::Transactional, Purpose::Service] {
        let verdict = match view.state.permits(purpose) {
            Ok(()) => "may send".to_owned(),
            Err(reason) => format!("skip ({reason})"),
        };
        writeln!(out, "{} campaigns: {verdict}", purpose.as_str())?;
    }
    writeln!(
        out,
        "audit trail ({} events, oldest first):",
        view.records.len()
    )?;
    for record in &view.records {
        let e = &record.event;
        let kind = match e.kind {
            ConsentKind::OptIn => "opt_in",
            ConsentKind::OptOut => "opt_out",
        };
        let proof = e
            .proof
            .as_deref()
            .map(|p| format!(" proof={}", printable(p)))
            .unwrap_or_default();
        writeln!(
            out,
            "  {} {kind}({}) source={}{proof}{}",
            utc(e.occurred_at),
            e.scope.as_str(),
            printable(&e.source),
            dated_ahead_note(record, view.now)
        )?;
    }
    Ok(())
}

/// Imported text on one line, with control characters (line breaks, terminal escapes) shown
/// escaped rather than acted on.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The mark of an event dated after it was recorded: when it counts from instead.
fn dated_ahead_note(record: &RecordedConsent, now: DateTime<Utc>) -> String {
    if !record.dated_ahead() {
        return String::new();
    }
    let counts = match record.counts_from(now) {
        Some(from) => format!("counts from {}", utc(from)),
        None => format!("counts from {}, not yet", utc(record.event.occurred_at)),
    };
    format!(
        "  [dated ahead of when recorded ({}); {counts}]",
        utc(record.recorded_at)
    )
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn one(
    runtime: &tokio::runtime::Runtime,
    stores: &impl herald_store::Stores,
    kind: ConsentKind,
    args: &ConsentArgs,
    now: DateTime<Utc>,
    out: &mut Output,
) -> Result<(), Failure> {
    let occurred_at = match &args.at {
        Some(text) => Some(
            DateTime::parse_from_rfc3339(text)
                .map_err(|e| Failure::User(format!("invalid --at {text:?}: {e}")))?
                .to_utc(),
        ),
        None => None,
    };
    let input = ConsentInput {
        channel: args.channel.clone(),
        phone: args.phone.clone(),
        kind,
        scope: args.scope,
        occurred_at,
        source: args.source.clone(),
        proof: args.proof.clone(),
    };
    let stored = input.to_stored(now).map_err(|e| {
        Failure::User(match e {
            InputError::MissingScope => "consent opt-in needs --scope (marketing, transactional, \
                                         service or all): an opt-in never defaults to all"
                .to_owned(),
            InputError::DatedAhead(e) => format!("--at: {e}"),
            InputError::Phone(e) => e,
        })
    })?;
    let summary = format!(
        "{}({}) on {}",
        match kind {
            ConsentKind::OptIn => "opt_in",
            ConsentKind::OptOut => "opt_out",
        },
        stored.event.scope,
        stored.channel
    );
    let new = runtime.block_on(store(stores, stored, now))?;
    if new {
        writeln!(out, "recorded {summary}")?;
    } else {
        writeln!(out, "already recorded: {summary}")?;
    }
    Ok(())
}
