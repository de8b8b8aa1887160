//! What the provider tells one worker stops every worker of the sender: a 429 throttles them
//! all until it ends, a 131048 blocks them all until `herald resume --sender`.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_testkit::poll::{wait_for, wait_until};
use herald_testkit::process::Spawned;
use herald_testkit::provider::{Match, Reply};

use super::kit::{
    ALWAYS_OPEN, Backend, Cluster, PATIENCE, SenderConf, people, per_recipient, run_id,
};

const AT: &str = "2026-01-01T00:00";

/// How long the provider takes to answer: long enough that every worker holds claims.
const ANSWER_DELAY: Duration = Duration::from_millis(150);

/// Slots granted before the throttle (or block) was recorded may lie this far past the receipt
/// of the request it answered: the answer's delay, the time until the store records it, and the
/// claim horizon (tens of milliseconds). Not a timing assertion: the span checked after it is
/// more than a second long, and the rate would fill it with tens of slots.
const IN_FLIGHT: TimeDelta = TimeDelta::milliseconds(450);

/// Three workers, an audience of `n` due now, answers slowed so every worker holds claims.
fn cluster_of_three(
    backend: Backend,
    n: usize,
    first_phone: u64,
) -> (Cluster, Vec<Spawned>, herald_core::RunId) {
    let cluster = Cluster::new(
        backend,
        &[SenderConf {
            name: "main",
            per_second: 30,
        }],
    );
    cluster.provider.set_delay(ANSWER_DELAY);
    let audience = people(n, first_phone);
    cluster.campaign(
        "held",
        "main",
        &audience,
        &format!("schedule: {{ at: {AT}, in: Etc/UTC }}\nspread: 1s\n{ALWAYS_OPEN}"),
    );
    let run = run_id("held", AT);
    cluster.schedule(&["held.yaml"], &[&run]);
    let workers = (0..3)
        .map(|i| cluster.worker(&format!("worker-{i}"), &[]))
        .collect();
    (cluster, workers, run)
}

fn stop(cluster: &Cluster, workers: &mut [Spawned]) {
    for worker in workers {
        let name = worker.name().to_owned();
        assert_eq!(worker.sigterm(), Some(0), "{}", cluster.project.log(&name));
    }
}

/// The distinct owners of the claims granted before `instant`.
fn owners_before(claims: &[herald_store::ClaimRecord], instant: DateTime<Utc>) -> usize {
    claims
        .iter()
        .filter(|c| c.slot < instant)
        .map(|c| c.owner.clone())
        .collect::<BTreeSet<_>>()
        .len()
}

#[test]
fn a_429_answered_to_one_worker_grants_no_slot_to_any_worker_until_the_throttle_ends_on_sqlite() {
    shared_throttle(Backend::Sqlite);
}

#[test]
fn a_429_answered_to_one_worker_grants_no_slot_to_any_worker_until_the_throttle_ends_on_redis() {
    shared_throttle(Backend::Redis);
}

