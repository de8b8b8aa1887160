//! CSV records read with a size limit, each with the line it starts on, and a quote left open
//! at the end of the file reported instead of swallowed.
//!
//! `csv::Reader` reads a whole record into memory whatever its size, and at the end of the file
//! it ends a record inside an open quote without an error (csv-core "prefers a parse over no
//! parse"): one stray `"` on line 3 turns the rest of the audience into one field of one row.
//! So records are parsed here with csv-core (the csv crate's own parser) into buffers that grow
//! only up to the limit; a longer record is read on into a scratch buffer and dropped, and is
//! that record's error. Beside the parser a small tracker follows the same grammar byte by byte
//! (comma, `"` with doubled quotes, `\n` ends a record, blank lines skipped) to know where each
//! record starts, how long it is and where an open quote opened.

use std::io::{self, Read};

use csv::ByteRecord;
use csv_core::{ReadRecordResult, Reader, ReaderBuilder, Terminator};

use super::MAX_RECORD_BYTES;

/// Bytes read from the file at a time.
const INPUT_BUFFER: usize = 64 * 1024;
/// The UTF-8 byte order mark spreadsheet exports put first; never part of the first field.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// A record that could not be read. The line is where the record (or the quote) starts.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The record is longer than the limit. It has been read past: the next record follows.
    #[error("the record is longer than the limit of {limit} bytes")]
    TooLong {
        /// The line the record starts on.
        line: u64,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A quoted field opened here is never closed: everything after it would be one field, so
    /// nothing after it can be read as records. Nothing follows this error.
    #[error("a quote opened on this line is never closed, so the rest of the file is unreadable")]
    UnterminatedQuote {
        /// The line of the opening quote.
        line: u64,
    },
    /// The file could not be read further. Nothing follows this error.
    #[error("cannot read further: {source}")]
    Io {
        /// The line reading stopped in.
        line: u64,
        /// The underlying error.
        source: io::Error,
    },
}

impl RecordError {
    /// The line the error is about.
    pub fn line(&self) -> u64 {
        match self {
            RecordError::TooLong { line, .. }
            | RecordError::UnterminatedQuote { line }
            | RecordError::Io { line, .. } => *line,
        }
    }

    /// Whether the rest of the file is lost (an open quote or an I/O error) rather than one
    /// record: a reader that must see every row stops here.
    pub fn ends_reading(&self) -> bool {
        !matches!(self, RecordError::TooLong { .. })
    }
}

/// Reads CSV records (comma-separated, `"` quoting with doubled quotes, `\n` line ends; a `\r`
/// before it stays in the last field for the caller to strip; blank lines are skipped) from any
/// reader, one at a time, none longer than the limit.
pub struct CsvRecords<R> {
    source: R,
    parser: Reader,
    input: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    bom_checked: bool,
    output: Vec<u8>,
    ends: Vec<usize>,
    limit: usize,
    tracker: Tracker,
    finished: bool,
}

impl<R: Read> CsvRecords<R> {
    /// Records of at most [`MAX_RECORD_BYTES`].
    pub fn new(source: R) -> Self {
        Self::with_limit(source, MAX_RECORD_BYTES)
    }

