//! The conformance suite: one macro that expands into named tests against any backend.
//! A backend's test file calls `herald_store::conformance_tests!(fresh, second_handle);` where
//! `fresh` is an `async fn(StoreTime) -> S` returning a new, empty store timed by the given
//! [`StoreTime`], and `second_handle` an `async fn(&S, StoreTime) -> S` opening another handle
//! on the same store (another connection, another client), as a second worker process would.
//!
//! The engine's guarantees (at most once, nothing lost, caps, rate and tier counted over every
//! worker) rest on the ports behaving alike in every backend, so each behaviour is written once
//! here and every backend runs it. The checks are plain async functions in this module's files;
//! the macro only gives each one a named `#[tokio::test]` in the caller's crate, which brings
//! tokio as a dev-dependency (this crate stays free of a runtime).
//!
//! # Time
//! The suite drives the store's time itself: every store it opens is timed by one
//! [`ManualClock`] (millisecond precision) that the checks set before each call that reads the
//! store's now (a claim, a lease, a throttle). Instants the checks pass in (`due` instants,
//! `now` arguments) are whole seconds from [`t`]`(0)`, as a backend may store seconds; rate slots
//! and leases are compared with millisecond precision at most.

mod cancel;
mod claims;
mod feedback;
mod fires;
mod ledger;
mod queue;
mod senders;

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::num::NonZeroU32;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::clock::Clock;
use herald_core::{
    AudienceId, CampaignId, Outcome, PastSend, PhoneNumber, Purpose, RecipientId, RecipientKey,
    Region, RunId, TimeZone,
};

pub use cancel::*;
pub use claims::*;
pub use feedback::*;
pub use fires::*;
pub use ledger::*;
pub use queue::*;
pub use senders::*;

use crate::{
    AudienceHash, Claim, ClaimAnswer, ClaimGroup, ConsentSeen, Consents, Deliveries, DeliveryKey,
    HistorySeen, Initial, NewDelivery, NewRun, RecipientSnapshot, RunCounts, Runs, SenderLimits,
    StoreError, StoreResult, Stores, Terminal, WaitReason, WorkerId,
};

