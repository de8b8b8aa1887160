//! Recurring campaigns in-process, on real stores (a SQLite file; a spawned redis-server),
//! with one manual clock: schedulers down over several fires and restarted (`catch_up`), two
//! schedulers on one store (one run per fire), a fire while the previous run is pending
//! (`overlap`), and a campaign directory edited into an invalid file (the old version keeps
//! firing).

use std::path::Path;

use chrono::TimeDelta;
use herald_app::recurring::{CampaignSet, Event};
use herald_store::{Deliveries, FireOutcome, FireRecord, FireSkip, Fires, Runs, Stores};
use herald_testkit::redis::RedisServer;

mod common;
use common::*;

/// Down over three fires, then restarted: `latest` makes one run (the newest missed fire) and
/// records the two older ones superseded; `none` makes none and records all three missed.
async fn restarted_after_three_fires(store: impl Fn(&Path) -> Option<String>) {
    for (catch_up, expected) in [
        (
            "latest",
            vec![
                pair("2026-06-01T10:00:00Z", "run hourly@2026-06-01T10:00:00Z"),
                pair("2026-06-01T11:00:00Z", "superseded"),
                pair("2026-06-01T12:00:00Z", "superseded"),
                pair("2026-06-01T13:00:00Z", "run hourly@2026-06-01T13:00:00Z"),
            ],
        ),
        (
            "none",
            vec![
                pair("2026-06-01T10:00:00Z", "run hourly@2026-06-01T10:00:00Z"),
                pair("2026-06-01T11:00:00Z", "missed"),
                pair("2026-06-01T12:00:00Z", "missed"),
                pair("2026-06-01T13:00:00Z", "missed"),
            ],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let schedule = format!(
            "{{ cron: \"0 * * * *\", timezone: Etc/UTC, expires_after: 1d, catch_up: {catch_up}, overlap: allow }}"
        );
        let settings = project(dir.path(), &schedule, store(dir.path()));
        {
            let stores = stores_of(&settings).await;
            let mut first = set_of(dir.path());
            first
                .step(&stores, &settings, at("2026-06-01T09:30:00Z"))
                .await
                .unwrap();
            first
                .step(&stores, &settings, at("2026-06-01T10:00:02Z"))
                .await
                .unwrap();
        }
        // Down from 10:00:02 to 13:20 (11:00, 12:00 and 13:00 pass), then a new process.
        let stores = stores_of(&settings).await;
        let mut again = set_of(dir.path());
        let events = again
            .step(&stores, &settings, at("2026-06-01T13:20:00Z"))
            .await
            .unwrap();
        assert_eq!(
            outcomes(&fires(&stores).await),
            expected,
            "catch_up {catch_up}"
        );
        let runs = stores.runs().runs().await.unwrap();
        let new_runs = if catch_up == "latest" { 2 } else { 1 };
        assert_eq!(runs.len(), new_runs, "catch_up {catch_up}: {runs:?}");
        let expanded = events
            .iter()
            .filter(|e| matches!(e, Event::Expanded { .. }))
            .count();
        assert_eq!(expanded, new_runs - 1, "catch_up {catch_up}: {events:?}");
        // Stepping again at once, and later within the hour, changes nothing.
        again
            .step(&stores, &settings, at("2026-06-01T13:20:01Z"))
            .await
            .unwrap();
        again
            .step(&stores, &settings, at("2026-06-01T13:59:59Z"))
            .await
            .unwrap();
        assert_eq!(
            outcomes(&fires(&stores).await),
            expected,
            "catch_up {catch_up}"
        );
        // `status` shows the skipped fires and why.
        let status = herald_app::status::status_in(
            &stores,
            &settings,
            &herald_app::status::Which::Newest(10),
            at("2026-06-01T13:30:00Z"),
        )
        .await
        .unwrap();
        let shown = &status.campaigns[0];
        assert_eq!(shown.version.campaign, "hourly");
        let described: Vec<String> = shown
            .fires
            .iter()
            .map(|f| herald_app::status::describe_outcome(&f.outcome))
            .collect();
        let reason = if catch_up == "latest" {
            "catch_up latest ran a later fire"
        } else {
            "catch_up is none"
        };
        assert!(
            described.iter().filter(|d| d.contains(reason)).count()
                == expected.len() - 1 - usize::from(catch_up == "latest"),
            "{described:?}"
        );
    }
}

#[tokio::test]
async fn a_scheduler_down_over_three_fires_catches_up_the_latest_or_none_on_sqlite() {
    restarted_after_three_fires(|_| None).await;
}

#[tokio::test]
async fn a_scheduler_down_over_three_fires_catches_up_the_latest_or_none_on_redis() {
    let server = RedisServer::start();
    let url = server.url();
    let store = |dir: &Path| {
        // Each project gets its own Redis prefix on the one server.
        let prefix = dir.file_name().unwrap().to_string_lossy().to_lowercase();
        Some(format!("redis = \"{url}\"\nredis_prefix = \"{prefix}:\""))
    };
    restarted_after_three_fires(store).await;
}

/// Two schedulers on one store and one clock, stepping in either order at every fire (and
/// once more each, late): one run per fire, each expanded once.
async fn two_schedulers(store: impl Fn(&Path) -> Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(
        dir.path(),
        "{ cron: \"*/30 * * * *\", timezone: Etc/UTC, expires_after: 1d, overlap: allow }",
        store(dir.path()),
    );
    let (a, b) = (stores_of(&settings).await, stores_of(&settings).await);
    let (mut first, mut second) = (set_of(dir.path()), set_of(dir.path()));
    let start = at("2026-06-01T09:45:00Z");
    first.step(&a, &settings, start).await.unwrap();
    second.step(&b, &settings, start).await.unwrap();
    let mut inserted = 0;
    for half_hour in 1..=6 {
        let fire = at("2026-06-01T09:30:00Z") + TimeDelta::minutes(30 * half_hour);
        let now = fire + TimeDelta::seconds(half_hour);
        let order = if half_hour % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order.into_iter().chain(order) {
            let events = if which == 0 {
                first.step(&a, &settings, now).await.unwrap()
            } else {
                second.step(&b, &settings, now).await.unwrap()
            };
            for event in events {
                if let Event::Expanded { expansion, .. } = event {
                    inserted += expansion.inserted;
                }
            }
        }
    }
    let records = fires(&a).await;
    assert_eq!(records.len(), 6, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| matches!(r.outcome, FireOutcome::Run(_)))
    );
    let runs = a.runs().runs().await.unwrap();
    assert_eq!(runs.len(), 6);
    for run in &runs {
        assert_eq!(run.total, Some(PEOPLE as u64), "{run:?}");
        assert_eq!(
            a.deliveries().counts(&run.run.run).await.unwrap().total(),
            PEOPLE as u64
        );
    }
    assert_eq!(inserted, 6 * PEOPLE as u64);
}

