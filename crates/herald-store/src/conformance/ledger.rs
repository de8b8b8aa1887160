use std::collections::BTreeMap;

use herald_core::{ConsentEvent, ConsentKind, Outcome, RecordedConsent, Scope, SkipReason};

use super::*;
use crate::{
    Change, ClaimAnswer, QueueWaits, Refusal, RunState, StoredConsent, Terminal, WaitReason,
    Waiting,
};

/// Identical events are stored once (proof is not part of the identity); events come back in the
/// order they happened, per channel and phone.
#[doc(hidden)]
pub async fn consent_append_is_idempotent_and_ordered<S: Stores>(stores: &Suite<S>) {
    let c = stores.consents();
    let event = |kind, scope, at, source: &str, proof: Option<&str>| ConsentEvent {
        kind,
        scope,
        occurred_at: t(at),
        source: source.into(),
        proof: proof.map(Into::into),
    };
    let (opt_in, opt_out) = (ConsentKind::OptIn, ConsentKind::OptOut);
    let form = Some("https://example.com/form");
    let signup = event(opt_in, Scope::Marketing, 300, "import", form);
    let stop = event(opt_out, Scope::All, 100, "keyword:STOP", None);
    let start = event(opt_in, Scope::All, 200, "keyword:START", None);
    let on = |channel: &str, n, event: &ConsentEvent| StoredConsent {
        channel: channel.into(),
        phone: phone(n),
        event: event.clone(),
    };
    let first = [
        on("whatsapp", 1, &signup),
        on("whatsapp", 1, &stop),
        on("whatsapp", 1, &start),
    ];
    assert_eq!(c.append(&first, t(1000)).await.unwrap(), 3);
    let reproved = ConsentEvent {
        proof: Some("other".into()),
        ..signup.clone()
    };
    let again = [on("whatsapp", 1, &stop), on("whatsapp", 1, &reproved)];
    assert_eq!(c.append(&again, t(1001)).await.unwrap(), 0);
    let elsewhere = [on("webhook", 1, &signup), on("whatsapp", 2, &signup)];
    assert_eq!(c.append(&elsewhere, t(1002)).await.unwrap(), 2);
    let via_api = ConsentEvent {
        source: "api".into(),
        ..stop.clone()
    };
    assert_eq!(
        c.append(&[on("whatsapp", 1, &via_api)], t(1003))
            .await
            .unwrap(),
        1
    );
    let records = c.events("whatsapp", &phone(1)).await.unwrap();
    let events: Vec<ConsentEvent> = records.iter().map(|r| r.event.clone()).collect();
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[..2]
            .iter()
            .filter(|e| **e == stop || **e == via_api)
            .count(),
        2
    );
    assert_eq!(&events[2..], [start.clone(), signup.clone()]);
    // Each event comes back with when it was first recorded: appending it again (the re-import
    // above, at 1001) does not move that.
    let recorded_at = |event: &ConsentEvent| {
        records
            .iter()
            .find(|r| r.event == *event)
            .map(|r| r.recorded_at)
    };
    assert_eq!(recorded_at(&stop), Some(t(1000)));
    assert_eq!(recorded_at(&start), Some(t(1000)));
    assert_eq!(recorded_at(&via_api), Some(t(1003)));
    assert_eq!(
        c.events("webhook", &phone(1)).await.unwrap(),
        [RecordedConsent {
            event: signup,
            recorded_at: t(1002)
        }]
    );
    assert_eq!(c.events("whatsapp", &phone(3)).await.unwrap(), []);
}