/// Expands into one `#[tokio::test]` per behaviour of the ports. `$make` is an async function
/// or closure taking a [`StoreTime`] and returning a fresh, empty `impl herald_store::Stores`
/// on each call; `$second` an async function or closure taking that store and a [`StoreTime`]
/// and returning a second handle on the same store.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr, $second:expr) => {
        $crate::conformance_tests!(@each $make, $second;
            conformance_create_run_once => create_run_once,
            conformance_insert_is_idempotent => insert_is_idempotent,
            conformance_due_respects_time_and_order => due_respects_time_and_order,
            conformance_claim_is_at_most_once => claim_is_at_most_once,
            conformance_claim_records_history => claim_records_history,
            conformance_requeue_removes_history => requeue_removes_history,
            conformance_failed_send_leaves_no_history => failed_send_leaves_no_history,
            conformance_in_flight_after_claim => in_flight_after_claim,
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
            conformance_leases_are_renewed_by_their_owner_and_recovered_once_ended => leases_are_renewed_by_their_owner_and_recovered_once_ended,
            conformance_an_ended_lease_of_an_at_least_once_run_queues_it_again => an_ended_lease_of_an_at_least_once_run_queues_it_again,
            conformance_a_claim_of_a_delivery_moved_meanwhile_is_taken => a_claim_of_a_delivery_moved_meanwhile_is_taken,
            conformance_a_claim_of_a_paused_or_cancelled_run_is_refused => a_claim_of_a_paused_or_cancelled_run_is_refused,
            conformance_a_claim_blind_to_another_workers_send_is_refused => a_claim_blind_to_another_workers_send_is_refused,
            conformance_the_tier_admits_known_phones_and_frees_when_the_oldest_leaves => the_tier_admits_known_phones_and_frees_when_the_oldest_leaves,
            conformance_a_throttle_or_block_from_another_worker_refuses_the_claim => a_throttle_or_block_from_another_worker_refuses_the_claim,
            conformance_a_claim_with_no_slot_within_the_horizon_is_rate_ahead => a_claim_with_no_slot_within_the_horizon_is_rate_ahead,
            conformance_one_rate_is_shared_by_two_handles => one_rate_is_shared_by_two_handles,
            conformance_throttle_and_block_are_shared_and_resume_clears_them => throttle_and_block_are_shared_and_resume_clears_them,
            conformance_due_in_excludes_a_blocked_sender => due_in_excludes_a_blocked_sender,
            conformance_a_run_without_sender_adopts_one_when_submitted_again => a_run_without_sender_adopts_one_when_submitted_again,
            conformance_claims_and_leases_are_timed_by_the_store => claims_and_leases_are_timed_by_the_store,
            conformance_statuses_climb_the_ladder_once => statuses_climb_the_ladder_once,
            conformance_read_before_delivered_ends_read => read_before_delivered_ends_read,
            conformance_a_failed_report_at_sent_ends_failed => a_failed_report_at_sent_ends_failed,
            conformance_a_failed_report_after_delivery_changes_nothing => a_failed_report_after_delivery_changes_nothing,
            conformance_a_callback_resolves_an_unknown_delivery => a_callback_resolves_an_unknown_delivery,
            conformance_the_indexed_id_wins_over_the_callback => the_indexed_id_wins_over_the_callback,
            conformance_reports_never_move_queued_skipped_expired_or_refused_deliveries => reports_never_move_queued_skipped_expired_or_refused_deliveries,
            conformance_an_early_report_is_applied_by_the_finish_that_records_the_send => an_early_report_is_applied_by_the_finish_that_records_the_send,
            conformance_an_early_report_is_applied_by_apply => an_early_report_is_applied_by_apply,
            conformance_an_early_report_is_applied_when_the_lease_is_recovered => an_early_report_is_applied_when_the_lease_is_recovered,
            conformance_kept_reports_expire => kept_reports_expire,
            conformance_concurrent_reports_apply_once => concurrent_reports_apply_once,
            conformance_message_finds_sent_deliveries_by_their_id => message_finds_sent_deliveries_by_their_id,
            conformance_tags_are_stored_once_and_bounded => tags_are_stored_once_and_bounded,
            conformance_pause_records_who_paused => pause_records_who_paused,
            conformance_a_requeue_after_cancel_ends_skipped => a_requeue_after_cancel_ends_skipped,
            conformance_a_requeue_in_apply_after_cancel_ends_skipped => a_requeue_in_apply_after_cancel_ends_skipped,
            conformance_an_ended_lease_after_cancel_ends_skipped => an_ended_lease_after_cancel_ends_skipped,
            conformance_campaign_versions_are_added_kept_and_replaced_by_hash => campaign_versions_are_added_kept_and_replaced_by_hash,
            conformance_malformed_campaigns_and_fires_are_refused => malformed_campaigns_and_fires_are_refused,
            conformance_a_fire_is_recorded_once => a_fire_is_recorded_once,
            conformance_fires_are_read_newest_first_with_every_outcome => fires_are_read_newest_first_with_every_outcome,
            conformance_only_the_newest_fires_are_kept => only_the_newest_fires_are_kept,
            conformance_racing_records_of_one_fire_store_one => racing_records_of_one_fire_store_one,
        );
    };
    (@each $make:expr, $second:expr; $($name:ident => $check:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                let clock = $crate::conformance::ManualClock::new($crate::conformance::t(0));
                let time = $crate::StoreTime::Clock(clock.clone());
                let stores = ($make)(time.clone()).await;
                let other = ($second)(&stores, time).await;
                let suite = $crate::conformance::Suite { stores, other, clock };
                $crate::conformance::$check(&suite).await;
            }
        )*
    };
}

// ---- harness ----

/// A clock that moves only when a check moves it, with millisecond precision: the store's time
/// in every check.
#[doc(hidden)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// A clock reading `at`, shared.
    pub fn new(at: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self {
            millis: AtomicI64::new(at.timestamp_millis()),
        })
    }

    /// Sets the clock to `at` (truncated to the millisecond).
    pub fn set(&self, at: DateTime<Utc>) {
        self.millis.store(at.timestamp_millis(), Ordering::SeqCst);
    }

    /// Moves the clock `by` ahead.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).expect("a short advance");
        self.millis.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.millis.load(Ordering::SeqCst)).expect("in range")
    }
}

