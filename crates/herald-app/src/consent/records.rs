//! Bounded CSV records for the consent import: the `csv` crate parses, and a [`Tap`] between
//! it and the file keeps what the parser does not: the line each record starts on, a cap on the
//! bytes of one record, and whether the file ended inside a quoted field.
//!
//! csv-core ends a record at end of file whatever state it is in, so a stray `"` silently
//! swallows the rest of the file into one field; and the `csv` crate grows its record buffer
//! for as long as a record lasts. The tap runs the same small state machine as csv-core (comma
//! delimiter, `"` quote doubled to escape, `\n` terminator, blank lines skipped) over every
//! byte it hands on, so it knows where each record starts and ends. A record longer than
//! [`MAX_RECORD`] is cut: the tap stops handing on its bytes, reads on (discarding) to the
//! record's real end, and then hands the parser the bytes that close what it holds, so the
//! parser's buffer never passes the cap and the next record starts where it should. At end of
//! file it closes an open quote the same way and marks the record, so the caller can stop there.
//!
//! (A private copy of what `herald-campaign/src/input.rs` is to provide for audiences; the two
//! are to be unified.)

use std::collections::VecDeque;
use std::io::{self, Read};

use csv::{ByteRecord, ReaderBuilder, Terminator};

/// The most bytes one record may take, quotes and line breaks included.
pub const MAX_RECORD: usize = 64 * 1024;

/// What the tap learnt about one record, in the order the parser returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    /// The line the record starts on (1-based).
    line: u64,
    /// The line of the quote that was still open at end of file.
    unterminated: Option<u64>,
    /// Cut at [`MAX_RECORD`].
    too_long: bool,
}

/// One record of the file.
#[derive(Debug)]
pub(crate) enum Record<'a> {
    /// A record within the cap.
    Fields {
        /// The line it starts on.
        line: u64,
        /// Its fields.
        fields: &'a ByteRecord,
    },
    /// A record over [`MAX_RECORD`] bytes; its bytes were skipped.
    TooLong {
        /// The line it starts on.
        line: u64,
    },
}

/// Why reading stopped before the end of the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Stop {
    /// A quoted field that opens on `line` never closes: everything after it would be one field.
    #[error("a quoted field opens on this line and never closes (unterminated quote)")]
    Unterminated {
        /// Where the quote opened.
        line: u64,
    },
    /// The file could not be read further.
    #[error("cannot read further: {source}")]
    Io {
        /// The line being read.
        line: u64,
        /// Why.
        source: io::Error,
    },
}

impl Stop {
    /// The line to name in the error.
    pub(crate) fn line(&self) -> u64 {
        match self {
            Stop::Unterminated { line } | Stop::Io { line, .. } => *line,
        }
    }
}

/// Records of a CSV file, read with a bounded buffer.
pub(crate) struct Records<R> {
    reader: csv::Reader<Tap<R>>,
    record: ByteRecord,
    stopped: bool,
}

impl<R: Read> Records<R> {
    /// Reads `input` as CSV. The header is the first record, like any other.
    pub(crate) fn new(input: R) -> Self {
        let reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(b',')
            .quote(b'"')
            .quoting(true)
            .double_quote(true)
            .escape(None)
            .comment(None)
            .terminator(Terminator::Any(b'\n'))
            .from_reader(Tap::new(input));
        Self {
            reader,
            record: ByteRecord::new(),
            stopped: false,
        }
    }

