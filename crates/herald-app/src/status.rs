//! What `herald status` shows, gathered and shaped once: the CLI prints it as a table or as this
//! module's JSON, and the admin API serves the same JSON ([`status_in`], [`Status::runs_json`]),
//! so the two never drift.
//!
//! Three things are read from the store: every sender's shared state (a provider's throttle or
//! block, which stops every worker of the sender), each run with its counts and queue, and, for
//! one run asked for by id only, the deliveries in flight by the worker holding their claim (a
//! crashed worker's claims show here until their lease ends and another worker recovers them)
//! and the current send rate and ETA.
//!
//! # Why the list view has no send rate, ETA nor in-flight owners
//! The ports have no per-run counter of recent sends: the rate is counted from the run's claims
//! (every claim keeps the rate slot it was granted), and the owners of in-flight deliveries come
//! from the same claims. Reading every claim of every run on each `GET /v1/runs` or `herald
//! status` grows with the audience, so those fields are computed only when one run is asked for
//! (`herald status RUN`, `GET /v1/runs/{id}`), and only for that run; the list gives `null`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use herald_core::{ConsentChannel, RunId};
use herald_store::{
    ClaimRecord, Deliveries, DeliveryKey, QueueWaits, RunCounts, RunRecord, RunState, Runs,
    SenderState, Senders, Stores, WorkerId,
};
use serde_json::{Value, json};

use crate::{AppError, AppStores, Settings, open_store_to_inspect};

mod campaigns;

pub use campaigns::{CampaignStatus, FIRES_SHOWN, describe_outcome, describe_skip};

/// The whole status: senders, then runs.
#[derive(Debug, Clone)]
pub struct Status {
    /// Where the store is.
    pub store: String,
    /// Every configured sender and every sender the store has state for, by name.
    pub senders: Vec<SenderStatus>,
    /// The runs asked for, newest first.
    pub runs: Vec<RunStatus>,
    /// Recurring campaigns with their newest fires, by id (empty when one run is asked for).
    pub campaigns: Vec<CampaignStatus>,
    /// Campaign files a scheduler could not load, by path (empty when one run is asked for).
    pub problems: Vec<herald_store::CampaignProblem>,
}

/// One sender: configured or not, and what the provider last asked of it.
#[derive(Debug, Clone)]
pub struct SenderStatus {
    /// Its name.
    pub name: String,
    /// Whether the config defines it (a block may outlive the sender's removal from it).
    pub configured: bool,
    /// Its shared state (empty when never throttled nor blocked).
    pub state: SenderState,
}

impl SenderStatus {
    /// `blocked`, `throttled` (until a still-future instant) or `ok`, as of `now`.
    pub fn condition(&self, now: DateTime<Utc>) -> &'static str {
        if self.state.blocked.is_some() {
            "blocked"
        } else if self.state.throttled_until.is_some_and(|until| until > now) {
            "throttled"
        } else {
            "ok"
        }
    }
}

/// One run as `herald status` shows it.
#[derive(Debug, Clone)]
pub struct RunStatus {
    /// The run.
    pub record: RunRecord,
    /// Its counts by state and reason.
    pub counts: RunCounts,
    /// Its queue as of the status's `now`: due, and waiting by reason.
    pub waits: QueueWaits,
    /// Its sender and the channel consent is checked on, or why that cannot be told.
    pub consent: Result<(String, ConsentChannel), String>,
    /// Its deliveries in flight (`sending`), by the worker holding the claim; `None` in the
    /// list of runs (read only when this one run is asked for: see the module doc).
    pub in_flight: Option<BTreeMap<WorkerId, u64>>,
    /// Claims granted a rate slot in the minute before `now`: the current send rate. Read only
    /// when this one run is asked for, and only when it is active with deliveries left (queued
    /// or sending), from its claims (every claim keeps the slot it was granted); `None`
    /// otherwise, where there is no rate to speak of or it is not read (see the module doc).
    pub sent_last_minute: Option<u64>,
}

