//! The Redis bench, following the `HERALD_BENCH_CMD` contract of `../shared/bench/README.md`:
//! run once per round with `REDIS_PORT` (the bench's own Redis, no RDB, no AOF: the one BullMQ
//! ran on), `SINK_URL`, `JOBS`, `CONCURRENCY`. Each measurement starts from an emptied Redis,
//! expands a JOBS-row audience through the real [`herald_engine::expand::expand`] in a child
//! process, and drains it with the real [`herald_engine::worker::Worker`] in another, printing:
//!
//! | line | what |
//! | --- | --- |
//! | `herald_enqueue` | expansion rate; `redis_bytes_per_job` = `used_memory` delta / jobs (E1, E2, M1) |
//! | `herald_worker_noop` | drain with every check on (marketing + opt-ins, cap, window, tier, rate, leases), provider stubbed in-process (W1) |
//! | `herald_worker_http` | the same through the WhatsApp channel POSTing to `SINK_URL`; `peak_rss_mib` of the worker process (S1, R1) |
//! | `herald_expander_rss` | peak RSS of the expansion process, at JOBS and at `HERALD_BENCH_X1_JOBS` (default 1,000,000; 0 skips) (X1) |
//! | `herald_residue` | what the drained W1 run left, see [`crate::residue`] (X2) |
//! | `herald_worker_nochecks` | W1 with checks off: transactional, no cap, no window, no consent, no tier (X3 = W1 / this) |
//! | `herald_enqueue_aof`, `herald_worker_noop_aof` | E1 and W1 on a Redis the bench starts with `appendonly yes`, `appendfsync everysec` (which Herald refuses: measured with the check skipped, for comparison) |
//! | `herald_enqueue_aof_always`, `herald_worker_noop_aof_always` | the same with `appendfsync always` (what Herald requires at either durability) and `durability = "power-loss"` |
//!
//! The AOF servers (skipped with `HERALD_BENCH_AOF=0`) run on free ports in the scratch folder
//! and are stopped at the end. Every drain is checked: the store's `sent` and the channel's
//! requests equal JOBS, no delivery was requested twice, and over HTTP every request was
//! answered 2xx by the sink; otherwise the bench prints no figure for it and exits 1.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use chrono::Utc;
use tokio::runtime::Runtime;

use crate::child::{Job, Sink, Task, spawn};
use crate::emit;
use crate::project::{Checks, import_opt_ins, write_project};
use crate::residue::{self, Memory};
use crate::server::{Admin, AofServer, Fsync};
use crate::target::{Durability, Target};

/// The store's key prefix (the default): every measurement empties the server first.
const PREFIX: &str = "h:";

/// The Redis bench's settings, from the environment.
#[derive(Debug)]
pub(crate) struct Settings {
    /// `REDIS_PORT`.
    pub(crate) port: u16,
    /// `SINK_URL`.
    pub(crate) sink_url: String,
    /// `JOBS`.
    pub(crate) jobs: u64,
    /// `CONCURRENCY`.
    pub(crate) concurrency: NonZeroUsize,
    /// Where audiences and the AOF servers' files go (on disk).
    pub(crate) scratch: PathBuf,
    /// `HERALD_BENCH_X1_JOBS`: the large expansion of X1 (0: none).
    pub(crate) x1_jobs: u64,
    /// `HERALD_BENCH_AOF`: whether to measure the AOF costs.
    pub(crate) aof: bool,
    /// `HERALD_BENCH_PROFILE`: print to stderr, per measured phase, the Redis commands per job
    /// (`INFO commandstats` before and after; the calls inside scripts are counted too).
    pub(crate) profile: bool,
}

/// One enqueue-and-drain measurement.
struct Measured {
    enqueue_per_s: f64,
    bytes_per_job: f64,
    expander_rss_kib: u64,
    drain_per_s: f64,
    worker_rss_kib: u64,
    memory: Memory,
}

