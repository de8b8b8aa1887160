//! The worker step against a real SQLite file, with the test's clock and a recording channel.

mod common;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use chrono::TimeDelta;
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, Scope};
use herald_engine::expand::expand;
use herald_engine::worker::{Step, Worker};
use herald_store::{Consents, Deliveries, StoredConsent, Stores};
use herald_store_sqlite::SqliteStores;

use common::*;

#[tokio::test(start_paused = true)]
async fn deferred_deliveries_go_out_when_the_window_opens_spread_over_the_spread() {
    let s = setup(300, "", at("2026-11-30T03:00:00Z")).await; // 06:00 MSK: before the window
    assert_eq!(
        s.worker.step().await.unwrap(),
        Step::Idle(Some(
            s.stores.deliveries().next_due().await.unwrap().unwrap()
        ))
    );
    assert!(
        s.channel.sent.lock().unwrap().is_empty(),
        "nothing before the window"
    );
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.queued, 300);
    let (wave, _) = counts.next_wave.unwrap();
    assert!(
        wave >= at("2026-11-30T07:00:00Z") && wave < at("2026-11-30T07:10:00Z"),
        "{wave}"
    );
    // Walk the clock through 10:00-10:10 MSK a minute at a time.
    let mut per_minute = BTreeMap::new();
    for minute in 0..=10 {
        set(
            &s.clock,
            at("2026-11-30T07:00:00Z") + TimeDelta::minutes(minute),
        )
        .await;
        let before = s.channel.sent.lock().unwrap().len();
        drain(&s).await;
        per_minute.insert(minute, s.channel.sent.lock().unwrap().len() - before);
    }
    let total: usize = per_minute.values().sum();
    assert_eq!(total, 300, "{per_minute:?}");
    assert!(
        per_minute.values().all(|n| *n < 60),
        "a thundering minute: {per_minute:?}"
    );
    assert!(
        per_minute.values().filter(|n| **n > 0).count() >= 9,
        "{per_minute:?}"
    );
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.sent, 300);
}

