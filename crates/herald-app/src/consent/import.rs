//! `herald consent import FILE`: consent events from a CSV file.
//!
//! Columns (a header row names them, in any order, case-insensitive): `phone`, `kind`
//! (`opt_in`/`opt_out`), `occurred_at` (RFC 3339) are required; `scope`, `channel`, `source`
//! and `proof` are optional. A column the import does not know is an error for the whole file:
//! a misspelt `chanel` silently ignored would store SMS opt-ins as WhatsApp ones.
//!
//! - `channel`: without the column every row is on the `--channel` given (default `whatsapp`).
//!   With it, every row must name its channel (an empty cell is a row error), and when
//!   `--channel` is also given a row naming another channel is a row error: the flag then says
//!   what the file is expected to hold, and a mismatch is more likely a wrong file than intent.
//! - `scope`: an opt-in row must name one; an opt-out row without one withdraws `all`.
//! - `occurred_at` more than five minutes after the import is a row error.
//! - `proof`: a row without one gets `file:line`, so the audit trail points at its source.
//!
//! The file must be a regular file (a FIFO or a device is refused before it is opened) and is
//! streamed with at most [`MAX_RECORD_BYTES`](herald_campaign::input::MAX_RECORD_BYTES) bytes
//! per record, by the same bounded reader as audiences ([`herald_campaign::input`]). Bad rows are reported as
//! `file:line: message` and the good ones stored; a quote that never closes stops the import at
//! the line it opened on (the rows before it are stored).

use std::path::Path;

use chrono::{DateTime, Utc};
use csv::ByteRecord;
use herald_campaign::input::{CsvRecords, RecordError, open_stream};
use herald_core::consent::ConsentParseError;
use herald_core::{ConsentChannel, ConsentKind, Scope};
use herald_store::{Consents, StoredConsent, Stores};

use super::{ConsentInput, InputError};
use crate::AppError;

/// Events appended per transaction.
const BATCH: usize = 1000;

/// What an import did. Every row read is either accepted or rejected.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Rows read (blank lines are not rows).
    pub rows: u64,
    /// Rows that were valid events.
    pub accepted: u64,
    /// Events newly stored (an accepted event already in the log is not stored twice).
    pub stored: u64,
    /// Rows not imported (each reported as it was read, see [`import`]).
    pub rejected: u64,
    /// Set when the import stopped before the end of the file: `file:line: why`.
    pub stopped: Option<String>,
}

/// The columns an import understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Phone,
    Kind,
    OccurredAt,
    Scope,
    Channel,
    Source,
    Proof,
}

impl Column {
    const ALL: [Column; 7] = [
        Column::Phone,
        Column::Kind,
        Column::OccurredAt,
        Column::Scope,
        Column::Channel,
        Column::Source,
        Column::Proof,
    ];

    fn name(self) -> &'static str {
        match self {
            Column::Phone => "phone",
            Column::Kind => "kind",
            Column::OccurredAt => "occurred_at",
            Column::Scope => "scope",
            Column::Channel => "channel",
            Column::Source => "source",
            Column::Proof => "proof",
        }
    }
}

/// Where each column is.
#[derive(Debug)]
struct Layout {
    columns: Vec<Column>,
}

impl Layout {
    fn from_header(header: &ByteRecord) -> Result<Self, String> {
        let mut columns = Vec::with_capacity(header.len());
        for (index, raw) in header.iter().enumerate() {
            let name = std::str::from_utf8(raw)
                .map_err(|_| format!("column {} of the header is not valid UTF-8", index + 1))?
                .trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_lowercase();
            let column = Column::ALL
                .into_iter()
                .find(|c| c.name() == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
                    if name.is_empty() {
                        format!(
                            "column {} has no name (known columns: {})",
                            index + 1,
                            known.join(", ")
                        )
                    } else {
                        format!(
                            "unknown column {name:?} (known columns: {})",
                            known.join(", ")
                        )
                    }
                })?;
            if columns.contains(&column) {
                return Err(format!("duplicate column {name:?}"));
            }
            columns.push(column);
        }
        let missing: Vec<&str> = [Column::Phone, Column::Kind, Column::OccurredAt]
            .into_iter()
            .filter(|c| !columns.contains(c))
            .map(Column::name)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "missing column(s) {} (required: phone, kind, occurred_at; optional: scope, \
                 channel, source, proof)",
                missing.join(", ")
            ));
        }
        Ok(Self { columns })
    }

    fn index(&self, column: Column) -> Option<usize> {
        self.columns.iter().position(|c| *c == column)
    }
}

/// One row's values, trimmed; an empty cell is `None`.
struct Row<'a> {
    layout: &'a Layout,
    fields: &'a ByteRecord,
}

impl Row<'_> {
    fn get(&self, column: Column) -> Result<Option<&str>, String> {
        let Some(index) = self.layout.index(column) else {
            return Ok(None);
        };
        let raw = self.fields.get(index).unwrap_or_default();
        let text = std::str::from_utf8(raw)
            .map_err(|_| format!("column {:?} is not valid UTF-8", column.name()))?
            .trim();
        Ok((!text.is_empty()).then_some(text))
    }

    fn required(&self, column: Column) -> Result<&str, String> {
        self.get(column)?
            .ok_or_else(|| format!("missing {}", column.name()))
    }
}

/// What the rows are read against.
struct Context<'a> {
    label: &'a str,
    layout: Layout,
    /// `--channel`, when given.
    flag: Option<&'a ConsentChannel>,
    now: DateTime<Utc>,
}

