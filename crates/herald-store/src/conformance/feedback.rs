//! Checks of provider feedback ([`crate::Feedback`]): the one-way ladder of statuses, early
//! reports kept and applied with the send, the message-id index, stored tags; and who paused a
//! run. Each rule of the port's docs is one check here.
//!
//! Verdicts the port's docs leave to judgement, fixed here so every backend answers alike:
//! - a report for a delivery that ended `failed` *by a report* (after `sent`, or an `unknown`
//!   resolved as failed) is [`StatusVerdict::Unchanged`]: the message is known and past every
//!   rung; only a delivery no report ever moved (queued, sending under its callback, skipped,
//!   expired, failed by the provider's answer) is [`StatusVerdict::Refused`] — `sending` is
//!   [`StatusVerdict::Kept`] instead (the send is on its way).
//! - kept reports are applied in the order they arrived, each under the ladder rules.
//!
//! [`crate::KEPT_STATUS_LIMIT`] (a report past it is [`StatusVerdict::Dropped`]) is left to each
//! backend's own tests: reaching it through the port takes 100 000 calls (SQLite writes the flood
//! straight into its file, `herald-store-sqlite/tests/feedback.rs`).

use std::collections::{BTreeMap, BTreeSet};

use herald_core::{Outcome, SkipReason};

use super::*;
use crate::{
    Change, Feedback, KEPT_STATUS_TTL, MAX_TAG_BYTES, MAX_TAGS_PER_PHONE, Progress, Recovered,
    ReportedStatus, RunState, SentMessage, StatusReport, StatusVerdict, Terminal,
};

/// The provider's message id of the `n`th message.
fn wamid(n: u32) -> String {
    format!("wamid.HBgLNDkxNTEwMDAwMDAwFQIAERgS{n:06}")
}

/// A report of `status` for message `id`, without callback data, dated `t(at)`.
fn report(id: &str, status: ReportedStatus, at: i64) -> StatusReport {
    StatusReport {
        provider_id: id.to_owned(),
        callback: None,
        status,
        at: t(at),
    }
}

/// `report` with the delivery key the request carried as callback data.
fn called(id: &str, key: &DeliveryKey, status: ReportedStatus, at: i64) -> StatusReport {
    StatusReport {
        callback: Some(key.clone()),
        ..report(id, status, at)
    }
}

fn reached(progress: Progress) -> ReportedStatus {
    ReportedStatus::Reached(progress)
}

fn failed(code: &str) -> ReportedStatus {
    ReportedStatus::Failed { code: code.into() }
}

/// Records `report` through `stores` at `t(now)`.
async fn record<S: Stores>(stores: &S, report: &StatusReport, now: i64) -> StatusVerdict {
    stores
        .feedback()
        .record_status(report, t(now))
        .await
        .expect("record_status")
}

/// The message `id` as the store finds it.
async fn message<S: Stores>(stores: &S, id: &str) -> Option<SentMessage> {
    stores.feedback().message(id).await.expect("message")
}

/// `Terminal` `sent` with the provider's message id as detail.
fn sent_as(id: &str) -> Terminal {
    Terminal {
        outcome: Outcome::Sent,
        detail: Some(id.to_owned()),
    }
}

/// Claims `recipient` at `t(10)` and finishes it `sent` as message `id` at `t(20)`.
async fn send<S: Stores>(f: &Fixture<'_, S>, recipient: &str, id: &str) {
    assert!(f.claim(recipient, 10).await, "claimed");
    f.stores
        .deliveries()
        .finish(&f.key(recipient), &sent_as(id), Some(&owner()), t(20))
        .await
        .expect("finish sent");
}

/// Claims `recipient` at `t(10)` and lets its lease end: recovered `unknown` at `t(100)`.
async fn lose<S: Stores>(f: &Fixture<'_, S>, recipient: &str) {
    assert!(f.claim(recipient, 10).await, "claimed");
    f.stores.at(100);
    let recovered = f.stores.deliveries().recover_expired(10).await.unwrap();
    let expected = Recovered {
        key: f.key(recipient),
        owner: owner(),
        requeued: false,
    };
    assert_eq!(recovered, [expected]);
}