impl RunStatus {
    /// The send rate, per second, over the last minute.
    pub fn send_rate(&self) -> Option<f64> {
        self.sent_last_minute.map(|n| n as f64 / 60.0)
    }

    /// When what is left (queued and sending) is done at the current rate: `None` when nothing
    /// is left or nothing was sent in the last minute (a run waiting for its window has no
    /// rate to extrapolate; its `next_wave` says when it goes on).
    pub fn eta(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let left = self.counts.queued + self.counts.sending;
        let per_minute = self.sent_last_minute.filter(|n| *n > 0)?;
        if left == 0 {
            return None;
        }
        let seconds = (left.saturating_mul(60)).div_ceil(per_minute);
        Some(now + chrono::TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 2)))
    }
}

/// The delivered, read and failed rates of a run: each over the deliveries the provider was
/// asked to take (`sent`, `failed` and `unknown`), so they compare across runs whatever was
/// skipped or is still queued; `None` before anything was attempted.
pub fn rates(counts: &RunCounts) -> Option<(f64, f64, f64)> {
    let failed: u64 = counts.failed.values().sum();
    let attempted = counts.sent + failed + counts.unknown;
    if attempted == 0 {
        return None;
    }
    let over = |n: u64| n as f64 / attempted as f64;
    Some((over(counts.delivered), over(counts.read), over(failed)))
}

/// Reads the status of one run (`run`) or of every run, as of `now`.
pub async fn status(
    settings: &Settings,
    env: &BTreeMap<String, String>,
    run: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Status, AppError> {
    let stores = open_store_to_inspect(settings, env).await?;
    let which = match run {
        Some(id) => Which::One(RunId::parse(id).map_err(|e| AppError::User(e.to_string()))?),
        // The CLI lists every run, as it always did; each costs two small reads (counts and
        // waits), never its claims.
        None => Which::Newest(usize::MAX),
    };
    status_in(&stores, settings, &which, now).await
}

/// Which runs a status is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// This one run, with its send rate, ETA and in-flight owners.
    One(RunId),
    /// At most this many runs, newest first, without those (see the module doc).
    Newest(usize),
}

/// [`status`] on an open store: `herald status` and the admin API's `GET /v1/runs` are this
/// one function. A run that does not exist is a user error.
pub async fn status_in<S: AppStores>(
    stores: &S,
    settings: &Settings,
    which: &Which,
    now: DateTime<Utc>,
) -> Result<Status, AppError> {
    let records = match which {
        Which::One(id) => {
            let record = stores
                .runs()
                .run(id)
                .await?
                .ok_or_else(|| AppError::User(format!("no run {id}")))?;
            vec![record]
        }
        Which::Newest(limit) => {
            let mut records = stores.runs().runs().await?;
            records.sort_by_key(|record| std::cmp::Reverse(record.created_at));
            records.truncate(*limit);
            records
        }
    };
    let one = matches!(which, Which::One(_));
    let mut runs = Vec::with_capacity(records.len());
    for record in records {
        let counts = stores.deliveries().counts(&record.run.run).await?;
        let waits = stores
            .deliveries()
            .waits(&record.run.run, now, None)
            .await?;
        let consent = consent_channel_of(settings, &record, now);
        let (in_flight, sent_last_minute) = if one {
            let live = record.state == RunState::Active && counts.queued + counts.sending > 0;
            let claims = if live || counts.sending > 0 {
                stores.deliveries().claims(&record.run.run).await?
            } else {
                Vec::new()
            };
            let in_flight = in_flight_by_owner(stores, &record.run.run, &claims).await?;
            let since = now - chrono::TimeDelta::minutes(1);
            let sent = live.then(|| {
                claims
                    .iter()
                    .filter(|claim| claim.slot > since && claim.slot <= now)
                    .count() as u64
            });
            (Some(in_flight), sent)
        } else {
            (None, None)
        };
        runs.push(RunStatus {
            record,
            counts,
            waits,
            consent,
            in_flight,
            sent_last_minute,
        });
    }
    let (campaigns, problems) = if one {
        (Vec::new(), Vec::new())
    } else {
        (
            campaigns::campaigns(stores).await?,
            campaigns::problems(stores).await?,
        )
    };
    Ok(Status {
        store: stores.location(),
        senders: senders(stores, settings).await?,
        runs,
        campaigns,
        problems,
    })
}

