//! `herald consent`: record and inspect consent events.

use std::path::Path;

use chrono::{DateTime, Utc};
use herald_core::consent::ConsentParseError;
use herald_core::{ConsentEvent, ConsentKind, ConsentState, PhoneNumber, Scope};
use herald_store::{Consents, StoredConsent, Stores};

use crate::AppError;

/// One consent row as given on the command line or in an import file.
#[derive(Debug, Clone)]
pub struct ConsentInput {
    /// The phone as written.
    pub phone: String,
    /// opt_in or opt_out.
    pub kind: ConsentKind,
    /// What it covers.
    pub scope: Scope,
    /// When it happened (default: now).
    pub occurred_at: Option<DateTime<Utc>>,
    /// Where it came from.
    pub source: String,
    /// Evidence.
    pub proof: Option<String>,
}

fn to_stored(
    input: &ConsentInput,
    channel: &str,
    now: DateTime<Utc>,
) -> Result<StoredConsent, String> {
    let phone = PhoneNumber::parse(&input.phone, None).map_err(|e| e.to_string())?;
    Ok(StoredConsent {
        channel: channel.to_owned(),
        phone,
        event: ConsentEvent {
            kind: input.kind,
            scope: input.scope,
            occurred_at: input.occurred_at.unwrap_or(now),
            source: input.source.clone(),
            proof: input.proof.clone(),
        },
    })
}

/// Records one event.
pub async fn record<S: Stores>(
    stores: &S,
    channel: &str,
    input: &ConsentInput,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let stored = to_stored(input, channel, now).map_err(AppError::User)?;
    stores.consents().append(&[stored], now).await?;
    Ok(())
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Events newly stored.
    pub stored: u64,
    /// Rows read.
    pub rows: u64,
    /// `file:line: message` for rows that were not imported.
    pub errors: Vec<String>,
}

/// Imports a CSV with columns `phone,kind,scope,occurred_at,source,proof` (scope, source and
/// proof optional; occurred_at RFC 3339, required: an import states when consent was given).
/// Bad rows are reported and skipped; good rows are stored in batches.
pub async fn import<S: Stores>(
    stores: &S,
    channel: &str,
    file: &Path,
    now: DateTime<Utc>,
) -> Result<ImportReport, AppError> {
    let label = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| AppError::User(format!("{label}: cannot read: {e}")))?;
    let mut lines = text.lines().enumerate();
    let header: Vec<String> = match lines.next() {
        Some((_, h)) => h
            .trim_start_matches('\u{feff}')
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect(),
        None => return Err(AppError::User(format!("{label}: empty file"))),
    };
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(phone_col), Some(kind_col), Some(at_col)) =
        (column("phone"), column("kind"), column("occurred_at"))
    else {
        return Err(AppError::User(format!(
            "{label}:1: expected columns phone, kind, occurred_at (and optionally scope, source, proof)"
        )));
    };
    let (scope_col, source_col, proof_col) = (column("scope"), column("source"), column("proof"));
    let mut report = ImportReport::default();
    let mut batch = Vec::new();
    for (index, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        report.rows += 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |i: Option<usize>| {
            i.and_then(|i| fields.get(i))
                .copied()
                .filter(|v| !v.is_empty())
        };
        let parsed = (|| -> Result<StoredConsent, String> {
            let kind: ConsentKind = get(Some(kind_col))
                .unwrap_or_default()
                .parse()
                .map_err(|e: ConsentParseError| e.to_string())?;
            let scope: Scope = get(scope_col)
                .unwrap_or("all")
                .parse()
                .map_err(|e: ConsentParseError| e.to_string())?;
            let at_text = get(Some(at_col)).ok_or("missing occurred_at")?;
            let occurred_at = DateTime::parse_from_rfc3339(at_text)
                .map_err(|e| format!("invalid occurred_at {at_text:?}: {e}"))?
                .to_utc();
            let input = ConsentInput {
                phone: get(Some(phone_col)).unwrap_or_default().to_owned(),
                kind,
                scope,
                occurred_at: Some(occurred_at),
                source: get(source_col).unwrap_or("import").to_owned(),
                proof: get(proof_col).map(str::to_owned),
            };
            to_stored(&input, channel, now)
        })();
        match parsed {
            Ok(stored) => batch.push(stored),
            Err(message) => report
                .errors
                .push(format!("{label}:{}: {message}", index + 1)),
        }
        if batch.len() >= 1000 {
            report.stored += stores.consents().append(&batch, now).await?;
            batch.clear();
        }
    }
    report.stored += stores.consents().append(&batch, now).await?;
    Ok(report)
}

/// The state per scope and the audit trail of a phone.
pub async fn show<S: Stores>(
    stores: &S,
    channel: &str,
    phone: &str,
) -> Result<(ConsentState, Vec<ConsentEvent>), AppError> {
    let phone = PhoneNumber::parse(phone, None).map_err(|e| AppError::User(e.to_string()))?;
    let events = stores.consents().events(channel, &phone).await?;
    Ok((ConsentState::from_events(&events), events))
}