/// The message a check expects: `recipient` of `f` at `progress`.
fn at<S: Stores>(f: &Fixture<'_, S>, recipient: &str, progress: Option<Progress>) -> SentMessage {
    SentMessage {
        key: f.key(recipient),
        phone: phone(f.phone_of(recipient)),
        progress,
    }
}

fn applied<S: Stores>(f: &Fixture<'_, S>, recipient: &str) -> StatusVerdict {
    StatusVerdict::Applied {
        key: f.key(recipient),
        phone: phone(f.phone_of(recipient)),
    }
}

fn unchanged<S: Stores>(f: &Fixture<'_, S>, recipient: &str) -> StatusVerdict {
    StatusVerdict::Unchanged {
        key: f.key(recipient),
    }
}

fn refused<S: Stores>(f: &Fixture<'_, S>, recipient: &str) -> StatusVerdict {
    StatusVerdict::Refused {
        key: f.key(recipient),
    }
}

/// `(sent, delivered, read)` of the run, asserting the counts still add up to `audience`.
async fn ladder<S: Stores>(f: &Fixture<'_, S>, audience: u64) -> (u64, u64, u64) {
    let counts = f.counts().await;
    assert_eq!(counts.total(), audience, "counts add up: {counts:?}");
    assert!(counts.read <= counts.delivered && counts.delivered <= counts.sent);
    (counts.sent, counts.delivered, counts.read)
}

/// `sent` climbs to `delivered` then `read`, never down; a report repeated five times (Meta
/// retries for days) counts once; `message` follows the rung; counts keep delivered and read
/// as subsets of sent.
#[doc(hidden)]
pub async fn statuses_climb_the_ladder_once<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "ladder").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    send(&f, "a", &wamid(1)).await;
    send(&f, "b", &wamid(2)).await;
    assert_eq!(
        message(stores, &wamid(1)).await,
        Some(at(&f, "a", Some(Progress::Sent)))
    );
    assert_eq!(ladder(&f, 2).await, (2, 0, 0));
    let sent = report(&wamid(1), reached(Progress::Sent), 30);
    assert_eq!(
        record(stores, &sent, 30).await,
        unchanged(&f, "a"),
        "sent already"
    );
    let delivered = report(&wamid(1), reached(Progress::Delivered), 31);
    assert_eq!(record(stores, &delivered, 31).await, applied(&f, "a"));
    for n in 0..5 {
        let handle = if n % 2 == 0 {
            &stores.stores
        } else {
            &stores.other
        };
        assert_eq!(record(handle, &delivered, 32 + n).await, unchanged(&f, "a"));
    }
    assert_eq!(
        message(&stores.other, &wamid(1)).await,
        Some(at(&f, "a", Some(Progress::Delivered)))
    );
    assert_eq!(ladder(&f, 2).await, (2, 1, 0));
    let read = report(&wamid(1), reached(Progress::Read), 40);
    assert_eq!(record(stores, &read, 40).await, applied(&f, "a"));
    for n in 0..5 {
        assert_eq!(record(stores, &read, 41 + n).await, unchanged(&f, "a"));
        assert_eq!(record(stores, &delivered, 41 + n).await, unchanged(&f, "a"));
    }
    assert_eq!(
        message(stores, &wamid(1)).await,
        Some(at(&f, "a", Some(Progress::Read)))
    );
    assert_eq!(ladder(&f, 2).await, (2, 1, 1));
    assert_eq!(
        message(stores, &wamid(2)).await,
        Some(at(&f, "b", Some(Progress::Sent)))
    );
}

