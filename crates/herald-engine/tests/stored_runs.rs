//! A worker works runs it did not register by rebuilding their campaign from the text the run
//! stored; a run whose campaign cannot be rebuilt is paused with the reason, not retried at
//! every step.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use herald_channel::{Accepted, Channel, OutgoingMessage, SendError};
use herald_core::clock::Clock;
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, Scope};
use herald_engine::expand::{RunSource, expand};
use herald_engine::worker::{Step, Worker};
use herald_store::{
    Consents, Deliveries, RunState, Runs, StoreTime, StoredConsent, Stores, WorkScope, WorkerId,
};
use herald_store_sqlite::SqliteStores;
use herald_testkit::TokioClock;

#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

impl Channel for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        self.0.lock().unwrap().push(message.recipient.clone());
        Ok(Accepted::default())
    }
}

const YAML: &str = "id: promo\npurpose: marketing\naudience: { source: people.csv }\n\
                    template: { name: promo, language: en }\n\
                    schedule: { at: 2026-11-30T10:00, in: recipient }\n\
                    send_window: { hours: { daily: \"00:00-24:00\" } }\nspread: 1s\n";

fn now() -> DateTime<Utc> {
    "2026-11-30T10:00:05Z".parse().unwrap()
}

/// Two opted-in recipients, the campaign expanded with `text` stored as its campaign text,
/// and a worker of its sender that registered nothing. The audience file is deleted after the
/// expansion: a worker elsewhere does not have it.
async fn stored_with(
    text: &str,
) -> (
    tempfile::TempDir,
    Arc<SqliteStores>,
    Arc<Recording>,
    Arc<Worker<SqliteStores, Recording>>,
    herald_core::RunId,
) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("people.csv"),
        "id,phone,timezone\na,+79165000001,Etc/UTC\nb,+79165000002,Etc/UTC\n",
    )
    .unwrap();
    let file = dir.path().join("c.yaml");
    std::fs::write(&file, YAML).unwrap();
    let campaign = herald_campaign::load(&file, now()).unwrap();
    let clock = Arc::new(TokioClock::new(now()));
    let time = StoreTime::Clock(Arc::clone(&clock) as Arc<dyn Clock>);
    let stores = Arc::new(SqliteStores::open_with(&dir.path().join("h.db"), time).unwrap());
    let opt_ins: Vec<StoredConsent> = ["+79165000001", "+79165000002"]
        .iter()
        .map(|phone| StoredConsent {
            channel: "whatsapp".into(),
            phone: PhoneNumber::parse(phone, None).unwrap(),
            event: ConsentEvent {
                kind: ConsentKind::OptIn,
                scope: Scope::All,
                occurred_at: "2026-11-01T00:00:00Z".parse().unwrap(),
                source: "form".into(),
                proof: None,
            },
        })
        .collect();
    stores.consents().append(&opt_ins, now()).await.unwrap();
    let path = file.display().to_string();
    let source = RunSource {
        path: &path,
        sender: "main",
        text,
    };
    let (run, _) = expand(&*stores, &campaign, source, now()).await.unwrap();
    std::fs::remove_file(dir.path().join("people.csv")).unwrap();
    std::fs::remove_file(&file).unwrap();
    let channel = Arc::new(Recording::default());
    let worker = Arc::new(Worker::new(
        Arc::clone(&stores),
        Arc::clone(&channel),
        clock,
        WorkerId::parse("test/1/0").unwrap(),
        WorkScope {
            sender: "main".into(),
            runs: None,
        },
        NonZeroU32::new(100).unwrap(),
        10,
    ));
    (dir, stores, channel, worker, run)
}

#[tokio::test(start_paused = true)]
async fn a_worker_rebuilds_an_unregistered_runs_campaign_from_the_store() {
    let (_dir, stores, channel, worker, run) = stored_with(YAML).await;
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    let mut sent = channel.0.lock().unwrap().clone();
    sent.sort();
    assert_eq!(sent, ["a", "b"]);
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!(counts.sent, 2, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_run_whose_stored_campaign_does_not_parse_is_paused_with_the_reason() {
    let (_dir, stores, channel, worker, run) = stored_with("id: [not a campaign").await;
    let _ = worker.step().await.unwrap();
    assert_eq!(worker.step().await.unwrap(), Step::Idle(None));
    assert!(channel.0.lock().unwrap().is_empty());
    let record = stores.runs().run(&run).await.unwrap().unwrap();
    assert_eq!(record.state, RunState::Paused);
    let why = record.state_reason.unwrap_or_default();
    assert!(why.contains("does not parse"), "{why}");
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!(counts.queued, 2, "nothing lost: {counts:?}");
}