impl Context<'_> {
    fn event(&self, row: &Row<'_>, line: u64) -> Result<StoredConsent, String> {
        let parse_error = |e: ConsentParseError| e.to_string();
        let kind: ConsentKind = row.required(Column::Kind)?.parse().map_err(parse_error)?;
        let scope = row
            .get(Column::Scope)?
            .map(str::parse::<Scope>)
            .transpose()
            .map_err(parse_error)?;
        let at_text = row.required(Column::OccurredAt)?;
        let occurred_at = DateTime::parse_from_rfc3339(at_text)
            .map_err(|e| format!("invalid occurred_at {at_text:?}: {e} (expected RFC 3339)"))?
            .to_utc();
        let channel = self.channel(row)?;
        let input = ConsentInput {
            channel,
            phone: row.required(Column::Phone)?.to_owned(),
            kind,
            scope,
            occurred_at: Some(occurred_at),
            source: row.get(Column::Source)?.unwrap_or("import").to_owned(),
            proof: Some(
                row.get(Column::Proof)?
                    .map_or_else(|| format!("{}:{line}", self.label), str::to_owned),
            ),
        };
        input.to_stored(self.now).map_err(|e| match e {
            InputError::MissingScope => "opt_in without a scope: an opt-in must name what it \
                                         covers (marketing, transactional, service or all)"
                .to_owned(),
            other => other.to_string(),
        })
    }

    fn channel(&self, row: &Row<'_>) -> Result<ConsentChannel, String> {
        if self.layout.index(Column::Channel).is_none() {
            return Ok(self.flag.cloned().unwrap_or_else(ConsentChannel::whatsapp));
        }
        let name = row
            .get(Column::Channel)?
            .ok_or("empty channel: name the channel the consent was given on (whatsapp, sms, …)")?;
        let channel = ConsentChannel::parse(name).map_err(|e| e.to_string())?;
        match self.flag {
            Some(flag) if *flag != channel => Err(format!(
                "channel {channel:?} differs from --channel {flag}: import this file without \
                 --channel to take each row's channel",
                channel = channel.as_str()
            )),
            _ => Ok(channel),
        }
    }
}

/// Imports `file`; `channel` is `--channel` when given. Whole-file problems (not a regular
/// file, a bad header) are errors; each row problem is handed to `on_error` as
/// `file:line: message` when it is read, so a file of bad rows costs no memory.
pub async fn import<S: Stores>(
    stores: &S,
    file: &Path,
    channel: Option<&ConsentChannel>,
    now: DateTime<Utc>,
    mut on_error: impl FnMut(String),
) -> Result<ImportReport, AppError> {
    let label = file.display().to_string();
    let input = open_stream(file).map_err(|e| AppError::User(e.to_string()))?;
    let mut records = CsvRecords::new(input);
    let mut header = ByteRecord::new();
    let header_line = match records.read(&mut header) {
        Some(Ok(line)) => line,
        Some(Err(RecordError::TooLong { line, limit })) => {
            return Err(AppError::User(format!(
                "{label}:{line}: the header is longer than {limit} bytes"
            )));
        }
        None => {
            return Err(AppError::User(format!(
                "{label}: empty file: expected a header row naming the columns \
                 (phone, kind, occurred_at; optionally scope, channel, source, proof)"
            )));
        }
        Some(Err(stop)) => {
            return Err(AppError::User(format!(
                "{label}:{}: {}",
                stop.line(),
                stop_reason(&stop)
            )));
        }
    };
    let layout = Layout::from_header(&header)
        .map_err(|message| AppError::User(format!("{label}:{header_line}: {message}")))?;
    let context = Context {
        label: &label,
        layout,
        flag: channel,
        now,
    };
    let width = header.len();
    let mut report = ImportReport::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut fields = ByteRecord::new();
    loop {
        let outcome = match records.read(&mut fields) {
            None => break,
            Some(Err(RecordError::TooLong { line, limit })) => {
                Err((line, format!("record longer than {limit} bytes")))
            }
            Some(Ok(_)) if is_blank(&fields) => continue,
            Some(Ok(line)) if fields.len() != width => Err((
                line,
                format!(
                    "expected {width} fields as in the header, found {}",
                    fields.len()
                ),
            )),
            Some(Ok(line)) => {
                let row = Row {
                    layout: &context.layout,
                    fields: &fields,
                };
                context.event(&row, line).map_err(|m| (line, m))
            }
            Some(Err(stop)) => {
                let at = format!("{label}:{}", stop.line());
                let stop = stop_reason(&stop);
                report.rows += 1;
                report.rejected += 1;
                on_error(format!(
                    "{at}: {stop}; the import stopped here: the rows before it were stored, \
                     nothing from this line on was"
                ));
                report.stopped = Some(format!("{at}: {stop}"));
                break;
            }
        };
        report.rows += 1;
        match outcome {
            Ok(stored) => {
                report.accepted += 1;
                batch.push(stored);
            }
            Err((line, message)) => {
                report.rejected += 1;
                on_error(format!("{label}:{line}: {message}"));
            }
        }
        if batch.len() >= BATCH {
            report.stored += stores.consents().append(&batch, now).await?;
            batch.clear();
        }
    }
    report.stored += stores.consents().append(&batch, now).await?;
    Ok(report)
}

/// A record that is one blank field: an empty or whitespace-only line.
fn is_blank(record: &ByteRecord) -> bool {
    record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace)
}

/// Why reading stopped, in the import's words: an unterminated quote is named as such, since
/// the person fixing the file looks for the quote.
fn stop_reason(stop: &RecordError) -> String {
    match stop {
        RecordError::UnterminatedQuote { .. } => {
            "a quoted field opens on this line and never closes (unterminated quote)".to_owned()
        }
        other => other.to_string(),
    }
}
