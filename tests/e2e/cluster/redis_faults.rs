//! What Redis itself can do to a cluster (issue 12's acceptance): crash and come back with what
//! it acknowledged, come back empty, run without the AOF a claim needs; and a whole campaign due
//! at one instant.
//!
//! The first three send to the fake provider answering slowly, so requests are in flight when
//! Redis fails; the provider's log is the judge of "twice" and "nothing more".

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use herald_testkit::poll::{wait_for, wait_until};
use herald_testkit::process::{Project, Spawned};
use herald_testkit::redis::{Persistence, RedisServer};
use serde_json::Value;

use super::kit::{
    ALWAYS_OPEN, Backend, Cluster, PATIENCE, SenderConf, accounted, people, per_recipient,
    redis_url, run_id, take_turn,
};

const AT: &str = "2026-01-01T00:00";

/// How long the provider takes to answer: every worker holds claims when Redis fails.
const ANSWER_DELAY: Duration = Duration::from_millis(100);

/// A Redis cluster sending `n` recipients due now through `workers` workers at `per_second`.
fn cluster(
    n: usize,
    first_phone: u64,
    per_second: u32,
    workers: usize,
) -> (Cluster, Vec<Spawned>, herald_core::RunId) {
    let cluster = Cluster::new(
        Backend::Redis,
        &[SenderConf {
            name: "main",
            per_second,
        }],
    );
    cluster.provider.set_delay(ANSWER_DELAY);
    cluster.campaign(
        "faulty",
        "main",
        &people(n, first_phone),
        &format!("schedule: {{ at: {AT}, in: Etc/UTC }}\nspread: 1s\n{ALWAYS_OPEN}"),
    );
    let run = run_id("faulty", AT);
    cluster.schedule(&["faulty.yaml"], &[&run]);
    let workers = (0..workers)
        .map(|i| cluster.worker(&format!("worker-{i}"), &[]))
        .collect();
    (cluster, workers, run)
}

/// `redis-server` SIGKILLed mid-run with AOF on (`appendfsync everysec`) and started again on
/// its port and directory: the workers reconnect and finish the run; no recipient receives a
/// second request and none is lost.
///
/// A process crash keeps the page cache: what Redis acknowledged had been written to the AOF
/// file (not necessarily fsynced) before the reply, and the restarted server replays it. So this
/// proves the default promise (a claim survives the crash of any process), not fsync; an OS
/// crash is `durability = "power-loss"`'s (`appendfsync always`), which no test here can cause.
#[test]
fn redis_killed_mid_run_and_restarted_loses_nothing_and_sends_nothing_twice() {
    const N: usize = 600;
    let (mut cluster, mut workers, run) = cluster(N, 6_000_000, 100, 3);
    wait_for("a third of the audience sent", PATIENCE, || {
        cluster.provider.count() >= N / 3
    });
    let in_flight = cluster
        .store()
        .claims(&run)
        .iter()
        .filter(|c| c.state == "sending")
        .count();
    assert!(
        in_flight > 0,
        "no claim in flight when Redis was killed: the crash proved nothing"
    );
    cluster.redis_mut().kill();
    let at_kill = cluster.provider.count();
    // The outage: long enough for the requests in flight at the kill to be answered while Redis
    // is down, so their outcomes wait for the reconnect. Not a timing assertion.
    std::thread::sleep(Duration::from_secs(1));
    for worker in &mut workers {
        assert_eq!(
            worker.exited(),
            None,
            "{} gave up while Redis was down: {}",
            worker.name(),
            cluster.project.log(worker.name())
        );
    }
    cluster.redis_mut().restart();
    let status = cluster.wait_drained(&run);
    for worker in &mut workers {
        let name = worker.name().to_owned();
        assert_eq!(worker.sigterm(), Some(0), "{}", cluster.project.log(&name));
    }
    eprintln!(
        "Redis killed with {in_flight} claims in flight and {at_kill} requests received; {status}"
    );

    // The provider's side: at most one request per recipient.
    let per_phone = per_recipient(&cluster.provider, |_| true);
    let twice: Vec<_> = per_phone.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "recipients reached more than once: {twice:?}"
    );
    // The store's side: every recipient in exactly one terminal state, sent or unknown (a claim
    // in flight across the outage may end unknown), and the counts add up.
    assert_eq!(status["total"], N as u64, "{status}");
    assert_eq!(accounted(&status), N as u64, "{status}");
    let sent = status["sent"].as_u64().unwrap();
    let unknown = status["unknown"].as_u64().unwrap_or(0);
    assert_eq!(sent + unknown, N as u64, "lost recipients: {status}");
    // A view opened after the restart (a handle's first command after its server died fails
    // while it reconnects; the workers retry, a view read once would not).
    let claims = cluster.store().claims(&run);
    assert_eq!(claims.len(), N, "one claim record per delivery");
    let states: BTreeSet<&str> = claims.iter().map(|c| c.state.as_str()).collect();
    assert!(
        states.iter().all(|s| ["sent", "unknown"].contains(s)),
        "{states:?}"
    );
    // Every sent delivery reached the provider; an unknown one may have.
    let reached = per_phone.len() as u64;
    assert!(
        reached >= sent && reached <= N as u64,
        "{reached} reached, {status}"
    );
}

