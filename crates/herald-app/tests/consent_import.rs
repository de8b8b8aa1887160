//! `herald consent import` against a real SQLite store: channels, scopes, dates, quoting and
//! the bounds on what is read.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use herald_app::consent::import;
use herald_campaign::input::MAX_RECORD_BYTES;
use herald_core::{ConsentChannel, ConsentKind, PhoneNumber, RecordedConsent, Scope};
use herald_store::{Consents, Stores};
use herald_store_sqlite::SqliteStores;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
        .unwrap()
        .to_utc()
}

/// An [`herald_app::consent::ImportReport`] with the row errors it reported.
#[derive(Debug)]
struct Imported {
    rows: u64,
    accepted: u64,
    stored: u64,
    stopped: Option<String>,
    errors: Vec<String>,
}

struct Fixture {
    dir: tempfile::TempDir,
    stores: SqliteStores,
    runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stores = SqliteStores::open(&dir.path().join("herald.db")).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            dir,
            stores,
            runtime,
        }
    }

    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, content).unwrap();
        path
    }

    fn import(&self, file: &Path, channel: Option<&str>) -> Result<Imported, String> {
        let channel = channel.map(|c| ConsentChannel::parse(c).unwrap());
        let mut errors = Vec::new();
        let report = self
            .runtime
            .block_on(import(&self.stores, file, channel.as_ref(), now(), |e| {
                errors.push(e)
            }))
            .map_err(|e| e.to_string())?;
        assert_eq!(report.rejected, errors.len() as u64);
        Ok(Imported {
            rows: report.rows,
            accepted: report.accepted,
            stored: report.stored,
            stopped: report.stopped,
            errors,
        })
    }

    fn events(&self, channel: &str, phone: &str) -> Vec<RecordedConsent> {
        let phone = PhoneNumber::parse(phone, None).unwrap();
        self.runtime
            .block_on(self.stores.consents().events(channel, &phone))
            .unwrap()
    }
}

/// The errors with the directory taken out, so they read `file.csv:3: …`.
fn relative_errors(fixture: &Fixture, report: &Imported) -> Vec<String> {
    let dir = format!("{}/", fixture.dir.path().display());
    report.errors.iter().map(|e| e.replace(&dir, "")).collect()
}

#[test]
fn the_channel_column_is_honoured_and_without_it_the_flag_decides() {
    let f = Fixture::new();
    let file = f.write(
        "optins.csv",
        "phone,kind,occurred_at,scope,channel\n\
         +79161000001,opt_in,2026-10-01T10:00:00Z,marketing,sms\n\
         +79161000002,opt_in,2026-10-01T10:00:00Z,marketing,whatsapp\n\
         +79161000003,opt_in,2026-10-01T10:00:00Z,marketing,\n\
         +79161000004,opt_in,2026-10-01T10:00:00Z,marketing,SMS\n\
         +79161000005,opt_in,2026-10-01T10:00:00Z,marketing,push_v2\n",
    );
    let report = f.import(&file, None).unwrap();
    assert_eq!((report.rows, report.accepted, report.stored), (5, 3, 3));
    let errors = relative_errors(&f, &report);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("optins.csv:4: empty channel"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("optins.csv:5: invalid consent channel \"SMS\""),
        "{errors:?}"
    );
    // The SMS opt-in is on sms only: nothing on whatsapp for that phone.
    assert_eq!(f.events("sms", "+79161000001").len(), 1);
    assert!(f.events("whatsapp", "+79161000001").is_empty());
    assert_eq!(f.events("whatsapp", "+79161000002").len(), 1);
    assert_eq!(f.events("push_v2", "+79161000005").len(), 1);

    // Without the column, every row is on the flag's channel (whatsapp when not given).
    let plain = f.write(
        "plain.csv",
        "phone,kind,occurred_at,scope\n+79161000006,opt_in,2026-10-01T10:00:00Z,marketing\n",
    );
    assert_eq!(f.import(&plain, Some("sms")).unwrap().stored, 1);
    assert_eq!(f.events("sms", "+79161000006").len(), 1);
    assert!(f.events("whatsapp", "+79161000006").is_empty());
    let plain = f.write(
        "plain2.csv",
        "phone,kind,occurred_at,scope\n+79161000007,opt_in,2026-10-01T10:00:00Z,marketing\n",
    );
    assert_eq!(f.import(&plain, None).unwrap().stored, 1);
    assert_eq!(f.events("whatsapp", "+79161000007").len(), 1);

    // With both, a row on another channel than the flag is refused.
    let both = f.write(
        "both.csv",
        "phone,kind,occurred_at,scope,channel\n\
         +79161000008,opt_in,2026-10-01T10:00:00Z,marketing,sms\n\
         +79161000009,opt_in,2026-10-01T10:00:00Z,marketing,whatsapp\n",
    );
    let report = f.import(&both, Some("sms")).unwrap();
    assert_eq!(report.accepted, 1);
    let errors = relative_errors(&f, &report);
    assert!(
        errors[0].starts_with("both.csv:3: channel \"whatsapp\" differs from --channel sms"),
        "{errors:?}"
    );
    assert!(f.events("whatsapp", "+79161000009").is_empty());
}