/// `read` before `delivered` ends `read` (read implies delivered, in the counts too).
#[doc(hidden)]
pub async fn read_before_delivered_ends_read<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "order").await;
    f.insert(&[("a", 1, 0)]).await;
    send(&f, "a", &wamid(1)).await;
    let read = report(&wamid(1), reached(Progress::Read), 40);
    assert_eq!(record(stores, &read, 40).await, applied(&f, "a"));
    let delivered = report(&wamid(1), reached(Progress::Delivered), 30);
    assert_eq!(record(stores, &delivered, 41).await, unchanged(&f, "a"));
    assert_eq!(
        message(stores, &wamid(1)).await,
        Some(at(&f, "a", Some(Progress::Read)))
    );
    assert_eq!(ladder(&f, 1).await, (1, 1, 1));
}

/// `failed` on a message still at the `sent` rung ends it `failed(code)`: the counts move from
/// sent to failed, `message` still finds it (without a rung), and nothing moves it again.
#[doc(hidden)]
pub async fn a_failed_report_at_sent_ends_failed<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "bounced").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    send(&f, "a", &wamid(1)).await;
    send(&f, "b", &wamid(2)).await;
    let bounce = report(&wamid(1), failed("131050"), 30);
    assert_eq!(record(stores, &bounce, 30).await, applied(&f, "a"));
    let counts = f.counts().await;
    assert_eq!((counts.sent, counts.delivered, counts.read), (1, 0, 0));
    assert_eq!(counts.failed, BTreeMap::from([("131050".into(), 1)]));
    assert_eq!(counts.total(), 2);
    assert_eq!(message(stores, &wamid(1)).await, Some(at(&f, "a", None)));
    for later in [
        bounce.clone(),
        report(&wamid(1), reached(Progress::Read), 31),
    ] {
        assert_eq!(record(stores, &later, 31).await, unchanged(&f, "a"));
    }
    assert_eq!(f.counts().await, counts, "nothing moved again");
}

/// A `failed` after `delivered` (or `read`) changes nothing: the message reached the phone.
#[doc(hidden)]
pub async fn a_failed_report_after_delivery_changes_nothing<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "late-failure").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    send(&f, "a", &wamid(1)).await;
    send(&f, "b", &wamid(2)).await;
    let delivered = report(&wamid(1), reached(Progress::Delivered), 30);
    assert_eq!(record(stores, &delivered, 30).await, applied(&f, "a"));
    let read = report(&wamid(2), reached(Progress::Read), 30);
    assert_eq!(record(stores, &read, 30).await, applied(&f, "b"));
    for (id, r) in [(wamid(1), "a"), (wamid(2), "b")] {
        let bounce = report(&id, failed("131026"), 31);
        assert_eq!(record(stores, &bounce, 31).await, unchanged(&f, r));
    }
    assert_eq!(ladder(&f, 2).await, (2, 2, 1));
    assert_eq!(f.counts().await.failed, BTreeMap::new());
}

/// A report naming in its callback an `unknown` delivery (the worker crashed after the provider
/// accepted it) proves the send: `sent` at the reported rung, its message id indexed; or
/// `failed(code)`.
#[doc(hidden)]
pub async fn a_callback_resolves_an_unknown_delivery<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "crashed").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    lose(&f, "a").await;
    lose(&f, "b").await;
    lose(&f, "c").await;
    assert_eq!(f.counts().await.unknown, 3);
    let delivered = called(&wamid(1), &f.key("a"), reached(Progress::Delivered), 110);
    assert_eq!(record(stores, &delivered, 110).await, applied(&f, "a"));
    assert_eq!(
        message(&stores.other, &wamid(1)).await,
        Some(at(&f, "a", Some(Progress::Delivered))),
        "the id is indexed"
    );
    let sent = called(&wamid(2), &f.key("b"), reached(Progress::Sent), 110);
    assert_eq!(record(stores, &sent, 110).await, applied(&f, "b"));
    assert_eq!(
        message(stores, &wamid(2)).await,
        Some(at(&f, "b", Some(Progress::Sent)))
    );
    let bounce = called(&wamid(3), &f.key("c"), failed("131049"), 110);
    assert_eq!(record(stores, &bounce, 110).await, applied(&f, "c"));
    // Found by its id now, the callback no longer needed; duplicates change nothing.
    assert_eq!(record(stores, &delivered, 111).await, unchanged(&f, "a"));
    let read = report(&wamid(1), reached(Progress::Read), 112);
    assert_eq!(record(stores, &read, 112).await, applied(&f, "a"));
    assert_eq!(record(stores, &bounce, 113).await, unchanged(&f, "c"));
    let counts = f.counts().await;
    assert_eq!((counts.unknown, counts.sent), (0, 2));
    assert_eq!((counts.delivered, counts.read), (1, 1));
    assert_eq!(counts.failed, BTreeMap::from([("131049".into(), 1)]));
    let states: BTreeMap<_, _> = stores
        .deliveries()
        .claims(&f.run)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.key, c.state))
        .collect();
    assert_eq!(states[&f.key("a")], "sent");
    assert_eq!(states[&f.key("b")], "sent");
}

