//! Audience files end to end: real files on disk, read through the public API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use herald_campaign::audience::{
    AudienceError, AudienceFormat, AudienceReader, PhoneSet, Recipient, RowError, Segment,
    count_rows,
};
use herald_core::Region;

fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn ru() -> Option<Region> {
    Some(Region::parse("RU").unwrap())
}

fn read(path: &Path, default_country: Option<Region>) -> (Vec<Recipient>, Vec<RowError>) {
    let mut recipients = Vec::new();
    let mut errors = Vec::new();
    for row in AudienceReader::open(path, default_country).unwrap() {
        match row {
            Ok(r) => recipients.push(r),
            Err(e) => errors.push(e),
        }
    }
    (recipients, errors)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

const CSV: &str = "\u{feff}id,Phone ,First_Name,timezone,tags,city
c1,+79161234567,Anna,Europe/Moscow,vip;new,Moscow
c2,+79161234568,Boris
c3,12345,Clara,,,
c4,+79161234569,Dmitri,Mars/Base,,
c5,+79161234570,\"Eva
Maria\",Asia/Almaty,,Almaty

,8 916 123-45-71,Fedor,,,Kazan
c7,+14165550134,Gleb,, VIP | Canada ,Toronto
";

#[test]
fn csv_rows_and_row_errors_come_out_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "customers.csv", CSV.as_bytes());
    let file = path.display().to_string();
    let reader = AudienceReader::open(&path, ru()).unwrap();
    assert_eq!(reader.format(), AudienceFormat::Csv);
    let (recipients, errors) = read(&path, ru());

    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            format!("{file}:3: expected 6 fields as in the header, found 3"),
            format!(
                "{file}:4: invalid phone \"12345\": not a valid number in any region's numbering plan"
            ),
            format!(
                "{file}:5: unknown time zone \"Mars/Base\": expected an IANA name such as Europe/Moscow"
            ),
        ]
    );
    assert!(errors.iter().all(|e| e.file == file));
    assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [3, 4, 5]);

    let lines: Vec<u64> = recipients.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 6, 9, 10]);
    let ids: Vec<&str> = recipients.iter().map(|r| r.id.as_str()).collect();
    // The row without an id is known by its phone, in E.164.
    assert_eq!(ids, ["c1", "c5", "+79161234571", "c7"]);

    let anna = &recipients[0];
    assert_eq!(anna.phone.expose_e164(), "+79161234567");
    assert_eq!(anna.zone.map(|z| z.name()), Some("Europe/Moscow"));
    assert_eq!(anna.tags, strings(&["vip", "new"]));
    assert_eq!(anna.country, None);
    assert_eq!(
        anna.attributes,
        BTreeMap::from([
            ("First_Name".to_owned(), "Anna".to_owned()),
            ("city".to_owned(), "Moscow".to_owned()),
        ])
    );
    let eva = &recipients[1];
    assert_eq!(eva.attributes["First_Name"], "Eva\nMaria");
    assert_eq!(eva.zone.map(|z| z.name()), Some("Asia/Almaty"));
    assert!(eva.tags.is_empty());
    let fedor = &recipients[2];
    assert_eq!(fedor.phone.expose_e164(), "+79161234571");
    assert_eq!(fedor.zone, None);
    let gleb = &recipients[3];
    assert_eq!(gleb.tags, strings(&["VIP", "Canada"]));
    assert_eq!(gleb.phone.region(), Region::parse("CA").ok());

    // Header plus 9 physical lines (the quoted field spans two, one line is blank).
    assert_eq!(count_rows(&path).unwrap(), 9);
}

