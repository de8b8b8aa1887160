//! Audiences: the recipients of a campaign, read from a CSV or JSONL file as a stream.
//!
//! An audience can hold millions of rows, so [`AudienceReader`] never loads the file: it yields
//! one [`Recipient`] (or one [`RowError`]) at a time and its memory does not grow with the number
//! of rows. A bad row is reported with its `file:line` and the reader goes on, because one typo in
//! a CRM export must not hold back a campaign to everyone else; only problems with the file as a
//! whole (cannot open it, unknown extension, no `phone` column) are an [`AudienceError`].
//!
//! The only per-audience state that grows is the set of phones already seen, [`PhoneSet`], kept
//! at about 9.4 bytes per phone (and, in expansion, the set of ids, [`IdSet`]); [`count_rows`]
//! is the cheap pre-pass that sizes them, and [`survey`] the same pass that also takes the
//! file's SHA-256, which ties a run to the file it was expanded from. [`Segment`] is the
//! campaign's `where` filter.
//!
//! # Columns
//! `phone` (required), `id`, `timezone`, `locale`, `country` and `tags` are known columns (CSV
//! header names or JSONL keys, matched after trimming and ignoring ASCII case); every other
//! column is a template attribute such as `first_name`, kept under its trimmed name as written.

mod csv;
mod jsonl;
mod seen;
mod segment;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use herald_core::{AudienceId, PhoneNumber, RecipientId, Region, TimeZone};
use sha2::{Digest, Sha256};

use crate::input::{FileKind, InputError, InputErrorKind};

pub use seen::{IdHash, IdSet, PhoneSet};
pub use segment::Segment;

/// One valid audience row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The 1-based line of the file the row starts on, so that later per-recipient problems
    /// (a missing template variable, say) can still point at the row.
    pub line: u64,
    /// The `id` column ([`AudienceId::Given`]), or the phone in E.164 when the row has none
    /// ([`AudienceId::Phone`]): an id derived from the phone stays the same when the file is
    /// edited and the campaign re-run, whereas a row number would shift and make already-sent
    /// recipients look new. The two kinds are told apart so that a given id that happens to
    /// read like another row's phone is not taken for it.
    pub id: AudienceId,
    /// The phone number.
    pub phone: PhoneNumber,
    /// The `timezone` column; `None` when absent or blank (the window policy then decides from
    /// the phone's country).
    pub zone: Option<TimeZone>,
    /// The `locale` column as written (`ru-RU`), for picking a template language.
    pub locale: Option<String>,
    /// The `country` column. `None` when absent: the phone's own region then stands in (see
    /// [`Segment::matches`]).
    pub country: Option<Region>,
    /// The `tags` column, split and trimmed, empty tags dropped.
    pub tags: Vec<String>,
    /// Every other column, by its header name. Blank values are left out so that a template's
    /// default applies instead of an empty string.
    pub attributes: BTreeMap<String, String>,
}

/// A row that could not be used; the reader goes on with the next row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct RowError {
    /// The audience path as given, for display.
    pub file: String,
    /// The 1-based line the row starts on.
    pub line: u64,
    /// What is wrong, in words.
    pub message: String,
    /// The file could not be read past this point (an I/O error, or a quote left open to the
    /// end of the file): no row follows it, and the rows after it were never seen. A consumer
    /// that must see every row stops here.
    pub unreadable: bool,
}

/// The two audience formats, told apart by the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudienceFormat {
    /// Comma-separated values with a header row (`.csv`).
    Csv,
    /// One JSON object per line (`.jsonl` or `.ndjson`).
    Jsonl,
}

impl AudienceFormat {
    /// The format of `path` by its extension (any case), or `None` for any other extension.
    /// The extension rather than a sniff of the content: a file that merely looks like JSON
    /// should not be read as such by accident.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            _ => None,
        }
    }

    fn of(path: &Path) -> Result<Self, AudienceError> {
        Self::from_path(path).ok_or_else(|| AudienceError::UnknownFormat {
            file: display(path),
        })
    }
}

