//! Expansion, the due queue and counts. Outcomes (defer, finish, requeue, apply) are in
//! [`crate::outcomes`], the waits of a run in [`crate::waits`].

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use herald_core::RunId;
use herald_store::{
    Delivery, DeliveryKey, Initial, NewDelivery, RunCounts, StoreError, StoreResult, WorkScope,
};
use redis::Script;

use crate::codec::{
    Snap, State, StateJson, corrupt, delivery_name, from_ms, ms, ms_ceil, parse_key, parse_member,
    script_with_state, terminal_fields,
};
use crate::conn::{Conn, map_err};
use crate::scripts::{invocation, run as run_script, script};

pub(crate) use crate::outcomes::{apply, defer, finish, requeue};
pub(crate) use crate::waits::waits;

static INSERT: LazyLock<Script> =
    LazyLock::new(|| script_with_state(include_str!("../scripts/insert_batch.lua")));
static DUE: LazyLock<Script> = LazyLock::new(|| script(include_str!("../scripts/due.lua")));
static COUNTS: LazyLock<Script> = LazyLock::new(|| script(include_str!("../scripts/counts.lua")));

/// The most rows one `insert_batch.lua` call writes: a few milliseconds of Redis, so an
/// expansion never blocks the workers' claims for long, whatever batch the caller passes.
pub(crate) const INSERT_CHUNK: usize = 2_000;

/// Input that cannot be stored (a caller's bug), named by its field.
#[derive(Debug, thiserror::Error)]
#[error("invalid input: {0}")]
pub(crate) struct Invalid(pub(crate) String);

/// One row's script arguments.
struct Row {
    run: String,
    recipient: String,
    due: String,
    state: String,
    snap: String,
    counter: String,
}

impl Row {
    /// Encodes `delivery`. A queued delivery needs a recipient (the worker could not send
    /// without one); its planned instant defaults to its first due instant.
    fn new(delivery: &NewDelivery) -> StoreResult<Self> {
        let (due, state, counter) = match &delivery.initial {
            Initial::Queued { due_at, wait } => {
                let due = ms_ceil(*due_at);
                (
                    due.to_string(),
                    StateJson::queued(due, *wait, 0).encode(),
                    "c:queued".to_owned(),
                )
            }
            Initial::Ended(terminal) => {
                let mut state = StateJson::ended(terminal, 0);
                state.f = None;
                let (name, label) = terminal_fields(&terminal.outcome);
                let counter = match label {
                    Some(label) => format!("c:{name}:{label}"),
                    None => format!("c:{name}"),
                };
                (String::new(), state.encode(), counter)
            }
        };
        let snap = match (&delivery.initial, &delivery.recipient) {
            (Initial::Queued { .. }, None) => {
                return Err(StoreError::Backend(Box::new(Invalid(format!(
                    "delivery {}/{}: recipient is required for a queued delivery",
                    delivery.key.run, delivery.key.recipient
                )))));
            }
            (Initial::Queued { .. }, Some(recipient)) => {
                Snap::new(recipient, delivery.scheduled_at, delivery.expires_at).encode()
            }
            // Nobody reads the snapshot of a delivery ended at expansion: not stored.
            (Initial::Ended(_), _) => String::new(),
        };
        Ok(Self {
            run: delivery.key.run.as_str().to_owned(),
            recipient: delivery.key.recipient.to_string(),
            due,
            state,
            snap,
            counter,
        })
    }
}

