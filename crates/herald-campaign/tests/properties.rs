//! Property tests of everything that reads a user's file: the campaign parser and the CSV and
//! JSONL audience readers get arbitrary bytes and arbitrary structured input. None may panic,
//! and the readers account for every row: rows read + row errors = the rows the generator wrote
//! (it keeps its own count, whatever the readers think a row is).
//! Case counts are capped so the suite stays quick on two cores.

use std::path::Path;

use chrono::{DateTime, Utc};
use herald_campaign::audience::AudienceReader;
use herald_campaign::input::MAX_RECORD_BYTES;
use proptest::prelude::*;

fn now() -> DateTime<Utc> {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

/// Parses `text` as a campaign in a directory with an audience; every diagnostic must point
/// into the file.
fn parse_campaign(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("people.csv"), "phone\n+79161234567\n").unwrap();
    if let Err(diagnostics) = herald_campaign::parse("c.yaml", dir.path(), text, now()) {
        assert!(!diagnostics.0.is_empty());
        for d in &diagnostics.0 {
            assert_eq!(d.file, "c.yaml");
            assert!(d.line >= 1 && d.column >= 1, "{d}");
        }
    }
}

const CAMPAIGN: &str = r#"id: promo
purpose: marketing
audience: { source: people.csv, where: { tags: [vip] } }
template:
  name: promo
  language: { ru: ru, default: en }
  header: { text: "Hi {{ first_name | default('there') }}" }
  params: { discount: "30%" }
  buttons:
    - { payload: more, on_reply: { tag: interested } }
    - { payload: stop, on_reply: opt_out }
schedule: { cron: "0 10 * * MON", timezone: Europe/Moscow, expires_after: 48h }
send_window:
  preset: ru-business
  hours: { sat: "10:00-14:00" }
  holidays: [ru, 2026-12-31]
frequency_cap: [ { max: 2, per: 7d } ]
rate_limit: { per_second: 10 }
spread: 5m
"#;

/// YAML's own punctuation, anchors and aliases, so that arbitrary text is often structure.
fn yaml_soup() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("- ".to_owned()),
        Just(": ".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(", ".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("&b ".to_owned()),
        Just("*b".to_owned()),
        Just("<<: ".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("|\n".to_owned()),
        Just("? ".to_owned()),
        Just("--- ".to_owned()),
        Just("~".to_owned()),
        "[a-z_]{1,8}",
        "[0-9:T-]{1,16}",
        "\\PC{0,4}",
    ];
    proptest::collection::vec(pieces, 0..200).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_campaign_parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse_campaign(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn the_campaign_parser_survives_yaml_soup(text in yaml_soup()) {
        parse_campaign(&text);
    }

    /// A valid campaign with one line replaced, a piece inserted or the file cut short.
    #[test]
    fn the_campaign_parser_survives_edits_of_a_valid_file(
        line in 0usize..20,
        piece in yaml_soup(),
        cut in 0usize..CAMPAIGN.len(),
        mode in 0u8..3,
    ) {
        let mut lines: Vec<String> = CAMPAIGN.lines().map(str::to_owned).collect();
        let index = line % lines.len();
        let text = match mode {
            0 => {
                lines[index] = piece;
                lines.join("\n")
            }
            1 => {
                lines.insert(index, piece);
                lines.join("\n")
            }
            _ => CAMPAIGN.chars().take(cut).collect(),
        };
        parse_campaign(&text);
    }
}

/// One CSV field as a spreadsheet would write it: quoted when it must be.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// What a generated audience line is.
#[derive(Debug, Clone)]
enum Line {
    /// A row: (id, phone, name). Each makes one recipient or one row error.
    Row(String, String, String),
    /// A row with the wrong number of fields (2 or 4).
    Ragged(bool),
    /// A row with a byte that is not UTF-8.
    Latin1,
    /// A row longer than the record limit.
    Huge,
    /// An empty or blank line: not a row.
    Blank(&'static str),
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z ]{0,12}",
        "\\PC{0,12}",
        Just("a,b".to_owned()),
        Just("say \"hi\"".to_owned()),
        Just("two\nlines".to_owned()),
        Just("crlf\r\nline".to_owned()),
        Just("\"".to_owned()),
    ]
}

fn arb_phone() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..10_000_000).prop_map(|n| format!("+7916{n:07}")),
        (0u32..10_000_000).prop_map(|n| format!("8 916 {n:07}")),
        "[0-9+ ()-]{0,16}",
        arb_text(),
    ]
}

