//! The measured work in processes of its own: expansion and the worker each run in a child
//! process (this binary, re-executed as `herald-bench child key=value…`), so its peak resident
//! set is its own, as BullMQ's worker is measured with `/usr/bin/time -v`. A child reports one
//! JSON line on standard output; its `peak_rss_kib` is the kernel's `VmHWM` of the child, read
//! by the child itself just before it ends (nothing it did is left out, nothing of the parent
//! is counted).

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use herald_channel::{Channel, WhatsApp, WhatsAppConfig};
use herald_engine::SystemClock;
use herald_engine::expand::{RunSource, expand};
use herald_engine::worker::{Step, Worker, process_worker_id};
use herald_store::{Deliveries, Stores, WorkScope};
use herald_store_redis::RedisStores;

use crate::project::{Checks, Counted, Stub};
use crate::target::{Durability, Target};

/// The sender every bench run sends through.
const SENDER: &str = "bench";

/// The sender's rate: far above what one worker reaches (~10^4/s), so the limiter is exercised
/// on every claim and never binding, and a whole microsecond per slot, so no GCRA arithmetic
/// rounds an interval to zero.
const RATE: u32 = 1_000_000;

/// The messaging tier: unique recipients per moving 24 h, above any audience the bench writes,
/// so the tier is counted at every claim and never binding.
const TIER: u64 = 100_000_000;

/// An idle step that says the next delivery is due later than this ends the drain (the bench's
/// deliveries are all due at once; one deferred that far is a finding, reported by the counts).
const LONGEST_IDLE: Duration = Duration::from_secs(2);

/// What the child does.
#[derive(Debug, Clone)]
pub(crate) enum Task {
    /// Expands the project's audience into the store.
    Expand,
    /// Drains the project's run with a worker.
    Work {
        /// Where requests go.
        channel: Sink,
        /// Requests in flight at once (and the step's batch).
        concurrency: NonZeroUsize,
        /// Whether the messaging tier is checked at the claim (with [`Checks::On`]).
        checks: Checks,
    },
}

/// The provider a worker child sends to.
#[derive(Debug, Clone)]
pub(crate) enum Sink {
    /// In-process: accepted at once.
    Stub,
    /// The WhatsApp Cloud API channel POSTing to this base URL (the bench's HTTP sink answers
    /// every request with a Cloud-API-shaped acceptance).
    WhatsApp(String),
}

/// One child's job.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// The store.
    pub(crate) target: Target,
    /// The folder holding `c.yaml` and `people.csv`.
    pub(crate) project: PathBuf,
    /// The audience's rows.
    pub(crate) jobs: u64,
    /// What to do.
    pub(crate) task: Task,
}

impl Job {
    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "child".to_owned(),
            format!("url={}", self.target.url),
            format!("durability={}", self.target.durability.as_str()),
            format!("aof={}", if self.target.aof { "yes" } else { "no" }),
            format!("project={}", self.project.display()),
            format!("jobs={}", self.jobs),
        ];
        match &self.task {
            Task::Expand => args.push("task=expand".to_owned()),
            Task::Work {
                channel,
                concurrency,
                checks,
            } => {
                args.push("task=work".to_owned());
                args.push(match channel {
                    Sink::Stub => "sink=stub".to_owned(),
                    Sink::WhatsApp(url) => format!("sink={url}"),
                });
                args.push(format!("concurrency={concurrency}"));
                args.push(format!("checks={}", checks.as_str()));
            }
        }
        args
    }

    /// Reads the arguments after `child`, each `key=value`; a missing or bad one is an error
    /// naming it.
    fn parse(args: &[String]) -> Result<Self, String> {
        let get = |key: &str| -> Result<&str, String> {
            args.iter()
                .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
                .ok_or_else(|| format!("child: missing {key}=…"))
        };
        let number = |key: &str| -> Result<u64, String> {
            let text = get(key)?;
            text.parse()
                .map_err(|e| format!("child: {key}={text:?}: {e}"))
        };
        let aof = match get("aof")? {
            "yes" => true,
            "no" => false,
            other => return Err(format!("child: aof: expected yes or no, got {other:?}")),
        };
        let target = Target {
            url: get("url")?.to_owned(),
            durability: Durability::parse(get("durability")?)?,
            aof,
        };
        let task = match get("task")? {
            "expand" => Task::Expand,
            "work" => Task::Work {
                channel: match get("sink")? {
                    "stub" => Sink::Stub,
                    url => Sink::WhatsApp(url.to_owned()),
                },
                concurrency: NonZeroUsize::new(number("concurrency")? as usize)
                    .ok_or("child: concurrency must be > 0")?,
                checks: Checks::parse(get("checks")?)?,
            },
            other => {
                return Err(format!(
                    "child: task: expected expand or work, got {other:?}"
                ));
            }
        };
        Ok(Self {
            target,
            project: PathBuf::from(get("project")?),
            jobs: number("jobs")?,
            task,
        })
    }
}