/// An event dated after it was recorded comes back with both instants, unchanged: the fold, not
/// the store, decides what such an event means (an opt-in dated 2099 must not be clamped into
/// one that counts today).
#[doc(hidden)]
pub async fn consent_dated_ahead_keeps_both_instants<S: Stores>(stores: &Suite<S>) {
    let c = stores.consents();
    let ahead = StoredConsent {
        channel: "whatsapp".into(),
        phone: phone(1),
        event: ConsentEvent {
            kind: ConsentKind::OptIn,
            scope: Scope::Marketing,
            occurred_at: t(4_000_000_000),
            source: "legacy".into(),
            proof: None,
        },
    };
    assert_eq!(
        c.append(std::slice::from_ref(&ahead), t(10)).await.unwrap(),
        1
    );
    assert_eq!(
        c.events("whatsapp", &phone(1)).await.unwrap(),
        [RecordedConsent {
            event: ahead.event,
            recorded_at: t(10)
        }]
    );
}

/// A claim carrying what its decision knew of consent is refused when an event was recorded
/// since (on that channel, for that phone), in the same atomic step; the delivery stays queued to
/// be decided again. Events on another channel or for another phone do not matter.
#[doc(hidden)]
pub async fn a_claim_decided_on_stale_consent_is_refused<S: Stores>(stores: &Suite<S>) {
    let (f, d, c) = (
        Fixture::new(stores, "promo").await,
        stores.deliveries(),
        stores.consents(),
    );
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    let opt_in = |n, channel: &str, at| StoredConsent {
        channel: channel.into(),
        phone: phone(n),
        event: ConsentEvent {
            kind: ConsentKind::OptIn,
            scope: Scope::Marketing,
            occurred_at: t(at),
            source: "form".into(),
            proof: None,
        },
    };
    c.append(&[opt_in(1, "whatsapp", 0), opt_in(2, "whatsapp", 0)], t(1))
        .await
        .unwrap();
    // The decisions are made with the logs as they are now.
    let mut decided = Vec::new();
    for r in ["a", "b", "c"] {
        decided.push(f.decided(stores, r, 5).await);
    }
    // A STOP for b arrives after the decisions were made; c's log changes on another channel.
    let stop = StoredConsent {
        event: ConsentEvent {
            kind: ConsentKind::OptOut,
            scope: Scope::All,
            occurred_at: t(4),
            source: "keyword:STOP".into(),
            proof: None,
        },
        ..opt_in(2, "whatsapp", 0)
    };
    c.append(&[stop, opt_in(3, "sms", 0)], t(4)).await.unwrap();
    let group = ClaimGroup {
        owner: owner(),
        lease: LEASE,
        sender: generous(SENDER),
        claims: decided.clone(),
    };
    stores.at(5);
    let answers = d.claim(&group).await.unwrap();
    let refused: Vec<_> = answers
        .iter()
        .map(|a| match a {
            ClaimAnswer::Refused(refusal) => Some(refusal.clone()),
            ClaimAnswer::Claimed { .. } => None,
        })
        .collect();
    assert_eq!(refused, [None, Some(Refusal::ConsentChanged), None]);
    let counts = f.counts().await;
    assert_eq!((counts.sending, counts.queued), (2, 1));
    assert_eq!(due(stores, 5, 10).await, f.keys(&["b"]));
    assert_eq!(history(stores, 2, 0).await, []);
    // Decided again with the STOP in view, the same claim would go through (the engine would
    // not make it: the new decision is a skip), which shows only the count is checked.
    let again = f.decided(stores, "b", 6).await;
    assert_eq!(again.consent.events, 2);
    let group = ClaimGroup {
        claims: vec![again],
        ..group
    };
    stores.at(6);
    let answers = d.claim(&group).await.unwrap();
    assert!(
        matches!(answers[..], [ClaimAnswer::Claimed { .. }]),
        "{answers:?}"
    );
}

