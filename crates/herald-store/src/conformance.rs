//! The conformance suite: one macro that expands into named tests against any backend.
//! A backend's test file calls `herald_store::conformance_tests!(async_fn_returning_stores);`.
//!
//! The engine's guarantees (at most once, nothing lost, caps counted) rest on the ports behaving
//! alike in every backend, so each behaviour is written once here and every backend runs it. The
//! checks are plain async functions in this module; the macro only gives each one a named
//! `#[tokio::test]` in the caller's crate, which brings tokio as a dev-dependency (this crate
//! stays free of a runtime). Times are whole seconds from [`t`]`(0)`, as a backend may store
//! seconds.

use std::collections::BTreeMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::{
    AudienceId, CampaignId, ConsentEvent, ConsentKind, Outcome, PastSend, PhoneNumber, Purpose,
    RecipientId, RecipientKey, RecordedConsent, Region, RunId, Scope, SkipReason, TimeZone,
};

use crate::{
    AudienceHash, Change, ConsentSeen, Consents, Deliveries, DeliveryKey, Initial, NewDelivery,
    NewRun, QueueWaits, RecipientSnapshot, RunCounts, RunRecord, RunState, Runs, StoreError,
    StoreResult, StoredConsent, Stores, Terminal, WaitReason, Waiting,
};

/// Expands into one `#[tokio::test]` per behaviour of the ports. `$make` evaluates to an async
/// function or closure returning a fresh, empty `impl herald_store::Stores` on each call.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            conformance_create_run_once => create_run_once,
            conformance_insert_is_idempotent => insert_is_idempotent,
            conformance_due_respects_time_and_order => due_respects_time_and_order,
            conformance_begin_send_is_at_most_once => begin_send_is_at_most_once,
            conformance_begin_send_records_history => begin_send_records_history,
            conformance_requeue_removes_history => requeue_removes_history,
            conformance_failed_send_leaves_no_history => failed_send_leaves_no_history,
            conformance_in_flight_after_begin_send => in_flight_after_begin_send,
            conformance_paused_runs_are_not_due => paused_runs_are_not_due,
            conformance_cancel_ends_queued_deliveries => cancel_ends_queued_deliveries,
            conformance_counts_add_up => counts_add_up,
            conformance_consent_append_is_idempotent_and_ordered => consent_append_is_idempotent_and_ordered,
            conformance_consent_dated_ahead_keeps_both_instants => consent_dated_ahead_keeps_both_instants,
            conformance_finish_from_queued_and_sending => finish_from_queued_and_sending,
            conformance_defer_moves_due => defer_moves_due,
            conformance_apply_is_per_change_and_at_most_once => apply_is_per_change_and_at_most_once,
            conformance_due_in_only_the_given_runs => due_in_only_the_given_runs,
            conformance_batch_reads_match_single_reads => batch_reads_match_single_reads,
            conformance_pause_records_its_reason => pause_records_its_reason,
            conformance_recent_recipients_are_unique_with_their_latest_send => recent_recipients_are_unique_with_their_latest_send,
            conformance_a_claim_decided_on_stale_consent_is_refused => a_claim_decided_on_stale_consent_is_refused,
            conformance_a_run_keeps_the_audience_hash_it_was_created_with => a_run_keeps_the_audience_hash_it_was_created_with,
            conformance_synthetic_keys_never_meet_real_ids => synthetic_keys_never_meet_real_ids,
            conformance_waits_count_the_queue_by_why_it_waits => waits_count_the_queue_by_why_it_waits,
        );
    };
    (@each $make:expr; $($name:ident => $check:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                let stores = ($make)().await;
                $crate::conformance::$check(&stores).await;
            }
        )*
    };
}

// ---- fixtures ----

/// `T0 + offset` seconds; T0 is 2026-11-27T10:00:00Z.
#[doc(hidden)]
pub fn t(offset: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_773_600 + offset, 0).expect("in range")
}

