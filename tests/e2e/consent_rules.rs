//! Consent rules end to end (design §1.1): the channel an event was given on, an opt-in's
//! scope, dates ahead of the clock, and a CSV import with quoted fields, against a marketing
//! campaign sent to a webhook receiver.

use std::fs;
use std::path::Path;

use chrono::{SecondsFormat, TimeDelta, Utc};

use crate::run::{herald_cmd, status};
use crate::support::{stderr, stdout};
use herald_testkit::provider::FakeProvider;

/// Audience ids and phones.
const PEOPLE: [(&str, &str); 8] = [
    ("ctrl1", "+79161000001"),
    ("ctrl2", "+79161000002"),
    ("ctrl3", "+79161000003"),
    ("sms_only", "+79161000004"),
    ("no_scope", "+79161000005"),
    ("future", "+79161000006"),
    ("stopped", "+79161000007"),
    ("sms_and_stop", "+79161000008"),
];

fn phone(id: &str) -> &'static str {
    PEOPLE.iter().find(|(i, _)| *i == id).unwrap().1
}

/// A store, an audience of [`PEOPLE`], a `main` webhook sender checking `whatsapp` consent, and
/// two marketing campaigns open at every hour of every day: `c.yaml` on `main`, `sms.yaml` on a
/// `texts` sender that [`add_sms_sender`] configures.
fn project(receiver: &FakeProvider) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,phone,timezone\n");
    for (id, phone) in PEOPLE {
        csv.push_str(&format!("{id},{phone},Etc/UTC\n"));
    }
    fs::write(dir.path().join("people.csv"), csv).unwrap();
    for (file, id, sender) in [
        ("c.yaml", "promo", "main"),
        ("sms.yaml", "promo-sms", "texts"),
    ] {
        let campaign = format!(
            "id: {id}\nsender: {sender}\npurpose: marketing\naudience: {{ source: people.csv }}\n\
             template: {{ name: promo, language: en }}\n\
             schedule: {{ at: 2026-01-01T00:00, in: recipient }}\n\
             send_window: {{ hours: {{ mon-sun: \"00:00-24:00\" }} }}\nspread: 5s\n"
        );
        fs::write(dir.path().join(file), campaign).unwrap();
    }
    let config = format!(
        "[store]\nsqlite = \"{db}\"\n[senders.main]\nchannel = \"webhook\"\nurl = \"{url}\"\n",
        db = dir.path().join("herald.db").display(),
        url = receiver.url(),
    );
    fs::write(dir.path().join("herald.toml"), config).unwrap();
    dir
}

/// Adds the `texts` webhook sender, which checks consent given on `sms`.
fn add_sms_sender(dir: &Path, receiver: &FakeProvider) {
    let path = dir.join("herald.toml");
    let mut config = fs::read_to_string(&path).unwrap();
    config.push_str(&format!(
        "[senders.texts]\nchannel = \"webhook\"\nurl = \"{}\"\nconsent_channel = \"sms\"\n",
        receiver.url()
    ));
    fs::write(path, config).unwrap();
}