#[test]
fn csv_with_crlf_blank_lines_bad_utf8_and_a_country_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut content = b"phone,country,name\r\n\r\n8 701 123 45 67,kz,Aidar\r\n".to_vec();
    content.extend_from_slice(b"+79161234567,,Ol\xe9g\r\n");
    content.extend_from_slice(b"+79161234568,RUS,Pavel\r\n");
    content.extend_from_slice(b"\r\n+79161234569,,\"Quoted\r\nName\"\r\n");
    content.extend_from_slice(b"+79161234570,,Last");
    let path = write(&dir, "mixed.CSV", &content);
    let (recipients, errors) = read(&path, ru());

    let errors: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (4, "column \"name\" is not valid UTF-8"),
            (
                5,
                "invalid country code \"RUS\": expected two ASCII letters (ISO 3166-1 alpha-2)"
            ),
        ]
    );
    let rows: Vec<(u64, &str, Option<&str>)> = recipients
        .iter()
        .map(|r| {
            let name = r.attributes.get("name").map(String::as_str);
            (r.line, r.phone.expose_e164(), name)
        })
        .collect();
    assert_eq!(
        rows,
        [
            (3, "+77011234567", Some("Aidar")),
            (7, "+79161234569", Some("Quoted\r\nName")),
            (9, "+79161234570", Some("Last")),
        ]
    );
    // The country column reads the national-format number as Kazakh despite the RU default.
    assert_eq!(recipients[0].country, Region::parse("KZ").ok());
}

#[test]
fn csv_header_problems_are_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let no_phone = write(&dir, "no-phone.csv", b"id,mobile\n1,+79161234567\n");
    match AudienceReader::open(&no_phone, None) {
        Err(AudienceError::Header {
            file,
            line,
            message,
        }) => {
            assert_eq!(file, no_phone.display().to_string());
            assert_eq!(line, 1);
            assert!(message.starts_with("no `phone` column"), "{message}");
        }
        other => panic!("expected a header error, got {:?}", other.map(|_| ())),
    }
    let twice = write(&dir, "twice.csv", b"phone,PHONE\n");
    assert!(matches!(
        AudienceReader::open(&twice, None),
        Err(AudienceError::Header { .. })
    ));
    let empty = write(&dir, "empty.csv", b"");
    assert!(matches!(
        AudienceReader::open(&empty, None),
        Err(AudienceError::Header { .. })
    ));
    assert!(matches!(
        AudienceReader::open(&dir.path().join("missing.csv"), None),
        Err(AudienceError::Open { .. })
    ));
    let text = write(&dir, "people.txt", b"phone\n");
    assert!(matches!(
        count_rows(&text),
        Err(AudienceError::UnknownFormat { .. })
    ));
}

const JSONL: &str = concat!(
    "\u{feff}{\"id\":\"u1\",\"phone\":\"+79161234567\",\"tags\":[\"vip\",\"new\"],",
    "\"age\":31,\"subscribed\":true,\"first_name\":\"Anna\"}\n",
    "\n",
    "{\"phone\": \"+7916123\n",
    "[1, 2, 3]\n",
    "{\"phone\":\"+79161234568\",\"address\":{\"city\":\"Omsk\"}}\n",
    "{\"phone\":\"+1 416 555 0134\",\"country\":\"ca\",\"tags\":\"a; b\",\"locale\":\"en-CA\"}\r\n",
    "   \n",
    "{\"id\":\"u8\",\"phone\":\"+79161234569\",\"timezone\":\"Mars/Base\"}\n",
    "{\"id\":\"u9\",\"phone\":\"12345\"}\n",
    "{\"id\":10,\"phone\":\"8 916 123 45 70\",\"score\":4.5}",
);