/// A marketing run of campaign `name`, `<name>@2026-11-27T10:00`.
#[doc(hidden)]
pub fn new_run(name: &str) -> NewRun {
    let campaign = CampaignId::parse(name).expect("campaign id");
    NewRun {
        run: RunId::new(&campaign, "2026-11-27T10:00"),
        campaign,
        purpose: Purpose::Marketing,
        source: format!("id: {name}\n"),
        at_least_once: false,
        audience_sha256: Some(AudienceHash::from_bytes([0xa5; 32])),
    }
}

/// The `n`th test phone, a valid German mobile number.
#[doc(hidden)]
pub fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+49151{}", 10_000_000 + n), None).expect("valid phone")
}

/// A queued delivery of `run` to phone `n` due at `t(due)`, with a full snapshot.
#[doc(hidden)]
pub fn queued(run: &RunId, recipient: &str, n: u32, due: i64) -> NewDelivery {
    let id = RecipientId::parse(recipient).expect("recipient id");
    let attributes = [
        ("first_name", "Alexandra".into()),
        ("order", format!("ORD-{n}")),
    ];
    NewDelivery {
        key: DeliveryKey {
            run: run.clone(),
            recipient: RecipientKey::recipient(id.clone()),
        },
        recipient: Some(RecipientSnapshot {
            id: AudienceId::Given(id),
            phone: phone(n),
            zone: Some(TimeZone::parse("Europe/Berlin").expect("zone")),
            locale: Some("de-DE".into()),
            country: Some(Region::parse("DE").expect("region")),
            attributes: attributes.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            line: u64::from(n) + 1,
        }),
        scheduled_at: Some(t(due)),
        expires_at: Some(t(due) + TimeDelta::hours(6)),
        initial: Initial::Queued {
            due_at: t(due),
            wait: Some(WaitReason::Schedule),
        },
    }
}

/// A delivery decided at expansion, without a recipient (an unparsable row), under the key
/// `recipient` (a recipient id or a synthetic key such as `line 7`).
#[doc(hidden)]
pub fn ended(run: &RunId, recipient: &str, outcome: Outcome) -> NewDelivery {
    let recipient = RecipientKey::parse(recipient).expect("delivery key");
    let detail = Some("decided at expansion".into());
    NewDelivery {
        key: DeliveryKey {
            run: run.clone(),
            recipient,
        },
        recipient: None,
        scheduled_at: None,
        expires_at: None,
        initial: Initial::Ended(Terminal { outcome, detail }),
    }
}

/// A run in the store under test, with shorthands for the calls the checks repeat. Store errors
/// panic, except where a method returns the result.
#[doc(hidden)]
pub struct Fixture<'a, S> {
    /// The store.
    pub stores: &'a S,
    /// The run.
    pub run: RunId,
    campaign: CampaignId,
}

impl<'a, S: Stores> Fixture<'a, S> {
    /// Creates the run of campaign `name` at `t(0)`.
    pub async fn new(stores: &'a S, name: &str) -> Self {
        let run = new_run(name);
        assert!(
            stores
                .runs()
                .create_run(&run, t(0))
                .await
                .expect("create_run")
        );
        Self {
            stores,
            run: run.run,
            campaign: run.campaign,
        }
    }

    /// The key of `recipient`.
    pub fn key(&self, recipient: &str) -> DeliveryKey {
        let recipient = RecipientId::parse(recipient).expect("recipient id");
        DeliveryKey {
            run: self.run.clone(),
            recipient: RecipientKey::recipient(recipient),
        }
    }

    /// The keys of `recipients`.
    pub fn keys(&self, recipients: &[&str]) -> Vec<DeliveryKey> {
        recipients.iter().map(|r| self.key(r)).collect()
    }

    /// Inserts queued deliveries `(recipient, phone, due offset)`; returns how many were new.
    pub async fn insert(&self, rows: &[(&str, u32, i64)]) -> u64 {
        let batch: Vec<_> = rows
            .iter()
            .map(|(r, n, due)| queued(&self.run, r, *n, *due))
            .collect();
        self.stores
            .deliveries()
            .insert_batch(&batch)
            .await
            .expect("insert_batch")
    }

