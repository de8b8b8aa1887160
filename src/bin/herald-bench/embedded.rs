//! The embedded (SQLite) bench, following the `HERALD_BENCH_CMD` contract of
//! `../shared/bench/README.md`: for each size in `EMBEDDED_JOBS` (default "100000 1000000") it
//! expands a campaign into a fresh SQLite file under `SQLITE_DIR` and drains it with every policy
//! check on (consent read, cap history read, window, claim, outcome write) and the provider
//! stubbed in-process, printing one JSON line per measurement:
//! `{"bench":"herald_embedded_enqueue","jobs":N,"jobs_per_s":…,"db_bytes_per_job":…}` and
//! `{"bench":"herald_embedded_drain","jobs":N,"jobs_per_s":…}`.
//! A run that lost or doubled a delivery prints no figure and exits 1.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use herald_engine::SystemClock;
use herald_engine::expand::{RunSource, expand};
use herald_engine::worker::{Step, Worker, process_worker_id};
use herald_store::{Deliveries, Stores, WorkScope};
use herald_store_sqlite::SqliteStores;

use crate::emit;
use crate::project::{Checks, Counted, Stub, import_opt_ins, write_project};

/// Expands and drains `jobs` deliveries in a fresh SQLite file under `root`.
pub(crate) async fn bench(root: &Path, jobs: u64, concurrency: usize) -> Result<(), String> {
    let dir = root.join(format!("herald-{jobs}"));
    let _ = std::fs::remove_dir_all(&dir);
    let file = write_project(&dir, jobs, Checks::On).map_err(|e| e.to_string())?;
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
    import_opt_ins(&*stores, jobs, now).await?;
    let stub = Arc::new(Counted::new(Stub, jobs));
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
    let tally = stub.tally();
    let served = tally.requests;
    if counts.sent != jobs || served != jobs || tally.duplicates != 0 {
        return Err(format!(
            "drain lost or doubled deliveries: sent {} served {served} of {jobs}: {counts:?}, {tally:?}",
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