/// Runs every Redis measurement and prints its lines.
pub(crate) fn bench(settings: &Settings, runtime: &Runtime) -> Result<(), String> {
    let dir = settings
        .scratch
        .join(format!("herald-redis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = measure_all(settings, runtime, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure_all(settings: &Settings, runtime: &Runtime, dir: &Path) -> Result<(), String> {
    let jobs = settings.jobs;
    let io =
        |e: std::io::Error| format!("writing the bench's audience under {}: {e}", dir.display());
    let on = write_project(&dir.join("on"), jobs, Checks::On).map_err(io)?;
    let off = write_project(&dir.join("off"), jobs, Checks::Off).map_err(io)?;
    let (on, off) = (parent(&on), parent(&off));
    let main = Target {
        url: format!("redis://127.0.0.1:{}", settings.port),
        durability: Durability::Process,
        aof: false,
    };
    let mut admin = Admin::connect(&main.url)?;
    crate::note(format_args!(
        "herald-bench: Redis {} (appendonly {}, save {:?}), {jobs} jobs, concurrency {}",
        main.url,
        admin.config_get("appendonly")?,
        admin.config_get("save")?,
        settings.concurrency
    ));

    // E1, E2, M1, W1, X1 at JOBS, X2.
    let w1 = measure(
        settings,
        runtime,
        &main,
        &mut admin,
        &on,
        Sink::Stub,
        Checks::On,
    )?;
    emit(format_args!(
        "{{\"bench\":\"herald_enqueue\",\"jobs\":{jobs},\"jobs_per_s\":{:.0},\"redis_bytes_per_job\":{:.1}}}",
        w1.enqueue_per_s, w1.bytes_per_job
    ))?;
    emit(format_args!(
        "{{\"bench\":\"herald_worker_noop\",\"jobs\":{jobs},\"concurrency\":{},\"jobs_per_s\":{:.0},\"worker_peak_rss_mib\":{:.1}}}",
        settings.concurrency,
        w1.drain_per_s,
        mib(w1.worker_rss_kib)
    ))?;
    emit(format_args!(
        "{{\"bench\":\"herald_expander_rss\",\"jobs\":{jobs},\"peak_rss_mib\":{:.1}}}",
        mib(w1.expander_rss_kib)
    ))?;
    let footprint = admin.footprint(PREFIX)?;
    let memory = Memory {
        drained: admin.used_memory()?,
        overhead_drained: admin.overhead()?,
        index_drained: admin.index_bytes()?,
        ..w1.memory
    };
    emit(format_args!("{}", residue::line(jobs, &memory, &footprint)))?;

    // S1, R1.
    let sink = Sink::WhatsApp(settings.sink_url.clone());
    let s1 = measure(settings, runtime, &main, &mut admin, &on, sink, Checks::On)?;
    emit(format_args!(
        "{{\"bench\":\"herald_worker_http\",\"jobs\":{jobs},\"concurrency\":{},\"jobs_per_s\":{:.0},\"peak_rss_mib\":{:.1}}}",
        settings.concurrency,
        s1.drain_per_s,
        mib(s1.worker_rss_kib)
    ))?;

    // X3.
    let x3 = measure(
        settings,
        runtime,
        &main,
        &mut admin,
        &off,
        Sink::Stub,
        Checks::Off,
    )?;
    emit(format_args!(
        "{{\"bench\":\"herald_worker_nochecks\",\"jobs\":{jobs},\"concurrency\":{},\"jobs_per_s\":{:.0},\"checks_on_ratio\":{:.3}}}",
        settings.concurrency,
        x3.drain_per_s,
        w1.drain_per_s / x3.drain_per_s
    ))?;

    // X1 at the large size: expansion only.
    if settings.x1_jobs > 0 {
        let large = settings.x1_jobs;
        let project = write_project(&dir.join("large"), large, Checks::On).map_err(io)?;
        admin.flushall()?;
        let before = admin.used_memory()?;
        let report = spawn(&Job {
            target: main.clone(),
            project: parent(&project),
            jobs: large,
            task: Task::Expand,
        })?;
        let after = admin.used_memory()?;
        let rss = number(&report, "peak_rss_kib")? as u64;
        emit(format_args!(
            "{{\"bench\":\"herald_expander_rss\",\"jobs\":{large},\"peak_rss_mib\":{:.1},\"enqueue_jobs_per_s\":{:.0},\"enqueue_bytes_per_job\":{:.1},\"ratio_to_{jobs}\":{:.3}}}",
            mib(rss),
            large as f64 / number(&report, "secs")?,
            after.saturating_sub(before) as f64 / large as f64,
            rss as f64 / w1.expander_rss_kib.max(1) as f64
        ))?;
        let _ = std::fs::remove_dir_all(dir.join("large"));
    }
    admin.flushall()?;

    if settings.aof {
        for (fsync, durability, suffix) in [
            (Fsync::EverySec, Durability::Process, "aof"),
            (Fsync::Always, Durability::PowerLoss, "aof_always"),
        ] {
            let server = AofServer::start(dir, fsync)?;
            let target = Target {
                url: server.url(),
                durability,
                // Herald refuses `everysec` (herald-store-redis's `persistence` module): it is
                // measured with the check skipped, to show what `always` costs against it.
                aof: fsync == Fsync::Always,
            };
            let mut admin = Admin::connect(&target.url)?;
            let m = measure(
                settings,
                runtime,
                &target,
                &mut admin,
                &on,
                Sink::Stub,
                Checks::On,
            )?;
            emit(format_args!(
                "{{\"bench\":\"herald_enqueue_{suffix}\",\"jobs\":{jobs},\"jobs_per_s\":{:.0},\"redis_bytes_per_job\":{:.1},\"ratio_to_no_aof\":{:.3}}}",
                m.enqueue_per_s,
                m.bytes_per_job,
                m.enqueue_per_s / w1.enqueue_per_s
            ))?;
            emit(format_args!(
                "{{\"bench\":\"herald_worker_noop_{suffix}\",\"jobs\":{jobs},\"jobs_per_s\":{:.0},\"ratio_to_no_aof\":{:.3}}}",
                m.drain_per_s,
                m.drain_per_s / w1.drain_per_s
            ))?;
            drop(server);
        }
    }
    Ok(())
}

/// Empties the server, expands `project` in a child, stores the opt-ins (with checks on) and
/// drains the run in another child through `sink`; checks that every delivery was sent once.
#[allow(clippy::too_many_arguments)]
fn measure(
    settings: &Settings,
    runtime: &Runtime,
    target: &Target,
    admin: &mut Admin,
    project: &Path,
    sink: Sink,
    checks: Checks,
) -> Result<Measured, String> {
    let jobs = settings.jobs;
    admin.flushall()?;
    let empty = admin.used_memory()?;
    let overhead_empty = admin.overhead()?;
    let index_empty = admin.index_bytes()?;
    let stats = settings.profile.then(|| admin.commandstats()).transpose()?;
    let expanded = spawn(&Job {
        target: target.clone(),
        project: project.to_owned(),
        jobs,
        task: Task::Expand,
    })?;
    let after = admin.used_memory()?;
    if let Some(before) = stats {
        profile(
            &format!("{} expand", target.url),
            jobs,
            &before,
            &admin.commandstats()?,
        );
    }
    if checks == Checks::On {
        runtime.block_on(async {
            let stores = target.open().await?;
            import_opt_ins(&stores, jobs, Utc::now()).await
        })?;
    }
    let http = matches!(sink, Sink::WhatsApp(_));
    let label = format!("{} drain {sink:?} checks {checks:?}", target.url);
    let stats = settings.profile.then(|| admin.commandstats()).transpose()?;
    let worked = spawn(&Job {
        target: target.clone(),
        project: project.to_owned(),
        jobs,
        task: Task::Work {
            channel: sink,
            concurrency: settings.concurrency,
            checks,
        },
    })?;
    if let Some(before) = stats {
        profile(&label, jobs, &before, &admin.commandstats()?);
    }
    let count = |name: &str| number(&worked, name).map(|n| n as u64);
    let (sent, requests, accepted) = (count("sent")?, count("requests")?, count("accepted")?);
    let (duplicates, strangers) = (count("duplicates")?, count("strangers")?);
    if sent != jobs
        || requests != jobs
        || duplicates != 0
        || strangers != 0
        || (http && accepted != jobs)
    {
        return Err(format!(
            "the drain lost or doubled deliveries ({} of {jobs}): {worked}",
            target.url
        ));
    }
    Ok(Measured {
        enqueue_per_s: jobs as f64 / number(&expanded, "secs")?,
        bytes_per_job: after.saturating_sub(empty) as f64 / jobs as f64,
        expander_rss_kib: number(&expanded, "peak_rss_kib")? as u64,
        drain_per_s: jobs as f64 / number(&worked, "secs")?,
        worker_rss_kib: count("peak_rss_kib")?,
        memory: Memory {
            empty,
            expanded: after,
            drained: 0,
            overhead_empty,
            overhead_drained: 0,
            index_empty,
            index_drained: 0,
        },
    })
}

/// Says on stderr which commands a phase sent per job, costliest first.
fn profile(
    label: &str,
    jobs: u64,
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
) {
    let mut rows: Vec<(String, f64, f64)> = after
        .iter()
        .filter_map(|(name, (calls, usec))| {
            let (calls0, usec0) = before.get(name).copied().unwrap_or((0, 0));
            let calls = calls.saturating_sub(calls0);
            (calls > 0).then(|| {
                let usec = usec.saturating_sub(usec0);
                (
                    name.clone(),
                    calls as f64 / jobs as f64,
                    usec as f64 / jobs as f64,
                )
            })
        })
        .collect();
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut line = format!("profile {label}, per job (calls, µs in Redis):");
    for (name, calls, usec) in rows {
        line.push_str(&format!(" {name} {calls:.3} {usec:.2};"));
    }
    crate::note(format_args!("{line}"));
}

/// A number a child reported, by name.
fn number(report: &serde_json::Value, name: &str) -> Result<f64, String> {
    report
        .get(name)
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| format!("a child's report has no number {name:?}: {report}"))
}

fn parent(file: &Path) -> PathBuf {
    file.parent().map_or_else(PathBuf::new, Path::to_path_buf)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