/// A problem with the audience file as a whole; nothing is read from it.
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read audience: {source}")]
    Open {
        /// The path as given.
        file: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The path is a directory, a FIFO, a device: an audience is read as a stream of records
    /// from a regular file, and anything else could block or never end.
    #[error("{file}: cannot read audience: not a regular file ({kind})")]
    NotRegular {
        /// The path as given.
        file: String,
        /// What it is instead.
        kind: FileKind,
    },
    /// The extension is none of `.csv`, `.jsonl`, `.ndjson`.
    #[error("{file}: unknown audience format: expected a .csv, .jsonl or .ndjson file")]
    UnknownFormat {
        /// The path as given.
        file: String,
    },
    /// The CSV header row is unusable (no `phone` column, a duplicate column, invalid UTF-8).
    #[error("{file}:{line}: {message}")]
    Header {
        /// The path as given.
        file: String,
        /// The line of the header row.
        line: u64,
        /// What is wrong, in words.
        message: String,
    },
}

/// A streaming reader of one audience file, yielding each data row in file order.
pub struct AudienceReader {
    format: AudienceFormat,
    rows: Rows,
}

enum Rows {
    /// Boxed: csv-core's parser tables make it much larger than the JSONL reader.
    Csv(Box<csv::CsvRows>),
    Jsonl(jsonl::JsonlRows),
}

impl AudienceReader {
    /// Opens `path` in the format its extension names. For CSV the header row is read at once,
    /// so that a file without a `phone` column fails here rather than as one error per row.
    ///
    /// `default_country` reads national-format phones (`8 916 …`) in rows without a `country`.
    pub fn open(path: &Path, default_country: Option<Region>) -> Result<Self, AudienceError> {
        let format = AudienceFormat::of(path)?;
        let file = open(path)?;
        let rows = match format {
            AudienceFormat::Csv => Rows::Csv(Box::new(csv::CsvRows::new(
                file,
                display(path),
                default_country,
            )?)),
            AudienceFormat::Jsonl => {
                Rows::Jsonl(jsonl::JsonlRows::new(file, display(path), default_country))
            }
        };
        Ok(Self { format, rows })
    }

    /// The format the file is read in.
    pub fn format(&self) -> AudienceFormat {
        self.format
    }

    /// Makes this reader turn only every `of`-th row into a recipient (or a row error), starting
    /// with row `index` (0-based; blank lines are not rows), and read past the others. `of`
    /// readers of one file with the indexes `0..of` together yield every row exactly once;
    /// taking one item from each in turn restores the file's order. This is how an audience is
    /// read on several threads: validating phones, not reading the file, is the costly part.
    /// An `of` of 0 counts as 1, an `index` past `of` wraps around.
    #[must_use]
    pub fn share(mut self, index: usize, of: usize) -> Self {
        let of = of.max(1) as u64;
        let share = Share {
            index: index as u64 % of,
            of,
            next: 0,
        };
        match &mut self.rows {
            Rows::Csv(rows) => rows.share = share,
            Rows::Jsonl(rows) => rows.share = share,
        }
        self
    }
}

/// Which rows a reader yields: those whose ordinal is `index` modulo `of`.
#[derive(Debug, Clone, Copy)]
struct Share {
    index: u64,
    of: u64,
    /// The ordinal of the next row read.
    next: u64,
}

impl Share {
    /// Every row.
    const ALL: Self = Self {
        index: 0,
        of: 1,
        next: 0,
    };

    /// Counts one row and says whether it is this reader's.
    fn take(&mut self) -> bool {
        let ordinal = self.next;
        self.next += 1;
        ordinal % self.of == self.index
    }
}

impl Iterator for AudienceReader {
    type Item = Result<Recipient, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.rows {
            Rows::Csv(rows) => rows.next(),
            Rows::Jsonl(rows) => rows.next(),
        }
    }
}

impl fmt::Debug for AudienceReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudienceReader")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// The number of data rows in `path`, by a cheap pass over its bytes: newlines minus the header
/// for CSV, non-blank lines for JSONL. It parses nothing, so it over-counts (blank CSV lines,
/// newlines inside quoted fields, bad rows); it exists to pre-size [`PhoneSet`], where a
/// slightly high estimate costs a few bytes and a low one a regrowth.
pub fn count_rows(path: &Path) -> Result<u64, AudienceError> {
    scan(path, None)
}

