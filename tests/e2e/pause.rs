//! Run control by an operator (issue 13): `herald pause RUN` stops a run until `herald resume
//! RUN`, across restarts of `herald run` and `herald serve` (neither resumes it any more);
//! `herald cancel RUN` ends every queued delivery `skipped(cancelled)`, and the counts still add
//! up. End to end: the real binary, one SQLite file, the fake provider as a webhook receiver.
//!
//! "Nothing is claimed while paused" is shown without a wall-clock wait: a second, active
//! campaign of the same sender is the witness. Once `serve` has sent all of it, its worker has
//! stepped through the queue with the paused run's deliveries due all along, and sent none.

use std::fmt::Write as _;
use std::time::Duration;

use herald_testkit::process::Project;
use herald_testkit::provider::FakeProvider;
use serde_json::Value;

/// A campaign `NAME.yaml` (id `NAME`, always open, due since 2026-01-01) to `n` recipients
/// `NAME0…`, with phones from `first`.
fn campaign(project: &Project, name: &str, n: usize, first: usize) {
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..n {
        writeln!(csv, "{name}{i},+7 916 {:07},Europe/Moscow", first + i).unwrap();
    }
    project.write(&format!("{name}.csv"), &csv);
    project.write(
        &format!("{name}.yaml"),
        &format!(
            "id: {name}\npurpose: transactional\naudience: {{ source: {name}.csv }}\n\
             template: {{ name: notice, language: en }}\n\
             schedule: {{ at: 2026-01-01T00:00, in: Etc/UTC }}\n"
        ),
    );
}

fn project(receiver: &FakeProvider) -> Project {
    let project = Project::new(env!("CARGO_BIN_EXE_herald"));
    project.write_config(&format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"webhook\"\nurl = \"{}\"\n\
         per_second = 200\n[worker]\nbatch = 4\n",
        project.db().display(),
        receiver.url()
    ));
    project
}

/// The status JSON of `run`.
fn status(project: &Project, run: &str) -> Value {
    let text = project.ok(&["status", run, "--format", "json"]);
    let runs: Value = serde_json::from_str(&text).unwrap();
    runs[0].clone()
}

/// Requests the provider got for recipients of campaign `name`.
fn sent_to(receiver: &FakeProvider, name: &str) -> usize {
    receiver
        .recipients()
        .iter()
        .filter(|r| r.starts_with(name))
        .count()
}

fn wait_for(what: &str, condition: impl FnMut() -> bool) {
    // Not a performance limit: a generous guard so a broken build fails instead of hanging.
    herald_testkit::poll::wait_for(what, Duration::from_secs(120), condition);
}

