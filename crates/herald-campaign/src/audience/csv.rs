//! CSV audiences: a header row naming the columns, then one recipient per record.
//!
//! Records are read as bytes ([`ByteRecord`]) and each field is checked for UTF-8 on its own, so
//! that one row with a stray Latin-1 byte is a row error instead of the end of the file.
//!
//! # Line numbers
//! The csv crate's record position is where the parser *started* looking, which is the wrong
//! line after blank lines, and with the CRLF terminator the `\n` of each `\r\n` is only consumed
//! by the next read. So the reader uses `\n` alone as the terminator (a `\r` left at the end of
//! the last field is stripped), makes sure the file ends in `\n` (see [`FinalNewline`]), and
//! counts back from the line after the record: `end - newlines inside the record - 1`. That is
//! exact for quoted multi-line fields too; it is clamped to the start position for the one case
//! it cannot see, a quote left open at the end of the file.

use std::fs::File;
use std::io::{self, Read};

use ::csv::{ByteRecord, ErrorKind, Reader, ReaderBuilder, Terminator};
use herald_core::Region;

use super::{AudienceError, Column, RawRow, Recipient, RowError, Share, split_tags};

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
    reader: Reader<FinalNewline<R>>,
    layout: Layout,
    record: ByteRecord,
    file: String,
    default_country: Option<Region>,
    pub(super) share: Share,
    /// Set after an I/O error: nothing more is read.
    done: bool,
}

impl<R: Read> CsvRows<R> {
    /// Reads the header; the rows are read by [`Iterator::next`].
    pub(super) fn new(
        file: R,
        name: String,
        default_country: Option<Region>,
    ) -> Result<Self, AudienceError> {
        let mut reader = ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .terminator(Terminator::Any(b'\n'))
            .from_reader(FinalNewline::new(file));
        let header = match reader.byte_headers() {
            Ok(header) => header.clone(),
            Err(e) => {
                let message = e.to_string();
                return Err(match e.into_kind() {
                    ErrorKind::Io(source) => AudienceError::Open { file: name, source },
                    _ => AudienceError::Header {
                        file: name,
                        line: 1,
                        message,
                    },
                });
            }
        };
        let line = first_line(&header, reader.position().line());
        let layout = Layout::from_header(&header).map_err(|message| AudienceError::Header {
            file: name.clone(),
            line,
            message,
        })?;
        Ok(Self {
            reader,
            layout,
            record: ByteRecord::new(),
            file: name,
            default_country,
            share: Share::ALL,
            done: false,
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
        while !self.done {
            let result = self.reader.read_byte_record(&mut self.record);
            // Worked out only for rows this reader keeps: the other shares' rows are many.
            let line = || first_line(&self.record, self.reader.position().line());
            match result {
                Ok(false) => return None,
                Ok(true) if is_blank(&self.record) => continue,
                Ok(true) if !self.share.take() => continue,
                Ok(true) => {
                    let line = line();
                    return Some(self.recipient(line).map_err(|m| self.error(line, m)));
                }
                Err(e) => {
                    let line = line();
                    if let ErrorKind::Io(source) = e.kind() {
                        // Not a row but the end of what can be read: every reader reports it,
                        // whichever row it fell in, and stops (so does the csv reader).
                        let mut error = self.error(line, format!("cannot read further: {source}"));
                        error.unreadable = true;
                        self.done = true;
                        return Some(Err(error));
                    }
                    let blank = is_blank(&self.record);
                    if !blank && !self.share.take() {
                        continue;
                    }
                    let message = match e.kind() {
                        // A blank line is a one-field record; in a file of several columns the
                        // parser reports it as a short row, but it is just a gap.
                        ErrorKind::UnequalLengths { .. } if blank => continue,
                        ErrorKind::UnequalLengths {
                            expected_len, len, ..
                        } => {
                            format!("expected {expected_len} fields as in the header, found {len}")
                        }
                        _ => e.to_string(),
                    };
                    return Some(Err(self.error(line, message)));
                }
            }
        }
        None
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

/// The line `record` starts on, given the line the reader is at after it (see the module docs).
fn first_line(record: &ByteRecord, line_after: u64) -> u64 {
    let inner_newlines = record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
    let started_at = record.position().map_or(1, ::csv::Position::line);
    line_after
        .saturating_sub(inner_newlines + 1)
        .max(started_at)
}

/// Appends a `\n` to input that does not end in one, so that every record, the last included,
/// is followed by exactly one terminator and [`first_line`] can count it.
struct FinalNewline<R> {
    inner: R,
    last: Option<u8>,
    appended: bool,
}

impl<R> FinalNewline<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            last: None,
            appended: false,
        }
    }
}

impl<R: Read> Read for FinalNewline<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.last = Some(buf[n - 1]);
            return Ok(n);
        }
        if !self.appended && self.last.is_some_and(|b| b != b'\n') {
            self.appended = true;
            buf[0] = b'\n';
            return Ok(1);
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
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

    fn lines(data: &str) -> Vec<(u64, Vec<String>)> {
        let mut reader = ReaderBuilder::new()
            .terminator(Terminator::Any(b'\n'))
            .flexible(true)
            .has_headers(false)
            .from_reader(FinalNewline::new(data.as_bytes()));
        let mut record = ByteRecord::new();
        let mut out = Vec::new();
        while reader.read_byte_record(&mut record).unwrap() {
            if is_blank(&record) {
                continue;
            }
            let fields = (0..record.len())
                .map(|i| String::from_utf8(field(&record, i).to_vec()).unwrap())
                .collect();
            out.push((first_line(&record, reader.position().line()), fields));
        }
        out
    }

    #[test]
    fn line_numbers_survive_blank_lines_crlf_and_multiline_fields() {
        let got = lines("a,b\r\n\r\n\r\n\"x\r\ny\",z\r\n  \r\nlast,\"v\"");
        assert_eq!(
            got,
            [
                (1, vec!["a".to_owned(), "b".to_owned()]),
                (4, vec!["x\r\ny".to_owned(), "z".to_owned()]),
                (7, vec!["last".to_owned(), "v".to_owned()]),
            ]
        );
        let got = lines("h\n\n\n\"a\n\nb\"\nc\n\"open\n");
        let numbers: Vec<u64> = got.iter().map(|(line, _)| *line).collect();
        assert_eq!(numbers, [1, 4, 7, 8]);
    }

    #[test]
    fn final_newline_is_added_once() {
        let mut out = Vec::new();
        FinalNewline::new(&b"a,b"[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"a,b\n");
        out.clear();
        FinalNewline::new(&b"a\n"[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"a\n");
        out.clear();
        FinalNewline::new(&b""[..]).read_to_end(&mut out).unwrap();
        assert!(out.is_empty());
    }
}
