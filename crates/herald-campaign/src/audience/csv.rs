//! CSV audiences: a header row naming the columns, then one recipient per record.
//!
//! Records come from [`CsvRecords`], which bounds each record (a longer one is that row's error)
//! and gives the line each record starts on, quoted multi-line fields and blank lines included.
//! Each field is checked for UTF-8 on its own, so that one row with a stray Latin-1 byte is a row
//! error instead of the end of the file. Lines end in `\n`; the `\r` of a CRLF line is left at
//! the end of the last field and stripped here.

use std::fs::File;
use std::io::Read;

use ::csv::ByteRecord;
use herald_core::Region;

use super::{AudienceError, Column, RawRow, Recipient, RowError, Share, split_tags};
use crate::input::{CsvRecords, RecordError};

/// Where each column of the header is, by index.
#[derive(Debug)]
struct Layout {
    known: Vec<(usize, Column)>,
    attributes: Vec<(usize, String)>,
}

impl Layout {
    fn from_header(header: &ByteRecord) -> Result<Self, String> {
        let mut layout = Self {
            known: Vec::new(),
            attributes: Vec::new(),
        };
        let mut names = Vec::with_capacity(header.len());
        for index in 0..header.len() {
            let name = std::str::from_utf8(field(header, index))
                .map_err(|_| format!("column {} of the header is not valid UTF-8", index + 1))?
                .trim();
            names.push(format!("{name:?}"));
            if let Some(column) = Column::known(name) {
                if layout.known.iter().any(|(_, c)| *c == column) {
                    return Err(format!("duplicate column {:?}", name.to_ascii_lowercase()));
                }
                layout.known.push((index, column));
            } else if layout.attributes.iter().any(|(_, n)| n == name) {
                return Err(format!("duplicate column {name:?}"));
            } else if !name.is_empty() {
                // A column without a name (a trailing comma in a spreadsheet export) has nothing
                // a template could refer to it by, so it is ignored.
                layout.attributes.push((index, name.to_owned()));
            }
        }
        if header.is_empty() {
            return Err(
                "the file is empty: expected a header row with a `phone` column".to_owned(),
            );
        }
        if !layout.known.iter().any(|(_, c)| *c == Column::Phone) {
            return Err(format!(
                "no `phone` column in the header (columns: {})",
                names.join(", ")
            ));
        }
        Ok(layout)
    }
}

/// The rows of a CSV audience (a file; any reader in tests).
pub(super) struct CsvRows<R = File> {
    records: CsvRecords<R>,
    layout: Layout,
    /// The number of fields of the header, which every row must have.
    width: usize,
    record: ByteRecord,
    file: String,
    default_country: Option<Region>,
    pub(super) share: Share,
}

impl<R: Read> CsvRows<R> {
    /// Reads the header (the first non-blank record); the rows are read by
    /// [`Iterator::next`].
    pub(super) fn new(
        file: R,
        name: String,
        default_country: Option<Region>,
    ) -> Result<Self, AudienceError> {
        let mut records = CsvRecords::new(file);
        let mut header = ByteRecord::new();
        let header_error = |line, message| AudienceError::Header {
            file: name.clone(),
            line,
            message,
        };
        let line = loop {
            match records.read(&mut header) {
                None => {
                    let message = "the file is empty: expected a header row with a `phone` column";
                    return Err(header_error(1, message.to_owned()));
                }
                Some(Ok(_)) if is_blank(&header) => {}
                Some(Ok(line)) => break line,
                Some(Err(RecordError::Io { source, .. })) => {
                    return Err(AudienceError::Open { file: name, source });
                }
                Some(Err(e)) => return Err(header_error(e.line(), e.to_string())),
            }
        };
        let layout = Layout::from_header(&header).map_err(|message| header_error(line, message))?;
        Ok(Self {
            records,
            layout,
            width: header.len(),
            record: ByteRecord::new(),
            file: name,
            default_country,
            share: Share::ALL,
        })
    }

    fn error(&self, line: u64, message: String) -> RowError {
        RowError {
            file: self.file.clone(),
            line,
            message,
            unreadable: false,
        }
    }

    /// Turns the current record into a recipient.
    fn recipient(&self, line: u64) -> Result<Recipient, String> {
        let record = &self.record;
        let text = |index: usize| {
            std::str::from_utf8(field(record, index)).map_err(|_| {
                let name = self.column_name(index);
                format!("column {name:?} is not valid UTF-8")
            })
        };
        let mut raw = RawRow::default();
        for &(index, column) in &self.layout.known {
            let value = text(index)?;
            match column {
                Column::Tags => raw.tags = split_tags(value).collect(),
                _ => raw.set(column, value),
            }
        }
        for (index, name) in &self.layout.attributes {
            let value = text(*index)?;
            if !value.trim().is_empty() {
                raw.attributes.insert(name.clone(), value.to_owned());
            }
        }
        raw.into_recipient(line, self.default_country)
    }