/// What a check works with: the store under test, a second handle on the same store (another
/// worker's), and the clock both are timed by. Derefs to the first handle.
#[doc(hidden)]
pub struct Suite<S> {
    /// The store under test.
    pub stores: S,
    /// A second handle on the same store.
    pub other: S,
    /// The store's time.
    pub clock: Arc<ManualClock>,
}

impl<S> Deref for Suite<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.stores
    }
}

impl<S: Stores> Stores for Suite<S> {
    type Runs = S::Runs;
    type Deliveries = S::Deliveries;
    type Consents = S::Consents;
    type Senders = S::Senders;
    type Feedback = S::Feedback;
    type Fires = S::Fires;

    fn fires(&self) -> &S::Fires {
        self.stores.fires()
    }

    fn senders(&self) -> &S::Senders {
        self.stores.senders()
    }

    fn feedback(&self) -> &S::Feedback {
        self.stores.feedback()
    }

    fn now(&self) -> impl Future<Output = StoreResult<DateTime<Utc>>> + Send {
        self.stores.now()
    }

    fn runs(&self) -> &S::Runs {
        self.stores.runs()
    }

    fn deliveries(&self) -> &S::Deliveries {
        self.stores.deliveries()
    }

    fn consents(&self) -> &S::Consents {
        self.stores.consents()
    }
}

impl<S> Suite<S> {
    /// Sets the store's time to `t(at)`.
    pub fn at(&self, at: i64) {
        self.clock.set(t(at));
    }

    /// Sets the store's time to `t(0)` plus `ms` milliseconds.
    pub fn at_ms(&self, ms: i64) {
        self.clock.set(t(0) + TimeDelta::milliseconds(ms));
    }
}

// ---- fixtures ----

/// `T0 + offset` seconds; T0 is 2026-11-27T10:00:00Z.
#[doc(hidden)]
pub fn t(offset: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_773_600 + offset, 0).expect("in range")
}

/// The sender every run of [`new_run`] sends through.
#[doc(hidden)]
pub const SENDER: &str = "main";

/// The consent channel the fixture's claims read.
#[doc(hidden)]
pub const CHANNEL: &str = "whatsapp";

/// A marketing run of campaign `name`, `<name>@2026-11-27T10:00`, through [`SENDER`].
#[doc(hidden)]
pub fn new_run(name: &str) -> NewRun {
    let campaign = CampaignId::parse(name).expect("campaign id");
    NewRun {
        run: RunId::new(&campaign, "2026-11-27T10:00"),
        campaign,
        purpose: Purpose::Marketing,
        source: format!("campaigns/{name}.yaml"),
        sender: Some(SENDER.into()),
        campaign_text: Some(format!("id: {name}\nsender: {SENDER}\n")),
        at_least_once: false,
        audience_sha256: Some(AudienceHash::from_bytes([0xa5; 32])),
    }
}

/// The `n`th test phone, a valid German mobile number.
#[doc(hidden)]
pub fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+49151{}", 10_000_000 + n), None).expect("valid phone")
}

/// Worker `n`'s id.
#[doc(hidden)]
pub fn worker(n: u32) -> WorkerId {
    WorkerId::for_process("conformance", n, n)
}

/// The owner of the fixture's claims.
#[doc(hidden)]
pub fn owner() -> WorkerId {
    worker(1)
}

/// The lease of the fixture's claims.
#[doc(hidden)]
pub const LEASE: Duration = Duration::from_secs(60);

/// Limits that never hold a claim back: a rate far above any test's, no tier, an hour's
/// horizon.
#[doc(hidden)]
pub fn generous(name: &str) -> SenderLimits {
    SenderLimits {
        name: name.into(),
        per_second: NonZeroU32::new(1_000).expect("non-zero"),
        tier: None,
        horizon: Duration::from_secs(3600),
    }
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

/// Each fixture claim is made for a sender of its own, so the rate of one never holds back
/// another (the checks of the rate make their own groups).
static FIXTURE_SENDERS: AtomicU64 = AtomicU64::new(0);

/// A run in the store under test, with shorthands for the calls the checks repeat. Store errors
/// panic, except where a method returns the result.
#[doc(hidden)]
pub struct Fixture<'a, S> {
    /// The suite.
    pub stores: &'a Suite<S>,
    /// The run.
    pub run: RunId,
    campaign: CampaignId,
    phones: Mutex<HashMap<String, u32>>,
}

