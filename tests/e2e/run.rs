//! `herald run` against a real webhook receiver: crashes, rate, bad input, resume.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{stderr, stdout};
use herald_testkit::provider::{FakeProvider, Match, Reply};

/// A temp project: a transactional campaign (always open), an audience of `n`, a config whose
/// `main` sender is a webhook at `url`, and a store in the temp dir. Its leases are short (3 s,
/// three times the 1 s request timeout) so a killed run's claims are recovered within the test.
fn project(n: usize, url: &str, per_second: u32, delivery: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..n {
        writeln!(csv, "r{i},+7 916 {:07},Europe/Moscow", 1_000_000 + i).unwrap();
    }
    fs::write(dir.path().join("people.csv"), csv).unwrap();
    let campaign = format!(
        "id: notice\npurpose: transactional\naudience: {{ source: people.csv }}\n\
         template: {{ name: notice, language: en }}\n\
         schedule: {{ at: 2026-01-01T00:00, in: Etc/UTC }}\ndelivery: {delivery}\n"
    );
    fs::write(dir.path().join("c.yaml"), campaign).unwrap();
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"webhook\"\nurl = \"{url}\"\nper_second = {per_second}\ntimeout_seconds = 1\n[worker]\nbatch = 8\nlease_seconds = 3\n",
        dir.path().join("herald.db").display()
    );
    fs::write(dir.path().join("herald.toml"), config).unwrap();
    dir
}

/// A `herald.toml` with the store in `dir` and a `main` webhook sender posting to `url`.
pub(crate) fn write_webhook_config(dir: &Path, url: &str) {
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"webhook\"\nurl = \"{url}\"\n",
        dir.join("herald.db").display()
    );
    fs::write(dir.join("herald.toml"), config).unwrap();
}

pub(crate) fn herald_cmd(dir: &Path, args: &[&str]) -> Command {
    herald_testkit::process::isolated(Path::new(env!("CARGO_BIN_EXE_herald")), dir, args)
}