/// The message id, once indexed, wins over the callback data.
#[doc(hidden)]
pub async fn the_indexed_id_wins_over_the_callback<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "which").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    send(&f, "a", &wamid(1)).await;
    lose(&f, "b").await;
    let misnamed = called(&wamid(1), &f.key("b"), reached(Progress::Delivered), 110);
    assert_eq!(record(stores, &misnamed, 110).await, applied(&f, "a"));
    let counts = f.counts().await;
    assert_eq!((counts.sent, counts.delivered, counts.unknown), (1, 1, 1));
}

/// Reports never change a delivery no report may move: queued, skipped, expired, or failed by
/// the provider's synchronous answer. Nothing ever goes back to `queued`.
#[doc(hidden)]
pub async fn reports_never_move_queued_skipped_expired_or_refused_deliveries<S: Stores>(
    stores: &Suite<S>,
) {
    let f = Fixture::new(stores, "untouchable").await;
    f.insert(&[("q", 1, 500), ("s", 2, 0), ("e", 3, 0), ("f", 4, 0)])
        .await;
    f.end("s", Outcome::Skipped(SkipReason::OptedOut))
        .await
        .unwrap();
    f.end("e", Outcome::Expired).await.unwrap();
    assert!(f.claim("f", 10).await);
    let refusal = Terminal {
        outcome: Outcome::Failed {
            code: "131026".into(),
        },
        detail: Some("Message undeliverable".into()),
    };
    let d = stores.deliveries();
    d.finish(&f.key("f"), &refusal, Some(&owner()), t(20))
        .await
        .unwrap();
    let before = f.counts().await;
    for (n, r) in [(1, "q"), (2, "s"), (3, "e"), (4, "f")] {
        for status in [
            reached(Progress::Sent),
            reached(Progress::Read),
            failed("131050"),
        ] {
            let r#try = called(&wamid(n), &f.key(r), status, 30);
            assert_eq!(record(stores, &r#try, 30).await, refused(&f, r), "{r}");
        }
        assert_eq!(message(stores, &wamid(n)).await, None, "{r}: not indexed");
    }
    assert_eq!(f.counts().await, before);
    assert_eq!(due(stores, 500, 10).await, [f.key("q")], "still queued");
}

/// A report before the send is recorded (its id unknown, or its callback naming a delivery
/// still `sending`) is kept, and applied by the `finish` that records the send as that id:
/// several kept reports end where the ladder takes them.
#[doc(hidden)]
pub async fn an_early_report_is_applied_by_the_finish_that_records_the_send<S: Stores>(
    stores: &Suite<S>,
) {
    let f = Fixture::new(stores, "early").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    // a: the webhook outruns the worker, reports without callback data, read before delivered.
    let read = report(&wamid(1), reached(Progress::Read), 12);
    let delivered = report(&wamid(1), reached(Progress::Delivered), 11);
    assert_eq!(record(stores, &read, 12).await, StatusVerdict::Kept);
    assert_eq!(
        record(&stores.other, &delivered, 13).await,
        StatusVerdict::Kept
    );
    assert_eq!(
        record(stores, &read, 14).await,
        StatusVerdict::Kept,
        "a duplicate"
    );
    assert_eq!(message(stores, &wamid(1)).await, None);
    // b: claimed, and its report names it in the callback while it is still sending.
    assert!(f.claim("b", 10).await);
    let bounce = called(&wamid(2), &f.key("b"), failed("131050"), 12);
    assert_eq!(record(stores, &bounce, 12).await, StatusVerdict::Kept);
    // c: kept, but sent as another id: nothing applies to it.
    let stray = report(&wamid(9), reached(Progress::Read), 12);
    assert_eq!(record(stores, &stray, 12).await, StatusVerdict::Kept);
    send(&f, "a", &wamid(1)).await;
    assert_eq!(
        message(stores, &wamid(1)).await,
        Some(at(&f, "a", Some(Progress::Read)))
    );
    let d = stores.deliveries();
    d.finish(&f.key("b"), &sent_as(&wamid(2)), Some(&owner()), t(20))
        .await
        .unwrap();
    assert_eq!(message(stores, &wamid(2)).await, Some(at(&f, "b", None)));
    send(&f, "c", &wamid(3)).await;
    assert_eq!(
        message(stores, &wamid(3)).await,
        Some(at(&f, "c", Some(Progress::Sent)))
    );
    let counts = f.counts().await;
    assert_eq!((counts.sent, counts.delivered, counts.read), (2, 1, 1));
    assert_eq!(counts.failed, BTreeMap::from([("131050".into(), 1)]));
    // Applied once: the same reports again change nothing.
    assert_eq!(record(stores, &read, 30).await, unchanged(&f, "a"));
    assert_eq!(record(stores, &bounce, 30).await, unchanged(&f, "b"));
}

/// `apply`'s `Finish` of a send applies the kept reports for it, in the same atomic step.
#[doc(hidden)]
pub async fn an_early_report_is_applied_by_apply<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "batched").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    assert!(f.claim("a", 10).await && f.claim("b", 10).await);
    let delivered = report(&wamid(1), reached(Progress::Delivered), 12);
    assert_eq!(record(stores, &delivered, 12).await, StatusVerdict::Kept);
    let read = called(&wamid(2), &f.key("b"), reached(Progress::Read), 12);
    assert_eq!(record(stores, &read, 12).await, StatusVerdict::Kept);
    let finish = |r: &str, id: &str| Change::Finish {
        key: f.key(r),
        terminal: sent_as(id),
        owner: Some(owner()),
    };
    let changes = [finish("a", &wamid(1)), finish("b", &wamid(2))];
    let done = stores.deliveries().apply(&changes, t(20)).await.unwrap();
    assert_eq!(done, [true, true]);
    assert_eq!(
        message(stores, &wamid(1)).await,
        Some(at(&f, "a", Some(Progress::Delivered)))
    );
    assert_eq!(
        message(stores, &wamid(2)).await,
        Some(at(&f, "b", Some(Progress::Read)))
    );
    assert_eq!(ladder(&f, 2).await, (2, 2, 1));
}

