//! The roles of issue 11 as separate processes on one SQLite file: `herald scheduler` then
//! `herald worker`, `herald serve`, and a worker stopped by a sender block until `herald resume
//! --sender`. (The multi-worker acceptance test with kills lives in its own module.)

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::run::{herald_cmd, status, wait_for};
use crate::support::{stderr, stdout};
use herald_testkit::provider::{FakeProvider, Match, Reply};

const TOKEN: &str = "test-token-0123456789";

/// A transactional campaign `c.yaml` (always open) with `n` recipients, and a config whose
/// `main` sender is `sender` (TOML lines after `[senders.main]`).
fn project(n: usize, sender: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..n {
        writeln!(csv, "r{i},+7 916 {:07},Europe/Moscow", 4_000_000 + i).unwrap();
    }
    fs::write(dir.path().join("people.csv"), csv).unwrap();
    fs::write(
        dir.path().join("c.yaml"),
        "id: roles\npurpose: transactional\naudience: { source: people.csv }\n\
         template: { name: notice, language: en }\n\
         schedule: { at: 2026-01-01T00:00, in: Etc/UTC }\n",
    )
    .unwrap();
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\n{sender}[worker]\nbatch = 4\n",
        dir.path().join("herald.db").display()
    );
    fs::write(dir.path().join("herald.toml"), config).unwrap();
    dir
}

fn webhook(receiver: &FakeProvider, per_second: u32) -> String {
    format!(
        "channel = \"webhook\"\nurl = \"{}\"\nper_second = {per_second}\n",
        receiver.url()
    )
}

fn whatsapp(receiver: &FakeProvider) -> String {
    format!(
        "channel = \"whatsapp\"\nphone_number_id = \"1234567890\"\ntoken_env = \"HERALD_TEST_WA_TOKEN\"\n\
         base_url = \"http://{}\"\nper_second = 100\n",
        receiver.addr()
    )
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    herald_cmd(dir, args)
        .env("HERALD_TEST_WA_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGTERM by pid, then the process's exit code and output.
fn terminate(child: Child) -> std::process::Output {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    child.wait_with_output().unwrap()
}

fn each_once(receiver: &FakeProvider, n: usize) {
    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for recipient in receiver.recipients() {
        *per_recipient.entry(recipient).or_default() += 1;
    }
    assert_eq!(per_recipient.len(), n, "{per_recipient:?}");
    assert!(per_recipient.values().all(|k| *k == 1), "{per_recipient:?}");
}

/// `herald scheduler` expands and exits; a `herald worker` sends; SIGTERM stops it with its
/// requests in flight answered and recorded (exit 0); a second worker sends the rest, and every
/// recipient got exactly one request.
#[test]
fn scheduler_then_worker_sends_each_recipient_once_and_stops_cleanly_on_sigterm() {
    const N: usize = 30;
    let receiver = FakeProvider::start();
    // Slow answers keep requests in flight when SIGTERM arrives.
    receiver.set_delay(Duration::from_millis(200));
    let dir = project(N, &webhook(&receiver, 50));
    let d = dir.path();
    let out = herald_cmd(d, &["scheduler", "c.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("run roles@2026-01-01T00:00 (c.yaml, sender main): 30 deliveries added"),
        "{text}"
    );
    assert!(text.contains("  total    30"), "{text}");
    assert_eq!(receiver.count(), 0, "the scheduler sends nothing");
    // Scheduling again is idempotent.
    let again = herald_cmd(d, &["scheduler", "c.yaml"]).output().unwrap();
    assert!(
        stdout(&again).contains("already expanded"),
        "{}",
        stdout(&again)
    );
    let s = status(d);
    assert_eq!(
        (s["total"].as_u64(), s["queued"].as_u64()),
        (Some(30), Some(30)),
        "{s}"
    );
    assert_eq!(s["sender"], "main", "{s}");

    let worker = spawn(d, &["worker"]);
    wait_for("some requests", || receiver.count() >= 6);
    let out = terminate(worker);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sending for main"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("stopped; the requests in flight were recorded"),
        "{}",
        stdout(&out)
    );
    let s = status(d);
    assert_eq!(s["sending"], 0, "in-flight requests were recorded: {s}");
    assert_eq!(s["unknown"], 0, "{s}");
    assert_eq!(
        s["sent"].as_u64().unwrap() as usize,
        receiver.count(),
        "{s}"
    );
    assert!(
        s["queued"].as_u64().unwrap() > 0,
        "stopped before the end: {s}"
    );

    let worker = spawn(d, &["worker", "--concurrency", "2"]);
    wait_for("every delivery ended", || {
        let s = status(d);
        s["queued"] == 0 && s["sending"] == 0
    });
    let out = terminate(worker);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    each_once(&receiver, N);
    assert_eq!(status(d)["sent"], 30);
}

/// `herald serve` schedules its files and works them in one process until SIGTERM.
#[test]
fn serve_schedules_and_sends_until_sigterm() {
    const N: usize = 12;
    let receiver = FakeProvider::start();
    let dir = project(N, &webhook(&receiver, 100));
    let d = dir.path();
    let serve = spawn(d, &["serve", "c.yaml"]);
    wait_for("every delivery sent", || {
        receiver.count() >= N && status(d)["sent"] == N as u64
    });
    let out = terminate(serve);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("run roles@2026-01-01T00:00 (c.yaml, sender main): 12 deliveries added"),
        "{}",
        stdout(&out)
    );
    each_once(&receiver, N);
    // A worker for a sender the config lacks is refused before anything is scheduled.
    let out = herald_cmd(d, &["serve", "c.yaml", "--sender", "nobody"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--sender nobody: no such sender"),
        "{}",
        stderr(&out)
    );
}

/// A 131048 answered to a worker blocks the sender: the worker keeps running but claims
/// nothing more, `status` shows the block, and `herald resume --sender main` lets it send the
/// rest.
#[test]
fn a_blocked_sender_stops_the_worker_until_resume_sender() {
    const N: usize = 8;
    let receiver = FakeProvider::start();
    receiver.script(Match::Any, Reply::BLOCK);
    let dir = project(N, &whatsapp(&receiver));
    let d = dir.path();
    let out = herald_cmd(d, &["scheduler", "c.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let worker = spawn(d, &["worker"]);
    wait_for("the block", || {
        status(d)["sender_state"]["state"] == "blocked"
    });
    let s = status(d);
    assert_eq!(s["sender_state"]["blocked"]["code"], "131048", "{s}");
    assert_eq!(s["state"], "active", "a block is not a pause: {s}");
    let table = stdout(&herald_cmd(d, &["status"]).output().unwrap());
    assert!(table.contains("sender main: blocked since "), "{table}");
    // Requests of the step that met the block (at most the batch of 4) may have left; then
    // nothing more. The idle worker looks at the queue every second: give it two looks.
    let blocked_at = receiver.count();
    assert!((1..=4).contains(&blocked_at), "{blocked_at} requests");
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(receiver.count(), blocked_at, "no request while blocked");

    receiver.clear_script();
    let out = herald_cmd(d, &["resume", "--sender", "main"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("cleared the provider's block"),
        "{}",
        stdout(&out)
    );
    wait_for("the rest sent", || {
        let s = status(d);
        s["queued"] == 0 && s["sending"] == 0
    });
    let out = terminate(worker);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = status(d);
    let sent = s["sent"].as_u64().unwrap();
    assert!(sent >= (N - blocked_at) as u64, "{s}");
    assert_eq!(s["total"], N as u64, "{s}");
    assert_eq!(s["sender_state"]["state"], "ok", "{s}");
}