/// Inserts `batch` in calls of at most [`INSERT_CHUNK`] rows; returns how many were new. A row
/// already stored (a compacted one's tombstone included) is left as it is; a row a run whose
/// expansion is finished does not hold (never inserted, or compacted since) is refused with
/// [`StoreError::Conflict`], its chunk unwritten (the chunks before it stay, as they would
/// after any error: inserting is idempotent).
pub(crate) async fn insert_batch(conn: &Conn, batch: &[NewDelivery]) -> StoreResult<u64> {
    let rows = batch
        .iter()
        .map(Row::new)
        .collect::<StoreResult<Vec<_>>>()?;
    if rows.len() > INSERT_CHUNK {
        // Each chunk checks its runs before writing; checking them all first keeps a batch of
        // several chunks whole when one names an unknown run.
        require_runs(conn, &rows).await?;
    }
    let mut inserted = 0u64;
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut call = invocation(conn, &INSERT);
        for row in chunk {
            call.arg(&row.run)
                .arg(&row.recipient)
                .arg(&row.due)
                .arg(&row.state)
                .arg(&row.snap)
                .arg(&row.counter);
        }
        let answer: Vec<String> = run_script(conn, &call).await?;
        match answer.as_slice() {
            [ok, n] if ok == "ok" => inserted += n.parse::<u64>().unwrap_or_default(),
            [nf, run] if nf == "nf" => return Err(StoreError::NotFound(format!("run {run}"))),
            // Only a caller's bug inserts into a run whose expansion is finished (the engine
            // expands a run only until its total is set); refused rather than sent.
            [sealed, run, total, recipient] if sealed == "sealed" => {
                return Err(StoreError::Conflict(format!(
                    "run {run}: its expansion finished with {total} deliveries, \
                     recipient {recipient} is not one of them"
                )));
            }
            _ => return Err(corrupt("insert_batch".into(), "unexpected script answer")),
        }
    }
    tracing::debug!(rows = batch.len(), inserted, "expansion batch stored");
    Ok(inserted)
}

/// `NotFound` unless every run the rows name exists.
async fn require_runs(conn: &Conn, rows: &[Row]) -> StoreResult<()> {
    let mut runs: Vec<&str> = rows.iter().map(|r| r.run.as_str()).collect();
    runs.sort_unstable();
    runs.dedup();
    let mut pipe = redis::pipe();
    for run in &runs {
        pipe.cmd("EXISTS").arg(conn.keys.run(run));
    }
    let mut manager = conn.manager.clone();
    let found: Vec<i64> = pipe.query_async(&mut manager).await.map_err(map_err)?;
    match runs.iter().zip(found).find(|(_, n)| *n == 0) {
        Some((run, _)) => Err(StoreError::NotFound(format!("run {run}"))),
        None => Ok(()),
    }
}

/// The script's arguments for a scope (or none).
fn scope_args(call: &mut redis::ScriptInvocation<'_>, scope: Option<&WorkScope>) {
    match scope {
        None => {
            call.arg("0").arg("");
        }
        Some(scope) => {
            call.arg("1").arg(&scope.sender);
            for run in scope.runs.iter().flatten() {
                call.arg(run.as_str());
            }
        }
    }
}

/// `due` (no scope) and `due_in`.
pub(crate) async fn due(
    conn: &Conn,
    scope: Option<&WorkScope>,
    now: DateTime<Utc>,
    limit: usize,
) -> StoreResult<Vec<Delivery>> {
    if limit == 0 || scope.is_some_and(|s| s.runs.as_ref().is_some_and(Vec::is_empty)) {
        return Ok(Vec::new());
    }
    conn.observe_seq().await?;
    let mut call = invocation(conn, &DUE);
    call.arg("due").arg(ms(now)).arg(limit);
    scope_args(&mut call, scope);
    let flat: Vec<String> = run_script(conn, &call).await?;
    flat.chunks(5).map(decode_due).collect()
}

/// One delivery of `due.lua`'s answer: run, recipient, due ms, snapshot, state.
fn decode_due(fields: &[String]) -> StoreResult<Delivery> {
    let [run, recipient, due, snap, state] = fields else {
        return Err(corrupt("due".into(), "a short answer"));
    };
    let name = || delivery_name(run, recipient);
    let key = parse_key(run, recipient)?;
    let due_at = due
        .parse::<i64>()
        .map_err(|_| corrupt(name(), "due instant is not an integer"))
        .and_then(|d| from_ms(d, &name))?;
    if snap.is_empty() {
        return Err(corrupt(
            format!("snap:{run}/{recipient}"),
            "a queued delivery without its snapshot",
        ));
    }
    let snap = Snap::decode(snap, &|| format!("snap:{run}/{recipient}"))?;
    let state = StateJson::decode(state, &name)?;
    if !matches!(state.state(&name)?, State::Queued { .. }) {
        return Err(corrupt(name(), "in the due queue but not queued"));
    }
    Ok(Delivery {
        recipient: snap.recipient(&key, &|| format!("snap:{run}/{recipient}"))?,
        key,
        scheduled_at: match snap.s {
            Some(at) => from_ms(at, &name)?,
            None => due_at,
        },
        expires_at: snap.e.map(|at| from_ms(at, &name)).transpose()?,
        due_at,
        attempts: state.a,
    })
}