#[test]
fn an_unknown_column_fails_the_whole_file() {
    let f = Fixture::new();
    for (header, named) in [
        (
            "phone,kind,occurred_at,scope,chanel",
            "unknown column \"chanel\"",
        ),
        ("phone,kind,occurred_at,scope,", "column 5 has no name"),
        (
            "phone,kind,occurred_at,scope,Scope",
            "duplicate column \"scope\"",
        ),
        ("phone,kind,scope", "missing column(s) occurred_at"),
    ] {
        let file = f.write(
            "x.csv",
            format!("{header}\n+79161000001,opt_in,2026-10-01T10:00:00Z,marketing,sms\n"),
        );
        let error = f.import(&file, None).unwrap_err();
        let expected = format!("{}:1: {named}", file.display());
        assert!(error.starts_with(&expected), "{error}\nexpected {expected}");
        assert!(f.events("sms", "+79161000001").is_empty());
        assert!(f.events("whatsapp", "+79161000001").is_empty());
    }
}

#[test]
fn an_opt_in_needs_a_scope_and_an_opt_out_without_one_is_all() {
    let f = Fixture::new();
    let file = f.write(
        "s.csv",
        "phone,kind,occurred_at,scope\n\
         +79161000001,opt_in,2026-10-01T10:00:00Z,\n\
         +79161000002,opt_out,2026-10-01T10:00:00Z,\n",
    );
    let report = f.import(&file, None).unwrap();
    assert_eq!(report.accepted, 1);
    let errors = relative_errors(&f, &report);
    assert!(
        errors[0].starts_with("s.csv:2: opt_in without a scope"),
        "{errors:?}"
    );
    assert!(f.events("whatsapp", "+79161000001").is_empty());
    let out = f.events("whatsapp", "+79161000002");
    assert_eq!(
        (out[0].event.kind, out[0].event.scope),
        (ConsentKind::OptOut, Scope::All)
    );
    // Without a scope column at all, every opt-in is refused.
    let file = f.write(
        "n.csv",
        "phone,kind,occurred_at\n+79161000003,opt_in,2026-10-01T10:00:00Z\n",
    );
    assert_eq!(f.import(&file, None).unwrap().errors.len(), 1);
}

#[test]
fn a_row_dated_more_than_five_minutes_ahead_is_refused() {
    let f = Fixture::new();
    let at = |d: TimeDelta| (now() + d).to_rfc3339();
    let file = f.write(
        "d.csv",
        format!(
            "phone,kind,occurred_at,scope\n\
             +79161000001,opt_in,2099-01-01T00:00:00Z,marketing\n\
             +79161000002,opt_in,{},marketing\n\
             +79161000003,opt_out,{},marketing\n\
             +79161000004,opt_in,{},marketing\n",
            at(TimeDelta::minutes(5) + TimeDelta::seconds(1)),
            at(TimeDelta::minutes(6)),
            at(TimeDelta::minutes(5)),
        ),
    );
    let report = f.import(&file, None).unwrap();
    let errors = relative_errors(&f, &report);
    assert_eq!(report.accepted, 1, "{errors:?}");
    for (i, line) in [2, 3, 4].into_iter().enumerate() {
        assert!(
            errors[i].starts_with(&format!("d.csv:{line}: dated ")),
            "{errors:?}"
        );
        assert!(errors[i].contains("more than 5 minutes after it is recorded"));
    }
    let kept = f.events("whatsapp", "+79161000004");
    assert_eq!(kept[0].recorded_at, now());
}

