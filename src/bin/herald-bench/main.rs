//! Herald's benchmark, following the `HERALD_BENCH_CMD` contract of `../shared/bench/README.md`:
//! run once per round of `run-baselines.sh`, configured by the environment, printing one JSON
//! line per measurement so the baselines' summary prints Herald beside BullMQ.
//!
//! - Embedded mode ([`embedded`]): for each size in `EMBEDDED_JOBS` (default "100000 1000000";
//!   empty: none), a SQLite file under `SQLITE_DIR`.
//! - Redis mode ([`redis`]): when `REDIS_PORT` is set, against that Redis (with `SINK_URL`,
//!   `JOBS` default 100000, `CONCURRENCY` default 100; `HERALD_BENCH_X1_JOBS`,
//!   `HERALD_BENCH_AOF` tune the extra lines, `HERALD_BENCH_PROFILE=1` adds a profile of the
//!   Redis commands per job on stderr).
//!
//! `herald-bench child key=value…` is the bench re-executing itself for the work measured in a
//! process of its own ([`child`]); it is not meant to be run by hand.
//!
//! A run that lost or doubled a delivery prints no figure and exits 1; a setting that does not
//! parse exits 2, naming it.

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod child;
mod embedded;
mod project;
mod redis;
mod residue;
mod server;
mod target;

use std::num::NonZeroUsize;
use std::path::PathBuf;

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

/// Says something on stderr (why the bench stops, what it runs against); a stderr that cannot
/// be written is ignored (nowhere else to say it).
#[allow(clippy::disallowed_methods)]
fn note(message: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// Ends the process saying why.
fn fail(code: i32, message: std::fmt::Arguments<'_>) -> ! {
    note(message);
    std::process::exit(code)
}

/// An environment variable parsed, `default` when unset; a value that does not parse is an
/// error naming the variable (never silently the default).
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(e) => Err(format!("{name}: {e}")),
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|e| format!("{name}={text:?}: {e}")),
    }
}

/// Everything the environment asks for.
struct Plan {
    embedded: Vec<u64>,
    sqlite_dir: PathBuf,
    concurrency: NonZeroUsize,
    redis: Option<redis::Settings>,
}

fn plan() -> Result<Plan, String> {
    let embedded = match std::env::var("EMBEDDED_JOBS") {
        Err(std::env::VarError::NotPresent) => vec![100_000, 1_000_000],
        Err(e) => return Err(format!("EMBEDDED_JOBS: {e}")),
        Ok(text) => text
            .split_whitespace()
            .map(|s| s.parse().map_err(|e| format!("EMBEDDED_JOBS: {s:?}: {e}")))
            .collect::<Result<_, _>>()?,
    };
    let sqlite_dir = std::env::var_os("SQLITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("herald-bench"));
    let concurrency = env_or(
        "CONCURRENCY",
        NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN),
    )?;
    let redis = match std::env::var_os("REDIS_PORT") {
        None => None,
        Some(_) => Some(redis::Settings {
            port: env_or("REDIS_PORT", 0u16)?,
            sink_url: env_or("SINK_URL", "http://127.0.0.1:8391/send".to_owned())?,
            jobs: match env_or("JOBS", 100_000u64)? {
                0 => return Err("JOBS must be > 0".into()),
                jobs => jobs,
            },
            concurrency,
            scratch: sqlite_dir.clone(),
            x1_jobs: env_or("HERALD_BENCH_X1_JOBS", 1_000_000u64)?,
            aof: match env_or("HERALD_BENCH_AOF", 1u8)? {
                0 => false,
                1 => true,
                other => return Err(format!("HERALD_BENCH_AOF={other}: expected 0 or 1")),
            },
            profile: match env_or("HERALD_BENCH_PROFILE", 0u8)? {
                0 => false,
                1 => true,
                other => return Err(format!("HERALD_BENCH_PROFILE={other}: expected 0 or 1")),
            },
        }),
    };
    Ok(Plan {
        embedded,
        sqlite_dir,
        concurrency,
        redis,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        if let Err(message) = child::main(&args[1..]) {
            fail(1, format_args!("herald-bench child: {message}"));
        }
        return;
    }
    let plan = plan().unwrap_or_else(|message| fail(2, format_args!("herald-bench: {message}")));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(2, format_args!("herald-bench: {e}")));
    for &jobs in &plan.embedded {
        let run = embedded::bench(&plan.sqlite_dir, jobs, plan.concurrency.get());
        if let Err(message) = runtime.block_on(run) {
            fail(1, format_args!("herald-bench: {jobs} jobs: {message}"));
        }
    }
    if let Some(settings) = &plan.redis
        && let Err(message) = self::redis::bench(settings, &runtime)
    {
        fail(1, format_args!("herald-bench: Redis: {message}"));
    }
}