    fn column_name(&self, index: usize) -> String {
        let known = self.layout.known.iter().find(|(i, _)| *i == index);
        let attribute = self.layout.attributes.iter().find(|(i, _)| *i == index);
        match (known, attribute) {
            (Some((_, column)), _) => format!("{column:?}").to_ascii_lowercase(),
            (None, Some((_, name))) => name.clone(),
            (None, None) => format!("#{}", index + 1),
        }
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<Recipient, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let error = match self.records.read(&mut self.record)? {
                Ok(_) if is_blank(&self.record) => continue,
                Ok(_) if !self.share.take() => continue,
                Ok(line) if self.record.len() != self.width => {
                    let (expected, found) = (self.width, self.record.len());
                    let message =
                        format!("expected {expected} fields as in the header, found {found}");
                    return Some(Err(self.error(line, message)));
                }
                Ok(line) => {
                    return Some(self.recipient(line).map_err(|m| self.error(line, m)));
                }
                Err(error) => error,
            };
            if error.ends_reading() {
                // Not a row but the end of what can be read (an I/O error, or a quote left
                // open to the end of the file): every reader reports it, whichever row it fell
                // in, and nothing is read after it.
                let mut row = self.error(error.line(), error.to_string());
                row.unreadable = true;
                return Some(Err(row));
            }
            if self.share.take() {
                return Some(Err(self.error(error.line(), error.to_string())));
            }
        }
    }
}

/// Field `index` of `record`, without the `\r` a CRLF line leaves on the last field.
fn field(record: &ByteRecord, index: usize) -> &[u8] {
    let value = record.get(index).unwrap_or_default();
    if index + 1 == record.len() {
        value.strip_suffix(b"\r").unwrap_or(value)
    } else {
        value
    }
}

/// A record that is one blank field: an empty or whitespace-only line.
fn is_blank(record: &ByteRecord) -> bool {
    record.len() == 1 && field(record, 0).iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    /// A file whose disk fails after `good` bytes.
    struct FailsAfter<'a> {
        good: &'a [u8],
    }

    impl Read for FailsAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.good.is_empty() {
                return Err(io::Error::other("disk gone"));
            }
            let n = self.good.len().min(buf.len()).min(16);
            buf[..n].copy_from_slice(&self.good[..n]);
            self.good = &self.good[n..];
            Ok(n)
        }
    }

    /// An I/O error ends every shared reader with the same `unreadable` error, whichever
    /// reader's row it fell in, and nothing is read after it: expansion relies on this to stop
    /// instead of sealing a run with the rest of the audience missing.
    #[test]
    fn an_io_error_ends_every_share_as_unreadable() {
        let data = b"id,phone\na,+79161234567\nb,+79161234568\nc,+79161234569\nd,+7916";
        for of in 1..=3 {
            for index in 0..of {
                let reader = FailsAfter { good: data };
                let mut rows = CsvRows::new(reader, "people.csv".into(), None).unwrap();
                rows.share = Share {
                    index: index as u64,
                    of: of as u64,
                    next: 0,
                };
                let items: Vec<_> = rows.by_ref().collect();
                let (last, before) = items.split_last().unwrap();
                let error = last.as_ref().unwrap_err();
                assert!(error.unreadable, "{error}");
                assert!(error.message.contains("disk gone"), "{error}");
                assert!(before.iter().all(Result::is_ok), "{of}/{index}: {before:?}");
                assert!(rows.next().is_none());
            }
        }
    }

    fn shared(data: &[u8], index: u64, of: u64) -> Vec<Result<Recipient, RowError>> {
        let mut rows = CsvRows::new(data, "people.csv".into(), None).unwrap();
        rows.share = Share { index, of, next: 0 };
        rows.collect()
    }

    /// Issue 10 item 6: a stray quote on line 3 used to swallow the rest of the file into one
    /// short row (csv-core ends a record at the end of the file inside a quote without an
    /// error). Now every share ends with the same `unreadable` error naming line 3.
    #[test]
    fn an_unterminated_quote_ends_every_share_at_its_line() {
        let mut data = b"id,phone\na,+79161234567\nb,\"+79161234568\n".to_vec();
        for n in 0..50 {
            data.extend_from_slice(format!("c{n},+7916123{n:04}\n").as_bytes());
        }
        for of in 1..=3 {
            for index in 0..of {
                let items = shared(&data, index, of);
                let (last, before) = items.split_last().unwrap();
                let error = last.as_ref().unwrap_err();
                assert!(error.unreadable, "{error}");
                assert_eq!(error.line, 3, "{error}");
                assert!(
                    error
                        .to_string()
                        .starts_with("people.csv:3: a quote opened")
                );
                assert!(before.iter().all(Result::is_ok), "{of}/{index}: {before:?}");
            }
        }
    }

    /// A record over the limit is one row's error, seen by one share only, and the rows after it
    /// are read as usual.
    #[test]
    fn a_huge_row_is_one_row_error() {
        let huge = "x".repeat(crate::input::MAX_RECORD_BYTES);
        let data = format!("id,phone\na,+79161234567\n{huge},+79161234568\nc,+79161234569\n");
        let mut errors = 0;
        let mut rows = 0;
        for index in 0..2 {
            for item in shared(data.as_bytes(), index, 2) {
                match item {
                    Ok(_) => rows += 1,
                    Err(error) => {
                        assert!(!error.unreadable);
                        assert_eq!(error.line, 3);
                        assert!(error.message.contains("longer than the limit"), "{error}");
                        errors += 1;
                    }
                }
            }
        }
        assert_eq!((rows, errors), (2, 1));
    }
}