#[test]
fn quoted_fields_keep_their_commas_and_lines_and_proof_defaults_to_file_and_line() {
    let f = Fixture::new();
    let file = f.write(
        "q.csv",
        "phone,kind,occurred_at,scope,source,proof\n\
         +79161000001,opt_in,2026-10-01T10:00:00Z,marketing,\"Web form, landing page\",\"https://x.test/?a=1,b=2\"\n\
         +79161000002,opt_in,2026-10-01T10:00:00Z,marketing,paper,\"I agree\n\
         to receive offers,\n\
         signed\"\n\
         +79161000003,\"opt_out\",2026-10-02T10:00:00Z,\"all\",,\n",
    );
    let report = f.import(&file, None).unwrap();
    assert_eq!(report.errors, Vec::<String>::new());
    assert_eq!((report.rows, report.stored), (3, 3));
    let one = &f.events("whatsapp", "+79161000001")[0].event;
    assert_eq!(one.source, "Web form, landing page");
    assert_eq!(one.proof.as_deref(), Some("https://x.test/?a=1,b=2"));
    let two = &f.events("whatsapp", "+79161000002")[0].event;
    assert_eq!(
        two.proof.as_deref(),
        Some("I agree\nto receive offers,\nsigned")
    );
    // The third row starts on line 6: the quoted proof above spans three lines.
    let three = &f.events("whatsapp", "+79161000003")[0].event;
    assert_eq!((three.kind, three.scope), (ConsentKind::OptOut, Scope::All));
    assert_eq!(three.source, "import");
    assert_eq!(
        three.proof.as_deref(),
        Some(format!("{}:6", file.display()).as_str())
    );
}

#[test]
fn only_regular_files_are_read() {
    let f = Fixture::new();
    let fifo = f.dir.path().join("fifo.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for path in [fifo.as_path(), Path::new("/dev/zero"), f.dir.path()] {
        let error = f.import(path, None).unwrap_err();
        assert!(error.contains("not a regular file"), "{error}");
    }
    let missing = f.import(&f.dir.path().join("nope.csv"), None).unwrap_err();
    assert!(missing.contains("cannot read"), "{missing}");
}

#[test]
fn a_record_over_64_kib_is_a_row_error_and_the_rows_after_it_are_read() {
    let f = Fixture::new();
    let huge = "p".repeat(MAX_RECORD_BYTES + 1);
    let file = f.write(
        "big.csv",
        format!(
            "phone,kind,occurred_at,scope,proof\n\
             +79161000001,opt_in,2026-10-01T10:00:00Z,marketing,\"{huge}\"\n\
             +79161000002,opt_in,2026-10-01T10:00:00Z,marketing,ok\n"
        ),
    );
    let report = f.import(&file, None).unwrap();
    let errors = relative_errors(&f, &report);
    assert_eq!(
        errors,
        [format!(
            "big.csv:2: record longer than {MAX_RECORD_BYTES} bytes"
        )]
    );
    assert_eq!((report.rows, report.stored), (2, 1));
    assert_eq!(f.events("whatsapp", "+79161000002").len(), 1);
}

#[test]
fn an_unterminated_quote_stops_the_import_at_the_line_it_opened_on() {
    let f = Fixture::new();
    let file = f.write(
        "open.csv",
        "phone,kind,occurred_at,scope,proof\n\
         +79161000001,opt_in,2026-10-01T10:00:00Z,marketing,ok\n\
         +79161000002,opt_in,2026-10-01T10:00:00Z,marketing,\"never closed\n\
         +79161000003,opt_out,2026-10-01T10:00:00Z,all,x\n\
         +79161000004,opt_in,2026-10-01T10:00:00Z,marketing,y\n",
    );
    let report = f.import(&file, None).unwrap();
    let errors = relative_errors(&f, &report);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("open.csv:3: a quoted field opens on this line and never closes"),
        "{errors:?}"
    );
    assert!(errors[0].contains("the rows before it were stored"));
    assert!(report.stopped.is_some());
    assert_eq!((report.rows, report.stored), (2, 1));
    assert_eq!(f.events("whatsapp", "+79161000001").len(), 1);
    for phone in ["+79161000002", "+79161000003", "+79161000004"] {
        assert!(f.events("whatsapp", phone).is_empty(), "{phone}");
    }
}

#[test]
fn an_empty_file_or_a_bad_header_names_the_file() {
    let f = Fixture::new();
    let empty = f.write("empty.csv", "");
    assert!(f.import(&empty, None).unwrap_err().contains("empty file"));
    let open = f.write("h.csv", "phone,\"kind\n");
    let error = f.import(&open, None).unwrap_err();
    assert!(
        error.ends_with(
            "h.csv:1: a quoted field opens on this line and never closes (unterminated quote)"
        ),
        "{error}"
    );
}

mod properties {
    use std::fmt::Write as _;

    use proptest::prelude::*;

    use super::*;

