//! What a provider's answers do beyond ending the delivery: an opt-out recorded as consent, a
//! sender blocked in the store (not its run paused), the messaging tier, a pair-rate limit,
//! template errors that pause the run.

mod common;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use herald_channel::{Accepted, Channel, OutgoingMessage, ProviderAction, SendError};
use herald_core::{ConsentKind, PhoneNumber, Scope};
use herald_engine::expand::expand;
use herald_engine::worker::{Step, Worker};
use herald_store::{Consents, Deliveries, Senders, Stores};

use common::*;

/// Answers like a provider that refuses some recipients with a given code and action.
struct Refusing {
    refuse: BTreeMap<String, (String, Option<ProviderAction>)>,
    sent: Mutex<Vec<String>>,
}

impl Channel for Refusing {
    fn name(&self) -> &'static str {
        "refusing"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        if let Some((code, action)) = self.refuse.get(&message.recipient) {
            return Err(SendError::Rejected {
                code: code.clone(),
                detail: "refused by the test".into(),
                action: *action,
            });
        }
        self.sent.lock().unwrap().push(message.recipient.clone());
        Ok(Accepted::default())
    }
}

fn refusing(refuse: &[(&str, &str, Option<ProviderAction>)]) -> Arc<Refusing> {
    let refuse = refuse
        .iter()
        .map(|(r, c, a)| ((*r).to_owned(), ((*c).to_owned(), *a)))
        .collect();
    Arc::new(Refusing {
        refuse,
        sent: Mutex::new(Vec::new()),
    })
}

#[tokio::test(start_paused = true)]
async fn a_provider_opt_out_is_recorded_and_later_marketing_skips_the_phone() {
    let s = setup(3, "", at("2026-11-30T07:30:00Z")).await;
    let channel = refusing(&[("r1", "131050", Some(ProviderAction::OptOut))]);
    let worker = worker_for(&s, Arc::clone(&channel));
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(counts.failed.get("131050"), Some(&1), "{counts:?}");
    let phone = PhoneNumber::parse("+79162000001", None).unwrap();
    let events = s
        .stores
        .consents()
        .events("whatsapp", &phone)
        .await
        .unwrap();
    let last = &events.last().unwrap().event;
    assert_eq!(
        (last.kind, last.scope, last.source.as_str()),
        (ConsentKind::OptOut, Scope::Marketing, "webhook:131050")
    );
    // A later marketing campaign to the same people skips that phone.
    let yaml = std::fs::read_to_string(s._dir.path().join("c.yaml"))
        .unwrap()
        .replace("id: promo", "id: promo-later");
    std::fs::write(s._dir.path().join("later.yaml"), yaml).unwrap();
    let later = herald_campaign::load(&s._dir.path().join("later.yaml"), s.clock.now_()).unwrap();
    let (run2, _) = expand(&*s.stores, &later, registered("later.yaml"), s.clock.now_())
        .await
        .unwrap();
    s.worker.register(&run2, later);
    // Past the new run's spread.
    set(&s.clock, at("2026-11-30T08:00:00Z")).await;
    drain(&s).await;
    let counts = s.stores.deliveries().counts(&run2).await.unwrap();
    assert_eq!(counts.skipped.get("opted_out"), Some(&1), "{counts:?}");
    assert_eq!(counts.sent, 2);
}

#[tokio::test(start_paused = true)]
async fn a_sender_block_blocks_the_sender_not_the_run_and_keeps_deliveries_queued() {
    let s = setup(5, "", at("2026-11-30T07:30:00Z")).await;
    let block = Some(ProviderAction::BlockSender);
    let channel = refusing(&[
        ("r0", "131048", block),
        ("r1", "131048", block),
        ("r2", "131048", block),
        ("r3", "131048", block),
        ("r4", "131048", block),
    ]);
    let worker = worker_for(&s, Arc::clone(&channel));
    let _ = worker.step().await.unwrap();
    assert_eq!(
        worker.step().await.unwrap(),
        Step::Idle(None),
        "a blocked sender takes nothing more"
    );
    let state = s.stores.senders().sender("main").await.unwrap();
    let blocked = state.blocked.expect("the sender is blocked in the store");
    assert_eq!(blocked.code, "131048");
    let record = herald_store::Runs::run(s.stores.runs(), &s.run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, herald_store::RunState::Active);
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(
        (counts.queued, counts.sending, counts.sent),
        (5, 0, 0),
        "{counts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn recipients_over_the_messaging_tier_are_deferred_not_failed() {
    let s = setup(251, "", at("2026-11-30T07:30:00Z")).await;
    let channel = Arc::new(Recording {
        clock: Arc::clone(&s.clock),
        sent: Mutex::new(Vec::new()),
    });
    let worker = Arc::new(
        Worker::new(
            Arc::clone(&s.stores),
            Arc::clone(&channel),
            s.clock.clone(),
            test_worker_id(),
            main_scope(),
            NonZeroU32::new(10_000).unwrap(),
            500,
        )
        .with_tier(250),
    );
    let campaign = herald_campaign::load(&s._dir.path().join("c.yaml"), s.clock.now_()).unwrap();
    worker.register(&s.run, campaign);
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    assert_eq!(
        channel.sent.lock().unwrap().len(),
        250,
        "the 251st unique recipient within 24 h waits"
    );
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!((counts.sent, counts.queued), (250, 1), "{counts:?}");
    let (wave, _) = counts.next_wave.unwrap();
    assert!(
        wave >= at("2026-12-01T07:30:00Z"),
        "deferred until the first send leaves the window: {wave}"
    );
}

/// Refuses one recipient with the pair-rate limit (WhatsApp 131056), accepts the others.
struct PairRate {
    limited: String,
    sent: Mutex<Vec<String>>,
}

impl Channel for PairRate {
    fn name(&self) -> &'static str {
        "pair-rate"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        if message.recipient == self.limited {
            return Err(SendError::Throttled {
                retry_after: Some(std::time::Duration::from_secs(60)),
                scope: herald_channel::ThrottleScope::Recipient,
            });
        }
        self.sent.lock().unwrap().push(message.recipient.clone());
        Ok(Accepted::default())
    }
}