fn spawn_run(dir: &Path) -> Child {
    herald_cmd(dir, &["run", "c.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub(crate) fn wait_for(what: &str, condition: impl FnMut() -> bool) {
    // Not a performance limit: a generous guard so a broken build fails instead of hanging.
    herald_testkit::poll::wait_for(what, Duration::from_secs(120), condition);
}

/// The newest run as `herald status RUN --format json` shows it: asked for by id, so it has
/// its claims in flight by owner, send rate and ETA (the list leaves them null).
pub(crate) fn status(dir: &Path) -> Value {
    let list = status_json(dir, &["status", "--format", "json"]);
    let run = list[0]["run"].as_str().expect("a run").to_owned();
    status_json(dir, &["status", &run, "--format", "json"])[0].clone()
}

fn status_json(dir: &Path, args: &[&str]) -> Value {
    let out = herald_cmd(dir, args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn sigkill_mid_request_never_sends_twice_and_loses_nobody() {
    const N: usize = 60;
    let receiver = FakeProvider::start();
    let dir = project(N, &receiver.url(), 200, "at_most_once");
    // Hold one request open at three points of the run; kill herald while each is in flight.
    let holds = [5usize, 23, 41];
    receiver.hold(holds);
    let mut in_flight_at_kills = 0;
    // Each run is another claim owner. A killed run's claims stay `sending` until their lease
    // ends (the next run may still see them), so each owner's claims are counted once, right
    // after its kill: later they can only have been recovered.
    let mut counted = std::collections::BTreeSet::new();
    for (kill, &ordinal) in holds.iter().enumerate() {
        let mut child = spawn_run(dir.path());
        wait_for("the held request", || {
            receiver.held() == kill + 1 && receiver.count() > ordinal
        });
        std::thread::sleep(Duration::from_millis(30)); // let other requests be in flight too
        child.kill().unwrap(); // SIGKILL, by pid
        child.wait().unwrap();
        // What the ledger says the killed run held: claimed, request made or about to be.
        let s = status(dir.path());
        for (owner, n) in s["in_flight"].as_object().unwrap() {
            if counted.insert(owner.clone()) {
                in_flight_at_kills += n.as_u64().unwrap();
            }
        }
    }
    let last = herald_cmd(dir.path(), &["run", "c.yaml"]).output().unwrap();
    assert_eq!(last.status.code(), Some(0), "{}", stderr(&last));

    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for recipient in receiver.recipients() {
        *per_recipient.entry(recipient).or_default() += 1;
    }
    for (recipient, n) in &per_recipient {
        assert_eq!(*n, 1, "{recipient} received {n} requests");
    }
    let s = status(dir.path());
    assert_eq!(s["total"], N as u64);
    assert_eq!(s["queued"], 0);
    assert_eq!(s["sending"], 0);
    let sent = s["sent"].as_u64().unwrap();
    let unknown = s["unknown"].as_u64().unwrap();
    assert_eq!(sent + unknown, N as u64, "{s}");
    // Exactly the deliveries in flight at the kills end unknown; at least the held ones were.
    assert_eq!(unknown, in_flight_at_kills, "{s}");
    assert!(unknown >= holds.len() as u64, "{s}");
    // Every sent recipient reached the receiver; unknown ones did or were in flight.
    assert!(per_recipient.len() as u64 >= sent, "{s}");
}

#[test]
fn the_rate_holds_in_every_one_second_window() {
    let receiver = FakeProvider::start();
    let dir = project(70, &receiver.url(), 20, "at_most_once");
    let out = herald_cmd(dir.path(), &["run", "c.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let times = receiver.receipt_times();
    assert_eq!(times.len(), 70);
    let mut worst = 0;
    for (i, start) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        worst = worst.max(in_window);
    }
    assert!(
        worst <= 21,
        "{worst} requests within one second at per_second 20"
    );
    assert!(worst >= 15, "suspiciously slow: {worst} per second");
}

/// Issue 11: the one-run-per-file lock gave way to leases. Two `herald run` of two campaigns on
/// one store at once both finish, and every recipient of each gets exactly one request.
#[test]
fn two_runs_of_two_campaigns_share_one_store() {
    let receiver = FakeProvider::start();
    receiver.set_delay(Duration::from_millis(20));
    let dir = project(20, &receiver.url(), 200, "at_most_once");
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..20 {
        writeln!(csv, "o{i},+7 916 {:07},Europe/Moscow", 2_000_000 + i).unwrap();
    }
    fs::write(dir.path().join("others.csv"), csv).unwrap();
    let other = fs::read_to_string(dir.path().join("c.yaml"))
        .unwrap()
        .replace("id: notice", "id: other")
        .replace("people.csv", "others.csv");
    fs::write(dir.path().join("d.yaml"), other).unwrap();
    let spawn = |file: &str| {
        herald_cmd(dir.path(), &["run", file])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn("c.yaml"), spawn("d.yaml"));
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let mut recipients = receiver.recipients();
    recipients.sort();
    let before = recipients.len();
    recipients.dedup();
    assert_eq!((before, recipients.len()), (40, 40), "{recipients:?}");
    let out = herald_cmd(dir.path(), &["status", "--format", "json"])
        .output()
        .unwrap();
    let runs: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in runs {
        assert_eq!(run["sent"], 20, "{run}");
        assert_eq!(run["sender"], "main", "{run}");
        // The list does not read claims; the run asked for by id does.
        assert_eq!(run["in_flight"], Value::Null, "{run}");
        let id = run["run"].as_str().unwrap();
        let one = status_json(dir.path(), &["status", id, "--format", "json"]);
        assert_eq!(one[0]["in_flight"], serde_json::json!({}), "{one}");
    }
}

#[test]
fn an_unreachable_receiver_loses_nothing() {
    // A port nobody listens on: every request fails before it is written (retryable), so the
    // run keeps its deliveries queued and ends cleanly with --until-idle.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = project(
        5,
        &format!("http://127.0.0.1:{port}/hook"),
        50,
        "at_most_once",
    );
    let out = herald_cmd(dir.path(), &["run", "c.yaml", "--until-idle"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = status(dir.path());
    assert_eq!(s["total"], 5);
    assert_eq!(s["queued"], 5, "nothing accepted, nothing lost: {s}");
    assert_eq!(s["sent"], 0);
}

#[test]
fn a_malformed_campaign_and_a_missing_sender_are_user_errors() {
    let receiver = FakeProvider::start();
    let dir = project(3, &receiver.url(), 50, "at_most_once");
    fs::write(dir.path().join("bad.yaml"), "id: x\npurpose: sometimes\n").unwrap();
    let out = herald_cmd(dir.path(), &["run", "bad.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad.yaml:2:10: invalid purpose"),
        "{}",
        stderr(&out)
    );
    let text = fs::read_to_string(dir.path().join("c.yaml"))
        .unwrap()
        .replace("id: notice", "id: notice\nsender: nobody");
    fs::write(dir.path().join("c2.yaml"), text).unwrap();
    let out = herald_cmd(dir.path(), &["run", "c2.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("c2.yaml:2:9: sender `nobody` is not configured in "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ctrl_c_lets_in_flight_requests_finish_and_a_second_run_resumes() {
    let receiver = FakeProvider::start();
    receiver.set_delay(Duration::from_millis(150));
    let dir = project(30, &receiver.url(), 50, "at_most_once");
    let mut child = spawn_run(dir.path());
    wait_for("a few requests", || receiver.count() >= 5);
    let sigint = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sigint.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "a graceful stop is not an error");
    let s = status(dir.path());
    assert_eq!(
        s["sending"], 0,
        "in-flight requests finished and were recorded: {s}"
    );
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
    let again = herald_cmd(dir.path(), &["run", "c.yaml"]).output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let mut recipients = receiver.recipients();
    recipients.sort();
    let before = recipients.len();
    recipients.dedup();
    assert_eq!(
        (before, recipients.len()),
        (30, 30),
        "each recipient exactly once across both runs"
    );
}

#[test]
fn open_windows_send_now_and_closed_ones_wait_for_their_opening() {
    use chrono::{DateTime, NaiveTime, TimeDelta, Timelike, Utc};
    let receiver = FakeProvider::start();
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let start = now.hour().saturating_sub(1);
    let end = (now.hour() + 2).min(24);
    let hours = format!("{start:02}:00-{end:02}:00");
    // UTC is inside the window now; UTC-6 is six hours away from it, so closed.
    fs::write(
        dir.path().join("people.csv"),
        "id,phone,timezone
open,+7 916 100 00 01,Etc/UTC
closed,+7 916 100 00 02,Etc/GMT+6
",
    )
    .unwrap();
    let campaign = format!(
        "id: windows\npurpose: transactional\naudience: {{ source: people.csv }}\n\
         template: {{ name: notice, language: en }}\nschedule: {{ at: 2026-01-01T00:00, in: recipient }}\n\
         send_window: {{ hours: {{ daily: \"{hours}\" }} }}\nspread: 1m\n"
    );
    fs::write(dir.path().join("c.yaml"), campaign).unwrap();
    write_webhook_config(dir.path(), &receiver.url());
    let out = herald_cmd(dir.path(), &["run", "c.yaml", "--until-idle"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(receiver.recipients(), ["open"]);
    let s = status(dir.path());
    assert_eq!(
        (s["sent"].as_u64(), s["queued"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    // The closed recipient's next opening: `start`:00 on their (UTC-6) wall clock.
    let local_now = now - TimeDelta::hours(6);
    let opening_time = NaiveTime::from_hms_opt(start, 0, 0).unwrap();
    let mut opening_local = local_now.date_naive().and_time(opening_time);
    if opening_local <= local_now.naive_utc() {
        opening_local += TimeDelta::days(1);
    }
    let opening = (opening_local + TimeDelta::hours(6)).and_utc();
    let wave: DateTime<Utc> = s["next_wave"]["at"].as_str().unwrap().parse().unwrap();
    assert!(
        wave >= opening && wave <= opening + TimeDelta::seconds(60),
        "next wave {wave}, opening {opening}"
    );
}

#[test]
fn a_whatsapp_sender_posts_template_messages_to_the_cloud_api() {
    let receiver = FakeProvider::start();
    let dir = project(4, "http://unused.invalid/hook", 50, "at_most_once");
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"whatsapp\"\nphone_number_id = \"1234567890\"\n\
         token_env = \"HERALD_TEST_WA_TOKEN\"\nbase_url = \"http://{}\"\napi_version = \"v21.0\"\n",
        dir.path().join("herald.db").display(),
        receiver.addr()
    );
    fs::write(dir.path().join("herald.toml"), config).unwrap();
    let missing = herald_cmd(dir.path(), &["run", "c.yaml"])
        .env_remove("HERALD_TEST_WA_TOKEN")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("HERALD_TEST_WA_TOKEN, which is not set"),
        "{}",
        stderr(&missing)
    );
    let out = herald_cmd(dir.path(), &["run", "c.yaml"])
        .env("HERALD_TEST_WA_TOKEN", "test-token-0123456789")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut to = receiver.recipients();
    to.sort();
    assert_eq!(
        to,
        ["79161000000", "79161000001", "79161000002", "79161000003"]
    );
    assert_eq!(status(dir.path())["sent"], 4);
}

/// A project whose `main` sender is WhatsApp, pointed at the receiver as a fake Cloud API.
fn whatsapp_project(n: usize, receiver: &FakeProvider, delivery: &str) -> tempfile::TempDir {
    let dir = project(n, "http://unused.invalid/hook", 100, delivery);
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"whatsapp\"\nphone_number_id = \"1234567890\"\n\
         token_env = \"HERALD_TEST_WA_TOKEN\"\nbase_url = \"http://{}\"\nper_second = 100\n[worker]\nbatch = 8\n",
        dir.path().join("herald.db").display(),
        receiver.addr()
    );
    fs::write(dir.path().join("herald.toml"), config).unwrap();
    dir
}

fn run_whatsapp(dir: &Path) -> std::process::Output {
    herald_cmd(dir, &["run", "c.yaml"])
        .env("HERALD_TEST_WA_TOKEN", "test-token-0123456789")
        .output()
        .unwrap()
}

#[test]
fn throttling_a_third_of_requests_still_sends_everyone_exactly_once() {
    let receiver = FakeProvider::start();
    receiver.script(
        Match::EveryNth {
            every: 3,
            offset: 2,
        },
        Reply::Throttle {
            retry_after_secs: 1,
        },
    );
    let dir = whatsapp_project(12, &receiver, "at_most_once");
    let out = run_whatsapp(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = status(dir.path());
    assert_eq!(
        (s["sent"].as_u64(), s["queued"].as_u64()),
        (Some(12), Some(0)),
        "the run ended only when all were sent: {s}"
    );
    // Throttled requests were not accepted, so each recipient has exactly one accepted request:
    // its requests minus the throttled ones.
    let requests = receiver.requests();
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    for request in &requests {
        if request.reply == Reply::Accept {
            *accepted.entry(request.to.clone()).or_default() += 1;
        }
    }
    assert_eq!(accepted.len(), 12);
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
    assert!(
        requests.len() > 12,
        "some requests were throttled and retried"
    );
}

#[test]
fn a_500_is_unknown_under_at_most_once_and_retried_under_at_least_once() {
    for (delivery, sent, unknown, requests) in
        [("at_most_once", 0, 3, 3), ("at_least_once", 3, 0, 6)]
    {
        let receiver = FakeProvider::start();
        receiver.script(Match::FirstPerRecipient, Reply::ServerError);
        let dir = whatsapp_project(3, &receiver, delivery);
        let out = run_whatsapp(dir.path());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let s = status(dir.path());
        assert_eq!(
            (s["sent"].as_u64(), s["unknown"].as_u64()),
            (Some(sent), Some(unknown)),
            "{delivery}: {s}"
        );
        assert_eq!(receiver.count(), requests, "{delivery}");
    }
}