    /// The history entry a claim of this run at `t(at)` records.
    pub fn send(&self, at: i64) -> PastSend {
        PastSend {
            at: t(at),
            campaign: self.campaign.clone(),
            purpose: Purpose::Marketing,
        }
    }

    /// `begin_send` of `recipient` at `t(at)`.
    pub async fn claim(&self, recipient: &str, at: i64) -> bool {
        let d = self.stores.deliveries();
        d.begin_send(&self.key(recipient), &self.send(at), t(at))
            .await
            .expect("begin_send")
    }

    /// `finish` of `recipient` with `outcome` and no detail.
    pub async fn finish(&self, recipient: &str, outcome: Outcome) -> StoreResult<()> {
        let terminal = Terminal {
            outcome,
            detail: None,
        };
        self.stores
            .deliveries()
            .finish(&self.key(recipient), &terminal, t(3600))
            .await
    }

    /// The run's counts.
    pub async fn counts(&self) -> RunCounts {
        self.stores
            .deliveries()
            .counts(&self.run)
            .await
            .expect("counts")
    }
}

/// The keys due at `t(at)`, up to `limit`, in the order returned.
#[doc(hidden)]
pub async fn due<S: Stores>(stores: &S, at: i64, limit: usize) -> Vec<DeliveryKey> {
    let due = stores.deliveries().due(t(at), limit).await.expect("due");
    due.into_iter().map(|d| d.key).collect()
}

/// The history of phone `n` since `t(since)`.
#[doc(hidden)]
pub async fn history<S: Stores>(stores: &S, n: u32, since: i64) -> Vec<PastSend> {
    stores
        .deliveries()
        .history(&phone(n), t(since))
        .await
        .expect("history")
}

/// Asserts `result` is the error `expected` names (`"NotFound"`, `"Conflict"`).
#[doc(hidden)]
#[track_caller]
pub fn assert_err<T: std::fmt::Debug>(result: StoreResult<T>, expected: &str) {
    let matched = match &result {
        Err(StoreError::NotFound(_)) => expected == "NotFound",
        Err(StoreError::Conflict(_)) => expected == "Conflict",
        _ => false,
    };
    assert!(matched, "expected {expected}, got {result:?}");
}

/// Polls every future concurrently and returns their outputs in order (no runtime needed).
#[doc(hidden)]
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(move |cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        match pending {
            true => Poll::Pending,
            false => Poll::Ready(outputs.iter_mut().filter_map(Option::take).collect()),
        }
    })
    .await
}

// ---- checks ----

/// A run is created once; it reads back as written, and the list is newest first.
#[doc(hidden)]
pub async fn create_run_once<S: Stores>(stores: &S) {
    let (runs, promo, ghost) = (stores.runs(), new_run("promo"), new_run("ghost").run);
    assert!(runs.create_run(&promo, t(0)).await.unwrap());
    assert!(
        !runs.create_run(&promo, t(5)).await.unwrap(),
        "a resubmission is not a new run"
    );
    let state = RunState::Active;
    let record = RunRecord {
        run: promo.clone(),
        created_at: t(0),
        total: None,
        state,
        state_reason: None,
    };
    assert_eq!(runs.run(&promo.run).await.unwrap(), Some(record));
    assert!(runs.create_run(&new_run("later"), t(10)).await.unwrap());
    let listed: Vec<_> = runs
        .runs()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run)
        .collect();
    assert_eq!(listed, [new_run("later"), promo.clone()]);
    runs.finish_expansion(&promo.run, 42).await.unwrap();
    assert_eq!(runs.run(&promo.run).await.unwrap().unwrap().total, Some(42));
    assert_eq!(runs.run(&ghost).await.unwrap(), None);
    assert_err(runs.finish_expansion(&ghost, 1).await, "NotFound");
    assert_err(
        runs.set_run_state(&ghost, RunState::Paused).await,
        "NotFound",
    );
}