#[tokio::test(start_paused = true)]
async fn an_opt_out_while_deferred_stops_the_delivery_and_an_old_opt_in_cannot_undo_it() {
    let s = setup(3, "", at("2026-11-30T03:00:00Z")).await;
    drain(&s).await;
    let phone = PhoneNumber::parse("+79162000001", None).unwrap();
    let event = |kind, at_: &str| StoredConsent {
        channel: "whatsapp".into(),
        phone: phone.clone(),
        event: ConsentEvent {
            kind,
            scope: Scope::All,
            occurred_at: at(at_),
            source: "cli".into(),
            proof: None,
        },
    };
    s.stores
        .consents()
        .append(
            &[event(ConsentKind::OptOut, "2026-11-30T04:00:00Z")],
            s.clock.now_(),
        )
        .await
        .unwrap();
    // An opt-in that happened earlier but arrives later.
    s.stores
        .consents()
        .append(
            &[event(ConsentKind::OptIn, "2026-11-29T00:00:00Z")],
            s.clock.now_(),
        )
        .await
        .unwrap();
    set(&s.clock, at("2026-11-30T08:00:00Z")).await;
    drain(&s).await;
    let sent: Vec<String> = s
        .channel
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(r, _)| r.clone())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(!sent.contains(&"r1".to_owned()));
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.skipped.get("opted_out"), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn deliveries_that_cannot_go_out_before_expiry_end_expired() {
    let s = setup(5, "", at("2026-11-30T03:00:00Z")).await;
    // Nobody runs the worker until Wednesday evening: past the 48 h expiry.
    set(&s.clock, at("2026-12-02T08:00:00Z")).await;
    drain(&s).await;
    assert!(s.channel.sent.lock().unwrap().is_empty());
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.expired, 5, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn frequency_caps_count_sends_made_meanwhile() {
    let s = setup(
        2,
        "frequency_cap:\n  - { max: 1, per: 7d, scope: purpose }\n",
        at("2026-11-30T07:30:00Z"),
    )
    .await;
    drain(&s).await;
    assert_eq!(s.channel.sent.lock().unwrap().len(), 2);
    // A second campaign of the same purpose to the same people, an hour later: capped.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        s._dir.path().join("people.csv"),
        dir.path().join("people.csv"),
    )
    .unwrap();
    let yaml = std::fs::read_to_string(s._dir.path().join("c.yaml"))
        .unwrap()
        .replace("id: promo", "id: promo-two");
    std::fs::write(dir.path().join("c.yaml"), yaml).unwrap();
    let second = herald_campaign::load(&dir.path().join("c.yaml"), s.clock.now_()).unwrap();
    set(&s.clock, at("2026-11-30T08:30:00Z")).await;
    let (run2, _) = expand(&*s.stores, &second, registered("c.yaml"), s.clock.now_())
        .await
        .unwrap();
    s.worker.register(&run2, second);
    drain(&s).await;
    assert_eq!(s.channel.sent.lock().unwrap().len(), 2, "the cap must hold");
    let counts = s.stores.deliveries().counts(&run2).await.unwrap();
    assert_eq!(
        counts.skipped.get("frequency_capped"),
        Some(&2),
        "{counts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn expanding_twice_creates_no_second_delivery() {
    let s = setup(20, "", at("2026-11-30T07:30:00Z")).await;
    let campaign = herald_campaign::load(&s._dir.path().join("c.yaml"), s.clock.now_()).unwrap();
    let (run, again) = expand(&*s.stores, &campaign, registered("c.yaml"), s.clock.now_())
        .await
        .unwrap();
    assert_eq!(run, s.run);
    assert!(again.already_expanded);
    assert_eq!(again.total, 20);
    drain(&s).await;
    assert_eq!(s.channel.sent.lock().unwrap().len(), 20);
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_recipient_id_is_counted_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("people.csv"),
        "id,phone,timezone\nsame,+79163000001,Europe/Moscow\nsame,+79163000002,Europe/Moscow\n",
    )
    .unwrap();
    let yaml = "id: dup\npurpose: transactional\naudience: { source: people.csv }\ntemplate: { name: t, language: en }\n\
                schedule: { at: 2026-11-30T10:00, in: recipient }\n";
    std::fs::write(dir.path().join("c.yaml"), yaml).unwrap();
    let campaign =
        herald_campaign::load(&dir.path().join("c.yaml"), at("2026-11-30T08:00:00Z")).unwrap();
    let stores = SqliteStores::open(&dir.path().join("h.db")).unwrap();
    let (run, expansion) = expand(
        &stores,
        &campaign,
        registered("c.yaml"),
        at("2026-11-30T08:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(expansion.total, 2, "both rows are deliveries of the run");
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!(counts.skipped.get("duplicate"), Some(&1), "{counts:?}");
    assert_eq!(counts.queued, 1);
}

#[tokio::test(start_paused = true)]
async fn a_worker_never_sends_another_runs_deliveries() {
    let s = setup(3, "", at("2026-11-30T07:30:00Z")).await;
    // A second worker on the same store, for another sender: it must not touch `promo`.
    let other = Arc::new(Recording {
        clock: Arc::clone(&s.clock),
        sent: Mutex::new(Vec::new()),
    });
    let stranger = Arc::new(Worker::new(
        Arc::clone(&s.stores),
        Arc::clone(&other),
        s.clock.clone(),
        herald_store::WorkerId::parse("test/2/0").unwrap(),
        herald_store::WorkScope {
            sender: "other".into(),
            runs: None,
        },
        NonZeroU32::new(10_000).unwrap(),
        500,
    ));
    set(&s.clock, at("2026-11-30T08:00:00Z")).await;
    assert_eq!(stranger.step().await.unwrap(), Step::Idle(None));
    assert!(other.sent.lock().unwrap().is_empty());
    drain(&s).await;
    assert_eq!(s.channel.sent.lock().unwrap().len(), 3);
}