#[tokio::test(start_paused = true)]
async fn a_pair_rate_limit_slows_only_that_recipient() {
    let s = setup(4, "", at("2026-11-30T07:30:00Z")).await;
    let channel = Arc::new(PairRate {
        limited: "r1".into(),
        sent: Mutex::new(Vec::new()),
    });
    let worker = worker_for(&s, Arc::clone(&channel));
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    assert_eq!(channel.sent.lock().unwrap().len(), 3);
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!((counts.sent, counts.queued), (3, 1), "{counts:?}");
    let (retry, _) = counts.next_wave.unwrap();
    assert!(
        retry >= at("2026-11-30T07:31:00Z"),
        "r1 waits its Retry-After: {retry}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_131050_in_a_later_status_opts_the_phone_out_of_later_marketing() {
    let s = setup(2, "", at("2026-11-30T07:30:00Z")).await;
    drain(&s).await;
    assert_eq!(s.channel.sent.lock().unwrap().len(), 2);
    // The status arrives after the send: the message reached nobody, the user stopped promotions.
    let phone = PhoneNumber::parse("+79162000000", None).unwrap();
    let class = herald_engine::statuses::record_failed_status(
        &*s.stores,
        "whatsapp",
        &phone,
        131050,
        at("2026-11-30T07:45:00Z"),
    )
    .await
    .unwrap();
    assert!(
        matches!(
            class,
            herald_channel::whatsapp::Classification::OptOut { .. }
        ),
        "{class:?}"
    );
    let other = herald_engine::statuses::record_failed_status(
        &*s.stores,
        "whatsapp",
        &phone,
        131026,
        at("2026-11-30T07:46:00Z"),
    )
    .await
    .unwrap();
    assert!(!matches!(
        other,
        herald_channel::whatsapp::Classification::OptOut { .. }
    ));
    let yaml = std::fs::read_to_string(s._dir.path().join("c.yaml"))
        .unwrap()
        .replace("id: promo", "id: promo-next");
    std::fs::write(s._dir.path().join("next.yaml"), yaml).unwrap();
    let next = herald_campaign::load(&s._dir.path().join("next.yaml"), s.clock.now_()).unwrap();
    set(&s.clock, at("2026-11-30T09:00:00Z")).await;
    let (run2, _) = expand(&*s.stores, &next, registered("next.yaml"), s.clock.now_())
        .await
        .unwrap();
    s.worker.register(&run2, next);
    drain(&s).await;
    let counts = s.stores.deliveries().counts(&run2).await.unwrap();
    assert_eq!(counts.skipped.get("opted_out"), Some(&1), "{counts:?}");
    assert_eq!(counts.sent, 1);
}

#[tokio::test(start_paused = true)]
async fn repeated_template_errors_pause_the_run_with_the_reason() {
    let s = setup(5, "", at("2026-11-30T07:30:00Z")).await;
    let all: Vec<(String, (String, Option<ProviderAction>))> = (0..5)
        .map(|i| {
            let error = ("132001".to_owned(), Some(ProviderAction::TemplateError));
            (format!("r{i}"), error)
        })
        .collect();
    let channel = Arc::new(Refusing {
        refuse: all.into_iter().collect(),
        sent: Mutex::new(Vec::new()),
    });
    let worker = worker_for(&s, Arc::clone(&channel));
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    let record = herald_store::Runs::run(s.stores.runs(), &s.run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, herald_store::RunState::Paused);
    assert!(
        record
            .state_reason
            .unwrap_or_default()
            .contains("(code 132001)")
    );
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(
        (counts.queued, counts.sent),
        (5, 0),
        "nothing is lost while paused: {counts:?}"
    );
}