    /// Records of at most `limit` bytes as written, the line end excluded.
    pub fn with_limit(source: R, limit: usize) -> Self {
        Self {
            source,
            parser: ReaderBuilder::new()
                .terminator(Terminator::Any(b'\n'))
                .build(),
            input: vec![0; INPUT_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            bom_checked: false,
            output: vec![0; 1024.min(limit + 1)],
            ends: vec![0; 64.min(limit + 2)],
            limit,
            tracker: Tracker::default(),
            finished: false,
        }
    }

    /// Reads the next record into `record` and returns the line it starts on; `None` at the end
    /// of the input, and after an error that [ends reading](RecordError::ends_reading).
    pub fn read(&mut self, record: &mut ByteRecord) -> Option<Result<u64, RecordError>> {
        if self.finished {
            return None;
        }
        record.clear();
        let (mut nout, mut nend, mut too_long) = (0, 0, false);
        loop {
            // An empty input tells csv-core the file has ended, so refill until there is some.
            while self.start == self.end && !self.eof {
                if let Err(source) = self.fill() {
                    self.finished = true;
                    let line = self.tracker.current_line();
                    return Some(Err(RecordError::Io { line, source }));
                }
            }
            let input = &self.input[self.start..self.end];
            // Past the limit the record is still parsed, to find its end, but into the start
            // of the buffers over and over: what it holds is dropped.
            let (output, ends) = if too_long {
                (&mut self.output[..], &mut self.ends[..])
            } else {
                (&mut self.output[nout..], &mut self.ends[nend..])
            };
            let (result, nin, n_out, n_end) = self.parser.read_record(input, output, ends);
            self.tracker.scan(&input[..nin]);
            self.start += nin;
            if !too_long {
                nout += n_out;
                nend += n_end;
                too_long = self.tracker.record_bytes > self.limit;
            }
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull if !too_long => {
                    too_long = !grow(&mut self.output, self.limit + 1);
                }
                ReadRecordResult::OutputEndsFull if !too_long => {
                    too_long = !grow(&mut self.ends, self.limit + 2);
                }
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
                ReadRecordResult::End => {
                    self.finished = true;
                    return None;
                }
                ReadRecordResult::Record => {
                    let at_end = self.eof && self.start == self.end;
                    let open_quote = at_end && self.tracker.state == State::InQuoted;
                    let (line, quote_line) = (self.tracker.record_line, self.tracker.quote_line);
                    self.tracker.end_record();
                    if open_quote {
                        self.finished = true;
                        return Some(Err(RecordError::UnterminatedQuote { line: quote_line }));
                    }
                    if too_long {
                        let limit = self.limit;
                        return Some(Err(RecordError::TooLong { line, limit }));
                    }
                    let mut from = 0;
                    for &to in &self.ends[..nend] {
                        record.push_field(&self.output[from..to]);
                        from = to;
                    }
                    return Some(Ok(line));
                }
            }
        }
    }

    /// Refills the input buffer; at the start of the input, drops a byte order mark.
    fn fill(&mut self) -> io::Result<()> {
        self.start = 0;
        self.end = 0;
        loop {
            let wanted = if self.bom_checked { 1 } else { BOM.len() };
            if self.end >= wanted {
                break;
            }
            match self.source.read(&mut self.input[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.bom_checked {
            self.bom_checked = true;
            if self.input[..self.end].starts_with(BOM) {
                self.start = BOM.len();
            }
        }
        Ok(())
    }
}

/// Doubles `buffer` up to `cap` elements; false when it is already that large.
fn grow<T: Copy + Default>(buffer: &mut Vec<T>, cap: usize) -> bool {
    if buffer.len() >= cap {
        return false;
    }
    let len = (buffer.len() * 2).clamp(1, cap);
    buffer.resize(len, T::default());
    true
}

/// Where the parser is, in the grammar csv-core is configured with above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Between records (blank lines are skipped here).
    #[default]
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// Just after a `"` inside a quoted field: the field's end, or the first of a doubled `""`.
    QuoteInQuoted,
}

/// Follows the bytes csv-core consumed: lines, where the current record started, its length,
/// and where its last quoted field opened.
#[derive(Debug)]
struct Tracker {
    state: State,
    /// The line of the next byte.
    line: u64,
    record_line: u64,
    quote_line: u64,
    /// The current record's bytes so far, its line end excluded.
    record_bytes: usize,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            state: State::StartRecord,
            line: 1,
            record_line: 1,
            quote_line: 1,
            record_bytes: 0,
        }
    }
}