/// Re-inserting leaves existing rows untouched and counts only new ones.
#[doc(hidden)]
pub async fn insert_is_idempotent<S: Stores>(stores: &S) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    let invalid = ended(
        &f.run,
        "line 7",
        Outcome::Skipped(SkipReason::InvalidRecipient),
    );
    let mut batch = vec![
        queued(&f.run, "a", 1, 0),
        queued(&f.run, "b", 2, 0),
        invalid,
    ];
    assert_eq!(d.insert_batch(&batch).await.unwrap(), 3);
    batch[0] = queued(&f.run, "a", 1, 500);
    batch.push(queued(&f.run, "c", 3, 0));
    assert_eq!(d.insert_batch(&batch).await.unwrap(), 1);
    assert_eq!(d.insert_batch(&[]).await.unwrap(), 0);
    let counts = f.counts().await;
    assert_eq!((counts.total(), counts.queued), (4, 3));
    assert_eq!(
        counts.skipped,
        BTreeMap::from([("invalid_recipient".into(), 1)])
    );
    assert_eq!(
        due(stores, 0, 10).await,
        f.keys(&["a", "b", "c"]),
        "`a` moved to t+500"
    );
    let ghost = queued(&new_run("ghost").run, "a", 1, 0);
    assert_err(d.insert_batch(&[ghost]).await, "NotFound");
}

/// `due` returns what is due at `now`, earliest first, up to `limit`, with the snapshot intact.
#[doc(hidden)]
pub async fn due_respects_time_and_order<S: Stores>(stores: &S) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    f.insert(&[("e", 1, 30), ("b", 2, 10), ("d", 3, 20), ("a", 4, 40)])
        .await;
    let duplicate = ended(&f.run, "x", Outcome::Skipped(SkipReason::Duplicate));
    d.insert_batch(&[duplicate]).await.unwrap();
    assert_eq!(due(stores, 9, 10).await, []);
    assert_eq!(due(stores, 25, 10).await, f.keys(&["b", "d"]));
    assert_eq!(due(stores, 100, 2).await, f.keys(&["b", "d"]));
    assert_eq!(due(stores, 100, 10).await, f.keys(&["b", "d", "e", "a"]));
    let first = d.due(t(10), 1).await.unwrap().remove(0);
    let inserted = queued(&f.run, "b", 2, 10);
    assert_eq!(Some(first.recipient), inserted.recipient);
    assert_eq!(
        (first.scheduled_at, first.expires_at),
        (t(10), inserted.expires_at)
    );
    assert_eq!((first.due_at, first.attempts), (t(10), 0));
}

/// Of concurrent claims of one delivery, exactly one wins, and only it is recorded.
#[doc(hidden)]
pub async fn begin_send_is_at_most_once<S: Stores>(stores: &S) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    let names: Vec<String> = (0..8).map(|n| format!("r{n}")).collect();
    let rows: Vec<_> = (0..).zip(&names).map(|(n, r)| (r.as_str(), n, 0)).collect();
    f.insert(&rows).await;
    let send = f.send(1);
    for r in &names {
        let key = f.key(r);
        let claims = (0..4).map(|_| d.begin_send(&key, &send, t(1))).collect();
        let won = join_all(claims)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(won, 1, "{key:?}");
    }
    let counts = f.counts().await;
    assert_eq!((counts.queued, counts.sending), (0, 8));
    assert_eq!(due(stores, 100, 10).await, []);
    assert_eq!(history(stores, 3, 0).await, [f.send(1)]);
    f.finish("r0", Outcome::Sent).await.unwrap();
    assert!(!f.claim("r0", 3).await);
}

/// A claim records the send in the phone's history, and only a successful claim does.
#[doc(hidden)]
pub async fn begin_send_records_history<S: Stores>(stores: &S) {
    let f = Fixture::new(stores, "promo").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 1, 0)]).await;
    assert!(f.claim("a", 100).await);
    assert_eq!(history(stores, 1, 0).await, [f.send(100)]);
    assert_eq!(history(stores, 1, 101).await, []);
    assert_eq!(history(stores, 2, 0).await, []);
    assert!(!f.claim("a", 150).await);
    assert!(f.claim("c", 200).await);
    assert_eq!(history(stores, 1, 0).await, [f.send(100), f.send(200)]);
}