fn arb_line() -> impl Strategy<Value = Line> {
    prop_oneof![
        8 => (arb_text(), arb_phone(), arb_text()).prop_map(|(i, p, n)| Line::Row(i, p, n)),
        1 => any::<bool>().prop_map(Line::Ragged),
        1 => Just(Line::Latin1),
        1 => prop_oneof![Just(""), Just("   "), Just("\r")].prop_map(Line::Blank),
    ]
}

/// Lines, plus now and then a huge row (they are slow to generate, so rare).
fn arb_lines() -> impl Strategy<Value = Vec<Line>> {
    (
        proptest::collection::vec(arb_line(), 0..40),
        proptest::option::weighted(0.1, any::<prop::sample::Index>()),
    )
        .prop_map(|(mut lines, huge)| {
            if let Some(at) = huge {
                lines.insert(at.index(lines.len() + 1), Line::Huge);
            }
            lines
        })
}

/// Writes a CSV audience; returns its bytes and the number of rows written.
fn write_csv(lines: &[Line], crlf: bool, final_newline: bool) -> (Vec<u8>, u64) {
    let end = if crlf { "\r\n" } else { "\n" };
    let mut out = format!("id,phone,name{end}").into_bytes();
    let mut rows = 0;
    for line in lines {
        let text: Vec<u8> = match line {
            Line::Row(id, phone, name) => {
                format!("{},{},{}", csv_field(id), csv_field(phone), csv_field(name)).into_bytes()
            }
            Line::Ragged(short) if *short => b"x,+79161234567".to_vec(),
            Line::Ragged(_) => b"x,+79161234567,n,extra".to_vec(),
            Line::Latin1 => b"x,+79161234567,Jos\xe9".to_vec(),
            Line::Huge => format!("x,+79161234567,{}", "n".repeat(MAX_RECORD_BYTES)).into_bytes(),
            Line::Blank(blank) => blank.as_bytes().to_vec(),
        };
        rows += u64::from(!matches!(line, Line::Blank(_)));
        out.extend_from_slice(&text);
        out.extend_from_slice(end.as_bytes());
    }
    if !final_newline {
        while out.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            out.pop();
        }
    }
    (out, rows)
}

/// Writes a JSONL audience; returns its bytes and the number of rows written.
fn write_jsonl(lines: &[Line], crlf: bool) -> (Vec<u8>, u64) {
    let end = if crlf { "\r\n" } else { "\n" };
    let mut out = Vec::new();
    let mut rows = 0;
    for line in lines {
        let text: Vec<u8> = match line {
            Line::Row(id, phone, name) => {
                serde_json::json!({ "id": id, "phone": phone, "name": name })
                    .to_string()
                    .into_bytes()
            }
            Line::Ragged(true) => b"{\"phone\": ".to_vec(),
            Line::Ragged(false) => b"[1, 2, 3]".to_vec(),
            Line::Latin1 => b"{\"phone\":\"+79161234567\",\"name\":\"Jos\xe9\"}".to_vec(),
            Line::Huge => {
                let name = "n".repeat(MAX_RECORD_BYTES);
                format!("{{\"phone\":\"+79161234567\",\"name\":\"{name}\"}}").into_bytes()
            }
            Line::Blank(blank) => blank.as_bytes().to_vec(),
        };
        rows += u64::from(!matches!(line, Line::Blank(_)));
        out.extend_from_slice(&text);
        out.extend_from_slice(end.as_bytes());
    }
    (out, rows)
}

