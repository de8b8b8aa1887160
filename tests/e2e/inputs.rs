//! Hostile inputs against the real binary (issue 10 items 6, 8, 9, 14): every one ends in exit 1
//! with an error naming the file, never an abort, a kill or a hang.
//!
//! The memory-bound tests run `herald` under `prlimit --as` (a cap on its address space, far
//! above what it needs and far below what the old code took) and a watchdog that kills it if it
//! has not finished after a generous cap. The cap bounds the wait, it is not a performance
//! assertion: these inputs are refused in milliseconds, while before the fixes some grew until
//! the allocator aborted and a FIFO blocked forever.

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{herald, stderr, stdout};

/// The address space `herald` may use: it needs well under 100 MiB for these commands.
const ADDRESS_SPACE: u64 = 512 * 1024 * 1024;

/// The address space of `plan` for the giant-line tests: less, so that the line that proves
/// the bound (larger than this) is quicker to read through.
const PLAN_ADDRESS_SPACE: u64 = 256 * 1024 * 1024;

/// How long the watchdog lets `herald` run before killing it.
const WATCHDOG: Duration = Duration::from_secs(300);

/// Runs `herald args` in `dir` under the address-space limit and the watchdog.
fn herald_bounded(dir: &Path, args: &[&str]) -> Output {
    herald_within(ADDRESS_SPACE, dir, args)
}

/// Runs `herald args` in `dir` with at most `address_space` bytes, under the watchdog.
fn herald_within(address_space: u64, dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("prlimit")
        .arg(format!("--as={address_space}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .current_dir(dir)
        .env_remove("HERALD_CONFIG")
        .env("XDG_DATA_HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit runs herald");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("herald {args:?} still running after {WATCHDOG:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Exit 1 (not a signal, not 2) and stderr containing each of `expected`.
fn assert_refused(out: &Output, expected: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{:?}: {err}", out.status);
    for text in expected {
        assert!(err.contains(text), "expected {text:?} in: {err}");
    }
}

const TRANSACTIONAL: &str = "id: notice\npurpose: transactional\naudience: { source: AUDIENCE }\n\
     template: { name: notice, language: en }\nschedule: { at: 2026-01-01T00:00, in: Etc/UTC }\n";

fn campaign(dir: &Path, audience: &str) {
    fs::write(
        dir.join("c.yaml"),
        TRANSACTIONAL.replace("AUDIENCE", audience),
    )
    .unwrap();
}

/// A 1,002-row audience with a stray quote on line 3.
fn stray_quote_audience(dir: &Path) {
    let mut csv = String::from("id,phone,name\nr0,+79160000000,Anna\nr1,+79160000001,\"Boris\n");
    for i in 2..1_002 {
        writeln!(csv, "r{i},+7916{i:07},Name").unwrap();
    }
    fs::write(dir.join("people.csv"), csv).unwrap();
}

/// Issue 10 item 6: `plan` reported an audience of 2 and exit 0.
#[test]
fn a_stray_quote_stops_plan_at_the_line_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    stray_quote_audience(dir.path());
    campaign(dir.path(), "people.csv");
    let out = herald(
        dir.path(),
        &["plan", "c.yaml", "--now", "2026-01-01T00:00:00Z"],
    );
    assert_refused(
        &out,
        &["people.csv:3: a quote opened on this line is never closed"],
    );
    assert!(!stdout(&out).contains("audience 2"), "{}", stdout(&out));
}

/// Issue 10 item 6, `run`: expansion stops with the error (the rule for unreadable files), so
/// nothing is sent to a short audience.
#[test]
fn a_stray_quote_stops_run_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    stray_quote_audience(dir.path());
    campaign(dir.path(), "people.csv");
    let outbox = dir.path().join("out.jsonl");
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"outbox\"\npath = \"{}\"\n",
        dir.path().join("herald.db").display(),
        outbox.display()
    );
    fs::write(dir.path().join("herald.toml"), config).unwrap();
    let out = herald_bounded(
        dir.path(),
        &["--config", "herald.toml", "run", "c.yaml", "--until-idle"],
    );
    assert_refused(
        &out,
        &["people.csv:3: a quote opened on this line is never closed"],
    );
    let sent = fs::read_to_string(&outbox).unwrap_or_default();
    assert_eq!(sent.lines().count(), 0, "{sent}");
}

/// Issue 10 item 9: `herald validate /dev/zero` grew without end; a FIFO blocked forever.
#[test]
fn validate_refuses_devices_fifos_and_directories_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    fs::create_dir(dir.path().join("dir.yaml")).unwrap();
    let out = herald_bounded(dir.path(), &["validate", "/dev/zero"]);
    assert_refused(
        &out,
        &["/dev/zero:1:1: not a regular file (a character device)"],
    );
    let out = herald_bounded(dir.path(), &["validate", "pipe.yaml"]);
    assert_refused(&out, &["pipe.yaml:1:1: not a regular file (a named pipe)"]);
    let out = herald_bounded(dir.path(), &["validate", "dir.yaml"]);
    assert_refused(&out, &["dir.yaml:1:1: not a regular file (a directory)"]);
    // `plan` and `--config` read through the same door.
    let out = herald_bounded(dir.path(), &["plan", "pipe.yaml"]);
    assert_refused(&out, &["pipe.yaml:1:1: not a regular file (a named pipe)"]);
    campaign(dir.path(), "people.csv");
    fs::write(dir.path().join("people.csv"), "phone\n+79161234567\n").unwrap();
    let out = herald_bounded(dir.path(), &["--config", "/dev/zero", "validate", "c.yaml"]);
    assert_refused(&out, &["config /dev/zero: not a regular file"]);
    let out = herald_bounded(dir.path(), &["--config", "pipe.yaml", "validate", "c.yaml"]);
    assert_refused(
        &out,
        &["config pipe.yaml: not a regular file (a named pipe)"],
    );
}