/// `finish` ends queued and sending deliveries, once.
#[doc(hidden)]
pub async fn finish_from_queued_and_sending<S: Stores>(stores: &Suite<S>) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    assert!(f.claim("b", 1).await);
    let no_consent = Outcome::Skipped(SkipReason::NoConsent);
    let detail = Some("no opt-in".into());
    let terminal = Terminal {
        outcome: no_consent,
        detail,
    };
    d.finish(&f.key("a"), &terminal, None, t(2)).await.unwrap();
    f.finish("b", Outcome::Sent).await.unwrap();
    let counts = f.counts().await;
    assert_eq!((counts.queued, counts.sending, counts.sent), (0, 0, 1));
    assert_eq!(counts.skipped, BTreeMap::from([("no_consent".into(), 1)]));
    assert_err(f.finish("a", Outcome::Sent).await, "Conflict");
    assert_err(f.finish("ghost", Outcome::Sent).await, "NotFound");
    assert_eq!(
        (due(stores, 100, 10).await, d.in_flight().await.unwrap()),
        (vec![], vec![])
    );
}
/// The batch reads return what the single reads return, phone by phone, in order.
#[doc(hidden)]
pub async fn batch_reads_match_single_reads<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "reads").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    assert!(f.claim("a", 5).await);
    let event = |n: u32, kind, at: i64| StoredConsent {
        channel: "whatsapp".into(),
        phone: phone(n),
        event: ConsentEvent {
            kind,
            scope: Scope::All,
            occurred_at: t(at),
            source: "test".into(),
            proof: None,
        },
    };
    stores
        .consents()
        .append(
            &[
                event(1, ConsentKind::OptIn, 1),
                event(1, ConsentKind::OptOut, 2),
                event(3, ConsentKind::OptIn, 3),
            ],
            t(4),
        )
        .await
        .expect("append");
    let phones = [phone(1), phone(2), phone(3)];
    let batch = stores
        .consents()
        .events_for("whatsapp", &phones)
        .await
        .expect("events_for");
    for (p, events) in phones.iter().zip(&batch) {
        assert_eq!(
            events,
            &stores
                .consents()
                .events("whatsapp", p)
                .await
                .expect("events")
        );
    }
    assert_eq!(batch.iter().map(Vec::len).collect::<Vec<_>>(), [2, 0, 1]);
    let histories = stores
        .deliveries()
        .history_for(&phones, t(0))
        .await
        .expect("history_for");
    assert_eq!(
        histories.iter().map(Vec::len).collect::<Vec<_>>(),
        [1, 0, 0]
    );
    assert_eq!(histories[0], history(stores, 1, 0).await);
}

/// A pause keeps its reason until the run is resumed; a cancelled run cannot be paused.
#[doc(hidden)]
pub async fn pause_records_its_reason<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "paused").await;
    let runs = stores.runs();
    runs.pause(&f.run, "herald", "provider code 131048: spam rate limit")
        .await
        .expect("pause");
    let record = runs.run(&f.run).await.expect("run").expect("exists");
    assert_eq!(record.state, RunState::Paused);
    assert_eq!(
        record.state_reason.as_deref(),
        Some("provider code 131048: spam rate limit")
    );
    assert_eq!(record.paused_by.as_deref(), Some("herald"));
    runs.set_run_state(&f.run, RunState::Active)
        .await
        .expect("resume");
    let record = runs.run(&f.run).await.expect("run").expect("exists");
    assert_eq!(
        (record.state, record.state_reason),
        (RunState::Active, None)
    );
    runs.set_run_state(&f.run, RunState::Cancelled)
        .await
        .expect("cancel");
    assert_err(runs.pause(&f.run, "herald", "too late").await, "Conflict");
    assert_err(
        runs.pause(&new_run("ghost").run, "herald", "no such run")
            .await,
        "NotFound",
    );
}

/// Each phone once, with its latest claim at or after `since`.
#[doc(hidden)]
pub async fn recent_recipients_are_unique_with_their_latest_send<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "tier").await;
    let g = Fixture::new(stores, "tier-two").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    g.insert(&[("a", 1, 0), ("c", 3, 0)]).await;
    assert!(f.claim("a", 10).await);
    assert!(f.claim("b", 20).await);
    assert!(g.claim("a", 30).await);
    assert!(g.claim("c", 5).await);
    let mut recent = stores
        .deliveries()
        .recent_recipients(t(8))
        .await
        .expect("recent_recipients");
    recent.sort_by(|x, y| x.0.expose_e164().cmp(y.0.expose_e164()));
    assert_eq!(recent, [(phone(1), t(30)), (phone(2), t(20))]);
}

