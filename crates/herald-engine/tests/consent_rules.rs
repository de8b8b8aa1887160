//! The worker's consent check against a real SQLite log (design §1.1): events dated ahead of
//! their recording, and the channel consent is read on.

mod common;
use common::{at, main_scope, registered, store_time, test_worker_id};

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use herald_channel::{Accepted, Channel, OutgoingMessage, SendError};
use herald_core::{ConsentChannel, ConsentEvent, ConsentKind, PhoneNumber, Scope};
use herald_engine::expand::expand;
use herald_engine::worker::{Step, Worker};
use herald_store::{Consents, Deliveries, RunCounts, StoredConsent, Stores};
use herald_store_sqlite::SqliteStores;
use herald_testkit::TokioClock;

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

fn phone(i: usize) -> PhoneNumber {
    PhoneNumber::parse(&format!("+7916{:07}", 3_000_000 + i), None).unwrap()
}

fn event(channel: &str, i: usize, kind: ConsentKind, occurred_at: DateTime<Utc>) -> StoredConsent {
    StoredConsent {
        channel: channel.into(),
        phone: phone(i),
        event: ConsentEvent {
            kind,
            scope: Scope::Marketing,
            occurred_at,
            source: "test".into(),
            proof: None,
        },
    }
}

/// Runs a marketing campaign to `n` recipients (`r0`, `r1`, …) due well before `now`, with the
/// consent `log` (each entry appended at its own recording instant) and a worker checking
/// `channel`; returns who was sent to and the run's counts.
async fn send_with(
    n: usize,
    log: &[(StoredConsent, DateTime<Utc>)],
    channel: Option<&str>,
    now: DateTime<Utc>,
) -> (Vec<String>, RunCounts) {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..n {
        csv.push_str(&format!("r{i},{},Etc/UTC\n", phone(i).expose_e164()));
    }
    std::fs::write(dir.path().join("people.csv"), csv).unwrap();
    let yaml = "id: promo\npurpose: marketing\naudience: { source: people.csv }\n\
                template: { name: promo, language: en }\n\
                schedule: { at: 2026-11-30T10:00, in: recipient }\n\
                send_window: { hours: { mon-sun: \"00:00-24:00\" } }\nspread: 5s\n";
    std::fs::write(dir.path().join("c.yaml"), yaml).unwrap();
    let campaign = herald_campaign::load(
        &dir.path().join("c.yaml"),
        "2026-11-30T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let clock = Arc::new(TokioClock::new(now));
    let stores =
        Arc::new(SqliteStores::open_with(&dir.path().join("h.db"), store_time(&clock)).unwrap());
    for (stored, recorded_at) in log {
        stores
            .consents()
            .append(std::slice::from_ref(stored), *recorded_at)
            .await
            .unwrap();
    }
    let sent = Arc::new(Recording(Mutex::new(Vec::new())));
    let mut worker = Worker::new(
        Arc::clone(&stores),
        Arc::clone(&sent),
        clock,
        test_worker_id(),
        main_scope(),
        NonZeroU32::new(1000).unwrap(),
        100,
    );
    if let Some(channel) = channel {
        worker = worker.with_consent_channel(ConsentChannel::parse(channel).unwrap());
    }
    let worker = Arc::new(worker);
    let (run, _) = expand(&*stores, &campaign, registered("c.yaml"), now)
        .await
        .unwrap();
    worker.register(&run, campaign);
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    let counts = stores.deliveries().counts(&run).await.unwrap();
    let mut to = sent.0.lock().unwrap().clone();
    to.sort();
    (to, counts)
}

#[tokio::test(start_paused = true)]
async fn a_stored_opt_in_dated_ahead_grants_nothing_before_its_date() {
    let now = at("2026-11-30T12:00:00Z");
    let recorded = now - TimeDelta::days(1);
    let year_2099 = at("2099-01-01T00:00:00Z");
    use ConsentKind::{OptIn, OptOut};
    let log = [
        // r0: only an opt-in dated 2099 (stored before input dated ahead was refused).
        (event("whatsapp", 0, OptIn, year_2099), recorded),
        // r1: the case: that opt-in, then a real opt-out.
        (event("whatsapp", 1, OptIn, year_2099), recorded),
        (
            event("whatsapp", 1, OptOut, recorded + TimeDelta::hours(1)),
            recorded + TimeDelta::hours(1),
        ),
        // r2: an ordinary opt-in.
        (event("whatsapp", 2, OptIn, recorded), recorded),
        // r3: an opt-in, then a STOP dated a day ahead of its recording: it counts from when
        // it was recorded, at once, not from its date.
        (
            event("whatsapp", 3, OptIn, recorded - TimeDelta::days(30)),
            recorded,
        ),
        (
            event("whatsapp", 3, OptOut, now + TimeDelta::days(1)),
            now - TimeDelta::minutes(1),
        ),
    ];
    let (sent, counts) = send_with(4, &log, None, now).await;
    assert_eq!(sent, ["r2"]);
    assert_eq!(counts.skipped.get("no_consent"), Some(&1), "{counts:?}");
    assert_eq!(counts.skipped.get("opted_out"), Some(&2), "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn the_worker_reads_consent_on_its_channel_only() {
    let now = at("2026-11-30T12:00:00Z");
    let then = now - TimeDelta::days(1);
    use ConsentKind::OptIn;
    let log = [
        (event("sms", 0, OptIn, then), then),
        (event("whatsapp", 1, OptIn, then), then),
    ];
    // By default (a WhatsApp sender, or an outbox or webhook sender without consent_channel).
    let (sent, counts) = send_with(2, &log, None, now).await;
    assert_eq!(sent, ["r1"]);
    assert_eq!(counts.skipped.get("no_consent"), Some(&1));
    // A sender configured with consent_channel = "sms".
    let (sent, _) = send_with(2, &log, Some("sms"), now).await;
    assert_eq!(sent, ["r0"]);
}