/// A kept report whose callback names a delivery still `sending` is applied by the recovery
/// that ends its lease: the delivery ends `sent` (its id indexed) or `failed`, not `unknown`.
#[doc(hidden)]
pub async fn an_early_report_is_applied_when_the_lease_is_recovered<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "recovered").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 0)]).await;
    for r in ["a", "b", "c"] {
        assert!(f.claim(r, 10).await);
    }
    let delivered = called(&wamid(1), &f.key("a"), reached(Progress::Delivered), 12);
    assert_eq!(record(stores, &delivered, 12).await, StatusVerdict::Kept);
    let bounce = called(&wamid(2), &f.key("b"), failed("131049"), 12);
    assert_eq!(record(stores, &bounce, 12).await, StatusVerdict::Kept);
    stores.at(100);
    let mut recovered = stores.other.deliveries().recover_expired(10).await.unwrap();
    recovered.sort_by(|x, y| x.key.recipient.cmp(&y.key.recipient));
    let lost = |r: &str| Recovered {
        key: f.key(r),
        owner: owner(),
        requeued: false,
    };
    assert_eq!(recovered, [lost("a"), lost("b"), lost("c")]);
    assert_eq!(
        message(stores, &wamid(1)).await,
        Some(at(&f, "a", Some(Progress::Delivered)))
    );
    let counts = f.counts().await;
    assert_eq!((counts.sent, counts.delivered, counts.unknown), (1, 1, 1));
    assert_eq!(counts.failed, BTreeMap::from([("131049".into(), 1)]));
    assert_eq!(counts.total(), 3);
}