/// The audience hash reads back as written, a resubmission with another hash changes nothing
/// (the run stays tied to the file it was created with), and a run may have none.
#[doc(hidden)]
pub async fn a_run_keeps_the_audience_hash_it_was_created_with<S: Stores>(stores: &Suite<S>) {
    let runs = stores.runs();
    let first = new_run("promo");
    assert!(runs.create_run(&first, t(0)).await.unwrap());
    let rewritten = NewRun {
        audience_sha256: Some(AudienceHash::from_bytes([0x3c; 32])),
        ..first.clone()
    };
    assert!(!runs.create_run(&rewritten, t(5)).await.unwrap());
    let stored = runs.run(&first.run).await.unwrap().expect("the run");
    assert_eq!(stored.run.audience_sha256, first.audience_sha256);
    let unhashed = NewRun {
        audience_sha256: None,
        ..new_run("older")
    };
    assert!(runs.create_run(&unhashed, t(0)).await.unwrap());
    let stored = runs.run(&unhashed.run).await.unwrap().expect("the run");
    assert_eq!(stored.run.audience_sha256, None);
}

/// Every synthetic key is a delivery of its own, beside real ids that look like one (the
/// forms of earlier versions, the word `invalid`) and beside a duplicate key longer than a
/// recipient id may be; all of them read back, and only the recipients are due.
#[doc(hidden)]
pub async fn synthetic_keys_never_meet_real_ids<S: Stores>(stores: &Suite<S>) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    let long = "x".repeat(128);
    let skipped = |reason| Outcome::Skipped(reason);
    let mut batch = vec![
        queued(&f.run, "invalid", 1, 0),
        queued(&f.run, "line:7", 2, 0),
        queued(&f.run, &format!("{}#line9", &long[6..]), 3, 0),
        queued(&f.run, &long, 4, 0),
        ended(&f.run, "line 7", skipped(SkipReason::InvalidRecipient)),
        ended(
            &f.run,
            &format!("{long} dup line 9"),
            skipped(SkipReason::Duplicate),
        ),
        ended(
            &f.run,
            &format!("{long} dup line 10"),
            skipped(SkipReason::Duplicate),
        ),
        ended(
            &f.run,
            "phone +4915110000004 dup line 11",
            skipped(SkipReason::Duplicate),
        ),
    ];
    let mut by_phone = queued(&f.run, "+4915110000005", 5, 0);
    let phone_id = RecipientId::parse("+4915110000005").expect("recipient id");
    by_phone.key.recipient = RecipientKey::Recipient(AudienceId::Phone(phone_id.clone()));
    if let Some(snapshot) = by_phone.recipient.as_mut() {
        snapshot.id = AudienceId::Phone(phone_id);
    }
    batch.push(by_phone.clone());
    batch.push(queued(&f.run, "+4915110000005", 6, 0));
    assert_eq!(d.insert_batch(&batch).await.unwrap(), 10);
    let counts = f.counts().await;
    assert_eq!((counts.total(), counts.queued), (10, 6), "{counts:?}");
    let due_now = d.due(t(0), 100).await.unwrap();
    let mut keys: Vec<String> = due_now
        .iter()
        .map(|d| d.key.recipient.to_string())
        .collect();
    keys.sort();
    let mut expected = vec![
        "+4915110000005".to_owned(),
        "invalid".to_owned(),
        "line:7".to_owned(),
        "phone +4915110000005".to_owned(),
        long.clone(),
        format!("{}#line9", &long[6..]),
    ];
    expected.sort();
    assert_eq!(keys, expected);
    let read_back = due_now
        .iter()
        .find(|d| d.key == by_phone.key)
        .expect("the phone-keyed delivery");
    assert_eq!(Some(&read_back.recipient), by_phone.recipient.as_ref());
}