/// Issue 10 item 9: a campaign file over 1 MiB is refused, however it is made.
#[test]
fn a_campaign_over_a_mebibyte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let padding = format!("# {}\n", "x".repeat(1_000)).repeat(1_100);
    fs::write(dir.path().join("big.yaml"), padding).unwrap();
    let out = herald_bounded(dir.path(), &["validate", "big.yaml"]);
    assert_refused(
        &out,
        &["big.yaml:1:1: larger than the limit of 1048576 bytes"],
    );
}

/// Issue 10 item 8: 0.5 KB of nested aliases reached 14 GB in 20 s.
#[test]
fn an_alias_bomb_fails_fast_within_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut bomb = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (previous, name) in ('a'..='h').zip('b'..='i') {
        let items = vec![format!("*{previous}"); 9].join(", ");
        writeln!(bomb, "{name}: &{name} [{items}]").unwrap();
    }
    assert!(bomb.len() < 600);
    fs::write(dir.path().join("bomb.yaml"), bomb).unwrap();
    let out = herald_bounded(dir.path(), &["validate", "bomb.yaml"]);
    assert_refused(
        &out,
        &["bomb.yaml:", "the YAML builds more than 1000000 nodes"],
    );
}

/// Issue 10 item 8: deep nesting overflowed the stack (an abort).
#[test]
fn deep_nesting_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let deep = "- ".repeat(200_000) + "x\n";
    fs::write(dir.path().join("deep.yaml"), deep).unwrap();
    let out = herald_bounded(dir.path(), &["validate", "deep.yaml"]);
    assert_refused(&out, &["deep.yaml:1:", "nested more than 128 levels"]);
}

/// A sparse file of `len` NUL bytes: one giant line, without using the disk.
fn giant_line(path: &Path, len: u64) {
    fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// Issue 10 item 9: an audience record is capped at 64 KiB, whatever the file holds: one giant
/// line (here larger than the address space herald may use) is refused without buffering it.
#[test]
fn an_audience_of_one_giant_line_is_refused_within_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    giant_line(
        &dir.path().join("people.csv"),
        PLAN_ADDRESS_SPACE + PLAN_ADDRESS_SPACE / 2,
    );
    campaign(dir.path(), "people.csv");
    let out = herald_within(PLAN_ADDRESS_SPACE, dir.path(), &["plan", "c.yaml"]);
    assert_refused(
        &out,
        &["people.csv:1: the record is longer than the limit of 65536 bytes"],
    );
}

/// The JSONL reader: one giant line is that row's error (a skipped recipient), not a buffer.
#[test]
fn a_giant_jsonl_line_is_one_row_error_within_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.jsonl");
    giant_line(&path, PLAN_ADDRESS_SPACE + PLAN_ADDRESS_SPACE / 2);
    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, b"\n{\"phone\":\"+79161234567\"}\n").unwrap();
    campaign(dir.path(), "people.jsonl");
    let out = herald_within(
        PLAN_ADDRESS_SPACE,
        dir.path(),
        &[
            "plan",
            "c.yaml",
            "--format",
            "json",
            "--now",
            "2026-01-01T00:00:00Z",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("people.jsonl:1: the line is longer than the limit of 65536 bytes"),
        "{}",
        stderr(&out)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["summary"]["audience"], 2);
    assert_eq!(plan["summary"]["send"], 1);
}

/// Issue 10 item 14: `validate` rejects what fails or widens at send time; `plan` says when a
/// campaign without a window is always open.
#[test]
fn validate_rejects_send_time_failures_and_plan_names_an_always_open_window() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("people.csv"), "phone\n+79161234567\n").unwrap();
    let marketing = TRANSACTIONAL
        .replace("transactional", "marketing")
        .replace("AUDIENCE", "people.csv");
    fs::write(dir.path().join("m.yaml"), &marketing).unwrap();
    let out = herald(dir.path(), &["validate", "m.yaml"]);
    assert_refused(&out, &["m.yaml:1:1: the campaign is missing `send_window`"]);
    let empty_hours = format!("{marketing}send_window: {{ hours: {{}} }}\n");
    fs::write(dir.path().join("h.yaml"), empty_hours).unwrap();
    let out = herald(dir.path(), &["validate", "h.yaml"]);
    assert_refused(&out, &["h.yaml:6:23: send_window.hours is empty"]);
    let header = format!("  header: {{ text: \"{}\" }}\n", "h".repeat(61));
    let long = format!("{marketing}send_window: {{ hours: {{ daily: \"09:00-20:00\" }} }}\n")
        .replace(
            "template: { name: notice, language: en }\n",
            &format!("template:\n  name: notice\n  language: en\n{header}"),
        );
    fs::write(dir.path().join("l.yaml"), long).unwrap();
    let out = herald(dir.path(), &["validate", "l.yaml"]);
    assert_refused(
        &out,
        &["l.yaml:7:19: the header text is 61 characters; WhatsApp allows at most 60"],
    );

    campaign(dir.path(), "people.csv");
    let out = herald(
        dir.path(),
        &["plan", "c.yaml", "--now", "2026-01-01T00:00:00Z"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("send window: none; a transactional or service campaign"),
        "{}",
        stdout(&out)
    );
    let out = herald(
        dir.path(),
        &[
            "plan",
            "c.yaml",
            "--format",
            "json",
            "--now",
            "2026-01-01T00:00:00Z",
        ],
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["summary"]["send_window"], "always_open");
}