impl Tracker {
    fn scan(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.state == State::StartRecord {
                if byte == b'\n' {
                    self.line += 1;
                    continue;
                }
                self.state = State::StartField;
                self.record_line = self.line;
                self.record_bytes = 0;
            }
            if byte == b'\n' {
                self.line += 1;
                if self.state != State::InQuoted {
                    self.state = State::StartRecord;
                    continue;
                }
            }
            self.record_bytes += 1;
            self.state = match (self.state, byte) {
                (State::StartField, b'"') => {
                    self.quote_line = self.line;
                    State::InQuoted
                }
                (State::StartField | State::InField | State::QuoteInQuoted, b',') => {
                    State::StartField
                }
                (State::InQuoted, b'"') => State::QuoteInQuoted,
                (State::InQuoted, _) | (State::QuoteInQuoted, b'"') => State::InQuoted,
                _ => State::InField,
            };
        }
    }

    /// The record csv-core just returned is done (at the end of the input it has no `\n`).
    /// Its length is forgotten: blank lines read before the next record starts must not find
    /// this one's.
    fn end_record(&mut self) {
        self.state = State::StartRecord;
        self.record_bytes = 0;
    }

    /// The line to blame for a read error: the current record's, or the next one's.
    fn current_line(&self) -> u64 {
        match self.state {
            State::StartRecord => self.line,
            _ => self.record_line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as (line, fields), or an error as (line, variant name).
    type Item = Result<(u64, Vec<String>), (u64, String)>;

    fn read_all(data: &[u8], limit: usize) -> Vec<Item> {
        let mut records = CsvRecords::with_limit(data, limit);
        let mut record = ByteRecord::new();
        let mut out = Vec::new();
        while let Some(result) = records.read(&mut record) {
            out.push(match result {
                Ok(line) => Ok((
                    line,
                    record
                        .iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect(),
                )),
                Err(e) => Err((e.line(), format!("{e:?}").split(' ').next().unwrap().into())),
            });
        }
        out
    }

    fn ok(line: u64, fields: &[&str]) -> Item {
        Ok((line, fields.iter().map(|f| (*f).to_owned()).collect()))
    }

    #[test]
    fn lines_survive_blank_lines_crlf_and_multiline_fields() {
        let got = read_all(
            b"\xef\xbb\xbfa,b\r\n\r\n\n\"x\r\ny\",z\n\nlast,\"v\"\"w\"",
            100,
        );
        assert_eq!(
            got,
            [
                ok(1, &["a", "b\r"]),
                ok(2, &["\r"]),
                ok(4, &["x\r\ny", "z"]),
                ok(7, &["last", "v\"w"]),
            ]
        );
        assert_eq!(read_all(b"", 100), []);
        assert_eq!(read_all(b"\n\n", 100), []);
        assert_eq!(read_all(b"a,\n", 100), [ok(1, &["a", ""])]);
    }

    #[test]
    fn an_open_quote_at_the_end_names_its_line_and_ends_reading() {
        let got = read_all(b"h,i\n1,2\n3,\"oops\n4,5\n6,7\n", 100);
        assert_eq!(
            got,
            [
                ok(1, &["h", "i"]),
                ok(2, &["1", "2"]),
                Err((3, "UnterminatedQuote".into()))
            ]
        );
        // A quote inside an unquoted field is just a character.
        assert_eq!(read_all(b"a\"b,c\n", 100), [ok(1, &["a\"b", "c"])]);
        // A closed quote at the very end is fine.
        assert_eq!(read_all(b"\"a\nb\"", 100), [ok(1, &["a\nb"])]);
        // The quote that is open is named, not an earlier one that closed.
        let got = read_all(b"a\n\"one\ntwo\",\"three\nfour\n", 100);
        assert_eq!(got, [ok(1, &["a"]), Err((3, "UnterminatedQuote".into()))]);
        // Over the limit and never closed: still an open quote, named where it opened.
        let long = format!("a\n\"{}", "x".repeat(50));
        let got = read_all(long.as_bytes(), 10);
        assert_eq!(got, [ok(1, &["a"]), Err((2, "UnterminatedQuote".into()))]);
    }

    #[test]
    fn a_record_over_the_limit_is_skipped_and_reading_goes_on() {
        let long = format!("1,{}\n2,ok\n", "x".repeat(50));
        let got = read_all(long.as_bytes(), 10);
        assert_eq!(got, [Err((1, "TooLong".into())), ok(2, &["2", "ok"])]);
        // Exactly at the limit is fine; the line end does not count.
        assert_eq!(read_all(b"123456789,\n", 10), [ok(1, &["123456789", ""])]);
        assert_eq!(
            read_all(b"1234567890,\nz\n", 10),
            [Err((1, "TooLong".into())), ok(2, &["z"])]
        );
        // Empty fields cost no output but are still counted.
        let commas = format!("{}\nz\n", ",".repeat(5_000));
        assert_eq!(
            read_all(commas.as_bytes(), 100),
            [Err((1, "TooLong".into())), ok(2, &["z"])]
        );
        // Quoted, with a line break or a doubled quote past the limit: skipped whole all
        // the same, and the next record's line is right.
        for record in [
            "\"xxxxxxxxxxxx\",1",
            "\"a\nxxxxxxxxxxxx\nb\",1",
            "\"xxxxxxxxxxxx\"\"\n,\",1",
        ] {
            let lines_in = record.matches('\n').count() as u64;
            let data = format!("h\n{record}\nnext,2\n");
            assert_eq!(
                read_all(data.as_bytes(), 10),
                [
                    ok(1, &["h"]),
                    Err((2, "TooLong".into())),
                    ok(3 + lines_in, &["next", "2"])
                ],
                "{record}"
            );
        }
        // A long quoted field spanning lines: the next record's line is still right.
        let quoted = format!("\"{}\"\nnext\n", "ab\n".repeat(40));
        assert_eq!(
            read_all(quoted.as_bytes(), 20),
            [Err((1, "TooLong".into())), ok(42, &["next"])]
        );
    }

    /// A source that yields one byte per read: every buffer boundary is exercised.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    /// A source that yields one byte per read, then fails.
    struct Failing<'a>(&'a [u8]);

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.split_first() {
                Some((&first, rest)) => {
                    buf[0] = first;
                    self.0 = rest;
                    Ok(1)
                }
                None => Err(io::Error::other("disk gone")),
            }
        }
    }

    #[test]
    fn a_read_error_names_the_record_it_cut_and_ends_reading() {
        let mut records = CsvRecords::new(Failing(b"\xef\xbb\xbfa,b\n1,2\n3,4"));
        let mut record = ByteRecord::new();
        assert_eq!(records.read(&mut record).unwrap().unwrap(), 1);
        assert_eq!(records.read(&mut record).unwrap().unwrap(), 2);
        let error = records.read(&mut record).unwrap().unwrap_err();
        assert!(
            matches!(error, RecordError::Io { line: 3, .. }),
            "{error:?}"
        );
        assert!(error.ends_reading());
        assert!(records.read(&mut record).is_none());
    }

    #[test]
    fn one_byte_reads_give_the_same_records() {
        let data = b"\xef\xbb\xbfh,\"q\"\"\"\n\n1,\"a\nb\"\n2,toolongtoolong\n3,x";
        let mut expected = Vec::new();
        let mut records = CsvRecords::with_limit(&data[..], 12);
        let mut record = ByteRecord::new();
        while let Some(r) = records.read(&mut record) {
            expected.push(r.map(|line| (line, record.clone())).map_err(|e| e.line()));
        }
        let mut got = Vec::new();
        let mut records = CsvRecords::with_limit(Trickle(data), 12);
        while let Some(r) = records.read(&mut record) {
            got.push(r.map(|line| (line, record.clone())).map_err(|e| e.line()));
        }
        assert_eq!(got, expected);
        assert_eq!(expected.len(), 4);
        // Blank lines read alone after a long record do not make the next one long.
        let mut records = CsvRecords::with_limit(Trickle(b"xxxxxxxxxxxxxxxx\n\n\nok\n"), 10);
        assert_eq!(records.read(&mut record).unwrap().unwrap_err().line(), 1);
        assert_eq!(records.read(&mut record).unwrap().unwrap(), 4);
        assert_eq!(record, vec!["ok"]);
        assert_eq!(expected[0].as_ref().unwrap().1, vec!["h", "q\""]);
        assert_eq!(expected[2], Err(5));
    }
}