/// Every configured sender, and every sender with stored state, by name.
pub async fn senders(
    stores: &impl Stores,
    settings: &Settings,
) -> Result<Vec<SenderStatus>, AppError> {
    let mut by_name: BTreeMap<String, SenderStatus> = settings
        .senders
        .keys()
        .map(|name| {
            let status = SenderStatus {
                name: name.clone(),
                configured: true,
                state: SenderState {
                    name: name.clone(),
                    throttled_until: None,
                    blocked: None,
                },
            };
            (name.clone(), status)
        })
        .collect();
    for state in stores.senders().senders().await? {
        let configured = settings.senders.contains_key(&state.name);
        by_name.insert(
            state.name.clone(),
            SenderStatus {
                name: state.name.clone(),
                configured,
                state,
            },
        );
    }
    Ok(by_name.into_values().collect())
}

/// The run's deliveries in flight, by owner, given the run's `claims` (read by the caller once
/// for this and the send rate). The in-flight keys are few (bounded by the workers' batches).
async fn in_flight_by_owner(
    stores: &impl Stores,
    run: &RunId,
    claims: &[ClaimRecord],
) -> Result<BTreeMap<WorkerId, u64>, AppError> {
    let keys: Vec<DeliveryKey> = stores
        .deliveries()
        .in_flight()
        .await?
        .into_iter()
        .filter(|key| &key.run == run)
        .collect();
    let mut counts: BTreeMap<WorkerId, u64> = BTreeMap::new();
    if keys.is_empty() {
        return Ok(counts);
    }
    let owners: BTreeMap<&DeliveryKey, &WorkerId> = claims
        .iter()
        .map(|ClaimRecord { key, owner, .. }| (key, owner))
        .collect();
    for key in &keys {
        // A `sending` row always has an owner; one without (written by a herald before
        // claims had owners, not yet recovered) is counted under a name saying so.
        let owner = owners
            .get(key)
            .map(|owner| (*owner).clone())
            .unwrap_or_else(unowned);
        *counts.entry(owner).or_default() += 1;
    }
    Ok(counts)
}

fn unowned() -> WorkerId {
    WorkerId::parse("(unknown-owner)").unwrap_or_else(|| WorkerId::for_process("unknown", 0, 0))
}

/// The sender of a stored run and the channel its consent is checked on. A run stores its
/// sender; one stored by an older herald (no sender yet) is resolved as that herald did, from
/// its campaign file. `Err` says why it cannot tell. `now` is the instant validation measures
/// a cron horizon from.
pub fn consent_channel_of(
    settings: &Settings,
    record: &RunRecord,
    now: DateTime<Utc>,
) -> Result<(String, ConsentChannel), String> {
    let name = match &record.run.sender {
        Some(name) => name.clone(),
        None => {
            let source = std::path::Path::new(&record.run.source);
            let campaign = herald_campaign::load(source, now)
                .map_err(|_| format!("campaign file {} cannot be read", source.display()))?;
            crate::sender::name(&campaign).to_owned()
        }
    };
    let sender = settings
        .senders
        .get(&name)
        .ok_or_else(|| format!("sender `{name}` is not configured"))?;
    Ok((name, sender.consent_channel()))
}

