//! `herald-bench` on Redis, at a small size: the contract's lines come out, every check the bench
//! makes passes against real parts (its own `redis-server` with nothing on disk, as the
//! baselines' Redis runs, a fake WhatsApp API standing in for the HTTP sink, AOF servers the
//! bench starts itself), and a setting that does not parse is refused by name. The figures
//! themselves are not judged here: they belong to the bench's output, not to a test.

use std::process::{Command, Output};

use herald_testkit::provider::FakeProvider;
use herald_testkit::redis::{Persistence, RedisServer};

const JOBS: u64 = 300;

fn bench(redis: &RedisServer, sink: &str, scratch: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald-bench"));
    command
        .env("REDIS_PORT", redis.port().to_string())
        .env("SINK_URL", sink)
        .env("JOBS", JOBS.to_string())
        .env("CONCURRENCY", "8")
        .env("EMBEDDED_JOBS", "")
        .env("SQLITE_DIR", scratch)
        .env("HERALD_BENCH_X1_JOBS", (2 * JOBS).to_string());
    command
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

#[test]
fn the_redis_bench_prints_every_line_of_the_contract_and_checks_every_drain() {
    let redis = RedisServer::with(Persistence::None);
    let provider = FakeProvider::start();
    let scratch = tempfile::tempdir().expect("scratch");
    let output = bench(&redis, &provider.base_url(), scratch.path())
        .output()
        .expect("herald-bench runs");
    assert!(
        output.status.success(),
        "herald-bench failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = lines(&output);
    let named = |bench: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["bench"] == bench).collect()
    };
    for (bench, field) in [
        ("herald_enqueue", "redis_bytes_per_job"),
        ("herald_worker_noop", "jobs_per_s"),
        ("herald_worker_http", "peak_rss_mib"),
        ("herald_residue", "residue_fraction"),
        ("herald_worker_nochecks", "jobs_per_s"),
        ("herald_enqueue_aof", "jobs_per_s"),
        ("herald_worker_noop_aof", "jobs_per_s"),
        ("herald_enqueue_aof_always", "jobs_per_s"),
        ("herald_worker_noop_aof_always", "jobs_per_s"),
    ] {
        let found = named(bench);
        assert_eq!(found.len(), 1, "{bench}: {lines:?}");
        assert!(
            found[0][field].is_number(),
            "{bench} has no {field}: {lines:?}"
        );
    }
    let expander: Vec<u64> = named("herald_expander_rss")
        .iter()
        .map(|l| l["jobs"].as_u64().expect("jobs"))
        .collect();
    assert_eq!(expander, [JOBS, 2 * JOBS]);
    // The HTTP drain went through the fake provider: one request per recipient, none twice.
    let mut recipients = provider.recipients();
    assert_eq!(recipients.len() as u64, JOBS);
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len() as u64, JOBS);
    // The bench empties only its own server and stops the AOF servers it started.
    assert_eq!(redis.command(&["DBSIZE"]), ":0");
    assert!(
        std::fs::read_dir(scratch.path())
            .expect("scratch")
            .next()
            .is_none(),
        "the bench left files behind"
    );
}

#[test]
fn a_setting_that_does_not_parse_is_refused_by_name() {
    let redis = RedisServer::with(Persistence::None);
    let scratch = tempfile::tempdir().expect("scratch");
    let output = bench(&redis, "http://127.0.0.1:1/", scratch.path())
        .env("JOBS", "lots")
        .output()
        .expect("herald-bench runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("JOBS=\"lots\""), "{stderr}");
    assert!(output.stdout.is_empty());
}