#[tokio::test]
async fn two_schedulers_make_one_run_per_fire_on_sqlite() {
    two_schedulers(|_| None).await;
}

#[tokio::test]
async fn two_schedulers_make_one_run_per_fire_on_redis() {
    let server = RedisServer::start();
    let url = server.url();
    two_schedulers(|_| Some(format!("redis = \"{url}\""))).await;
}

/// `overlap: skip` (the default): a fire while the previous run still has deliveries queued is
/// recorded `overlap`, naming that run; once the run has ended, the next fire runs.
#[tokio::test]
async fn a_fire_while_the_previous_run_is_pending_is_skipped_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(
        dir.path(),
        "{ cron: \"0 * * * *\", timezone: Etc/UTC, expires_after: 1d }",
        None,
    );
    let stores = stores_of(&settings).await;
    let mut set = set_of(dir.path());
    set.step(&stores, &settings, at("2026-06-01T09:30:00Z"))
        .await
        .unwrap();
    set.step(&stores, &settings, at("2026-06-01T10:00:01Z"))
        .await
        .unwrap();
    set.step(&stores, &settings, at("2026-06-01T11:00:01Z"))
        .await
        .unwrap();
    let first = herald_core::RunId::parse("hourly@2026-06-01T10:00:00Z").unwrap();
    assert_eq!(
        fires(&stores).await[1].outcome,
        FireOutcome::Skipped(FireSkip::Overlap {
            previous: first.clone()
        })
    );
    // The first run is cancelled (nothing pending any more): the next fire runs.
    herald_app::run_control::cancel_run(&stores, &first, herald_app::run_control::Operator::Cli)
        .await
        .unwrap();
    set.step(&stores, &settings, at("2026-06-01T12:00:01Z"))
        .await
        .unwrap();
    assert_eq!(
        outcomes(&fires(&stores).await)[2],
        pair("2026-06-01T12:00:00Z", "run hourly@2026-06-01T12:00:00Z")
    );
}

