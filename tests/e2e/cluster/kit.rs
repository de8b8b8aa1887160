//! The cluster tests' project: a config with a WhatsApp sender pointed at the fake provider and
//! a short lease, campaigns and audiences, the roles as background processes, and views of the
//! store and of `herald status`.
//!
//! Every cluster runs on one of two stores ([`Backend`]): a SQLite file in the project dir, or a
//! `redis-server` of its own (AOF on, its own port and dir, killed with the cluster). The tests
//! are the same functions on both; only the config's `[store]` line and the instrumentation that
//! places a kill differ.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_app::AnyStores;
use herald_core::{CampaignId, RunId};
use herald_store::{ClaimRecord, Deliveries, RunCounts, Runs, SenderState, Senders, Stores};
use herald_testkit::poll::wait_until;
use herald_testkit::process::{Project, Spawned};
use herald_testkit::provider::FakeProvider;
use herald_testkit::redis::{Persistence, RedisServer};
use serde_json::Value;

/// The worker lease in these tests (`[worker] lease_seconds`; 60 by default): short, so a killed
/// worker's claims are recovered within the test, and three times the HTTP timeout, the least
/// the config allows.
pub(crate) const LEASE_SECONDS: u64 = 3 * TIMEOUT_SECONDS;

/// The senders' HTTP timeout: the shortest the channels accept (their connect timeout is 3 s).
const TIMEOUT_SECONDS: u64 = 3;

/// The cap on every wait: a guard against a hung cluster, not a performance limit.
pub(crate) const PATIENCE: Duration = Duration::from_secs(150);

/// The token variable the config names.
const TOKEN_ENV: &str = "HERALD_TEST_WA_TOKEN";

/// Zones the audiences cycle through: whole, half and quarter hours, both hemispheres, both
/// sides of the date line.
pub(crate) const ZONES: &[&str] = &[
    "Europe/Moscow",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "America/St_Johns",
    "Pacific/Chatham",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Pacific/Kiritimati",
    "Asia/Tokyo",
    "Africa/Lagos",
    "America/Sao_Paulo",
    "Europe/London",
    "Asia/Tehran",
    "Etc/UTC",
    "America/New_York",
];

/// A window open around the clock on every local day: open now in every zone, and still
/// searched per zone.
pub(crate) const ALWAYS_OPEN: &str = "send_window: { hours: { daily: \"00:00-24:00\" } }\n";

/// One recipient of a test audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    /// The audience id, `r<i>`.
    pub(crate) id: String,
    /// E.164 with the `+`.
    pub(crate) phone: String,
}

impl Person {
    /// The `to` of a Cloud API request: the digits.
    pub(crate) fn to(&self) -> String {
        self.phone.trim_start_matches('+').to_owned()
    }
}

/// `n` recipients `r0…`, Russian mobiles from `+7 916 first…`.
pub(crate) fn people(n: usize, first: u64) -> Vec<Person> {
    (0..n)
        .map(|i| Person {
            id: format!("r{i}"),
            phone: format!("+7916{:07}", first + i as u64),
        })
        .collect()
}

/// The store a cluster's processes share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// One SQLite file in the project dir (`[store] sqlite`).
    Sqlite,
    /// A `redis-server` of the cluster's own with AOF on, Herald's default promise
    /// (`[store] redis`).
    Redis,
}

/// A cluster project: the fake provider, the config, the store.
pub(crate) struct Cluster {
    pub(crate) project: Project,
    pub(crate) provider: FakeProvider,
    /// The store the config points at.
    pub(crate) backend: Backend,
    /// The Redis of a [`Backend::Redis`] cluster, killed when the cluster is dropped.
    redis: Option<RedisServer>,
    /// One cluster at a time in this test binary: each runs four processes, and two at once on
    /// two cores would starve the ones whose spread is seconds long.
    _turn: MutexGuard<'static, ()>,
}

/// Whose turn it is to run a cluster.
static TURN: Mutex<()> = Mutex::new(());

/// Waits for the turn to run a cluster (or anything as heavy: a test that loads both cores
/// takes it too).
pub(crate) fn take_turn() -> MutexGuard<'static, ()> {
    // A test that failed while holding the turn poisons it; the next one may still run.
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `[store]` value naming database 0 of `server`.
pub(crate) fn redis_url(server: &RedisServer) -> String {
    format!("{}0", server.url())
}

/// A sender of the config: its name and rate.
pub(crate) struct SenderConf<'a> {
    pub(crate) name: &'a str,
    pub(crate) per_second: u32,
}