    /// One generated row and whether the import must accept it.
    #[derive(Debug, Clone)]
    enum Row {
        Good {
            kind: &'static str,
            scope: &'static str,
            channel: &'static str,
            proof: String,
        },
        /// An opt-in with an empty scope.
        NoScope,
        /// Dated a year ahead.
        Future,
        /// A phone that does not parse.
        BadPhone,
        /// An empty channel cell.
        NoChannel,
        /// One field too many.
        Wide,
    }

    fn proof() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just(','),
                Just('"'),
                Just('\n'),
                Just(' '),
                Just('a'),
                Just('я'),
                Just('\r'),
            ],
            0..12,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn row() -> impl Strategy<Value = Row> {
        prop_oneof![
            4 => (
                prop_oneof![Just("opt_in"), Just("opt_out")],
                prop_oneof![Just("marketing"), Just("all"), Just("service")],
                prop_oneof![Just("whatsapp"), Just("sms")],
                proof(),
            )
                .prop_map(|(kind, scope, channel, proof)| Row::Good { kind, scope, channel, proof }),
            1 => Just(Row::NoScope),
            1 => Just(Row::Future),
            1 => Just(Row::BadPhone),
            1 => Just(Row::NoChannel),
            1 => Just(Row::Wide),
        ]
    }

    /// A field quoted the way a spreadsheet writes it.
    fn quoted(text: &str) -> String {
        format!("\"{}\"", text.replace('"', "\"\""))
    }

    fn render(rows: &[Row]) -> String {
        let mut csv = String::from("phone,kind,occurred_at,scope,channel,proof\n");
        for (i, row) in rows.iter().enumerate() {
            let phone = format!("+7916{:07}", 1_000_000 + i);
            let at = "2026-10-01T10:00:00Z";
            let line = match row {
                Row::Good {
                    kind,
                    scope,
                    channel,
                    proof,
                } => {
                    format!("{phone},{kind},{at},{scope},{channel},{}", quoted(proof))
                }
                Row::NoScope => format!("{phone},opt_in,{at},,sms,x"),
                Row::Future => format!("{phone},opt_in,2027-11-20T12:00:00Z,marketing,sms,x"),
                Row::BadPhone => format!("+7916{i},opt_out,{at},all,sms,x"),
                Row::NoChannel => format!("{phone},opt_out,{at},all,,x"),
                Row::Wide => format!("{phone},opt_out,{at},all,sms,x,extra"),
            };
            writeln!(csv, "{line}").unwrap();
        }
        csv
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn every_structured_row_is_stored_or_reported(rows in proptest::collection::vec(row(), 0..40)) {
            let f = Fixture::new();
            let file = f.write("rows.csv", render(&rows));
            let report = f.import(&file, None).unwrap();
            let good = rows.iter().filter(|r| matches!(r, Row::Good { .. })).count() as u64;
            prop_assert_eq!(report.rows, rows.len() as u64);
            prop_assert_eq!(report.accepted, good);
            prop_assert_eq!(report.stored, good, "distinct phones: every good row is new");
            prop_assert_eq!(report.errors.len() as u64, rows.len() as u64 - good, "{:?}", report.errors);
            prop_assert!(report.stopped.is_none());
            // Every good row kept its proof byte for byte (trimmed, as every field is).
            for (i, row) in rows.iter().enumerate() {
                if let Row::Good { channel, proof, .. } = row {
                    let events = f.events(channel, &format!("+7916{:07}", 1_000_000 + i));
                    prop_assert_eq!(events.len(), 1);
                    let expected = match proof.trim() {
                        "" => None,
                        kept => Some(kept.to_owned()),
                    };
                    let stored = events[0].event.proof.clone();
                    match expected {
                        Some(kept) => prop_assert_eq!(stored, Some(kept)),
                        // An empty proof gets the row's place in the file.
                        None => prop_assert!(stored.unwrap().starts_with(&file.display().to_string())),
                    }
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_every_row_is_accounted_for(
            body in proptest::collection::vec(
                prop_oneof![
                    Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(b'+'), Just(b'7'),
                    Just(b'1'), Just(b'o'), Just(0xff), any::<u8>(),
                ],
                0..400,
            ),
            header in prop_oneof![
                Just(&b"phone,kind,occurred_at,scope,channel,source,proof\n"[..]),
                Just(&b"phone,kind,occurred_at\n"[..]),
                Just(&b""[..]),
            ],
        ) {
            let f = Fixture::new();
            let mut bytes = header.to_vec();
            bytes.extend_from_slice(&body);
            let file = f.write("bytes.csv", &bytes);
            if let Ok(report) = f.import(&file, None) {
                prop_assert_eq!(report.rows, report.accepted + report.errors.len() as u64);
                prop_assert!(report.stored <= report.accepted);
            }
        }
    }
}