/// A campaign directory: an edit into an invalid file is reported with its file:line:col and
/// the previous version keeps firing; removing the file stops its fires.
#[tokio::test]
async fn an_invalid_edit_keeps_the_old_version_firing_and_a_removed_file_stops() {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(
        dir.path(),
        "{ cron: \"0 * * * *\", timezone: Etc/UTC, expires_after: 1d, overlap: allow }",
        None,
    );
    let campaigns = dir.path().join("campaigns");
    std::fs::create_dir(&campaigns).unwrap();
    std::fs::rename(dir.path().join("c.yaml"), campaigns.join("c.yaml")).unwrap();
    std::fs::copy(dir.path().join("people.csv"), campaigns.join("people.csv")).unwrap();
    let stores = stores_of(&settings).await;
    let mut set = CampaignSet::new(Vec::new(), Some(campaigns.clone()));
    let events = set
        .step(&stores, &settings, at("2026-06-01T09:30:00Z"))
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Loaded { campaign, .. } if campaign == "hourly")),
        "{events:?}"
    );
    let good = stores.fires().campaign("hourly").await.unwrap().unwrap();

    let broken = campaign("{ cron: \"0 * * * *\", timezone: Etc/UTC, expires_after: 1d }")
        .replace("purpose: transactional", "purpose: transactionl");
    std::fs::write(campaigns.join("c.yaml"), broken).unwrap();
    let events = set
        .step(&stores, &settings, at("2026-06-01T10:00:01Z"))
        .await
        .unwrap();
    let invalid = events
        .iter()
        .find_map(|e| match e {
            Event::Invalid { diagnostics, .. } => Some(diagnostics.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no invalid event: {events:?}"));
    assert!(invalid.contains("c.yaml:2:10:"), "{invalid}");
    assert_eq!(set.problems().len(), 1);
    // `status` (another process) shows it, from the store.
    let status = herald_app::status::status_in(
        &stores,
        &settings,
        &herald_app::status::Which::Newest(10),
        at("2026-06-01T10:00:02Z"),
    )
    .await
    .unwrap();
    assert_eq!(status.problems.len(), 1, "{:?}", status.problems);
    assert!(
        status.problems[0].diagnostics.contains("c.yaml:2:10:"),
        "{:?}",
        status.problems
    );
    // The old version fired.
    let records = fires(&stores).await;
    assert_eq!(
        outcomes(&records),
        vec![pair(
            "2026-06-01T10:00:00Z",
            "run hourly@2026-06-01T10:00:00Z"
        )]
    );
    assert_eq!(records[0].hash, good.hash);
    assert_eq!(
        stores.fires().campaign("hourly").await.unwrap().unwrap(),
        good
    );

    std::fs::remove_file(campaigns.join("c.yaml")).unwrap();
    let events = set
        .step(&stores, &settings, at("2026-06-01T10:30:00Z"))
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| matches!(e, Event::Removed { .. })),
        "{events:?}"
    );
    set.step(&stores, &settings, at("2026-06-01T11:00:01Z"))
        .await
        .unwrap();
    assert_eq!(fires(&stores).await.len(), 1);
    // The removed file's problem is gone from `status` too.
    assert!(stores.fires().problems().await.unwrap().is_empty());
    // The run already started is untouched.
    let run = herald_core::RunId::parse("hourly@2026-06-01T10:00:00Z").unwrap();
    assert_eq!(
        stores.deliveries().counts(&run).await.unwrap().queued,
        PEOPLE as u64
    );
}