/// A Redis that comes back empty mid-run (its state lost): the workers must not take it for a
/// new deployment. They halt with the epoch error and nothing more reaches the provider.
#[test]
fn redis_restarted_empty_halts_the_workers_with_the_epoch_error_and_nothing_more_is_sent() {
    const N: usize = 300;
    let (mut cluster, mut workers, _run) = cluster(N, 7_000_000, 20, 3);
    wait_for("the workers to be sending", PATIENCE, || {
        cluster.provider.count() >= 20
    });
    cluster.redis_mut().restart_empty();
    let at_restart = cluster.provider.count();
    let mut codes = Vec::new();
    for worker in &mut workers {
        let code = wait_until(&format!("{} to halt", worker.name()), PATIENCE, || {
            worker.exited().ok_or(cluster.provider.count())
        });
        codes.push((worker.name().to_owned(), code));
    }
    let halted = Instant::now();
    let at_halt = cluster.provider.count();
    for (name, code) in &codes {
        let log = cluster.project.log(name);
        assert!(
            code.is_some_and(|c| c != 0),
            "{name} exited with {code:?}: {log}"
        );
        assert!(
            log.to_lowercase().contains("epoch"),
            "{name}'s error does not name the epoch: {log}"
        );
    }
    // A moment later, nothing more: the count stopped at the halt and no request arrived after
    // the last worker exited.
    std::thread::sleep(Duration::from_secs(1));
    let requests = cluster.provider.requests();
    assert_eq!(requests.len(), at_halt, "requests after the halt");
    let late: Vec<_> = requests.iter().filter(|r| r.received > halted).collect();
    assert!(
        late.is_empty(),
        "requests after the workers exited: {late:?}"
    );
    // Nothing was sent twice either (a store taken for new would have nothing to resend from,
    // but a worker that re-initialised it could have re-queued what it held).
    let per_phone = per_recipient(&cluster.provider, |_| true);
    assert!(per_phone.values().all(|n| *n == 1), "{per_phone:?}");
    // A worker restarted after the halt (as its supervisor would) does not take the empty Redis
    // for a new store: it refuses, naming `herald init`, and sends nothing; nor does a scheduler.
    let mut again = cluster.worker("worker-restarted", &[]);
    let code = wait_until("the restarted worker to refuse", PATIENCE, || {
        again.exited().ok_or(cluster.provider.count())
    });
    let log = cluster.project.log("worker-restarted");
    assert!(code.is_some_and(|c| c != 0), "exited with {code:?}: {log}");
    assert!(log.contains("herald init"), "{log}");
    assert_eq!(cluster.provider.count(), at_halt, "sent after the restart");
    let scheduler = cluster.project.output(&["scheduler", "faulty.yaml"]);
    assert!(
        !scheduler.status.success(),
        "the scheduler expanded an emptied Redis"
    );
    assert_eq!(
        cluster.redis().command(&["DBSIZE"]),
        ":0",
        "something was written to the emptied Redis"
    );
    eprintln!(
        "emptied with {at_restart} requests received; {} more arrived before the workers halted \
         (claims granted before the restart, their requests already leaving); {codes:?}",
        at_halt - at_restart
    );
}