/// Runs `job` in a child process and returns the JSON object it reported.
pub(crate) fn spawn(job: &Job) -> Result<serde_json::Value, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    let output = Command::new(exe)
        .args(job.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("starting a child: {e}"))?;
    if !output.status.success() {
        return Err(format!("{:?} child ended with {}", job.task, output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| format!("{:?} child reported nothing", job.task))?;
    serde_json::from_str(line).map_err(|e| format!("{:?} child reported {line:?}: {e}", job.task))
}

/// The child's side: runs the job given on the command line (the arguments after `child`) and
/// prints its report.
pub(crate) fn main(args: &[String]) -> Result<(), String> {
    let job = Job::parse(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let report = runtime.block_on(async {
        let stores = Arc::new(job.target.open().await?);
        match &job.task {
            Task::Expand => expand_audience(&job, &stores).await,
            Task::Work {
                channel: Sink::Stub,
                concurrency,
                checks,
            } => {
                drain(
                    &job,
                    stores,
                    Counted::new(Stub, job.jobs),
                    *concurrency,
                    *checks,
                )
                .await
            }
            Task::Work {
                channel: Sink::WhatsApp(url),
                concurrency,
                checks,
            } => {
                let mut config = WhatsAppConfig::new(SENDER, "bench-token-not-a-secret");
                config.base_url = url.clone();
                let whatsapp =
                    WhatsApp::new(config).map_err(|e| format!("the WhatsApp channel: {e}"))?;
                drain(
                    &job,
                    stores,
                    Counted::new(whatsapp, job.jobs),
                    *concurrency,
                    *checks,
                )
                .await
            }
        }
    })?;
    crate::emit(format_args!("{report}"))
}

/// Expands the project's campaign; reports the seconds `expand` took.
async fn expand_audience(job: &Job, stores: &RedisStores) -> Result<String, String> {
    let file = job.project.join("c.yaml");
    let now = Utc::now();
    let campaign = herald_campaign::load(&file, now).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let source = RunSource {
        path: "c.yaml",
        sender: SENDER,
        text: &text,
    };
    let (_run, expansion) = expand(stores, &campaign, source, now)
        .await
        .map_err(|e| format!("expand: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    if expansion.total != job.jobs || expansion.inserted != job.jobs {
        return Err(format!(
            "expanded {} (inserted {}) of {}",
            expansion.total, expansion.inserted, job.jobs
        ));
    }
    Ok(format!(
        "{{\"secs\":{secs:.6},\"total\":{},\"peak_rss_kib\":{}}}",
        expansion.total,
        peak_rss_kib()?
    ))
}

/// Drains the run with one worker on `channel`; reports the seconds from the first step to the
/// last, what the channel saw, and the run's counts as the store keeps them.
async fn drain<C: Channel + 'static>(
    job: &Job,
    stores: Arc<RedisStores>,
    channel: Counted<C>,
    concurrency: NonZeroUsize,
    checks: Checks,
) -> Result<String, String> {
    let now = Utc::now();
    let campaign =
        herald_campaign::load(&job.project.join("c.yaml"), now).map_err(|e| e.to_string())?;
    let (run, _) = campaign
        .run_at(now)
        .ok_or("the bench campaign has no run")?;
    let channel = Arc::new(channel);
    let rate = NonZeroU32::new(RATE).ok_or("rate is zero")?;
    let mut worker = Worker::new(
        Arc::clone(&stores),
        Arc::clone(&channel),
        Arc::new(SystemClock),
        process_worker_id(),
        WorkScope {
            sender: SENDER.into(),
            runs: Some(vec![run.clone()]),
        },
        rate,
        concurrency.get(),
    )
    .with_concurrency(concurrency);
    if checks == Checks::On {
        worker = worker.with_tier(TIER);
    }
    let worker = Arc::new(worker);
    worker.register(&run, campaign);
    let mut idle_waits = 0u64;
    let started = Instant::now();
    loop {
        match worker.step().await.map_err(|e| format!("worker: {e}"))? {
            Step::Worked(_) => {}
            Step::Idle(None) => break,
            Step::Idle(Some(next)) => {
                let wait = (next - Utc::now()).to_std().unwrap_or_default();
                if wait > LONGEST_IDLE {
                    break;
                }
                idle_waits += 1;
                tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let counts = stores
        .deliveries()
        .counts(&run)
        .await
        .map_err(|e| format!("counts: {e}"))?;
    let tally = channel.tally();
    Ok(format!(
        "{{\"secs\":{secs:.6},\"requests\":{},\"accepted\":{},\"duplicates\":{},\"strangers\":{},\
         \"sent\":{},\"total\":{},\"queued\":{},\"sending\":{},\"unknown\":{},\"idle_waits\":{idle_waits},\
         \"peak_rss_kib\":{}}}",
        tally.requests,
        tally.accepted,
        tally.duplicates,
        tally.strangers,
        counts.sent,
        counts.total(),
        counts.queued,
        counts.sending,
        counts.unknown,
        peak_rss_kib()?
    ))
}

/// This process's peak resident set (`VmHWM` in `/proc/self/status`), in KiB.
fn peak_rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("reading /proc/self/status: {e}"))?;
    let field = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .ok_or("/proc/self/status has no VmHWM")?;
    field
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|e| format!("VmHWM {field:?}: {e}"))
}