/// A requeued delivery leaves the history, comes back when due, and keeps its attempt count.
#[doc(hidden)]
pub async fn requeue_removes_history<S: Stores>(stores: &S) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    f.insert(&[("a", 1, 0)]).await;
    let retry = Some(WaitReason::Retry);
    assert_err(d.requeue(&f.key("a"), t(600), retry).await, "Conflict");
    assert!(f.claim("a", 1).await);
    d.requeue(&f.key("a"), t(600), retry).await.unwrap();
    assert_eq!(history(stores, 1, 0).await, []);
    let counts = f.counts().await;
    assert_eq!((counts.queued, counts.sending), (1, 0));
    assert_eq!(due(stores, 599, 10).await, []);
    let back = d.due(t(600), 10).await.unwrap();
    let back: Vec<_> = back
        .into_iter()
        .map(|x| (x.key, x.due_at, x.attempts))
        .collect();
    assert_eq!(back, [(f.key("a"), t(600), 1)]);
    assert!(f.claim("a", 601).await);
    assert_eq!(history(stores, 1, 0).await, [f.send(601)]);
}

/// Outcomes that prove nothing was sent free the history entry; `sent` and `unknown` keep it.
#[doc(hidden)]
pub async fn failed_send_leaves_no_history<S: Stores>(stores: &S) {
    let f = Fixture::new(stores, "promo").await;
    f.insert(&[("a", 1, 0), ("b", 1, 0), ("c", 1, 0), ("d", 1, 0)])
        .await;
    let failed = Outcome::Failed {
        code: "131026".into(),
    };
    let outcomes = [failed, Outcome::Sent, Outcome::Unknown, Outcome::Expired];
    for ((r, at), outcome) in ["a", "b", "c", "d"].into_iter().zip(1..).zip(outcomes) {
        assert!(f.claim(r, at).await);
        f.finish(r, outcome).await.unwrap();
    }
    assert_eq!(history(stores, 1, 0).await, [f.send(2), f.send(3)]);
}

/// `in_flight` lists exactly the claimed, unfinished deliveries.
#[doc(hidden)]
pub async fn in_flight_after_begin_send<S: Stores>(stores: &S) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    assert_eq!(d.in_flight().await.unwrap(), []);
    assert!(f.claim("c", 1).await && f.claim("a", 1).await);
    let mut in_flight = d.in_flight().await.unwrap();
    in_flight.sort();
    assert_eq!(in_flight, f.keys(&["a", "c"]));
    f.finish("a", Outcome::Unknown).await.unwrap();
    assert_eq!(d.in_flight().await.unwrap(), f.keys(&["c"]));
}

/// A paused run's deliveries are neither due nor claimable until it resumes.
#[doc(hidden)]
pub async fn paused_runs_are_not_due<S: Stores>(stores: &S) {
    let (p, q) = (
        Fixture::new(stores, "paused").await,
        Fixture::new(stores, "other").await,
    );
    let (runs, d) = (stores.runs(), stores.deliveries());
    p.insert(&[("a", 1, 0)]).await;
    q.insert(&[("b", 2, 10)]).await;
    runs.set_run_state(&p.run, RunState::Paused).await.unwrap();
    assert_eq!(
        runs.run(&p.run).await.unwrap().unwrap().state,
        RunState::Paused
    );
    assert_eq!(due(stores, 100, 10).await, q.keys(&["b"]));
    assert_eq!(d.next_due().await.unwrap(), Some(t(10)));
    assert!(
        !p.claim("a", 20).await,
        "a paused run's delivery was claimed"
    );
    runs.set_run_state(&p.run, RunState::Active).await.unwrap();
    assert_eq!(due(stores, 100, 10).await, [p.key("a"), q.key("b")]);
    assert_eq!(d.next_due().await.unwrap(), Some(t(0)));
}