/// What one pass over an audience file's bytes learns: see [`survey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Survey {
    /// The estimate of [`count_rows`].
    pub rows: u64,
    /// The SHA-256 of the file's bytes.
    pub sha256: [u8; 32],
}

/// [`count_rows`] and the SHA-256 of the same bytes, in one pass. Expansion records the hash
/// with its run and checks it again before the run is sealed and whenever an unfinished
/// expansion resumes: a run must be made of the rows of one version of its file.
pub fn survey(path: &Path) -> Result<Survey, AudienceError> {
    let mut hasher = Sha256::new();
    let rows = scan(path, Some(&mut hasher))?;
    Ok(Survey {
        rows,
        sha256: hasher.finalize().into(),
    })
}

/// The pass behind [`count_rows`] and [`survey`]: counts rows, and hashes the bytes when given
/// a hasher.
fn scan(path: &Path, mut hasher: Option<&mut Sha256>) -> Result<u64, AudienceError> {
    let format = AudienceFormat::of(path)?;
    let open_error = |source| AudienceError::Open {
        file: display(path),
        source,
    };
    let mut file = open(path)?;
    let mut buffer = vec![0u8; 64 * 1024];
    let (mut newlines, mut non_blank_lines) = (0u64, 0u64);
    let (mut last, mut line_has_text) = (None, false);
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(open_error(e)),
        };
        if let Some(hasher) = hasher.as_deref_mut() {
            hasher.update(&buffer[..n]);
        }
        for &byte in &buffer[..n] {
            if byte == b'\n' {
                newlines += 1;
                non_blank_lines += u64::from(line_has_text);
                line_has_text = false;
            } else if !byte.is_ascii_whitespace() {
                line_has_text = true;
            }
        }
        last = Some(buffer[n - 1]);
    }
    non_blank_lines += u64::from(line_has_text);
    Ok(match format {
        AudienceFormat::Csv => {
            let lines = newlines + u64::from(last.is_some_and(|b| b != b'\n'));
            lines.saturating_sub(1)
        }
        AudienceFormat::Jsonl => non_blank_lines,
    })
}