/// Kept reports expire after [`KEPT_STATUS_TTL`]: one kept longer than that (and another
/// report recorded after, within one more TTL) is no longer applied by the send.
#[doc(hidden)]
pub async fn kept_reports_expire<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "stale").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    let ttl = i64::try_from(KEPT_STATUS_TTL.as_secs()).expect("a short TTL");
    let old = report(&wamid(1), reached(Progress::Read), 0);
    assert_eq!(record(stores, &old, 0).await, StatusVerdict::Kept);
    let fresh = report(&wamid(2), reached(Progress::Read), 2 * ttl);
    assert_eq!(
        record(stores, &fresh, 2 * ttl + 1).await,
        StatusVerdict::Kept
    );
    let later = t(2 * ttl + 2);
    for (r, id) in [("a", wamid(1)), ("b", wamid(2))] {
        assert!(f.claim(r, 10).await);
        let d = stores.deliveries();
        d.finish(&f.key(r), &sent_as(&id), Some(&owner()), later)
            .await
            .unwrap();
    }
    assert_eq!(
        message(stores, &wamid(1)).await,
        Some(at(&f, "a", Some(Progress::Sent)))
    );
    assert_eq!(
        message(stores, &wamid(2)).await,
        Some(at(&f, "b", Some(Progress::Read)))
    );
}

/// Two handles recording the same report at once apply it once.
#[doc(hidden)]
pub async fn concurrent_reports_apply_once<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "racing").await;
    f.insert(&[("a", 1, 0)]).await;
    send(&f, "a", &wamid(1)).await;
    let delivered = report(&wamid(1), reached(Progress::Delivered), 30);
    let handles = [&stores.stores, &stores.other, &stores.stores, &stores.other];
    let verdicts = join_all(handles.iter().map(|h| record(*h, &delivered, 30)).collect()).await;
    let once = verdicts.iter().filter(|v| **v == applied(&f, "a")).count();
    assert_eq!(once, 1, "{verdicts:?}");
    assert!(
        verdicts
            .iter()
            .all(|v| *v == applied(&f, "a") || *v == unchanged(&f, "a"))
    );
    assert_eq!(ladder(&f, 1).await, (1, 1, 0));
}

/// `message` finds a delivery by the id its `sent` outcome recorded, and nothing else: not an
/// id never sent, not a `sent` without an id.
#[doc(hidden)]
pub async fn message_finds_sent_deliveries_by_their_id<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "index").await;
    f.insert(&[("a", 1, 0), ("b", 2, 0)]).await;
    assert_eq!(message(stores, &wamid(1)).await, None);
    send(&f, "a", &wamid(1)).await;
    assert!(f.claim("b", 10).await);
    f.finish("b", Outcome::Sent).await.unwrap();
    assert_eq!(
        message(&stores.other, &wamid(1)).await,
        Some(at(&f, "a", Some(Progress::Sent)))
    );
    assert_eq!(message(stores, "").await, None);
    assert_eq!(message(stores, &wamid(2)).await, None);
}