    /// The next record; `Ok(None)` at the end; after an error, nothing more is read.
    pub(crate) fn next_record(&mut self) -> Result<Option<Record<'_>>, Stop> {
        if self.stopped {
            return Ok(None);
        }
        let read = self.reader.read_byte_record(&mut self.record);
        let tap = self.reader.get_mut();
        match read {
            Ok(false) => Ok(None),
            Ok(true) => {
                // The tap saw every byte the parser did, so it has a shape for this record;
                // the fallback only keeps a broken invariant from becoming a panic.
                let shape = tap.shapes.pop_front().unwrap_or(Shape {
                    line: tap.line,
                    unterminated: None,
                    too_long: false,
                });
                if let Some(line) = shape.unterminated {
                    self.stopped = true;
                    return Err(Stop::Unterminated { line });
                }
                Ok(Some(if shape.too_long {
                    Record::TooLong { line: shape.line }
                } else {
                    Record::Fields {
                        line: shape.line,
                        fields: &self.record,
                    }
                }))
            }
            Err(e) => {
                self.stopped = true;
                let line = tap.shapes.front().map_or(tap.line, |s| s.line);
                let source = match e.into_kind() {
                    csv::ErrorKind::Io(source) => source,
                    other => io::Error::other(format!("{other:?}")),
                };
                Err(Stop::Io { line, source })
            }
        }
    }
}

/// Where the tap's state machine is: csv-core's states for the configuration above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records (blank lines are skipped here).
    StartRecord,
    /// At the start of a field.
    StartField,
    /// In an unquoted field (a `"` here is data).
    InField,
    /// In a quoted field (`,` and `\n` are data).
    InQuoted,
    /// Just after a `"` in a quoted field: a second `"` is a literal quote.
    QuoteInQuoted,
}

/// Sits between the file and the parser; see the module docs.
struct Tap<R> {
    inner: R,
    chunk: Box<[u8]>,
    start: usize,
    end: usize,
    /// End of file was handled (the closing bytes, if any, are in `inject`).
    eof: bool,
    started: bool,
    state: State,
    /// The line of the next byte.
    line: u64,
    /// Bytes of the current record so far.
    record_len: usize,
    /// The line of the quote that opened the current quoted field.
    quote_line: u64,
    /// Set while skipping the rest of a record over the cap: the state the parser was left in.
    cut: Option<State>,
    /// Bytes to hand the parser before any more of the file.
    inject: &'static [u8],
    /// Records seen and not yet returned by the parser.
    shapes: VecDeque<Shape>,
}