/// `next_due` (no scope) and `next_due_in`.
pub(crate) async fn next_due(
    conn: &Conn,
    scope: Option<&WorkScope>,
) -> StoreResult<Option<DateTime<Utc>>> {
    if scope.is_some_and(|s| s.runs.as_ref().is_some_and(Vec::is_empty)) {
        return Ok(None);
    }
    let mut call = invocation(conn, &DUE);
    call.arg("next").arg(0).arg(1);
    scope_args(&mut call, scope);
    let first: Vec<String> = run_script(conn, &call).await?;
    let name = || String::from("due:*");
    first
        .first()
        .map(|at| {
            at.parse::<i64>()
                .map_err(|_| corrupt(name(), "due instant is not an integer"))
                .and_then(|at| from_ms(at, &name))
        })
        .transpose()
}

/// Every delivery now `sending`: the members of `leases`.
pub(crate) async fn in_flight(conn: &Conn) -> StoreResult<Vec<DeliveryKey>> {
    let mut manager = conn.manager.clone();
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(conn.keys.key("leases"))
        .arg(0)
        .arg(-1)
        .query_async(&mut manager)
        .await
        .map_err(map_err)?;
    members.iter().map(|m| parse_member(m)).collect()
}

/// Counts from the run's counters (`c:*` of `run:<run>`) and its next wave from `due:<run>`
/// (the earliest due instant and how many fall in the hour from it, `counts.lua`).
pub(crate) async fn counts(conn: &Conn, run: &RunId) -> StoreResult<RunCounts> {
    let mut call = invocation(conn, &COUNTS);
    call.arg(run.as_str());
    let flat: Vec<String> = run_script(conn, &call).await?;
    let name = || format!("run:{run}");
    let [first, wave, fields @ ..] = flat.as_slice() else {
        return Err(StoreError::NotFound(format!("run {run}")));
    };
    let mut counts = RunCounts::default();
    for pair in fields.chunks(2) {
        let [field, value] = pair else {
            return Err(corrupt(name(), "odd counters"));
        };
        let n: i64 = value
            .parse()
            .map_err(|_| corrupt(name(), format!("counter {field} is not an integer")))?;
        let n = u64::try_from(n).map_err(|_| corrupt(name(), format!("negative {field}")))?;
        if n == 0 {
            continue;
        }
        let bucket = |map: &mut BTreeMap<String, u64>, label: &str| {
            *map.entry(label.to_owned()).or_default() += n;
        };
        let counter = field.strip_prefix("c:").unwrap_or(field);
        match counter.split_once(':') {
            Some(("failed", code)) => bucket(&mut counts.failed, code),
            Some(("skipped", reason)) => bucket(&mut counts.skipped, reason),
            Some(_) => return Err(corrupt(name(), format!("unknown counter {field}"))),
            None => match counter {
                "queued" => counts.queued += n,
                "sending" => counts.sending += n,
                "sent" => counts.sent += n,
                "unknown" => counts.unknown += n,
                "expired" => counts.expired += n,
                "delivered" => counts.delivered += n,
                "read" => counts.read += n,
                _ => return Err(corrupt(name(), format!("unknown counter {field}"))),
            },
        }
    }
    if !first.is_empty() {
        let at = first
            .parse::<i64>()
            .map_err(|_| corrupt(name(), "next wave is not an integer"))?;
        let n = wave
            .parse::<u64>()
            .map_err(|_| corrupt(name(), "wave size is not an integer"))?;
        counts.next_wave = Some((from_ms(at, &name)?, n));
    }
    Ok(counts)
}