/// `overlap: skip` holds however many fires overlap: a run still pending after 60 skipped
/// fires of an every-minute campaign keeps the 61st from running (the overlap records name it).
#[tokio::test]
async fn overlap_holds_across_many_skipped_fires() {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(
        dir.path(),
        "{ cron: \"* * * * *\", timezone: Etc/UTC, expires_after: 1d }",
        None,
    );
    let stores = stores_of(&settings).await;
    let mut set = set_of(dir.path());
    let start = at("2026-06-01T09:59:30Z");
    set.step(&stores, &settings, start).await.unwrap();
    for minute in 1..=62 {
        set.step(&stores, &settings, start + TimeDelta::seconds(60 * minute))
            .await
            .unwrap();
    }
    let records = fires(&stores).await;
    // 09:59 (a fire within a minute before the campaign was first stored is on time), then
    // every minute from 10:00 to 11:01.
    assert_eq!(records.len(), 63);
    let first = herald_core::RunId::parse("hourly@2026-06-01T09:59:00Z").unwrap();
    assert_eq!(records[0].outcome, FireOutcome::Run(first.clone()));
    for record in &records[1..] {
        assert_eq!(
            record.outcome,
            FireOutcome::Skipped(FireSkip::Overlap {
                previous: first.clone()
            }),
            "{record:?}"
        );
    }
    assert_eq!(stores.runs().runs().await.unwrap().len(), 1);
}