/// Cancelling ends the queued deliveries `skipped(cancelled)`, also ones inserted afterwards, and
/// is final; claimed ones are left to their worker.
#[doc(hidden)]
pub async fn cancel_ends_queued_deliveries<S: Stores>(stores: &S) {
    let (f, runs) = (Fixture::new(stores, "promo").await, stores.runs());
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    assert!(f.claim("c", 1).await);
    runs.set_run_state(&f.run, RunState::Cancelled)
        .await
        .unwrap();
    assert_eq!(due(stores, 100, 10).await, []);
    assert_eq!(stores.deliveries().next_due().await.unwrap(), None);
    assert_err(
        runs.set_run_state(&f.run, RunState::Active).await,
        "Conflict",
    );
    f.finish("c", Outcome::Sent).await.unwrap();
    assert_eq!(f.insert(&[("d", 4, 0)]).await, 1);
    let counts = f.counts().await;
    assert_eq!((counts.queued, counts.sending, counts.sent), (0, 0, 1));
    assert_eq!(counts.skipped, BTreeMap::from([("cancelled".into(), 3)]));
}

/// Counts cover every delivery once, by state, reason and code, and only of the run asked about.
#[doc(hidden)]
pub async fn counts_add_up<S: Stores>(stores: &S) {
    let (f, other) = (
        Fixture::new(stores, "promo").await,
        Fixture::new(stores, "other").await,
    );
    f.insert(&[
        ("q1", 1, 100),
        ("q2", 2, 100),
        ("q3", 3, 1000),
        ("q4", 4, 3699),
        ("q5", 5, 3700),
    ])
    .await;
    let claimed = ["s", "sent", "f1", "f2", "f3", "u", "e"];
    let rows: Vec<_> = claimed.iter().zip(10..).map(|(r, n)| (*r, n, 0)).collect();
    f.insert(&rows).await;
    f.insert(&[("k", 20, 0)]).await;
    let duplicate = ended(&f.run, "line:9", Outcome::Skipped(SkipReason::Duplicate));
    stores
        .deliveries()
        .insert_batch(&[duplicate])
        .await
        .unwrap();
    other.insert(&[("q1", 99, 50)]).await;
    for r in claimed {
        assert!(f.claim(r, 1).await);
    }
    let failed = |code: &str| Outcome::Failed { code: code.into() };
    let endings = [
        ("sent", Outcome::Sent),
        ("f1", failed("131026")),
        ("f2", failed("131026")),
    ];
    let more = [
        ("f3", failed("131049")),
        ("u", Outcome::Unknown),
        ("e", Outcome::Expired),
    ];
    let skip = ("k", Outcome::Skipped(SkipReason::OptedOut));
    for (r, outcome) in endings.into_iter().chain(more).chain([skip]) {
        f.finish(r, outcome).await.unwrap();
    }
    let expected = RunCounts {
        queued: 5,
        sending: 1,
        sent: 1,
        failed: BTreeMap::from([("131026".into(), 2), ("131049".into(), 1)]),
        unknown: 1,
        expired: 1,
        skipped: BTreeMap::from([("duplicate".into(), 1), ("opted_out".into(), 1)]),
        next_wave: Some((t(100), 4)),
    };
    assert_eq!(f.counts().await, expected);
    assert_eq!(expected.total(), 14);
    assert_eq!(other.counts().await.next_wave, Some((t(50), 1)));
    assert_err(
        stores.deliveries().counts(&new_run("ghost").run).await,
        "NotFound",
    );
}