#[test]
fn a_paused_run_stays_paused_across_run_and_serve_until_resumed() {
    let receiver = FakeProvider::start();
    let project = project(&receiver);
    campaign(&project, "held", 6, 5_000_000);
    campaign(&project, "witness", 8, 6_000_000);
    let run = "held@2026-01-01T00:00";
    let scheduled = project.ok(&["scheduler", "held.yaml"]);
    assert!(scheduled.contains("6 deliveries added"), "{scheduled}");

    let paused = project.ok(&["pause", run, "--reason", "checking the copy"]);
    assert!(paused.contains(&format!("run {run} paused")), "{paused}");
    let again = project.ok(&["pause", run, "--reason", "another"]);
    assert!(
        again.contains("was already paused") && again.contains("checking the copy"),
        "a second pause keeps the first reason: {again}"
    );
    let s = status(&project, run);
    assert_eq!(s["state"], "paused", "{s}");
    assert_eq!(s["state_reason"], "checking the copy", "{s}");
    assert_eq!(s["paused_by"], "operator (cli)", "{s}");
    let table = project.ok(&["status", run]);
    assert!(
        table.contains("(paused by operator (cli): checking the copy)"),
        "{table}"
    );
    assert!(
        table.contains(&format!("until `herald resume {run}`")),
        "{table}"
    );

    // `herald run` of the paused run says so and sends nothing: exit 1, who, why, how to resume.
    let out = project.output(&["run", "held.yaml", "--until-idle"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("run {run} is paused")), "{err}");
    assert!(err.contains("checking the copy"), "{err}");
    assert!(err.contains(&format!("`herald resume {run}`")), "{err}");
    assert!(err.contains("6 deliveries stay queued"), "{err}");
    assert_eq!(receiver.count(), 0);
    assert_eq!(status(&project, run)["state"], "paused");

    // `herald serve` of both campaigns works the witness to its end and never the paused run.
    let mut serve = project.spawn("serve", &["serve", "held.yaml", "witness.yaml"]);
    wait_for("the witness campaign sent in full", || {
        sent_to(&receiver, "witness") == 8
    });
    let witness = status(&project, "witness@2026-01-01T00:00");
    wait_for("the witness's outcomes recorded", || {
        status(&project, "witness@2026-01-01T00:00")["sent"] == 8
    });
    assert_eq!(serve.sigterm(), Some(0), "{}", project.log("serve"));
    assert_eq!(sent_to(&receiver, "held"), 0, "{witness}");
    let s = status(&project, run);
    assert_eq!(s["state"], "paused", "serve did not resume it: {s}");
    assert_eq!(
        (s["queued"].as_u64(), s["sent"].as_u64()),
        (Some(6), Some(0)),
        "{s}"
    );

    // Resumed, the same command sends it all.
    let resumed = project.ok(&["resume", run]);
    assert!(
        resumed.contains(&format!("run {run} resumed")) && resumed.contains("checking the copy"),
        "{resumed}"
    );
    let done = project.ok(&["run", "held.yaml", "--until-idle"]);
    assert!(done.contains("  sent     6"), "{done}");
    assert_eq!(sent_to(&receiver, "held"), 6);
    let s = status(&project, run);
    assert_eq!(s["state"], "active", "{s}");
    assert!(
        s["paused_by"].is_null() && s["state_reason"].is_null(),
        "{s}"
    );
}

#[test]
fn cancel_ends_every_queued_delivery_skipped_cancelled_and_counts_add_up() {
    let receiver = FakeProvider::start();
    let project = project(&receiver);
    campaign(&project, "gone", 7, 7_000_000);
    let run = "gone@2026-01-01T00:00";
    project.ok(&["scheduler", "gone.yaml"]);
    project.ok(&["pause", run]);
    let cancelled = project.ok(&["cancel", run]);
    assert!(
        cancelled.contains("7 queued deliveries ended skipped(cancelled)"),
        "{cancelled}"
    );
    let s = status(&project, run);
    assert_eq!(s["state"], "cancelled", "{s}");
    assert_eq!(s["skipped"]["cancelled"], 7, "{s}");
    assert_eq!(
        (s["total"].as_u64(), s["queued"].as_u64()),
        (Some(7), Some(0)),
        "{s}"
    );

    // Nothing brings it back: `run` sends nothing, `resume` and `pause` refuse, cancelling
    // again changes nothing.
    project.ok(&["run", "gone.yaml", "--until-idle"]);
    assert_eq!(receiver.count(), 0);
    for args in [&["resume", run][..], &["pause", run][..]] {
        let out = project.output(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("is cancelled"), "{err}");
    }
    assert!(project.ok(&["cancel", run]).contains("already cancelled"));
    let s = status(&project, run);
    assert_eq!(
        (s["total"].as_u64(), s["skipped"]["cancelled"].as_u64()),
        (Some(7), Some(7)),
        "{s}"
    );
}

#[test]
fn run_control_refuses_a_bad_run_id_and_a_bad_reason_by_name() {
    let receiver = FakeProvider::start();
    let project = project(&receiver);
    campaign(&project, "named", 1, 8_000_000);
    project.ok(&["scheduler", "named.yaml"]);
    let out = project.output(&["pause", "no-such-run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `no-such-run`"));
    let long = "x".repeat(501);
    let out = project.output(&["pause", "named@2026-01-01T00:00", "--reason", &long]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("reason: at most 500 characters"), "{err}");
    let out = project.output(&["cancel", "named@2027-01-01T00:00"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no run named@2027-01-01T00:00"), "{err}");
}
