//! Recurring campaigns through the binary: `herald scheduler --campaigns DIR` picks up a
//! campaign dropped in the directory and reports a broken one (log and `herald status`, with
//! its file:line:col) while it runs; a cron campaign is registered in the store and shown by
//! `status`; `herald run --until-idle` of a cron campaign with no fire due says when the next
//! one is. (Fires themselves need time to pass: they are tested in-process with a manual
//! clock, in crates/herald-app/tests/recurring*.rs; the binary has no time override.)

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::run::{herald_cmd, wait_for};
use crate::support::{stderr, stdout};

/// An audience and a config whose `main` sender is an outbox, with the store in `dir`.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..3 {
        writeln!(csv, "r{i},+7 916 {:07},Europe/Moscow", 7_000_000 + i).unwrap();
    }
    fs::create_dir(dir.path().join("campaigns")).unwrap();
    fs::write(dir.path().join("campaigns/people.csv"), csv).unwrap();
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"outbox\"\npath = \"{}\"\n",
        dir.path().join("herald.db").display(),
        dir.path().join("outbox.jsonl").display()
    );
    fs::write(dir.path().join("herald.toml"), config).unwrap();
    dir
}

fn campaign(id: &str, schedule: &str) -> String {
    format!(
        "id: {id}\npurpose: transactional\naudience: {{ source: people.csv }}\n\
         template: {{ name: notice, language: en }}\nschedule: {schedule}\n"
    )
}

fn status_table(dir: &Path) -> String {
    let out = herald_cmd(dir, &["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn a_watched_directory_takes_new_files_and_reports_broken_ones_until_sigterm() {
    let dir = project();
    let d = dir.path();
    fs::write(
        d.join("campaigns/weekly.yaml"),
        campaign(
            "weekly",
            "{ cron: \"0 10 * * MON\", timezone: Europe/Moscow, expires_after: 2d }",
        ),
    )
    .unwrap();
    let scheduler = herald_cmd(d, &["scheduler", "--campaigns", "campaigns"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the cron campaign registered", || {
        status_table(d).contains("campaign weekly (campaigns/weekly.yaml, version ")
    });
    // A one-off campaign dropped in while it runs is scheduled.
    fs::write(
        d.join("campaigns/once.yaml"),
        campaign("once", "{ at: 2026-01-01T00:00, in: Etc/UTC }"),
    )
    .unwrap();
    wait_for("the one-off run", || {
        status_table(d).contains("once@2026-01-01T00:00")
    });
    // A broken file is reported with its position, and shown by `status`.
    fs::write(
        d.join("campaigns/broken.yaml"),
        campaign("broken", "{ at: 2026-01-01T00:00, in: Etc/UTC }")
            .replace("purpose: transactional", "purpose: sometimes"),
    )
    .unwrap();
    wait_for("the broken file in status", || {
        let table = status_table(d);
        table.contains("campaign file campaigns/broken.yaml not loaded")
            && table.contains("campaigns/broken.yaml:2:10:")
    });
    let sent = Command::new("kill")
        .args(["-TERM", &scheduler.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = scheduler.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "run once@2026-01-01T00:00 (campaigns/once.yaml, sender main): 3 deliveries added"
        ),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("campaigns/broken.yaml:2:10:"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).ends_with("stopped\n"), "{}", stdout(&out));
}

#[test]
fn until_idle_of_a_cron_campaign_with_no_fire_due_names_the_next_fire() {
    let dir = project();
    let d = dir.path();
    fs::write(
        d.join("campaigns/yearly.yaml"),
        campaign("yearly", "{ cron: \"0 0 1 1 *\", timezone: Etc/UTC }"),
    )
    .unwrap();
    let out = herald_cmd(d, &["run", "campaigns/yearly.yaml", "--until-idle"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("no fire is due now") && text.contains("the next fire is 20"),
        "{text}"
    );
    let sent = fs::read_to_string(d.join("outbox.jsonl")).unwrap_or_default();
    assert_eq!(sent, "", "nothing is sent");
    assert!(
        status_table(d).contains("campaign yearly (campaigns/yearly.yaml, version "),
        "{}",
        status_table(d)
    );
}

#[test]
fn scheduler_needs_files_or_a_directory_and_refuses_a_missing_directory() {
    let dir = project();
    let d = dir.path();
    let out = herald_cmd(d, &["scheduler"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = herald_cmd(d, &["scheduler", "--campaigns", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--campaigns nowhere:"),
        "{}",
        stderr(&out)
    );
}

/// `herald serve --campaigns DIR`: a one-off campaign dropped in the directory while it serves
/// is scheduled and sent by its worker, each recipient once; SIGTERM stops both.
#[test]
fn serve_watches_a_directory_and_sends_what_is_dropped_in() {
    let dir = project();
    let d = dir.path();
    let serve = herald_cmd(d, &["serve", "--campaigns", "campaigns"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    fs::write(
        d.join("campaigns/once.yaml"),
        campaign("once", "{ at: 2026-01-01T00:00, in: Etc/UTC }"),
    )
    .unwrap();
    let sent = || {
        fs::read_to_string(d.join("outbox.jsonl"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    wait_for("the dropped-in campaign sent", || sent() == 3);
    let killed = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = serve.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(sent(), 3, "each recipient once");
    assert!(
        status_table(d).contains("once@2026-01-01T00:00"),
        "{}",
        status_table(d)
    );
}