/// Tags: stored once per phone (`false` the second time), in bounds (`Conflict` otherwise),
/// read back per phone in the order asked, an unknown phone holding none.
#[doc(hidden)]
pub async fn tags_are_stored_once_and_bounded<S: Stores>(stores: &Suite<S>) {
    let fb = stores.feedback();
    let add = |n: u32, tag: String| async move { fb.add_tag(&phone(n), &tag, t(0)).await };
    assert!(add(1, "vip".into()).await.unwrap());
    assert!(!add(1, "vip".into()).await.unwrap(), "stored already");
    assert!(
        !stores
            .other
            .feedback()
            .add_tag(&phone(1), "vip", t(1))
            .await
            .unwrap()
    );
    assert!(add(1, "Black Friday".into()).await.unwrap());
    assert!(add(2, "vip".into()).await.unwrap());
    let widest = "é".repeat(MAX_TAG_BYTES / 2);
    assert!(add(3, widest.clone()).await.unwrap(), "exactly the bound");
    for bad in [
        String::new(),
        "x".repeat(MAX_TAG_BYTES + 1),
        format!("{widest}x"),
        "line\nbreak".into(),
        "tab\t".into(),
        "\u{7f}".into(),
    ] {
        assert_err(add(4, bad).await, "Conflict");
    }
    for n in 0..MAX_TAGS_PER_PHONE - 1 {
        assert!(add(5, format!("tag-{n:03}")).await.unwrap());
    }
    assert!(add(5, "last".into()).await.unwrap(), "the bound itself");
    assert!(
        !add(5, "last".into()).await.unwrap(),
        "a stored one is still fine"
    );
    assert_err(add(5, "one too many".into()).await, "Conflict");
    let set = |tags: &[&str]| {
        tags.iter()
            .map(|t| (*t).to_owned())
            .collect::<BTreeSet<_>>()
    };
    let asked = [phone(2), phone(4), phone(1), phone(3), phone(2)];
    let tags = stores.other.feedback().tags_for(&asked).await.unwrap();
    assert_eq!(
        tags,
        [
            set(&["vip"]),
            set(&[]),
            set(&["Black Friday", "vip"]),
            BTreeSet::from([widest]),
            set(&["vip"]),
        ]
    );
    let five = fb.tags_for(&[phone(5)]).await.unwrap();
    assert_eq!(five[0].len(), MAX_TAGS_PER_PHONE);
    assert!(!five[0].contains("one too many"));
    assert_eq!(
        fb.tags_for(&[]).await.unwrap(),
        Vec::<BTreeSet<String>>::new()
    );
}

/// `pause` records who paused and why; resuming clears both, and so does a pause without a
/// reason; every handle and `runs` see the same.
#[doc(hidden)]
pub async fn pause_records_who_paused<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "who").await;
    let runs = stores.runs();
    runs.pause(&f.run, "operator (api)", "waiting for legal")
        .await
        .expect("pause");
    for handle in [&stores.stores, &stores.other] {
        let record = handle.runs().run(&f.run).await.unwrap().expect("exists");
        assert_eq!(record.state, RunState::Paused);
        assert_eq!(record.paused_by.as_deref(), Some("operator (api)"));
        assert_eq!(record.state_reason.as_deref(), Some("waiting for legal"));
    }
    let listed = runs.runs().await.unwrap();
    assert_eq!(listed[0].paused_by.as_deref(), Some("operator (api)"));
    runs.set_run_state(&f.run, RunState::Active).await.unwrap();
    let record = runs.run(&f.run).await.unwrap().expect("exists");
    assert_eq!((record.paused_by, record.state_reason), (None, None));
    runs.pause(&f.run, "herald", "template errors")
        .await
        .unwrap();
    runs.pause(&f.run, "operator (cli)", "again").await.unwrap();
    let record = runs.run(&f.run).await.unwrap().expect("exists");
    let by = (record.paused_by.as_deref(), record.state_reason.as_deref());
    assert_eq!(
        by,
        (Some("operator (cli)"), Some("again")),
        "the latest pause"
    );
    runs.set_run_state(&f.run, RunState::Paused).await.unwrap();
    let record = runs.run(&f.run).await.unwrap().expect("exists");
    assert_eq!(record.state, RunState::Paused);
    assert_eq!((record.paused_by, record.state_reason), (None, None));
}