/// Reads `path` with `of` shares and counts (recipients, row errors) over all of them.
fn read_shared(path: &Path, of: usize) -> (u64, u64) {
    let (mut read, mut errors) = (0, 0);
    for index in 0..of {
        let reader = AudienceReader::open(path, None).unwrap().share(index, of);
        for row in reader {
            match row {
                Ok(_) => read += 1,
                Err(error) => {
                    assert!(!error.unreadable, "{error}");
                    errors += 1;
                }
            }
        }
    }
    (read, errors)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn csv_rows_are_all_accounted_for(
        lines in arb_lines(),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
        of in 1usize..4,
    ) {
        let (bytes, written) = write_csv(&lines, crlf, final_newline);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.csv");
        std::fs::write(&path, &bytes).unwrap();
        let (read, errors) = read_shared(&path, of);
        prop_assert_eq!(read + errors, written, "{}", String::from_utf8_lossy(&bytes));
    }

    /// A quote left open at the end: every row before it is read, then one `unreadable` error
    /// at the quote's line.
    #[test]
    fn an_open_quote_is_one_unreadable_error_at_its_line(lines in arb_lines(), tail in arb_text()) {
        let (mut bytes, written) = write_csv(&lines, false, true);
        let quote_line = 1 + bytes.iter().filter(|b| **b == b'\n').count() as u64;
        let open = format!("y,+79161234567,\"open {}", tail.replace('"', ""));
        bytes.extend_from_slice(open.as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.csv");
        std::fs::write(&path, &bytes).unwrap();
        let (mut rows, mut last) = (0, None);
        for row in AudienceReader::open(&path, None).unwrap() {
            prop_assert!(last.is_none(), "a row after the unreadable error");
            match row {
                Err(error) if error.unreadable => last = Some(error),
                _ => rows += 1,
            }
        }
        let error = last.expect("the open quote is reported");
        prop_assert_eq!(rows, written);
        prop_assert_eq!(error.line, quote_line);
    }

    #[test]
    fn jsonl_rows_are_all_accounted_for(lines in arb_lines(), crlf in any::<bool>(), of in 1usize..4) {
        let (bytes, written) = write_jsonl(&lines, crlf);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.jsonl");
        std::fs::write(&path, &bytes).unwrap();
        let (read, errors) = read_shared(&path, of);
        prop_assert_eq!(read + errors, written, "{}", String::from_utf8_lossy(&bytes));
    }

    /// Arbitrary bytes: no panic, and the reader ends.
    #[test]
    fn audience_readers_survive_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        csv in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(if csv { "people.csv" } else { "people.jsonl" });
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(reader) = AudienceReader::open(&path, None) {
            let rows = reader.count();
            prop_assert!(rows <= bytes.len() + 1);
        }
    }
}

/// A reader that hands out its bytes in the given chunk sizes (cycled).
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    next: usize,
}

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Every record as (line, fields) or (line of the error, whether reading ended).
fn records(
    source: impl std::io::Read,
    limit: usize,
) -> Vec<Result<(u64, csv::ByteRecord), (u64, bool)>> {
    let mut reader = herald_campaign::input::CsvRecords::with_limit(source, limit);
    let mut record = csv::ByteRecord::new();
    let mut out = Vec::new();
    while let Some(item) = reader.read(&mut record) {
        out.push(
            item.map(|line| (line, record.clone()))
                .map_err(|e| (e.line(), e.ends_reading())),
        );
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// How the file arrives (one byte at a time, odd chunks) changes nothing: not the records,
    /// their lines, nor which are too long.
    #[test]
    fn csv_records_do_not_depend_on_read_sizes(
        text in proptest::collection::vec(
            prop_oneof![Just(b'a'), Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(0xef)],
            0..300,
        ),
        sizes in proptest::collection::vec(1usize..7, 1..5),
        limit in 1usize..40,
    ) {
        let whole = records(&text[..], limit);
        let chunked = records(Chunked { data: &text, sizes, next: 0 }, limit);
        prop_assert_eq!(whole, chunked);
    }
}
