//! `herald run FILE` of a recurring campaign in-process, on a real SQLite file and outbox, with
//! a clock that follows tokio's paused clock (time jumps to the next fire instead of passing):
//! killed after a fire and started again, it resumes that fire's run; and a weekly campaign
//! capped at one send per 7 days beside a one-off campaign of the same purpose never sends a
//! recipient more than the cap allows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use herald_app::run::{Ending, RunOptions, RunReport, run_campaign};
use herald_app::{Settings, open_store};
use herald_core::{PhoneNumber, RunId};
use herald_engine::{Shutdown, ShutdownSignal};
use herald_store::{Deliveries, FireOutcome, Fires, Runs, StoreTime, Stores};
use herald_testkit::TokioClock;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const PEOPLE: usize = 30;

fn phone(i: usize) -> String {
    format!("+7 916 {:07}", 5_000_000 + i)
}

/// A project in `dir`: an audience of [`PEOPLE`] in UTC, the campaigns `(file, yaml)`, and a
/// config whose `main` sender is an outbox in `dir`, with the store there too.
fn project(dir: &Path, campaigns: &[(&str, &str)]) -> Settings {
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..PEOPLE {
        writeln!(csv, "p{i},{},Etc/UTC", phone(i)).unwrap();
    }
    std::fs::write(dir.join("people.csv"), csv).unwrap();
    for (file, yaml) in campaigns {
        std::fs::write(dir.join(file), yaml).unwrap();
    }
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"outbox\"\npath = \"{}\"\nper_second = 1000\n",
        dir.join("herald.db").display(),
        dir.join("outbox.jsonl").display()
    );
    std::fs::write(dir.join("herald.toml"), config).unwrap();
    Settings::load(Some(&dir.join("herald.toml")), &BTreeMap::new()).unwrap()
}

async fn run(
    dir: &Path,
    settings: &Settings,
    file: &str,
    start: DateTime<Utc>,
    until_idle: bool,
    shutdown: Shutdown,
    mut on_sent: impl FnMut(u64),
) -> RunReport {
    let clock = Arc::new(TokioClock::new(start));
    let options = RunOptions {
        until_idle,
        store_time: StoreTime::Clock(clock.clone()),
    };
    run_campaign(
        &dir.join(file),
        settings,
        &BTreeMap::new(),
        options,
        clock,
        shutdown,
        |view| on_sent(view.sent),
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

/// Killed (its shutdown fired) once a few messages of the 10:00 fire went out, then started
/// again later: it resumes the 10:00 run (no new run, no second fire record), and every
/// recipient gets exactly one message.
#[tokio::test(start_paused = true)]
async fn a_herald_run_killed_after_a_fire_resumes_that_fires_run() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "id: daily\npurpose: transactional\naudience: { source: people.csv }\n\
                template: { name: notice, language: en }\n\
                schedule: { cron: \"0 10 * * *\", timezone: Etc/UTC, expires_after: 1d }\n";
    let settings = project(dir.path(), &[("c.yaml", yaml)]);
    let signal = ShutdownSignal::new();
    let trigger = signal.clone();
    let first = run(
        dir.path(),
        &settings,
        "c.yaml",
        at("2026-06-01T09:59:00Z"),
        false,
        signal.subscribe(),
        |sent| {
            if sent >= 3 {
                trigger.trigger();
            }
        },
    )
    .await;
    let fire_run = RunId::parse("daily@2026-06-01T10:00:00Z").unwrap();
    assert_eq!(first.run, fire_run);
    assert_eq!(first.ending, Ending::Interrupted, "{first:?}");
    let sent_first = outbox_lines(dir.path());
    assert!(
        (3..PEOPLE).contains(&sent_first),
        "killed mid-run: {sent_first} sent"
    );

    let again = run(
        dir.path(),
        &settings,
        "c.yaml",
        at("2026-06-01T10:20:00Z"),
        true,
        Shutdown::never(),
        |_| {},
    )
    .await;
    assert_eq!(again.run, fire_run, "{again:?}");
    assert_eq!(again.ending, Ending::Done, "{again:?}");
    assert_eq!(again.counts.sent, PEOPLE as u64, "{again:?}");
    assert_eq!(outbox_lines(dir.path()), PEOPLE);
    let stores = open_store(&settings, &BTreeMap::new()).await.unwrap();
    assert_eq!(stores.runs().runs().await.unwrap().len(), 1);
    let records = stores.fires().fires("daily", 10).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].outcome, FireOutcome::Run(fire_run));
}

