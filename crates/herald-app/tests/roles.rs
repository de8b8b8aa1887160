//! The roles in-process, on a real SQLite file and an outbox: scheduling stores a run's sender
//! and campaign text, a sender block is shown by `status` and cleared by `resume_sender` (and
//! `herald run` refuses to start on it), and the worker role sends every active run of its
//! senders until its shutdown fires.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use herald_app::resume::{SenderResumed, resume_sender};
use herald_app::run::{RunOptions, run_campaign};
use herald_app::run_control::{
    DEFAULT_REASON, Operator, RunPaused, RunResumed, cancel_run, pause_run, resume_run,
};
use herald_app::schedule::{CampaignFile, schedule};
use herald_app::work::{WorkOptions, Workers};
use herald_app::{AppError, AppStores, Settings, open_store};
use herald_engine::worker::process_worker_id;
use herald_engine::{Shutdown, ShutdownSignal, SystemClock};
use herald_store::{Deliveries, RunState, Runs, Senders, Stores};

/// `n` recipients, a transactional campaign `c.yaml` (always open), and a config whose `main`
/// sender is an outbox in `dir`, with the store there too.
fn project(dir: &Path, n: usize) -> Settings {
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..n {
        writeln!(csv, "p{i},+7 916 {:07},Etc/UTC", 6_000_000 + i).unwrap();
    }
    std::fs::write(dir.join("people.csv"), csv).unwrap();
    std::fs::write(
        dir.join("c.yaml"),
        "id: roles\npurpose: transactional\naudience: { source: people.csv }\n\
         template: { name: notice, language: en }\n\
         schedule: { at: 2026-01-01T00:00, in: Etc/UTC }\n",
    )
    .unwrap();
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"outbox\"\npath = \"{}\"\nper_second = 1000\n",
        dir.join("herald.db").display(),
        dir.join("outbox.jsonl").display()
    );
    std::fs::write(dir.join("herald.toml"), config).unwrap();
    Settings::load(Some(&dir.join("herald.toml")), &BTreeMap::new()).unwrap()
}

fn env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

#[tokio::test]
async fn scheduling_stores_the_sender_and_the_campaign_text_once() {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(dir.path(), 5);
    let stores = open_store(&settings, &env()).await.unwrap();
    let file = CampaignFile::load(&dir.path().join("c.yaml"), Utc::now()).unwrap();
    let first = schedule(&stores, &file, &settings, Utc::now())
        .await
        .unwrap();
    assert_eq!(first.run.as_str(), "roles@2026-01-01T00:00");
    assert_eq!(first.sender, "main");
    assert_eq!((first.expansion.inserted, first.counts.queued), (5, 5));
    let record = stores.runs().run(&first.run).await.unwrap().unwrap();
    assert_eq!(record.run.sender.as_deref(), Some("main"));
    let text = std::fs::read_to_string(dir.path().join("c.yaml")).unwrap();
    assert_eq!(record.run.campaign_text.as_deref(), Some(text.as_str()));
    // Again (a scheduler restarted): the same run, nothing added.
    let again = schedule(&stores, &file, &settings, Utc::now())
        .await
        .unwrap();
    assert_eq!(again.run, first.run);
    assert!(again.expansion.already_expanded);
    assert_eq!(again.counts.total(), 5);
    assert!(
        stores.location().ends_with("herald.db"),
        "{}",
        stores.location()
    );
}