impl<'a, S: Stores> Fixture<'a, S> {
    /// Creates the run of campaign `name` at `t(0)`.
    pub async fn new(stores: &'a Suite<S>, name: &str) -> Self {
        Self::create(stores, new_run(name)).await
    }

    /// Creates `run` at `t(0)`.
    pub async fn create(stores: &'a Suite<S>, run: NewRun) -> Self {
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
            phones: Mutex::new(HashMap::new()),
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
        {
            let mut phones = self.phones.lock().unwrap_or_else(PoisonError::into_inner);
            phones.extend(rows.iter().map(|(r, n, _)| ((*r).to_owned(), *n)));
        }
        self.stores
            .deliveries()
            .insert_batch(&batch)
            .await
            .expect("insert_batch")
    }

    /// The phone number `recipient` was inserted with.
    pub fn phone_of(&self, recipient: &str) -> u32 {
        let phones = self.phones.lock().unwrap_or_else(PoisonError::into_inner);
        *phones
            .get(recipient)
            .expect("a recipient the fixture inserted")
    }

    /// The history entry a claim of this run at `t(at)` records.
    pub fn send(&self, at: i64) -> PastSend {
        PastSend {
            at: t(at),
            campaign: self.campaign.clone(),
            purpose: Purpose::Marketing,
        }
    }

    /// A claim of `recipient` as a decision at `t(at)` would make it: with the consent log and
    /// the day's history as they are now in `stores`.
    pub async fn decided(&self, stores: &S, recipient: &str, at: i64) -> Claim {
        let phone = phone(self.phone_of(recipient));
        let events = stores
            .consents()
            .events(CHANNEL, &phone)
            .await
            .expect("events");
        let since = t(at) - TimeDelta::days(1);
        let sends = stores
            .deliveries()
            .history(&phone, since)
            .await
            .expect("history");
        Claim {
            key: self.key(recipient),
            send: self.send(at),
            consent: ConsentSeen {
                channel: CHANNEL.into(),
                events: events.len() as u64,
            },
            history: HistorySeen {
                since,
                sends: sends.len() as u64,
            },
        }
    }

    /// Claims `recipient` for `owner` at store time `t(at)` with [`generous`] limits, as an
    /// up-to-date decision would, through `stores` (either handle).
    pub async fn claim_as(
        &self,
        stores: &S,
        owner: &WorkerId,
        recipient: &str,
        at: i64,
    ) -> ClaimAnswer {
        let claim = self.decided(stores, recipient, at).await;
        let sender = format!(
            "fixture-{}",
            FIXTURE_SENDERS.fetch_add(1, Ordering::Relaxed)
        );
        let group = ClaimGroup {
            owner: owner.clone(),
            lease: LEASE,
            sender: generous(&sender),
            claims: vec![claim],
        };
        self.stores.at(at);
        let mut answers = stores.deliveries().claim(&group).await.expect("claim");
        assert_eq!(answers.len(), 1, "one answer per claim");
        answers.remove(0)
    }

    /// Claims `recipient` for [`owner`] at store time `t(at)`; whether it was claimed.
    pub async fn claim(&self, recipient: &str, at: i64) -> bool {
        let answer = self.claim_as(self.stores, &owner(), recipient, at).await;
        matches!(answer, ClaimAnswer::Claimed { .. })
    }

    /// `finish` of `recipient`, claimed by [`owner`], with `outcome` and no detail.
    pub async fn finish(&self, recipient: &str, outcome: Outcome) -> StoreResult<()> {
        let terminal = Terminal {
            outcome,
            detail: None,
        };
        self.stores
            .deliveries()
            .finish(&self.key(recipient), &terminal, Some(&owner()), t(3600))
            .await
    }

    /// `finish` of `recipient`, still queued, with `outcome` and no detail.
    pub async fn end(&self, recipient: &str, outcome: Outcome) -> StoreResult<()> {
        let terminal = Terminal {
            outcome,
            detail: None,
        };
        self.stores
            .deliveries()
            .finish(&self.key(recipient), &terminal, None, t(3600))
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
