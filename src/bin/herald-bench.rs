//! Herald's embedded benchmark, following the `HERALD_BENCH_CMD` contract of
//! `../shared/bench/README.md`: for each size in `EMBEDDED_JOBS` (default "100000 1000000") it
//! expands a campaign into a fresh SQLite file under `SQLITE_DIR` and drains it with every policy
//! check on (consent read, cap history read, window, claim, outcome write) and the provider
//! stubbed in-process, printing one JSON line per measurement:
//! `{"bench":"herald_embedded_enqueue","jobs":N,"jobs_per_s":…,"db_bytes_per_job":…}` and
//! `{"bench":"herald_embedded_drain","jobs":N,"jobs_per_s":…}`.
//! A run that lost or doubled a delivery prints no figure and exits 1.

#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use herald_channel::{Accepted, Channel, OutgoingMessage, SendError};
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, Scope};
use herald_engine::SystemClock;
use herald_engine::expand::{RunSource, expand};
use herald_engine::worker::{Step, Worker, process_worker_id};
use herald_store::{Consents, Deliveries, StoredConsent, Stores, WorkScope};
use herald_store_sqlite::SqliteStores;

/// The provider, stubbed: counts requests and accepts them.
#[derive(Default)]
struct Stub(AtomicU64);

impl Channel for Stub {
    fn name(&self) -> &'static str {
        "stub"
    }

    async fn send(&self, _message: &OutgoingMessage) -> Result<Accepted, SendError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Accepted::default())
    }
}

fn phone(i: u64) -> String {
    format!("+7916{:07}", i % 10_000_000)
}

fn write_project(dir: &Path, jobs: u64) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut csv = String::with_capacity(jobs as usize * 48);
    csv.push_str("id,phone,timezone,first_name\n");
    let zones = [
        "Europe/Moscow",
        "Asia/Yekaterinburg",
        "Asia/Kolkata",
        "America/New_York",
        "Australia/Adelaide",
    ];
    for i in 0..jobs {
        let _ = writeln!(csv, "r{i},{},{},Name{i}", phone(i), zones[(i % 5) as usize]);
    }
    std::fs::write(dir.join("people.csv"), csv)?;
    // Marketing (consent needed and read), a cap (history read), an always-open window, an `at`
    // in the past: every delivery is due at once and passes every check.
    let yaml = "id: bench\npurpose: marketing\naudience: { source: people.csv }\n\
                template: { name: bench, language: en, params: { name: \"{{ first_name | default('friend') }}\" } }\n\
                schedule: { at: 2026-01-01T00:00, in: recipient }\n\
                send_window: { hours: { daily: \"00:00-24:00\" } }\n\
                frequency_cap: [ { max: 5, per: 7d, scope: purpose } ]\nspread: 1s\n";
    std::fs::write(dir.join("c.yaml"), yaml)?;
    Ok(dir.join("c.yaml"))
}

async fn bench(root: &Path, jobs: u64, concurrency: usize) -> Result<(), String> {
    let dir = root.join(format!("herald-{jobs}"));
    let _ = std::fs::remove_dir_all(&dir);
    let file = write_project(&dir, jobs).map_err(|e| e.to_string())?;
    let now: DateTime<Utc> = Utc::now();
    let campaign = herald_campaign::load(&file, now).map_err(|e| e.to_string())?;
    let db = dir.join("herald.db");

    let stores = SqliteStores::open(&db).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    let source = RunSource {
        path: "c.yaml",
        sender: "bench",
        text: &text,
    };
    let (run, expansion) = expand(&stores, &campaign, source, now)
        .await
        .map_err(|e| e.to_string())?;
    let enqueue_s = started.elapsed().as_secs_f64();
    if expansion.total != jobs {
        return Err(format!("expanded {} of {jobs}", expansion.total));
    }
    drop(stores); // the last connection closing checkpoints the WAL into the file
    let bytes = std::fs::metadata(&db).map_err(|e| e.to_string())?.len();
    emit(format_args!(
        "{{\"bench\":\"herald_embedded_enqueue\",\"jobs\":{jobs},\"jobs_per_s\":{:.0},\"db_bytes_per_job\":{:.1}}}",
        jobs as f64 / enqueue_s,
        bytes as f64 / jobs as f64
    ))?;

    let stores = Arc::new(SqliteStores::open(&db).map_err(|e| e.to_string())?);
    let opt_in = |i: u64| StoredConsent {
        channel: "whatsapp".into(),
        phone: PhoneNumber::parse(&phone(i), None).unwrap_or_else(|e| panic!("bench phone: {e}")),
        event: ConsentEvent {
            kind: ConsentKind::OptIn,
            scope: Scope::Marketing,
            occurred_at: now,
            source: "bench".into(),
            proof: None,
        },
    };
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(10_000) {
        let events: Vec<_> = chunk.iter().map(|i| opt_in(*i)).collect();
        stores
            .consents()
            .append(&events, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    let stub = Arc::new(Stub::default());
    let rate = NonZeroU32::new(1_000_000_000).unwrap_or(NonZeroU32::MAX);
    let worker = Arc::new(Worker::new(
        Arc::clone(&stores),
        Arc::clone(&stub),
        Arc::new(SystemClock),
        process_worker_id(),
        WorkScope {
            sender: "bench".into(),
            runs: Some(vec![run.clone()]),
        },
        rate,
        concurrency,
    ));
    worker.register(&run, campaign);
    let started = Instant::now();
    while let Step::Worked(_) = worker.step().await.map_err(|e| e.to_string())? {}
    let drain_s = started.elapsed().as_secs_f64();
    let counts = stores
        .deliveries()
        .counts(&run)
        .await
        .map_err(|e| e.to_string())?;
    let served = stub.0.load(Ordering::Relaxed);
    if counts.sent != jobs || served != jobs {
        return Err(format!(
            "drain lost or doubled deliveries: sent {} served {served} of {jobs}: {counts:?}",
            counts.sent
        ));
    }
    emit(format_args!(
        "{{\"bench\":\"herald_embedded_drain\",\"jobs\":{jobs},\"jobs_per_s\":{:.0}}}",
        jobs as f64 / drain_s
    ))?;
    drop(worker);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Prints one result line. Writing is checked (`println!` panics on a closed pipe or a full
/// disk); a reader that left early ends the bench quietly.
#[allow(clippy::disallowed_methods)]
fn emit(line: std::fmt::Arguments<'_>) -> Result<(), String> {
    use std::io::Write as _;
    match writeln!(std::io::stdout(), "{line}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
    }
}

/// Says why the bench stops; a stderr that cannot be written is ignored (nowhere else to say it).
#[allow(clippy::disallowed_methods)]
fn fail(message: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{message}");
}

fn main() {
    let sizes: Vec<u64> = std::env::var("EMBEDDED_JOBS")
        .unwrap_or_else(|_| "100000 1000000".into())
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    let root = std::env::var("SQLITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("herald-bench"));
    let concurrency = std::env::var("CONCURRENCY")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            fail(format_args!("herald-bench: {e}"));
            std::process::exit(2);
        }
    };
    for jobs in sizes {
        if let Err(message) = runtime.block_on(bench(&root, jobs, concurrency)) {
            fail(format_args!("herald-bench: {jobs} jobs: {message}"));
            std::process::exit(1);
        }
    }
}