/// Opens an audience file: a regular file only (see [`crate::input`]).
fn open(path: &Path) -> Result<File, AudienceError> {
    crate::input::open_stream(path).map_err(|InputError { kind, .. }| match kind {
        InputErrorKind::NotRegular(kind) => AudienceError::NotRegular {
            file: display(path),
            kind,
        },
        InputErrorKind::Io(source) => AudienceError::Open {
            file: display(path),
            source,
        },
        other => AudienceError::Open {
            file: display(path),
            source: io::Error::other(other),
        },
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The known columns; anything else is an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Phone,
    Id,
    TimeZone,
    Locale,
    Country,
    Tags,
}

impl Column {
    /// The known column `name` stands for: trimmed and ASCII-case-insensitive, since spreadsheet
    /// exports write `Phone ` as readily as `phone`.
    fn known(name: &str) -> Option<Self> {
        let name = name.trim();
        [
            ("phone", Self::Phone),
            ("id", Self::Id),
            ("timezone", Self::TimeZone),
            ("locale", Self::Locale),
            ("country", Self::Country),
            ("tags", Self::Tags),
        ]
        .into_iter()
        .find(|(known, _)| name.eq_ignore_ascii_case(known))
        .map(|(_, column)| column)
    }
}

/// One row's values before validation, as both formats produce them.
#[derive(Debug, Default)]
struct RawRow<'a> {
    phone: Option<&'a str>,
    id: Option<&'a str>,
    zone: Option<&'a str>,
    locale: Option<&'a str>,
    country: Option<&'a str>,
    tags: Vec<String>,
    attributes: BTreeMap<String, String>,
}

impl<'a> RawRow<'a> {
    /// Stores the value of a known scalar column (`Tags` is handled by the formats).
    fn set(&mut self, column: Column, value: &'a str) {
        let slot = match column {
            Column::Phone => &mut self.phone,
            Column::Id => &mut self.id,
            Column::TimeZone => &mut self.zone,
            Column::Locale => &mut self.locale,
            Column::Country => &mut self.country,
            Column::Tags => return,
        };
        *slot = Some(value);
    }

    /// Validates the row. The first problem found is the message of the row's error.
    fn into_recipient(
        self,
        line: u64,
        default_country: Option<Region>,
    ) -> Result<Recipient, String> {
        let country = non_blank(self.country)
            .map(Region::parse)
            .transpose()
            .map_err(|e| e.to_string())?;
        let phone = non_blank(self.phone).ok_or("missing phone")?;
        let phone =
            PhoneNumber::parse(phone, country.or(default_country)).map_err(|e| e.to_string())?;
        let zone = non_blank(self.zone)
            .map(TimeZone::parse)
            .transpose()
            .map_err(|e| e.to_string())?;
        let id = match non_blank(self.id) {
            Some(id) => RecipientId::parse(id).map(AudienceId::Given),
            None => RecipientId::parse(phone.expose_e164()).map(AudienceId::Phone),
        }
        .map_err(|e| e.to_string())?;
        Ok(Recipient {
            line,
            id,
            phone,
            zone,
            locale: non_blank(self.locale).map(str::to_owned),
            country,
            tags: self.tags,
            attributes: self.attributes,
        })
    }
}

/// The trimmed value, or `None` when absent or blank: a blank cell means "not given".
fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Splits a `tags` cell on `;`, `|` or `,`: exports use all three, and none of them is useful
/// inside a tag.
fn split_tags(cell: &str) -> impl Iterator<Item = String> + '_ {
    cell.split([';', '|', ','])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        let format = |p: &str| AudienceFormat::from_path(Path::new(p));
        assert_eq!(format("a/b.csv"), Some(AudienceFormat::Csv));
        assert_eq!(format("B.CSV"), Some(AudienceFormat::Csv));
        assert_eq!(format("x.jsonl"), Some(AudienceFormat::Jsonl));
        assert_eq!(format("x.ndjson"), Some(AudienceFormat::Jsonl));
        assert_eq!(format("x.json"), None);
        assert_eq!(format("csv"), None);
        assert!(matches!(
            AudienceReader::open(Path::new("people.xlsx"), None),
            Err(AudienceError::UnknownFormat { file }) if file == "people.xlsx"
        ));
    }

    #[test]
    fn known_columns_ignore_case_and_padding() {
        assert_eq!(Column::known(" Phone "), Some(Column::Phone));
        assert_eq!(Column::known("TIMEZONE"), Some(Column::TimeZone));
        assert_eq!(Column::known("first_name"), None);
        assert_eq!(Column::known("phones"), None);
    }

    #[test]
    fn tags_split_on_any_separator() {
        let tags: Vec<_> = split_tags(" vip; new|ru ,, |").collect();
        assert_eq!(tags, ["vip", "new", "ru"]);
    }

    #[test]
    fn row_defaults_and_errors() {
        let raw = RawRow {
            phone: Some("8 916 123-45-67"),
            country: Some("ru"),
            zone: Some(" "),
            ..RawRow::default()
        };
        let r = raw.into_recipient(3, None).unwrap();
        assert_eq!(
            r.id,
            AudienceId::Phone(RecipientId::parse("+79161234567").unwrap())
        );
        assert_eq!(r.country, Region::parse("RU").ok());
        assert_eq!(r.zone, None);

        let error = |raw: RawRow<'_>| raw.into_recipient(1, None).unwrap_err();
        assert_eq!(error(RawRow::default()), "missing phone");
        let bad_zone = RawRow {
            phone: Some("+79161234567"),
            zone: Some("Mars/Base"),
            ..RawRow::default()
        };
        assert!(error(bad_zone).starts_with("unknown time zone \"Mars/Base\""));
        let bad_country = RawRow {
            phone: Some("+79161234567"),
            country: Some("RUS"),
            ..RawRow::default()
        };
        assert!(error(bad_country).starts_with("invalid country code \"RUS\""));
        let bad_id = RawRow {
            phone: Some("+79161234567"),
            id: Some("a b"),
            ..RawRow::default()
        };
        assert!(error(bad_id).starts_with("recipient id \"a b\""));
    }
}