fn shared_throttle(backend: Backend) {
    const N: usize = 90;
    const RETRY_AFTER: i64 = 2;
    let (cluster, mut workers, run) = cluster_of_three(backend, N, 4_000_000);
    cluster.provider.script(
        Match::Ordinal(20),
        Reply::Throttle {
            retry_after_secs: RETRY_AFTER as u64,
        },
    );
    let store = cluster.store();
    // The throttle as the store recorded it, read while it lasts.
    let until = wait_until("the throttle to be recorded", PATIENCE, || {
        store
            .sender("main")
            .throttled_until
            .ok_or(cluster.provider.count())
    });
    let status = cluster.wait_drained(&run);
    stop(&cluster, &mut workers);

    let requests = cluster.provider.requests();
    let throttled = requests
        .iter()
        .find(|r| matches!(r.reply, Reply::Throttle { .. }))
        .expect("the scripted 429 was answered");
    // Recorded at the store's now when the answer came back; it ends `Retry-After` later
    // (whole seconds either way, should the store keep seconds).
    let start = throttled.received_at + IN_FLIGHT;
    let retry = TimeDelta::seconds(RETRY_AFTER);
    assert!(
        until >= throttled.received_at + retry - TimeDelta::seconds(1)
            && until <= start + retry + TimeDelta::seconds(1),
        "a throttle until {until} does not follow the 429 received at {}",
        throttled.received_at
    );

    let claims = store.claims(&run);
    assert!(
        owners_before(&claims, throttled.received_at) >= 2,
        "at least two workers held claims when the 429 came"
    );
    let inside: Vec<_> = claims
        .iter()
        .filter(|c| c.slot > start && c.slot < until)
        .collect();
    assert!(
        inside.is_empty(),
        "slots granted during the throttle until {until}: {inside:?}"
    );
    let received_inside: Vec<_> = requests
        .iter()
        .filter(|r| r.received_at > start && r.received_at < until)
        .collect();
    assert!(
        received_inside.is_empty(),
        "requests during the throttle: {received_inside:?}"
    );

    // Everyone sent once in the end: the throttled request was sent again after the throttle.
    assert_eq!(status["sent"].as_u64(), Some(N as u64), "{status}");
    let accepted = per_recipient(&cluster.provider, |r| r.reply == Reply::Accept);
    assert_eq!(accepted.len(), N);
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
    assert!(
        requests
            .iter()
            .any(|r| r.to == throttled.to && r.received_at >= until),
        "the throttled recipient was sent to after the throttle"
    );
}

#[test]
fn a_131048_answered_to_one_worker_stops_every_worker_until_the_sender_is_resumed_on_sqlite() {
    shared_block(Backend::Sqlite);
}

#[test]
fn a_131048_answered_to_one_worker_stops_every_worker_until_the_sender_is_resumed_on_redis() {
    shared_block(Backend::Redis);
}

fn shared_block(backend: Backend) {
    const N: usize = 60;
    let (cluster, mut workers, run) = cluster_of_three(backend, N, 5_000_000);
    cluster.provider.script(Match::Ordinal(12), Reply::BLOCK);
    let store = cluster.store();
    let block = wait_until("the block to be recorded", PATIENCE, || {
        store.sender("main").blocked.ok_or(cluster.provider.count())
    });
    assert_eq!(block.code, "131048", "{block:?}");
    // Once the requests already in flight are answered, nothing is claimed any more.
    wait_for("the claims in flight at the block to end", PATIENCE, || {
        store.claims(&run).iter().all(|c| c.state != "sending")
    });
    let after_block = cluster.provider.count();
    let held = cluster.status()[run.as_str()].clone();
    assert!(
        held["queued"].as_u64() > Some(0),
        "stopped before the end: {held}"
    );
    // `status` shows the block: the sender's state, with each of its runs.
    assert_eq!(held["sender_state"]["state"], "blocked", "{held}");
    assert_eq!(held["sender_state"]["blocked"]["code"], "131048", "{held}");
    // Nothing happens while blocked: a pause long enough for a few slots at 30/s, and no
    // worker exits.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        cluster.provider.count(),
        after_block,
        "a request reached the provider while blocked"
    );
    for worker in &mut workers {
        assert_eq!(worker.exited(), None, "{} stopped", worker.name());
    }

    let resumed_at = Utc::now();
    cluster.project.ok(&["resume", "--sender", "main"]);
    assert_eq!(store.sender("main").blocked, None);
    let status = cluster.wait_drained(&run);
    stop(&cluster, &mut workers);

    let requests = cluster.provider.requests();
    let blocked = requests
        .iter()
        .find(|r| r.reply == Reply::BLOCK)
        .expect("the scripted 131048 was answered");
    let claims = store.claims(&run);
    assert!(
        owners_before(&claims, blocked.received_at) >= 2,
        "at least two workers held claims when the block came"
    );
    let between: Vec<_> = requests
        .iter()
        .filter(|r| r.received_at > blocked.received_at + IN_FLIGHT && r.received_at < resumed_at)
        .collect();
    assert!(
        between.is_empty(),
        "requests between the block and the resume: {between:?}"
    );
    assert_eq!(
        status["sent"].as_u64(),
        Some(N as u64),
        "the rest sent after the resume: {status}"
    );
    let accepted = per_recipient(&cluster.provider, |r| r.reply == Reply::Accept);
    assert_eq!(accepted.len(), N);
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
}