impl Cluster {
    /// A project on `backend` whose senders are all WhatsApp, pointed at a new fake provider.
    pub(crate) fn new(backend: Backend, senders: &[SenderConf<'_>]) -> Self {
        match backend {
            Backend::Sqlite => Self::build(None, senders),
            Backend::Redis => Self::on_redis(Persistence::Aof, senders),
        }
    }

    /// A project on a Redis of its own persisting as `persistence` says (the fault tests start
    /// one Herald must refuse).
    pub(crate) fn on_redis(persistence: Persistence, senders: &[SenderConf<'_>]) -> Self {
        Self::build(Some(persistence), senders)
    }

    fn build(redis: Option<Persistence>, senders: &[SenderConf<'_>]) -> Self {
        let persistence = redis;
        let turn = take_turn();
        let provider = FakeProvider::start();
        let mut project = Project::new(env!("CARGO_BIN_EXE_herald"));
        project.set_env(TOKEN_ENV, "test-token-0123456789");
        let redis = redis.map(RedisServer::with);
        let store = match &redis {
            None => format!("sqlite = \"{}\"", project.db().display()),
            Some(server) => format!("redis = \"{}\"", redis_url(server)),
        };
        let mut config =
            format!("[store]\n{store}\n[worker]\nbatch = 32\nlease_seconds = {LEASE_SECONDS}\n");
        for sender in senders {
            write!(
                config,
                "[senders.{}]\nchannel = \"whatsapp\"\nphone_number_id = \"1234567890\"\n\
                 token_env = \"{TOKEN_ENV}\"\nbase_url = \"{}\"\nper_second = {}\ntimeout_seconds = {TIMEOUT_SECONDS}\n",
                sender.name,
                provider.base_url(),
                sender.per_second
            )
            .unwrap();
        }
        project.write_config(&config);
        if redis.is_some() && persistence == Some(Persistence::Aof) {
            // A Redis store exists only once `herald init` created it.
            project.ok(&["init"]);
        }
        Self {
            project,
            provider,
            backend: if redis.is_some() {
                Backend::Redis
            } else {
                Backend::Sqlite
            },
            redis,
            _turn: turn,
        }
    }

    /// The cluster's Redis; a SQLite cluster has none, and asking is a bug in the test.
    pub(crate) fn redis(&self) -> &RedisServer {
        self.redis.as_ref().expect("a Redis cluster")
    }

    /// The cluster's Redis, to kill or restart it.
    pub(crate) fn redis_mut(&mut self) -> &mut RedisServer {
        self.redis.as_mut().expect("a Redis cluster")
    }

    /// Writes `<id>.csv` (zones cycling through [`ZONES`]) and `<id>.yaml`: a transactional
    /// campaign of `sender` with `extra` YAML (a transactional campaign without a window is open
    /// at every hour; [`ALWAYS_OPEN`] makes the window search run in each zone).
    pub(crate) fn campaign(&self, id: &str, sender: &str, audience: &[Person], extra: &str) {
        let mut csv = String::from("id,phone,timezone\n");
        for (i, person) in audience.iter().enumerate() {
            writeln!(
                csv,
                "{},{},{}",
                person.id,
                person.phone,
                ZONES[i % ZONES.len()]
            )
            .unwrap();
        }
        self.project.write(&format!("{id}.csv"), &csv);
        self.project.write(
            &format!("{id}.yaml"),
            &format!(
                "id: {id}\nsender: {sender}\npurpose: transactional\naudience: {{ source: {id}.csv }}\n\
                 template: {{ name: notice, language: en }}\n{extra}"
            ),
        );
    }

    /// Runs `herald scheduler FILES…` (a one-shot command: it expands its campaigns and exits)
    /// and checks it sealed `runs`.
    pub(crate) fn schedule(&self, files: &[&str], runs: &[&RunId]) {
        let mut args = vec!["scheduler"];
        args.extend_from_slice(files);
        let mut scheduler = self.project.spawn("scheduler", &args);
        let code = wait_until("the scheduler to exit", PATIENCE, || {
            scheduler.exited().ok_or("running")
        });
        assert_eq!(code, Some(0), "{}", self.project.log("scheduler"));
        let store = self.store();
        for run in runs {
            assert!(store.sealed_total(run).is_some(), "{run} is not expanded");
        }
    }

    /// `herald worker` named `name` (its log files' stem) with `args`.
    pub(crate) fn worker(&self, name: &str, args: &[&str]) -> Spawned {
        let mut all = vec!["worker", "--concurrency", "16"];
        all.extend_from_slice(args);
        self.project.spawn(name, &all)
    }

    /// The runs as `herald status --format json` shows them, by run id.
    pub(crate) fn status(&self) -> BTreeMap<String, Value> {
        let doc: Value = serde_json::from_str(&self.project.ok(&["status", "--format", "json"]))
            .expect("status prints JSON");
        // The runs: the document itself (a list), or its `runs` next to the senders.
        let runs = doc.get("runs").unwrap_or(&doc);
        runs.as_array()
            .unwrap_or_else(|| panic!("no runs in {doc}"))
            .iter()
            .map(|run| (run["run"].as_str().unwrap().to_owned(), run.clone()))
            .collect()
    }

    /// One run as `herald status RUN --format json` shows it: with its claims in flight by
    /// owner, send rate and ETA, which the list of runs leaves null.
    pub(crate) fn status_of(&self, run: &RunId) -> Value {
        let doc: Value =
            serde_json::from_str(
                &self
                    .project
                    .ok(&["status", run.as_str(), "--format", "json"]),
            )
            .expect("status prints JSON");
        doc[0].clone()
    }

    /// Waits until `run` is sealed with nothing queued or in flight (read from the store, which
    /// costs less than a `herald status` process per check), and returns its `herald status`.
    pub(crate) fn wait_drained(&self, run: &RunId) -> Value {
        let store = self.store();
        wait_until(&format!("{run} to drain"), PATIENCE, || {
            let counts = store.counts(run);
            let done =
                store.sealed_total(run).is_some() && counts.queued == 0 && counts.sending == 0;
            if done { Ok(()) } else { Err(Box::new(counts)) }
        });
        self.status()
            .remove(run.as_str())
            .unwrap_or_else(|| panic!("{run} is not in herald status"))
    }

    /// A view of the store the processes share, opened the way they open it (from the config,
    /// by herald-app), so the view reads whichever backend they use through the same ports.
    pub(crate) fn store(&self) -> StoreView {
        open_view(&self.project)
    }
}

impl Drop for Cluster {
    /// A failed test shows what every process it spawned wrote to stderr.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(self.project.path()) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "err") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- {} (last lines)", path.display());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// The run id of a campaign written with `schedule: { at: AT, … }`.
pub(crate) fn run_id(campaign: &str, at: &str) -> RunId {
    RunId::new(&CampaignId::parse(campaign).unwrap(), at)
}

/// The store, read through its ports from the test (as any process of the cluster would).
pub(crate) struct StoreView {
    runtime: tokio::runtime::Runtime,
    stores: AnyStores,
}

/// The store `project`'s config names, opened by herald-app as `herald status` opens it (to
/// inspect: the view only reads), so it reads whichever backend the cluster uses through the
/// same ports.
fn open_view(project: &Project) -> StoreView {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let env = BTreeMap::new();
    let settings = herald_app::Settings::load(Some(&project.file("herald.toml")), &env)
        .expect("the cluster's config loads");
    let stores = runtime
        .block_on(herald_app::open_store_to_inspect(&settings, &env))
        .expect("the store opens");
    StoreView { runtime, stores }
}

impl StoreView {
    /// Every delivery of `run` ever claimed: its last owner, slot, state, whether recovered.
    pub(crate) fn claims(&self, run: &RunId) -> Vec<ClaimRecord> {
        self.runtime
            .block_on(self.stores.deliveries().claims(run))
            .expect("claims")
    }

    /// A sender's shared state.
    pub(crate) fn sender(&self, name: &str) -> SenderState {
        self.runtime
            .block_on(self.stores.senders().sender(name))
            .expect("the sender's state")
    }

    /// The counts of `run`.
    pub(crate) fn counts(&self, run: &RunId) -> RunCounts {
        self.runtime
            .block_on(self.stores.deliveries().counts(run))
            .expect("the run's counts")
    }

    /// The audience size of `run` once its expansion finished; `None` while it expands (or
    /// before it exists).
    pub(crate) fn sealed_total(&self, run: &RunId) -> Option<u64> {
        self.runtime
            .block_on(self.stores.runs().run(run))
            .expect("the run")
            .and_then(|record| record.total)
    }
}

/// The most of `slots` within any window of `width` (half-open): the rate the store granted.
pub(crate) fn most_slots_within(slots: &[DateTime<Utc>], width: TimeDelta) -> usize {
    let mut sorted = slots.to_vec();
    sorted.sort();
    let mut most = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end] - sorted[start] >= width {
            start += 1;
        }
        most = most.max(end + 1 - start);
    }
    most
}

/// Whether `owner` (`host/pid/random`) is the process `pid`.
pub(crate) fn owned_by(owner: &str, pid: u32) -> bool {
    owner.split('/').nth(1) == Some(pid.to_string().as_str())
}

/// How many requests each recipient (`to`) received, counting only those `accepted` says count.
pub(crate) fn per_recipient(
    provider: &FakeProvider,
    accepted: impl Fn(&herald_testkit::provider::Request) -> bool,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in provider.requests().iter().filter(|r| accepted(r)) {
        *counts.entry(request.to.clone()).or_default() += 1;
    }
    counts
}

/// A run's count of `skipped(reason)` in a status document.
pub(crate) fn skipped(status: &Value, reason: &str) -> u64 {
    status["skipped"][reason].as_u64().unwrap_or(0)
}

/// Every terminal and non-terminal count of a run's status, summed: must be its total.
pub(crate) fn accounted(status: &Value) -> u64 {
    let plain = ["queued", "sending", "sent", "unknown", "expired"]
        .iter()
        .map(|k| status[*k].as_u64().unwrap_or(0))
        .sum::<u64>();
    let grouped = |key: &str| -> u64 {
        status[key]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or_else(|| status[key].as_u64().unwrap_or(0))
    };
    plain + grouped("failed") + grouped("skipped")
}