impl<R: Read> Tap<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            chunk: vec![0; 8 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            started: false,
            state: State::StartRecord,
            line: 1,
            record_len: 0,
            quote_line: 1,
            cut: None,
            inject: &[],
            shapes: VecDeque::new(),
        }
    }

    /// The bytes that end a record for a parser left in `state`.
    fn closing(state: State) -> &'static [u8] {
        match state {
            State::InQuoted => b"\"\n",
            _ => b"\n",
        }
    }

    /// Fills the chunk; false at end of file.
    fn refill(&mut self) -> io::Result<bool> {
        self.start = 0;
        self.end = 0;
        loop {
            match self.inner.read(&mut self.chunk[self.end..]) {
                Ok(0) => break,
                Ok(n) => {
                    self.end += n;
                    // A byte-order mark is not part of the first column's name; waiting for
                    // three bytes at the start is enough to see it.
                    if self.started || self.end >= 3 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.started {
            self.started = true;
            if self.chunk[..self.end].starts_with(b"\xEF\xBB\xBF") {
                self.start = 3;
            }
        }
        Ok(self.end > 0)
    }

    /// At end of file: close whatever is open so the parser returns it, and mark it.
    fn finish(&mut self) {
        self.eof = true;
        if let Some(parser) = self.cut.take() {
            if self.state == State::InQuoted {
                self.mark_unterminated();
            }
            self.inject = Self::closing(parser);
        } else {
            match self.state {
                State::StartRecord => {}
                State::InQuoted => {
                    self.mark_unterminated();
                    self.inject = Self::closing(State::InQuoted);
                }
                // A last line without its `\n`.
                _ => self.inject = b"\n",
            }
        }
        self.state = State::StartRecord;
    }

    fn mark_unterminated(&mut self) {
        let line = self.quote_line;
        if let Some(shape) = self.shapes.back_mut() {
            shape.unterminated = Some(line);
        }
    }

    /// Feeds one byte through the state machine; true if the parser is to get it.
    fn step(&mut self, byte: u8) -> bool {
        let before = self.state;
        if before == State::StartRecord {
            if byte == b'\n' {
                self.line += 1;
                return true;
            }
            self.shapes.push_back(Shape {
                line: self.line,
                unterminated: None,
                too_long: false,
            });
            self.record_len = 0;
        }
        let field = if before == State::StartRecord {
            State::StartField
        } else {
            before
        };
        let (next, ends) = match (field, byte) {
            (State::StartField, b'"') => {
                self.quote_line = self.line;
                (State::InQuoted, false)
            }
            (State::InQuoted, b'"') => (State::QuoteInQuoted, false),
            (State::InQuoted, _) => (State::InQuoted, false),
            (State::QuoteInQuoted, b'"') => (State::InQuoted, false),
            (_, b',') => (State::StartField, false),
            (_, b'\n') => (State::StartRecord, true),
            _ => (State::InField, false),
        };
        self.state = next;
        if byte == b'\n' {
            self.line += 1;
        }
        self.record_len += 1;
        match self.cut {
            Some(parser) if ends => {
                self.cut = None;
                self.inject = Self::closing(parser);
                false
            }
            Some(_) => false,
            None if !ends && self.record_len > MAX_RECORD => {
                self.cut = Some(before);
                if let Some(shape) = self.shapes.back_mut() {
                    shape.too_long = true;
                }
                false
            }
            None => true,
        }
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            if let Some((&first, rest)) = self.inject.split_first() {
                out[n] = first;
                n += 1;
                self.inject = rest;
                continue;
            }
            if self.start == self.end {
                if self.eof || n > 0 {
                    break;
                }
                if !self.refill()? {
                    self.finish();
                }
                continue;
            }
            let ordinary = self.ordinary_run();
            if ordinary > 0 {
                // Field content that cannot change the state: handed on (or skipped) as a block.
                let take = match self.cut {
                    Some(_) => ordinary,
                    None => ordinary.min(out.len() - n),
                };
                if self.cut.is_none() {
                    let from = &self.chunk[self.start..self.start + take];
                    out[n..n + take].copy_from_slice(from);
                    n += take;
                }
                self.start += take;
                self.record_len += take;
                continue;
            }
            let byte = self.chunk[self.start];
            self.start += 1;
            if self.step(byte) {
                out[n] = byte;
                n += 1;
            }
        }
        Ok(n)
    }
}

impl<R> Tap<R> {
    /// How many of the next buffered bytes are plain content of the field being read: bytes
    /// that leave the state as it is and, short of the cap, go to the parser unchanged. Kept
    /// under the cap (when not already skipping) so the byte that crosses it goes through
    /// [`Tap::step`].
    fn ordinary_run(&self) -> usize {
        let pending = &self.chunk[self.start..self.end];
        let run = match self.state {
            State::InField => pending
                .iter()
                .position(|&b| matches!(b, b',' | b'\n'))
                .unwrap_or(pending.len()),
            State::InQuoted => pending
                .iter()
                .position(|&b| matches!(b, b'"' | b'\n'))
                .unwrap_or(pending.len()),
            _ => 0,
        };
        match self.cut {
            Some(_) => run,
            None => run.min(MAX_RECORD.saturating_sub(self.record_len)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record as (line, fields) or (line, "TOO LONG"), and how reading ended.
    fn read(input: &[u8]) -> (Vec<(u64, Vec<String>)>, Option<String>) {
        let mut records = Records::new(input);
        let mut out = Vec::new();
        loop {
            match records.next_record() {
                Ok(None) => return (out, None),
                Ok(Some(Record::Fields { line, fields })) => out.push((
                    line,
                    fields
                        .iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect(),
                )),
                Ok(Some(Record::TooLong { line })) => out.push((line, vec!["TOO LONG".into()])),
                Err(stop) => return (out, Some(format!("{}: {stop}", stop.line()))),
            }
        }
    }

    fn fields(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn quoted_commas_and_line_breaks_stay_in_their_field_and_lines_are_exact() {
        let input = b"a,b\n\n\"x,1\",\"two\nlines\"\n\"say \"\"hi\"\"\",z\nlast,row";
        let (records, stop) = read(input);
        assert_eq!(stop, None);
        assert_eq!(
            records,
            [
                (1, fields(&["a", "b"])),
                (3, fields(&["x,1", "two\nlines"])),
                (5, fields(&["say \"hi\"", "z"])),
                (6, fields(&["last", "row"])),
            ]
        );
    }

    #[test]
    fn a_quote_left_open_stops_at_the_line_it_opened_on() {
        let input = b"a,b\n1,2\n3,\"open\n4,5\n6,7\n";
        let (records, stop) = read(input);
        assert_eq!(
            records,
            [(1, fields(&["a", "b"])), (2, fields(&["1", "2"]))]
        );
        assert_eq!(
            stop.as_deref(),
            Some("3: a quoted field opens on this line and never closes (unterminated quote)")
        );
        // A quote inside an unquoted field is data, as the parser has it.
        let (records, stop) = read(b"a,b\n1,x\"y\n");
        assert_eq!(stop, None);
        assert_eq!(records[1], (2, fields(&["1", "x\"y"])));
        // The quote that is open is named, not an earlier one that closed.
        let (_, stop) = read(b"a\n\"one\ntwo\",\"three\nfour\n");
        assert!(stop.unwrap().starts_with("3: "));
    }

    #[test]
    fn a_record_over_the_cap_is_skipped_whole_and_the_next_one_is_read() {
        let long = "x".repeat(MAX_RECORD + 10);
        for record in [
            format!("{long},1"),
            format!("\"{long}\",1"),
            format!("\"a\n{long}\nb\",1"),
            format!("\"{long}\"\"\n,\",1"),
        ] {
            let input = format!("a,b\n{record}\nnext,2\n");
            let (records, stop) = read(input.as_bytes());
            let lines_in = record.matches('\n').count() as u64;
            assert_eq!(stop, None, "{}", &record[..20]);
            assert_eq!(
                records,
                [
                    (1, fields(&["a", "b"])),
                    (2, fields(&["TOO LONG"])),
                    (3 + lines_in, fields(&["next", "2"])),
                ],
                "{}",
                &record[..20]
            );
        }
        // Exactly at the cap (with its line break) is fine.
        let exact = "y".repeat(MAX_RECORD);
        let (records, _) = read(format!("{exact}\n").as_bytes());
        assert_eq!(records, [(1, vec![exact])]);
        // Over the cap and never closed: still an unterminated quote, named where it opened.
        let (records, stop) = read(format!("a\n\"{long}").as_bytes());
        assert_eq!(records, [(1, fields(&["a"]))]);
        assert!(stop.unwrap().starts_with("2: "));
    }

    #[test]
    fn a_byte_order_mark_and_a_missing_final_newline_change_nothing() {
        let (records, stop) = read(b"\xEF\xBB\xBF\"phone\",kind\n1,2");
        assert_eq!(stop, None);
        assert_eq!(
            records,
            [(1, fields(&["phone", "kind"])), (2, fields(&["1", "2"]))]
        );
        assert_eq!(read(b""), (vec![], None));
        assert_eq!(read(b"\n\n"), (vec![], None));
    }

    /// A reader that hands out one byte at a time and fails at the end.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match self.0.split_first() {
                Some((&b, rest)) if !out.is_empty() => {
                    out[0] = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Err(io::Error::other("disk gone")),
            }
        }
    }

    #[test]
    fn short_reads_and_read_errors() {
        let mut records = Records::new(Trickle(b"\xEF\xBB\xBFa,b\n1,2\n3,4"));
        let mut lines = Vec::new();
        let stop = loop {
            match records.next_record() {
                Ok(Some(Record::Fields { line, .. })) => lines.push(line),
                Ok(other) => panic!("unexpected {other:?}"),
                Err(stop) => break stop,
            }
        };
        assert_eq!(lines, [1, 2]);
        assert!(matches!(stop, Stop::Io { line: 3, .. }), "{stop:?}");
        assert!(records.next_record().unwrap().is_none());
    }
}