fn herald(dir: &Path, args: &[&str]) -> std::process::Output {
    herald_cmd(dir, args).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = herald(dir, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn user_error(dir: &Path, args: &[&str]) -> String {
    let out = herald(dir, args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
    stderr(&out)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn only_valid_whatsapp_opt_ins_receive_a_marketing_campaign() {
    let receiver = FakeProvider::start();
    let dir = project(&receiver);
    let d = dir.path();
    let month_ago = (Utc::now() - TimeDelta::days(30)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let week_ago = (Utc::now() - TimeDelta::days(7)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let rows = [
        format!(
            "{},opt_in,{month_ago},marketing,whatsapp,\"Web form, landing page\",\"https://x.test/?a=1,b=2\"",
            phone("ctrl1")
        ),
        format!(
            "{},\"opt_in\",{month_ago},marketing,whatsapp,paper,\"I agree\nto receive offers,\nsigned\"",
            phone("ctrl2")
        ),
        format!("{},opt_in,{month_ago},all,whatsapp,,", phone("ctrl3")),
        format!(
            "{},opt_in,{month_ago},marketing,sms,sms-form,",
            phone("sms_only")
        ),
        format!("{},opt_in,{month_ago},,whatsapp,form,", phone("no_scope")),
        format!(
            "{},opt_in,2099-01-01T00:00:00Z,marketing,whatsapp,form,",
            phone("future")
        ),
        format!(
            "{},opt_in,{month_ago},marketing,whatsapp,form,",
            phone("stopped")
        ),
        format!(
            "{},opt_in,{month_ago},marketing,sms,form,",
            phone("sms_and_stop")
        ),
        format!(
            "{},opt_out,{week_ago},,sms,keyword:STOP,",
            phone("sms_and_stop")
        ),
    ];
    let file = format!(
        "phone,kind,occurred_at,scope,channel,source,proof\n{}\n",
        rows.join("\n")
    );
    fs::write(d.join("consent.csv"), file).unwrap();
    let out = herald(d, &["consent", "import", "consent.csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // ctrl2's proof spans lines 3-5, so no_scope is on line 8 and future on line 9.
    let errors = stderr(&out);
    assert!(
        errors.contains("consent.csv:8: opt_in without a scope"),
        "{errors}"
    );
    assert!(
        errors.contains("consent.csv:9: dated 2099-01-01T00:00:00Z, more than 5 minutes"),
        "{errors}"
    );
    assert_eq!(errors.lines().count(), 2, "{errors}");
    assert!(
        stdout(&out).contains("9 rows read, 7 events stored, 2 rows rejected"),
        "{}",
        stdout(&out)
    );

    // A real opt-out after the opt-in, from the command line.
    ok(
        d,
        &[
            "consent",
            "opt-out",
            phone("stopped"),
            "--scope",
            "marketing",
        ],
    );
    // Quoted fields came through whole; a row without proof points at its line.
    let shown = ok(d, &["consent", "show", phone("ctrl1")]);
    assert!(
        shown.contains("source=Web form, landing page proof=https://x.test/?a=1,b=2"),
        "{shown}"
    );
    assert!(
        ok(d, &["consent", "show", phone("ctrl2")])
            .contains(r"proof=I agree\nto receive offers,\nsigned"),
    );
    assert!(ok(d, &["consent", "show", phone("ctrl3")]).contains("proof=consent.csv:6"),);
    // The SMS opt-in is consent on sms, not on whatsapp.
    let whatsapp = ok(d, &["consent", "show", phone("sms_only")]);
    assert!(whatsapp.contains("channel whatsapp"), "{whatsapp}");
    assert!(
        whatsapp.contains("marketing campaigns: skip (no_consent)"),
        "{whatsapp}"
    );
    let sms = ok(
        d,
        &["consent", "show", phone("sms_only"), "--channel", "sms"],
    );
    assert!(sms.contains("marketing campaigns: may send"), "{sms}");

    let plan = ok(d, &["plan", "c.yaml"]);
    assert!(
        plan.contains("consent is checked on channel whatsapp (sender main)"),
        "{plan}"
    );

    // The WhatsApp-consent campaign: each control phone exactly once, nobody else.
    ok(d, &["run", "c.yaml"]);
    assert_eq!(sorted(receiver.recipients()), ["ctrl1", "ctrl2", "ctrl3"]);
    let s = status(d);
    assert_eq!(s["consent"]["channel"], "whatsapp", "{s}");
    assert_eq!(s["sent"].as_u64(), Some(3), "{s}");
    assert_eq!(s["skipped"]["no_consent"].as_u64(), Some(4), "{s}");
    assert_eq!(s["skipped"]["opted_out"].as_u64(), Some(1), "{s}");
    assert_eq!(s["total"].as_u64(), Some(8), "{s}");

    // The SMS-consent campaign reaches the SMS opt-in only.
    add_sms_sender(d, &receiver);
    let before = receiver.count();
    ok(d, &["run", "sms.yaml"]);
    assert_eq!(receiver.recipients()[before..], ["sms_only"]);
    let table = ok(d, &["status", "promo-sms@2026-01-01T00:00"]);
    assert!(
        table.contains("consent checked on sms (sender texts)"),
        "{table}"
    );
}

#[test]
fn an_opt_in_needs_a_scope_and_cannot_be_dated_ahead() {
    let receiver = FakeProvider::start();
    let dir = project(&receiver);
    let d = dir.path();
    let p = phone("ctrl1");
    let error = user_error(d, &["consent", "opt-in", p]);
    assert!(error.contains("consent opt-in needs --scope"), "{error}");
    let error = user_error(
        d,
        &[
            "consent",
            "opt-in",
            p,
            "--scope",
            "marketing",
            "--at",
            "2099-01-01T00:00:00Z",
        ],
    );
    assert!(error.contains("more than 5 minutes"), "{error}");
    let error = user_error(
        d,
        &["consent", "opt-in", p, "--scope", "all", "--channel", "SMS"],
    );
    assert!(error.contains("SMS"), "{error}");
    let shown = ok(d, &["consent", "show", p]);
    assert!(shown.contains("audit trail (0 events"), "{shown}");

    // An opt-out without a scope withdraws everything.
    ok(d, &["consent", "opt-out", p]);
    assert!(ok(d, &["consent", "show", p]).contains("all            opted out"));

    // Within the five-minute allowance an opt-in may be dated ahead: it is marked, and does not
    // count until its date.
    let soon = (Utc::now() + TimeDelta::minutes(4)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let q = phone("ctrl2");
    ok(
        d,
        &[
            "consent",
            "opt-in",
            q,
            "--scope",
            "marketing",
            "--at",
            &soon,
        ],
    );
    let shown = ok(d, &["consent", "show", q]);
    assert!(shown.contains("[dated ahead of when recorded ("), "{shown}");
    assert!(
        shown.contains(&format!("counts from {soon}, not yet]")),
        "{shown}"
    );
    assert!(
        shown.contains("marketing campaigns: skip (no_consent)"),
        "{shown}"
    );
}

#[test]
fn a_file_with_a_column_the_import_does_not_know_is_refused_whole() {
    let receiver = FakeProvider::start();
    let dir = project(&receiver);
    let d = dir.path();
    fs::write(
        d.join("typo.csv"),
        format!(
            "phone,kind,occurred_at,scope,chanel\n{},opt_in,2026-10-01T10:00:00Z,marketing,sms\n",
            phone("ctrl1")
        ),
    )
    .unwrap();
    let error = user_error(d, &["consent", "import", "typo.csv"]);
    assert!(
        error.contains("typo.csv:1: unknown column \"chanel\""),
        "{error}"
    );
    assert!(ok(d, &["consent", "show", phone("ctrl1")]).contains("audit trail (0 events"));

    // Without a channel column, --channel decides.
    fs::write(
        d.join("sms.csv"),
        format!(
            "phone,kind,occurred_at,scope\n{},opt_in,2026-10-01T10:00:00Z,marketing\n",
            phone("ctrl1")
        ),
    )
    .unwrap();
    ok(d, &["consent", "import", "sms.csv", "--channel", "sms"]);
    assert!(ok(d, &["consent", "show", phone("ctrl1")]).contains("audit trail (0 events"));
    assert!(
        ok(d, &["consent", "show", phone("ctrl1"), "--channel", "sms"])
            .contains("audit trail (1 events")
    );
}

#[test]
fn an_unterminated_quote_stops_the_import_and_keeps_the_rows_before_it() {
    let receiver = FakeProvider::start();
    let dir = project(&receiver);
    let d = dir.path();
    fs::write(
        d.join("open.csv"),
        format!(
            "phone,kind,occurred_at,scope,proof\n\
             {},opt_in,2026-10-01T10:00:00Z,marketing,ok\n\
             {},opt_in,2026-10-01T10:00:00Z,marketing,\"never closed\n\
             {},opt_in,2026-10-01T10:00:00Z,marketing,x\n",
            phone("ctrl1"),
            phone("ctrl2"),
            phone("ctrl3")
        ),
    )
    .unwrap();
    let out = herald(d, &["consent", "import", "open.csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("open.csv:3: a quoted field opens on this line and never closes"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("stopped early at open.csv:3"),
        "{}",
        stdout(&out)
    );
    assert!(ok(d, &["consent", "show", phone("ctrl1")]).contains("audit trail (1 events"));
    for id in ["ctrl2", "ctrl3"] {
        assert!(ok(d, &["consent", "show", phone(id)]).contains("audit trail (0 events"));
    }
}

/// Runs `herald` with its address space capped at `limit` bytes (prlimit), killed if it has not
/// finished after a generous guard (not a performance limit: a broken build must fail, not hang).
fn herald_capped(dir: &Path, limit: u64, args: &[&str]) -> std::process::Output {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg(format!("--as={limit}"))
        .arg(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .arg("--config")
        .arg(dir.join("herald.toml"))
        .current_dir(dir)
        .env_remove("HERALD_CONFIG")
        .env("XDG_DATA_HOME", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("herald {args:?} did not finish; killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn the_import_reads_only_regular_files_in_bounded_memory() {
    const LIMIT: u64 = 128 << 20;
    let receiver = FakeProvider::start();
    let dir = project(&receiver);
    let d = dir.path();
    // A 256 MiB line (a sparse file: zeros) after the header, then a good row: twice the address
    // space the process may use, so reading it whole would abort. It is one row error.
    let file = d.join("huge.csv");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::File::create(&file).unwrap();
        f.write_all(b"phone,kind,occurred_at,scope\n").unwrap();
        f.seek(SeekFrom::Start(256 << 20)).unwrap();
        writeln!(
            f,
            "\n{},opt_in,2026-10-01T10:00:00Z,marketing",
            phone("ctrl1")
        )
        .unwrap();
    }
    let out = herald_capped(d, LIMIT, &["consent", "import", "huge.csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("huge.csv:2: record longer than 65536 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("2 rows read, 1 events stored, 1 rows rejected"),
        "{}",
        stdout(&out)
    );
    // A FIFO would block the open and a device never ends: both are refused before reading.
    let fifo = d.join("fifo.csv");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for path in ["fifo.csv", "/dev/zero"] {
        let out = herald_capped(d, LIMIT, &["consent", "import", path]);
        assert_eq!(out.status.code(), Some(1), "{path}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{path}: not a regular file")),
            "{}",
            stderr(&out)
        );
    }
}