/// `--until-idle` before any fire is due says so and sends nothing.
#[tokio::test(start_paused = true)]
async fn until_idle_with_no_fire_due_sends_nothing_and_names_the_next_fire() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "id: daily\npurpose: transactional\naudience: { source: people.csv }\n\
                template: { name: notice, language: en }\n\
                schedule: { cron: \"0 10 * * *\", timezone: Etc/UTC }\n";
    let settings = project(dir.path(), &[("c.yaml", yaml)]);
    let report = run(
        dir.path(),
        &settings,
        "c.yaml",
        at("2026-06-01T09:00:00Z"),
        true,
        Shutdown::never(),
        |_| {},
    )
    .await;
    assert_eq!(
        report.ending,
        Ending::NoFireDue {
            next: Some(at("2026-06-01T10:00:00Z"))
        }
    );
    assert_eq!(outbox_lines(dir.path()), 0);
}

/// A weekly campaign capped at one message per 7 days per purpose, run on three Mondays, and a
/// one-off campaign of the same purpose on the Wednesday between: no recipient ever gets two
/// messages less than 7 days apart, the one-off is capped for all, and the later Mondays send.
#[tokio::test(start_paused = true)]
async fn a_weekly_cap_holds_across_the_weekly_runs_and_a_one_off_of_the_same_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let cap = "frequency_cap:\n  - { max: 1, per: 7d, scope: purpose }\nspread: 1m\n";
    let weekly = format!(
        "id: weekly\npurpose: transactional\naudience: {{ source: people.csv }}\n\
         template: {{ name: notice, language: en }}\n\
         schedule: {{ cron: \"0 10 * * MON\", timezone: Etc/UTC, expires_after: 2d }}\n{cap}"
    );
    let once = format!(
        "id: once\npurpose: transactional\naudience: {{ source: people.csv }}\n\
         template: {{ name: notice, language: en }}\n\
         schedule: {{ at: 2026-06-03T10:00, in: Etc/UTC, expires_after: 1h }}\n{cap}"
    );
    let settings = project(
        dir.path(),
        &[("weekly.yaml", &weekly), ("once.yaml", &once)],
    );
    let go = |file: &'static str, start: &'static str| {
        let settings = settings.clone();
        let dir = dir.path().to_owned();
        async move {
            run(
                &dir,
                &settings,
                file,
                at(start),
                true,
                Shutdown::never(),
                |_| {},
            )
            .await
        }
    };
    // Registered the day before its first fire, then each Monday and the Wednesday.
    let before = go("weekly.yaml", "2026-05-31T12:00:00Z").await;
    assert!(
        matches!(before.ending, Ending::NoFireDue { .. }),
        "{before:?}"
    );
    let monday = go("weekly.yaml", "2026-06-01T10:00:00Z").await;
    assert_eq!(monday.counts.sent, PEOPLE as u64, "{monday:?}");
    let wednesday = go("once.yaml", "2026-06-03T10:00:00Z").await;
    assert_eq!(wednesday.counts.sent, 0, "{wednesday:?}");
    assert_eq!(
        wednesday
            .counts
            .skipped
            .get("frequency_capped")
            .copied()
            .unwrap_or_default()
            + wednesday.counts.expired,
        PEOPLE as u64,
        "{wednesday:?}"
    );
    for next_monday in ["2026-06-08T10:00:00Z", "2026-06-15T10:00:00Z"] {
        let report = go("weekly.yaml", next_monday).await;
        assert_eq!(report.run.as_str(), format!("weekly@{next_monday}"));
        assert!(report.counts.sent > 0, "{report:?}");
    }
    let stores = open_store(&settings, &BTreeMap::new()).await.unwrap();
    let mut total = 0;
    for i in 0..PEOPLE {
        let phone = PhoneNumber::parse(&phone(i), None).unwrap();
        let mut sends: Vec<_> = stores
            .deliveries()
            .history(&phone, at("2026-01-01T00:00:00Z"))
            .await
            .unwrap()
            .into_iter()
            .map(|send| send.at)
            .collect();
        sends.sort();
        for pair in sends.windows(2) {
            assert!(
                pair[1] - pair[0] >= TimeDelta::days(7),
                "recipient {i} got two messages {} apart: {sends:?}",
                pair[1] - pair[0]
            );
        }
        total += sends.len();
    }
    assert_eq!(total, outbox_lines(dir.path()));
}