fn utc(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Status {
    /// The JSON of `herald status --format json`: an array of runs, newest first (the shape
    /// scripts already read), each with its sender's state (and, for one run asked for by id,
    /// its claims in flight by owner, send rate and ETA; `null` in a list).
    pub fn runs_json(&self, now: DateTime<Utc>) -> Value {
        Value::Array(
            self.runs
                .iter()
                .map(|run| self.run_json(run, now))
                .collect(),
        )
    }

    /// Every sender's state as JSON objects (also inside each run's `sender_state`).
    pub fn senders_json(&self, now: DateTime<Utc>) -> Value {
        senders_json(&self.senders, now)
    }

    fn run_json(&self, run: &RunStatus, now: DateTime<Utc>) -> Value {
        let RunStatus {
            record,
            counts,
            waits,
            consent,
            in_flight,
            sent_last_minute: _,
        } = run;
        let rates = rates(counts);
        let consent_doc = match consent {
            Ok((sender, channel)) => json!({"channel": channel.as_str(), "sender": sender}),
            Err(why) => json!({"channel": null, "unknown": why}),
        };
        let sender = record
            .run
            .sender
            .clone()
            .or_else(|| consent.as_ref().ok().map(|(name, _)| name.clone()));
        let sender_state = sender
            .as_deref()
            .and_then(|name| self.senders.iter().find(|s| s.name == name))
            .map(|s| sender_json(s, now));
        let in_flight: Option<serde_json::Map<String, Value>> = in_flight.as_ref().map(|owners| {
            owners
                .iter()
                .map(|(owner, n)| (owner.to_string(), json!(n)))
                .collect()
        });
        json!({
            "run": record.run.run.as_str(),
            "campaign": record.run.campaign.as_str(),
            "sender": sender,
            "sender_state": sender_state,
            "state": record.state.as_str(),
            "state_reason": record.state_reason,
            // Who paused it (`herald`, `operator (cli)`, `operator (api)`), while paused.
            "paused_by": record.paused_by,
            "consent": consent_doc,
            "total": counts.total(),
            "queued": counts.queued,
            "sending": counts.sending,
            // By owner; null in the list of runs (see the module doc), as are the send rate
            // and the ETA.
            "in_flight": in_flight,
            "sent": counts.sent,
            "delivered": counts.delivered,
            "read": counts.read,
            "delivered_rate": rates.map(|r| r.0),
            "read_rate": rates.map(|r| r.1),
            "failed_rate": rates.map(|r| r.2),
            "send_rate_per_second": run.send_rate(),
            "eta": run.eta(now).map(utc),
            "failed": counts.failed,
            "unknown": counts.unknown,
            "expired": counts.expired,
            "skipped": counts.skipped,
            "next_wave": counts.next_wave.map(|(at, n)| json!({"at": utc(at), "count_within_hour": n})),
            "waits": waits_json(waits),
        })
    }
}

/// Senders' states as JSON objects (`GET /v1/senders`, and [`Status::senders_json`]).
pub fn senders_json(senders: &[SenderStatus], now: DateTime<Utc>) -> Value {
    Value::Array(senders.iter().map(|s| sender_json(s, now)).collect())
}

fn sender_json(sender: &SenderStatus, now: DateTime<Utc>) -> Value {
    let blocked =
        sender.state.blocked.as_ref().map(
            |block| json!({"code": block.code, "reason": block.reason, "since": utc(block.at)}),
        );
    json!({
        "name": sender.name,
        "configured": sender.configured,
        "state": sender.condition(now),
        "blocked": blocked,
        "throttled_until": sender.state.throttled_until.filter(|t| *t > now).map(utc),
    })
}

/// The queue by reason: `{"due": n, "<reason>": {"count": n, "next": t}}`.
fn waits_json(waits: &QueueWaits) -> Value {
    let mut doc = serde_json::Map::new();
    doc.insert("due".into(), json!(waits.due));
    for (reason, waiting) in &waits.waiting {
        doc.insert(
            reason.as_str().into(),
            json!({"count": waiting.count, "next": utc(waiting.next)}),
        );
    }
    Value::Object(doc)
}