/// A Redis without AOF (RDB snapshots only): a snapshot restored after a crash brings back
/// deliveries already sent, so `herald worker` refuses to claim there, naming `appendonly`, and
/// sends nothing; `herald status` still answers, or says why not.
#[test]
fn a_redis_without_aof_is_refused_by_the_worker_and_nothing_is_sent() {
    const N: usize = 20;
    let cluster = Cluster::on_redis(
        Persistence::RdbOnly,
        &[SenderConf {
            name: "main",
            per_second: 50,
        }],
    );
    cluster.campaign(
        "unsafe",
        "main",
        &people(N, 8_000_000),
        &format!("schedule: {{ at: {AT}, in: Etc/UTC }}\nspread: 1s\n{ALWAYS_OPEN}"),
    );
    let run = run_id("unsafe", AT);
    // The run is scheduled while the AOF is on, so the refusing worker has work due whatever
    // the scheduler's own policy is; then the AOF is turned off under it.
    let redis = cluster.redis();
    assert_eq!(
        redis.command(&["CONFIG", "SET", "appendonly", "yes"]),
        "+OK"
    );
    assert_eq!(
        redis.command(&["CONFIG", "SET", "appendfsync", "always"]),
        "+OK"
    );
    cluster.project.ok(&["init"]);
    cluster.schedule(&["unsafe.yaml"], &[&run]);
    assert_eq!(redis.command(&["CONFIG", "SET", "appendonly", "no"]), "+OK");

    let mut worker = cluster.worker("worker", &[]);
    let code = wait_until("the worker to refuse", PATIENCE, || {
        worker.exited().ok_or(cluster.provider.count())
    });
    let log = cluster.project.log("worker");
    assert!(code.is_some_and(|c| c != 0), "exited with {code:?}: {log}");
    assert!(
        log.contains("appendonly"),
        "the refusal names the setting: {log}"
    );
    assert_eq!(cluster.provider.count(), 0, "sent on a Redis without AOF");

    let status = cluster.project.output(&["status"]);
    let (out, err) = (
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr),
    );
    assert!(
        status.status.success() || err.contains("appendonly"),
        "status neither works nor says why: {:?}\n{out}{err}",
        status.status
    );
    eprintln!(
        "herald status on a Redis without AOF: {:?}\n{out}{err}",
        status.status
    );
}

/// How many deliveries fall due at one instant in [`a_campaign_of_50_000_due_at_one_instant_drains_completely`].
const AT_ONCE: usize = 50_000;

/// 50,000 deliveries due at the same instant drain completely: `herald run --until-idle` on a
/// Redis, to an outbox sender (the real worker and store; the channel appends one line per
/// send), each recipient sent exactly once and the counts adding up. The queue Herald replaced
/// lost its worker once ~8,000 jobs fell due together.
#[test]
fn a_campaign_of_50_000_due_at_one_instant_drains_completely() {
    // Both cores are this test's while it runs.
    let _turn = take_turn();
    let redis = RedisServer::start();
    let project = Project::new(env!("CARGO_BIN_EXE_herald"));
    project.write_config(&format!(
        "[store]\nredis = \"{}\"\n[worker]\nbatch = 500\n\
         [senders.main]\nchannel = \"outbox\"\npath = \"outbox.jsonl\"\nper_second = 1000000\n",
        redis_url(&redis)
    ));
    let mut csv = String::with_capacity(AT_ONCE * 32);
    csv.push_str("id,phone,timezone\n");
    for i in 0..AT_ONCE {
        writeln!(csv, "r{i},+7916{:07},Etc/UTC", 9_000_000 + i).unwrap();
    }
    project.write("crowd.csv", &csv);
    project.ok(&["init"]);
    // The shortest spread, one second, gives every recipient an offset of 0 (offsets are whole
    // seconds below the width): every delivery is due at `at` itself.
    project.write(
        "crowd.yaml",
        &format!(
            "id: crowd\nsender: main\npurpose: transactional\naudience: {{ source: crowd.csv }}\n\
             template: {{ name: notice, language: en }}\n\
             schedule: {{ at: {AT}, in: Etc/UTC }}\nspread: 1s\n"
        ),
    );
    let started = Instant::now();
    project.ok(&["run", "crowd.yaml", "--until-idle"]);
    eprintln!("{AT_ONCE} due at once drained in {:?}", started.elapsed());

    let outbox = std::fs::read_to_string(project.file("outbox.jsonl")).expect("the outbox");
    let mut sends = std::collections::BTreeMap::<String, usize>::new();
    for line in outbox.lines() {
        let message: Value = serde_json::from_str(line).expect("an outbox line is JSON");
        let recipient = message["recipient"]
            .as_str()
            .expect("a recipient")
            .to_owned();
        *sends.entry(recipient).or_default() += 1;
    }
    assert_eq!(sends.len(), AT_ONCE, "every recipient sent to");
    let twice: Vec<_> = sends.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");

    let doc: Value =
        serde_json::from_str(&project.ok(&["status", "--format", "json"])).expect("JSON status");
    let runs = doc.get("runs").unwrap_or(&doc);
    let status = &runs[0];
    assert_eq!(status["total"], AT_ONCE as u64, "{status}");
    assert_eq!(status["sent"], AT_ONCE as u64, "{status}");
    assert_eq!(accounted(status), AT_ONCE as u64, "{status}");
}