/// Identical events are stored once (proof is not part of the identity); events come back in the
/// order they happened, per channel and phone.
#[doc(hidden)]
pub async fn consent_append_is_idempotent_and_ordered<S: Stores>(stores: &S) {
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
pub async fn consent_dated_ahead_keeps_both_instants<S: Stores>(stores: &S) {
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
pub async fn a_claim_decided_on_stale_consent_is_refused<S: Stores>(stores: &S) {
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
    let seen = |events| {
        Some(ConsentSeen {
            channel: "whatsapp".into(),
            events,
        })
    };
    let claim = |r: &str, consent| Change::BeginSend {
        key: f.key(r),
        send: f.send(5),
        consent,
    };
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
    let won = d
        .apply(
            &[
                claim("a", seen(1)),
                claim("b", seen(1)),
                claim("c", seen(0)),
            ],
            t(5),
        )
        .await
        .unwrap();
    assert_eq!(won, [true, false, true]);
    let counts = f.counts().await;
    assert_eq!((counts.sending, counts.queued), (2, 1));
    assert_eq!(due(stores, 5, 10).await, f.keys(&["b"]));
    assert_eq!(history(stores, 2, 0).await, []);
    // Decided again with the STOP in view, the same claim would go through (the engine would
    // not make it: the new decision is a skip), which shows only the count is checked.
    assert_eq!(d.apply(&[claim("b", seen(2))], t(6)).await.unwrap(), [true]);
}

/// `finish` ends queued and sending deliveries, once.
#[doc(hidden)]
pub async fn finish_from_queued_and_sending<S: Stores>(stores: &S) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    assert!(f.claim("b", 1).await);
    let no_consent = Outcome::Skipped(SkipReason::NoConsent);
    let detail = Some("no opt-in".into());
    let terminal = Terminal {
        outcome: no_consent,
        detail,
    };
    d.finish(&f.key("a"), &terminal, t(2)).await.unwrap();
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

/// `defer` moves a queued delivery's due instant, and only a queued one's.
#[doc(hidden)]
pub async fn defer_moves_due<S: Stores>(stores: &S) {
    let (f, d) = (Fixture::new(stores, "promo").await, stores.deliveries());
    assert_eq!(d.next_due().await.unwrap(), None);
    f.insert(&[("a", 1, 0), ("b", 2, 50)]).await;
    assert_eq!(d.next_due().await.unwrap(), Some(t(0)));
    d.defer(&f.key("a"), t(100), WaitReason::Window)
        .await
        .unwrap();
    assert_eq!(d.next_due().await.unwrap(), Some(t(50)));
    assert_eq!(due(stores, 60, 10).await, f.keys(&["b"]));
    let due = d.due(t(100), 10).await.unwrap();
    let due: Vec<_> = due.into_iter().map(|x| (x.key, x.due_at)).collect();
    assert_eq!(due, [(f.key("b"), t(50)), (f.key("a"), t(100))]);
    assert!(f.claim("b", 1).await);
    let window = WaitReason::Window;
    assert_err(d.defer(&f.key("b"), t(200), window).await, "Conflict");
    assert_err(d.defer(&f.key("ghost"), t(200), window).await, "NotFound");
}

/// `apply` does what the single methods do, change by change, in one step: a lost claim or a
/// change in the wrong state is `false` and leaves the others applied.
#[doc(hidden)]
pub async fn apply_is_per_change_and_at_most_once<S: Stores>(stores: &S) {
    let f = Fixture::new(stores, "apply").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    let d = stores.deliveries();
    let claim = |r: &str| Change::BeginSend {
        key: f.key(r),
        send: f.send(5),
        consent: None,
    };
    let first = d
        .apply(&[claim("a"), claim("b")], t(5))
        .await
        .expect("apply");
    assert_eq!(first, [true, true]);
    // Claiming again loses; deferring a claimed delivery is in the wrong state; c defers.
    let again = d
        .apply(
            &[
                claim("a"),
                Change::Defer {
                    key: f.key("b"),
                    until: t(50),
                    reason: WaitReason::Spread,
                },
                Change::Defer {
                    key: f.key("c"),
                    until: t(50),
                    reason: WaitReason::Spread,
                },
            ],
            t(6),
        )
        .await
        .expect("apply");
    assert_eq!(again, [false, false, true]);
    assert_eq!(
        history(stores, 1, 0).await.len(),
        1,
        "one claim, one history entry"
    );
    let ends = d
        .apply(
            &[
                Change::Finish {
                    key: f.key("a"),
                    terminal: Terminal {
                        outcome: Outcome::Sent,
                        detail: None,
                    },
                },
                Change::Requeue {
                    key: f.key("b"),
                    until: t(60),
                    reason: Some(WaitReason::Throttle),
                },
            ],
            t(7),
        )
        .await
        .expect("apply");
    assert_eq!(ends, [true, true]);
    assert_eq!(
        history(stores, 2, 0).await,
        [],
        "requeue removed b's history"
    );
    let counts = f.counts().await;
    assert_eq!((counts.sent, counts.queued, counts.sending), (1, 2, 0));
    assert_eq!(due(stores, 55, 10).await, f.keys(&["c"]));
    assert_eq!(d.apply(&[], t(8)).await.expect("apply"), Vec::<bool>::new());
}

/// `due_in` and `next_due_in` see only the runs they are given.
#[doc(hidden)]
pub async fn due_in_only_the_given_runs<S: Stores>(stores: &S) {
    let p = Fixture::new(stores, "mine").await;
    let q = Fixture::new(stores, "theirs").await;
    p.insert(&[("a", 1, 20)]).await;
    q.insert(&[("b", 2, 10)]).await;
    let d = stores.deliveries();
    let mine = d
        .due_in(std::slice::from_ref(&p.run), t(100), 10)
        .await
        .expect("due_in");
    assert_eq!(
        mine.into_iter().map(|x| x.key).collect::<Vec<_>>(),
        p.keys(&["a"])
    );
    assert_eq!(
        d.next_due_in(std::slice::from_ref(&p.run))
            .await
            .expect("next"),
        Some(t(20))
    );
    assert_eq!(
        d.next_due_in(&[p.run.clone(), q.run.clone()])
            .await
            .expect("next"),
        Some(t(10))
    );
    let both = d
        .due_in(&[p.run.clone(), q.run.clone()], t(100), 1)
        .await
        .expect("due_in");
    assert_eq!(
        both.into_iter().map(|x| x.key).collect::<Vec<_>>(),
        q.keys(&["b"]),
        "earliest first, limited"
    );
    assert!(d.due_in(&[], t(100), 10).await.expect("due_in").is_empty());
}

/// The batch reads return what the single reads return, phone by phone, in order.
#[doc(hidden)]
pub async fn batch_reads_match_single_reads<S: Stores>(stores: &S) {
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
pub async fn pause_records_its_reason<S: Stores>(stores: &S) {
    let f = Fixture::new(stores, "paused").await;
    let runs = stores.runs();
    runs.pause(&f.run, "provider code 131048: spam rate limit")
        .await
        .expect("pause");
    let record = runs.run(&f.run).await.expect("run").expect("exists");
    assert_eq!(record.state, RunState::Paused);
    assert_eq!(
        record.state_reason.as_deref(),
        Some("provider code 131048: spam rate limit")
    );
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
    assert_err(runs.pause(&f.run, "too late").await, "Conflict");
    assert_err(
        runs.pause(&new_run("ghost").run, "no such run").await,
        "NotFound",
    );
}

/// Each phone once, with its latest claim at or after `since`.
#[doc(hidden)]
pub async fn recent_recipients_are_unique_with_their_latest_send<S: Stores>(stores: &S) {
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
pub async fn a_run_keeps_the_audience_hash_it_was_created_with<S: Stores>(stores: &S) {
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
pub async fn synthetic_keys_never_meet_real_ids<S: Stores>(stores: &S) {
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
pub async fn waits_count_the_queue_by_why_it_waits<S: Stores>(stores: &S) {
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
    d.requeue(&f.key("d"), t(120), Some(WaitReason::Throttle))
        .await
        .unwrap();
    assert!(f.claim("e", 1).await);
    d.requeue(&f.key("e"), t(1), None).await.unwrap();
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
        .pause(&f.run, "provider code 131048")
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