/// `waits` splits the queue of one run into what is due and what waits, by reason, with the
/// earliest instant per reason; every change that queues a delivery records its reason, and a
/// paused run's queue waits for an operator whatever it was deferred for.
#[doc(hidden)]
pub async fn waits_count_the_queue_by_why_it_waits<S: Stores>(stores: &Suite<S>) {
    let (f, d) = (Fixture::new(stores, "waits").await, stores.deliveries());
    let other = Fixture::new(stores, "other").await;
    other.insert(&[("z", 9, 30)]).await;
    let rows = [("a", 1, 0), ("b", 2, 0), ("c", 3, 0), ("d", 4, 0)];
    f.insert(&[
        rows[0],
        rows[1],
        rows[2],
        rows[3],
        ("e", 5, 0),
        ("f", 6, 40),
    ])
    .await;
    let waits = |now: i64, before: Option<i64>| {
        let run = f.run.clone();
        async move { d.waits(&run, t(now), before.map(t)).await.expect("waits") }
    };
    let waiting = |count, next| Waiting {
        count,
        next: t(next),
    };
    // As inserted: due now, or waiting for the schedule (the fixture plans them so).
    assert_eq!(
        waits(0, None).await,
        QueueWaits {
            due: 5,
            waiting: BTreeMap::from([(WaitReason::Schedule, waiting(1, 40))]),
        }
    );
    d.defer(&f.key("a"), t(500), WaitReason::Window)
        .await
        .unwrap();
    let changes = [
        Change::Defer {
            key: f.key("b"),
            until: t(60),
            reason: WaitReason::Spread,
        },
        Change::Defer {
            key: f.key("c"),
            until: t(90),
            reason: WaitReason::Spread,
        },
    ];
    assert_eq!(d.apply(&changes, t(1)).await.unwrap(), [true, true]);
    assert!(f.claim("d", 1).await);
    d.requeue(&f.key("d"), t(120), Some(WaitReason::Throttle), &owner())
        .await
        .unwrap();
    assert!(f.claim("e", 1).await);
    d.requeue(&f.key("e"), t(1), None, &owner()).await.unwrap();
    let everything = QueueWaits {
        due: 1,
        waiting: BTreeMap::from([
            (WaitReason::Schedule, waiting(1, 40)),
            (WaitReason::Window, waiting(1, 500)),
            (WaitReason::Spread, waiting(2, 60)),
            (WaitReason::Throttle, waiting(1, 120)),
        ]),
    };
    assert_eq!(waits(10, None).await, everything);
    assert_eq!(everything.total(), 6);
    assert_eq!(everything.next(), Some(t(40)));
    // Due is as of `now`, whatever a delivery waited for.
    let later = waits(70, None).await;
    assert_eq!(later.due, 3, "{later:?}");
    assert_eq!(later.waiting[&WaitReason::Spread], waiting(1, 90));
    // Bounded: only what is due before `before` is looked at.
    assert_eq!(
        waits(10, Some(100)).await,
        QueueWaits {
            due: 1,
            waiting: BTreeMap::from([
                (WaitReason::Schedule, waiting(1, 40)),
                (WaitReason::Spread, waiting(2, 60)),
            ]),
        }
    );
    // Ended and sending deliveries are not queued.
    assert!(f.claim("e", 11).await);
    assert_eq!(waits(10, None).await.due, 0);
    f.finish("e", Outcome::Sent).await.unwrap();
    // A paused run waits for an operator, all of it.
    stores
        .runs()
        .pause(&f.run, "herald", "provider code 131048")
        .await
        .unwrap();
    assert_eq!(
        waits(70, None).await,
        QueueWaits {
            due: 0,
            waiting: BTreeMap::from([(WaitReason::Pause, waiting(5, 40))]),
        }
    );
    assert_err(d.waits(&new_run("ghost").run, t(0), None).await, "NotFound");
}