/// A fire recorded as a run whose scheduler crashed before expanding it: the next step
/// expands it while it is within the look-back; past the look-back it is never sent late (and
/// does not hold the campaign's next fire).
#[tokio::test]
async fn a_fire_recorded_before_a_crash_is_expanded_in_time_or_never() {
    for (restart, expanded) in [
        ("2026-06-01T10:20:00Z", true),
        ("2026-06-02T10:30:00Z", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let settings = project(
            dir.path(),
            "{ cron: \"0 10 * * *\", timezone: Etc/UTC, expires_after: 1d }",
            None,
        );
        let stores = stores_of(&settings).await;
        let mut set = set_of(dir.path());
        set.step(&stores, &settings, at("2026-06-01T09:00:00Z"))
            .await
            .unwrap();
        let version = stores.fires().campaign("hourly").await.unwrap().unwrap();
        let run = herald_core::RunId::parse("hourly@2026-06-01T10:00:00Z").unwrap();
        // What a scheduler that crashed right after recording the fire left.
        stores
            .fires()
            .record_fire(&FireRecord {
                campaign: "hourly".into(),
                fire: at("2026-06-01T10:00:00Z"),
                outcome: FireOutcome::Run(run.clone()),
                hash: version.hash.clone(),
                recorded_at: at("2026-06-01T10:00:01Z"),
            })
            .await
            .unwrap();
        let mut again = set_of(dir.path());
        let events = again.step(&stores, &settings, at(restart)).await.unwrap();
        let made = stores.runs().run(&run).await.unwrap();
        assert_eq!(made.is_some(), expanded, "restart at {restart}: {events:?}");
        if expanded {
            assert_eq!(made.unwrap().total, Some(PEOPLE as u64));
        } else {
            // The missed 06-02 fire is caught up instead: the stale one does not hold it.
            let newest = stores.fires().fires("hourly", 1).await.unwrap();
            let caught_up = herald_core::RunId::parse("hourly@2026-06-02T10:00:00Z").unwrap();
            assert_eq!(newest[0].outcome, FireOutcome::Run(caught_up.clone()));
            assert_eq!(
                stores.runs().run(&caught_up).await.unwrap().unwrap().total,
                Some(PEOPLE as u64)
            );
        }
    }
}

/// A campaign file removed and put back does not fire for the time it was out, even with
/// `catch_up: latest`; its next fire after it came back runs.
#[tokio::test]
async fn a_file_put_back_does_not_fire_for_the_time_it_was_out() {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(
        dir.path(),
        "{ cron: \"0 * * * *\", timezone: Etc/UTC, expires_after: 1d, overlap: allow }",
        None,
    );
    let campaigns = dir.path().join("campaigns");
    std::fs::create_dir(&campaigns).unwrap();
    std::fs::copy(dir.path().join("people.csv"), campaigns.join("people.csv")).unwrap();
    let text = std::fs::read_to_string(dir.path().join("c.yaml")).unwrap();
    std::fs::write(campaigns.join("c.yaml"), &text).unwrap();
    let stores = stores_of(&settings).await;
    let mut set = CampaignSet::new(Vec::new(), Some(campaigns.clone()));
    set.step(&stores, &settings, at("2026-06-01T09:30:00Z"))
        .await
        .unwrap();
    set.step(&stores, &settings, at("2026-06-01T10:00:01Z"))
        .await
        .unwrap();
    std::fs::remove_file(campaigns.join("c.yaml")).unwrap();
    set.step(&stores, &settings, at("2026-06-01T10:30:00Z"))
        .await
        .unwrap();
    std::fs::write(campaigns.join("c.yaml"), &text).unwrap();
    set.step(&stores, &settings, at("2026-06-01T12:30:00Z"))
        .await
        .unwrap();
    assert_eq!(fires(&stores).await.len(), 1, "{:?}", fires(&stores).await);
    set.step(&stores, &settings, at("2026-06-01T13:00:01Z"))
        .await
        .unwrap();
    assert_eq!(
        outcomes(&fires(&stores).await),
        vec![
            pair("2026-06-01T10:00:00Z", "run hourly@2026-06-01T10:00:00Z"),
            pair("2026-06-01T13:00:00Z", "run hourly@2026-06-01T13:00:00Z"),
        ]
    );
}

/// A scheduler restarted while a file is broken keeps firing the version the store holds for
/// that file (its previous valid version), and says the file is broken.
#[tokio::test]
async fn a_restart_while_a_file_is_broken_keeps_its_stored_version_firing() {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(
        dir.path(),
        "{ cron: \"0 * * * *\", timezone: Etc/UTC, expires_after: 1d, overlap: allow }",
        None,
    );
    let campaigns = dir.path().join("campaigns");
    std::fs::create_dir(&campaigns).unwrap();
    std::fs::copy(dir.path().join("people.csv"), campaigns.join("people.csv")).unwrap();
    let text = std::fs::read_to_string(dir.path().join("c.yaml")).unwrap();
    std::fs::write(campaigns.join("c.yaml"), &text).unwrap();
    let stores = stores_of(&settings).await;
    {
        let mut set = CampaignSet::new(Vec::new(), Some(campaigns.clone()));
        set.step(&stores, &settings, at("2026-06-01T09:30:00Z"))
            .await
            .unwrap();
    }
    let good = stores.fires().campaign("hourly").await.unwrap().unwrap();
    std::fs::write(
        campaigns.join("c.yaml"),
        text.replace("purpose: transactional", "purpose: transactionl"),
    )
    .unwrap();
    let mut restarted = CampaignSet::new(Vec::new(), Some(campaigns.clone()));
    let events = restarted
        .step(&stores, &settings, at("2026-06-01T10:00:01Z"))
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| matches!(e, Event::Invalid { .. })),
        "{events:?}"
    );
    let records = fires(&stores).await;
    assert_eq!(
        outcomes(&records),
        vec![pair(
            "2026-06-01T10:00:00Z",
            "run hourly@2026-06-01T10:00:00Z"
        )]
    );
    assert_eq!(records[0].hash, good.hash);
    assert_eq!(stores.fires().problems().await.unwrap().len(), 1);
}