#[tokio::test]
async fn a_block_shows_in_status_stops_run_and_is_cleared_by_resume_sender() {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(dir.path(), 3);
    let now = Utc::now();
    {
        let stores = open_store(&settings, &env()).await.unwrap();
        stores
            .senders()
            .block("main", "131048", "spam rate limit hit", now)
            .await
            .unwrap();
    }
    let status = herald_app::status::status(&settings, &env(), None, now)
        .await
        .unwrap();
    let main = status.senders.iter().find(|s| s.name == "main").unwrap();
    assert_eq!(main.condition(now), "blocked");
    let json = status.senders_json(now);
    assert_eq!(json[0]["blocked"]["code"], "131048", "{json}");

    // `herald run` on a blocked sender: a user error naming the fix; nothing scheduled.
    let error = run_campaign(
        &dir.path().join("c.yaml"),
        &settings,
        &env(),
        RunOptions::default(),
        Arc::new(SystemClock),
        Shutdown::never(),
        |_| {},
    )
    .await
    .unwrap_err();
    let AppError::User(message) = error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("sender `main` is blocked by the provider"),
        "{message}"
    );
    assert!(
        message.contains("(131048: spam rate limit hit)"),
        "{message}"
    );
    assert!(message.contains("herald resume --sender main"), "{message}");
    let stores = open_store(&settings, &env()).await.unwrap();
    assert!(stores.runs().runs().await.unwrap().is_empty());

    let resumed = resume_sender(&settings, &env(), "main").await.unwrap();
    let SenderResumed::Unblocked(Some(block)) = resumed else {
        panic!("{resumed:?}")
    };
    assert_eq!(block.code, "131048");
    assert_eq!(
        resume_sender(&settings, &env(), "main").await.unwrap(),
        SenderResumed::NotBlocked(None)
    );
    let error = resume_sender(&settings, &env(), "mian").await.unwrap_err();
    assert!(error.to_string().contains("configured: main"), "{error}");
    let status = herald_app::status::status(&settings, &env(), None, now)
        .await
        .unwrap();
    assert_eq!(status.senders[0].condition(now), "ok");
    // A throttle the provider asked for is not the operator's to clear: resuming a sender that
    // is only throttled leaves the throttle in place and says until when.
    let until = stores
        .senders()
        .throttle("main", std::time::Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(
        resume_sender(&settings, &env(), "main").await.unwrap(),
        SenderResumed::NotBlocked(Some(until))
    );
    assert_eq!(
        stores
            .senders()
            .sender("main")
            .await
            .unwrap()
            .throttled_until,
        Some(until)
    );
}

#[tokio::test]
async fn resume_run_sets_a_paused_run_active_and_leaves_a_cancelled_one() {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(dir.path(), 2);
    let stores = open_store(&settings, &env()).await.unwrap();
    let file = CampaignFile::load(&dir.path().join("c.yaml"), Utc::now()).unwrap();
    let run = schedule(&stores, &file, &settings, Utc::now())
        .await
        .unwrap()
        .run;
    stores
        .runs()
        .pause(&run, "herald", "template errors")
        .await
        .unwrap();
    assert_eq!(
        resume_run(&stores, &run, Operator::Cli).await.unwrap(),
        RunResumed::Resumed {
            by: Some("herald".into()),
            reason: Some("template errors".into())
        }
    );
    let record = stores.runs().run(&run).await.unwrap().unwrap();
    assert_eq!(record.state, RunState::Active);
    assert_eq!(
        resume_run(&stores, &run, Operator::Cli).await.unwrap(),
        RunResumed::AlreadyActive
    );
    stores
        .runs()
        .set_run_state(&run, RunState::Cancelled)
        .await
        .unwrap();
    let error = resume_run(&stores, &run, Operator::Cli).await.unwrap_err();
    assert!(error.to_string().contains("is cancelled"), "{error}");
}

/// The admin API's path (`Operator::Api`) through the same functions as the CLI: a pause keeps
/// its first reason, a blank reason gets the default, cancel ends the queued deliveries
/// `skipped(cancelled)` and the counts add up; nothing resumes a cancelled run.
#[tokio::test]
async fn pause_and_cancel_through_run_control() {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(dir.path(), 3);
    let stores = open_store(&settings, &env()).await.unwrap();
    let file = CampaignFile::load(&dir.path().join("c.yaml"), Utc::now()).unwrap();
    let run = schedule(&stores, &file, &settings, Utc::now())
        .await
        .unwrap()
        .run;
    assert_eq!(
        pause_run(&stores, &run, Operator::Api, Some("  "))
            .await
            .unwrap(),
        RunPaused::Paused
    );
    let record = stores.runs().run(&run).await.unwrap().unwrap();
    assert_eq!(record.state, RunState::Paused);
    assert_eq!(record.state_reason.as_deref(), Some(DEFAULT_REASON));
    assert_eq!(record.paused_by.as_deref(), Some("operator (api)"));
    let RunPaused::AlreadyPaused { by, reason } =
        pause_run(&stores, &run, Operator::Cli, Some("later"))
            .await
            .unwrap()
    else {
        panic!("paused twice")
    };
    assert_eq!(
        (by.as_deref(), reason.as_deref()),
        (Some("operator (api)"), Some(DEFAULT_REASON))
    );
    let bad = pause_run(&stores, &run, Operator::Api, Some("a\nb"))
        .await
        .unwrap_err();
    assert!(bad.to_string().starts_with("reason:"), "{bad}");

    let cancelled = cancel_run(&stores, &run, Operator::Api).await.unwrap();
    assert!(!cancelled.already);
    assert_eq!(cancelled.ended, 3);
    assert_eq!(cancelled.counts.total(), 3);
    assert_eq!(cancelled.counts.skipped.get("cancelled"), Some(&3));
    let again = cancel_run(&stores, &run, Operator::Api).await.unwrap();
    assert!(again.already && again.ended == 0);
    let error = resume_run(&stores, &run, Operator::Api).await.unwrap_err();
    assert!(error.to_string().contains("is cancelled"), "{error}");
}

