//! `run --until-idle` in-process, on a real SQLite file and outbox, with a clock that follows
//! tokio's paused clock: the run sleeps until its deliveries fall due and time jumps there, so
//! a ten-minute spread takes no real time and the outcome does not depend on the machine's speed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use herald_app::Settings;
use herald_app::run::{Ending, RunOptions, RunReport, run_campaign};
use herald_engine::Shutdown;
use herald_store::{StoreTime, WaitReason};
use herald_testkit::TokioClock;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A project in `dir`: `people` as (id, zone) rows, the campaign `yaml` and a config whose
/// `main` sender is an outbox in `dir`, with the store there too.
fn project(dir: &Path, people: &[(String, &str)], yaml: &str) -> Settings {
    let mut csv = String::from("id,phone,timezone\n");
    for (i, (id, zone)) in people.iter().enumerate() {
        writeln!(csv, "{id},+7 916 {:07},{zone}", 3_000_000 + i).unwrap();
    }
    std::fs::write(dir.join("people.csv"), csv).unwrap();
    std::fs::write(dir.join("c.yaml"), yaml).unwrap();
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"outbox\"\npath = \"{}\"\nper_second = 1000\n",
        dir.join("herald.db").display(),
        dir.join("outbox.jsonl").display()
    );
    std::fs::write(dir.join("herald.toml"), config).unwrap();
    Settings::load(Some(&dir.join("herald.toml")), &BTreeMap::new()).unwrap()
}

async fn run_until_idle(dir: &Path, settings: &Settings, start: DateTime<Utc>) -> RunReport {
    let clock = Arc::new(TokioClock::new(start));
    let options = RunOptions {
        until_idle: true,
        // Leases and rate slots follow the same paused clock as the run.
        store_time: StoreTime::Clock(clock.clone()),
    };
    run_campaign(
        &dir.join("c.yaml"),
        settings,
        &BTreeMap::new(),
        options,
        clock,
        Shutdown::never(),
        |_| {},
    )
    .await
    .unwrap()
}

fn outbox_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// Issue 10, item 12: a campaign that starts now, with the default 10-minute spread, used to
/// send nothing (or a few) and say the rest "wait for their window" while it was open. Every
/// delivery the spread puts seconds to minutes ahead is due within the spread: all are sent.
#[tokio::test(start_paused = true)]
async fn a_campaign_starting_now_is_sent_in_full_across_its_spread() {
    let dir = tempfile::tempdir().unwrap();
    let people: Vec<_> = (0..40).map(|i| (format!("p{i}"), "Etc/UTC")).collect();
    let yaml = "id: now\npurpose: transactional\naudience: { source: people.csv }\n\
                template: { name: notice, language: en }\n\
                schedule: { at: 2026-11-30T10:00, in: Etc/UTC }\n";
    let settings = project(dir.path(), &people, yaml);
    let start = at("2026-11-30T10:00:00Z");
    let began = tokio::time::Instant::now();
    let report = run_until_idle(dir.path(), &settings, start).await;
    assert_eq!(report.ending, Ending::Done, "{report:?}");
    assert_eq!(
        (report.counts.sent, report.counts.queued),
        (40, 0),
        "{report:?}"
    );
    assert_eq!(outbox_lines(dir.path()), 40);
    // It took (virtually) the spread, not more: the last release is within ten minutes.
    assert!(began.elapsed() <= std::time::Duration::from_secs(600));
}

/// What waits for a window stops the run, which says how many wait for what and from when.
#[tokio::test(start_paused = true)]
async fn until_idle_stops_at_a_closed_window_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // 10:00 UTC: open in UTC, 00:00 at UTC-10, closed there until 09:00 (19:00 UTC).
    let mut people: Vec<_> = (0..5).map(|i| (format!("open{i}"), "Etc/UTC")).collect();
    people.extend((0..3).map(|i| (format!("closed{i}"), "Etc/GMT+10")));
    let yaml = "id: windows\npurpose: transactional\naudience: { source: people.csv }\n\
                template: { name: notice, language: en }\n\
                schedule: { at: 2026-11-30T10:00, in: Etc/UTC }\n\
                send_window: { hours: { daily: \"09:00-17:00\" } }\nspread: 30s\n";
    let settings = project(dir.path(), &people, yaml);
    let report = run_until_idle(dir.path(), &settings, at("2026-11-30T10:00:00Z")).await;
    let Ending::Idle(waits) = &report.ending else {
        panic!("{report:?}")
    };
    assert_eq!(report.counts.sent, 5, "{report:?}");
    assert_eq!(waits.due, 0, "{waits:?}");
    assert_eq!(waits.waiting.len(), 1, "{waits:?}");
    let window = waits.waiting[&WaitReason::Window];
    assert_eq!(window.count, 3);
    let opening = at("2026-11-30T19:00:00Z");
    assert!(
        window.next >= opening && window.next < opening + TimeDelta::seconds(30),
        "{window:?}"
    );
}

/// The queue a later `status` shows agrees: waiting by reason, with the next instant.
#[tokio::test(start_paused = true)]
async fn status_counts_the_queue_by_why_it_waits() {
    let dir = tempfile::tempdir().unwrap();
    let people: Vec<_> = (0..4).map(|i| (format!("p{i}"), "Etc/GMT+10")).collect();
    let yaml = "id: later\npurpose: transactional\naudience: { source: people.csv }\n\
                template: { name: notice, language: en }\n\
                schedule: { at: 2026-12-01T10:00, in: Etc/UTC }\n\
                send_window: { hours: { daily: \"09:00-17:00\" } }\n";
    let settings = project(dir.path(), &people, yaml);
    let now = at("2026-11-30T10:00:00Z");
    let report = run_until_idle(dir.path(), &settings, now).await;
    assert!(matches!(report.ending, Ending::Idle(_)), "{report:?}");
    let status = herald_app::status::status(&settings, &BTreeMap::new(), None, now)
        .await
        .unwrap();
    let status = &status.runs;
    let waits = &status[0].waits;
    // Planned for tomorrow 10:00 UTC, which is midnight at UTC-10: the window holds them.
    assert_eq!(
        waits.waiting.keys().copied().collect::<Vec<_>>(),
        [WaitReason::Window]
    );
    assert_eq!(waits.waiting[&WaitReason::Window].count, 4);
    assert_eq!(status[0].counts.queued, 4);
}