#[test]
fn jsonl_rows_and_row_errors_come_out_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "people.jsonl", JSONL.as_bytes());
    let file = path.display().to_string();
    assert_eq!(
        AudienceReader::open(&path, ru()).unwrap().format(),
        AudienceFormat::Jsonl
    );
    let (recipients, errors) = read(&path, ru());

    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            format!("{file}:3: invalid JSON: EOF while parsing a string (column 19)"),
            format!("{file}:4: expected a JSON object, found an array"),
            format!(
                "{file}:5: attribute \"address\" must be a string, number or boolean, found an object"
            ),
            format!(
                "{file}:8: unknown time zone \"Mars/Base\": expected an IANA name such as Europe/Moscow"
            ),
            format!(
                "{file}:9: invalid phone \"12345\": not a valid number in any region's numbering plan"
            ),
        ]
    );

    let rows: Vec<(u64, &str)> = recipients.iter().map(|r| (r.line, r.id.as_str())).collect();
    assert_eq!(rows, [(1, "u1"), (6, "+14165550134"), (10, "10")]);

    let anna = &recipients[0];
    assert_eq!(anna.tags, strings(&["vip", "new"]));
    assert_eq!(
        anna.attributes,
        BTreeMap::from([
            ("age".to_owned(), "31".to_owned()),
            ("first_name".to_owned(), "Anna".to_owned()),
            ("subscribed".to_owned(), "true".to_owned()),
        ])
    );
    let toronto = &recipients[1];
    assert_eq!(toronto.tags, strings(&["a", "b"]));
    assert_eq!(toronto.country, Region::parse("CA").ok());
    assert_eq!(toronto.locale.as_deref(), Some("en-CA"));
    let last = &recipients[2];
    assert_eq!(last.phone.expose_e164(), "+79161234570");
    assert_eq!(last.attributes["score"], "4.5");

    // Ten lines, two of them blank.
    assert_eq!(count_rows(&path).unwrap(), 8);
    let ndjson = write(&dir, "people.ndjson", JSONL.as_bytes());
    assert_eq!(read(&ndjson, ru()).0.len(), 3);
}

#[test]
fn reader_segment_and_phone_set_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "list.csv",
        b"phone,tags,plan\n\
          +1 416 555 0134,VIP;ca,gold\n\
          +1 347 555 0134,vip,gold\n\
          +1 (416) 555-0134,vip,gold\n\
          +1 604 555 0134,new,silver\n\
          +1 604 555 0135,vip,basic\n",
    );
    let segment = Segment {
        tags: strings(&["vip"]),
        country: Region::parse("CA").ok(),
        attributes: BTreeMap::from([("plan".to_owned(), strings(&["gold", "silver"]))]),
    };
    let mut seen = PhoneSet::with_capacity(count_rows(&path).unwrap());
    let mut chosen = Vec::new();
    let mut duplicates = Vec::new();
    for recipient in AudienceReader::open(&path, None).unwrap() {
        let recipient = recipient.unwrap();
        if !seen.insert(&recipient.phone) {
            duplicates.push(recipient.line);
        } else if segment.matches(&recipient) {
            chosen.push(recipient.line);
        }
    }
    // Line 3 is in the US, line 5 lacks the tag, line 6 has the wrong plan.
    assert_eq!(chosen, [2]);
    assert_eq!(duplicates, [4]);
    assert_eq!(seen.len(), 4);
}

/// Shared readers (one per thread in expansion) yield every row exactly once between them, and
/// taking one item from each in turn gives back the plain reader's sequence: recipients, row
/// errors (a short row, a bad phone, a bad zone, invalid JSON) and their lines, across blank
/// lines and a quoted field spanning two lines.
#[test]
fn shared_readers_in_turn_yield_the_plain_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = "{\"phone\":\"+79161234567\",\"id\":\"j1\"}\n\nnot json\n\
                 {\"phone\":\"12\"}\n{\"phone\":\"+14165550134\",\"id\":\"j4\"}\n   \n\
                 {\"phone\":\"+79161234568\",\"id\":\"j5\",\"timezone\":\"Mars/Base\"}\n";
    let files = [
        write(&dir, "customers.csv", CSV.as_bytes()),
        write(&dir, "people.jsonl", jsonl.as_bytes()),
    ];
    for path in &files {
        let plain: Vec<_> = AudienceReader::open(path, ru()).unwrap().collect();
        assert!(plain.iter().any(Result::is_err) && plain.iter().any(Result::is_ok));
        for of in 1..=4 {
            let mut readers: Vec<_> = (0..of)
                .map(|index| AudienceReader::open(path, ru()).unwrap().share(index, of))
                .collect();
            let mut merged = Vec::new();
            'turns: loop {
                for reader in &mut readers {
                    match reader.next() {
                        Some(row) => merged.push(row),
                        None => break 'turns,
                    }
                }
            }
            let rest: usize = readers.iter_mut().map(|reader| reader.count()).sum();
            assert_eq!(rest, 0, "{} in {of}", path.display());
            assert_eq!(merged, plain, "{} in {of}", path.display());
        }
    }
}