/// The worker role works runs it never registered (rebuilt from their stored text) until its
/// shutdown fires, then returns what each sender's worker did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_role_sends_every_scheduled_run_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(dir.path(), 12);
    let stores = Arc::new(open_store(&settings, &env()).await.unwrap());
    let file = CampaignFile::load(&dir.path().join("c.yaml"), Utc::now()).unwrap();
    let run = schedule(&*stores, &file, &settings, Utc::now())
        .await
        .unwrap()
        .run;
    let signal = ShutdownSignal::new();
    let worker = {
        let workers = Workers::build(
            &stores,
            &settings,
            &BTreeMap::new(),
            &WorkOptions::default(),
            process_worker_id(),
            Arc::new(SystemClock),
            signal.subscribe(),
        )
        .unwrap();
        assert_eq!(workers.senders(), ["main"]);
        tokio::spawn(workers.work())
    };
    // A generous cap so a broken build fails instead of hanging; not a performance limit.
    let mut sent = 0;
    for _ in 0..600 {
        sent = stores.deliveries().counts(&run).await.unwrap().sent;
        if sent == 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent, 12);
    signal.trigger();
    let reports = worker.await.unwrap().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].sender.as_str(), reports[0].sent), ("main", 12));
    let lines = std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 12);

    // A sender the config lacks is refused before anything works.
    let options = WorkOptions {
        senders: vec!["nobody".into()],
        ..WorkOptions::default()
    };
    let Err(error) = Workers::build(
        &stores,
        &settings,
        &BTreeMap::new(),
        &options,
        process_worker_id(),
        Arc::new(SystemClock),
        Shutdown::never(),
    ) else {
        panic!("a sender the config lacks was accepted")
    };
    assert!(error.to_string().contains("--sender nobody"), "{error}");
}

/// A run stored by an older herald (no sender, no campaign text) whose audience was expanded:
/// scheduling its campaign again makes it adopt both, so workers' scopes include it.
#[tokio::test]
async fn an_older_expanded_run_adopts_its_sender_and_text_when_scheduled_again() {
    let dir = tempfile::tempdir().unwrap();
    let settings = project(dir.path(), 2);
    let stores = open_store(&settings, &env()).await.unwrap();
    let run = herald_core::RunId::parse("roles@2026-01-01T00:00").unwrap();
    let older = herald_store::NewRun {
        run: run.clone(),
        campaign: herald_core::CampaignId::parse("roles").unwrap(),
        purpose: herald_core::Purpose::Transactional,
        source: "c.yaml".into(),
        sender: None,
        campaign_text: None,
        at_least_once: false,
        audience_sha256: None,
    };
    assert!(stores.runs().create_run(&older, Utc::now()).await.unwrap());
    stores.runs().finish_expansion(&run, 0).await.unwrap();
    let file = CampaignFile::load(&dir.path().join("c.yaml"), Utc::now()).unwrap();
    let scheduled = schedule(&stores, &file, &settings, Utc::now())
        .await
        .unwrap();
    assert_eq!(scheduled.run, run);
    assert!(scheduled.expansion.already_expanded);
    let record = stores.runs().run(&run).await.unwrap().unwrap();
    assert_eq!(record.run.sender.as_deref(), Some("main"));
    assert_eq!(
        record.run.campaign_text.as_deref(),
        Some(file.text.as_str())
    );
}
