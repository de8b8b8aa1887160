//! The runs port: `runs` (newest first), `run:<run>` (the run and its counters), `sruns:<sender>`.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use herald_core::{CampaignId, RunId};
use herald_store::{AudienceHash, NewRun, RunRecord, RunState, Runs, StoreError, StoreResult};
use redis::Script;

use crate::codec::{corrupt, from_ms, ms, script_with_state};
use crate::conn::{Conn, map_err};
use crate::scripts::{invocation, run as run_script, script};

static CREATE: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("../scripts/create_run.lua")));
static SET_STATE: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("../scripts/set_run_state.lua")));
static FINISH_EXPANSION: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("../scripts/finish_expansion.lua")));
static CANCEL_CHUNK: LazyLock<Script> =
    LazyLock::new(|| script_with_state(include_str!("../scripts/cancel_chunk.lua")));

/// How many queued deliveries one call of `cancel_chunk.lua` ends: a few milliseconds of Redis
/// per call, so a cancel of a million deliveries never blocks other clients for long.
pub(crate) const CANCEL_CHUNK_SIZE: usize = 5_000;

/// The fields of `run:<run>` a [`RunRecord`] is read from.
const FIELDS: [&str; 12] = [
    "campaign", "purpose", "source", "sender", "text", "alo", "sha", "created", "total", "state",
    "reason", "by",
];

/// Runs in Redis (`runs`, `run:<run>`, `sruns:<sender>`).
#[derive(Clone)]
pub struct RedisRuns {
    conn: Conn,
}

impl RedisRuns {
    pub(crate) fn new(conn: Conn) -> Self {
        Self { conn }
    }

    /// Sets the state (and who paused it and why, for a pause) of `run`.
    async fn set(&self, run: &RunId, state: RunState, by: &str, reason: &str) -> StoreResult<()> {
        let mut call = invocation(&self.conn, &SET_STATE);
        call.arg(run.as_str())
            .arg(state.as_str())
            .arg(reason)
            .arg(by);
        let answer: String = run_script(&self.conn, &call).await?;
        match answer.as_str() {
            "ok" => Ok(()),
            "nf" => Err(StoreError::NotFound(format!("run {run}"))),
            "cancelled" => Err(StoreError::Conflict(format!("run {run} is cancelled"))),
            other => Err(corrupt(
                format!("run:{run}"),
                format!("unexpected answer {other:?} to a state change"),
            )),
        }
    }
}

/// Reads a run from the values of [`FIELDS`], `None` when the hash is absent.
fn decode(run_id: &str, values: Vec<Option<String>>) -> StoreResult<Option<RunRecord>> {
    let key = || format!("run:{run_id}");
    let bad = |what: &str| corrupt(key(), format!("invalid {what}"));
    let mut values = values.into_iter();
    let mut next = || values.next().flatten();
    let (campaign, purpose, source, sender, text, alo, sha, created, total, state, reason, by) = (
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    );
    let Some(state) = state else {
        return Ok(None);
    };
    let created: i64 = created
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("created"))?;
    Ok(Some(RunRecord {
        run: NewRun {
            run: RunId::parse(run_id).map_err(|_| bad("run id"))?,
            campaign: campaign
                .and_then(|c| CampaignId::parse(&c).ok())
                .ok_or_else(|| bad("campaign id"))?,
            purpose: purpose
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| bad("purpose"))?,
            source: source.ok_or_else(|| bad("source"))?,
            sender,
            campaign_text: text,
            at_least_once: alo.as_deref() == Some("1"),
            audience_sha256: sha
                .map(|hex| AudienceHash::parse_hex(&hex).ok_or_else(|| bad("audience hash")))
                .transpose()?,
        },
        created_at: from_ms(created, &key)?,
        total: total
            .map(|t| t.parse::<u64>().map_err(|_| bad("total")))
            .transpose()?,
        state: RunState::parse(&state).ok_or_else(|| bad("state"))?,
        state_reason: reason,
        paused_by: by,
    }))
}

/// Reads runs `ids` in one round trip.
pub(crate) async fn read_runs(conn: &Conn, ids: &[String]) -> StoreResult<Vec<Option<RunRecord>>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("HMGET").arg(conn.keys.run(id)).arg(&FIELDS[..]);
    }
    let mut manager = conn.manager.clone();
    let rows: Vec<Vec<Option<String>>> = pipe.query_async(&mut manager).await.map_err(map_err)?;
    ids.iter()
        .zip(rows)
        .map(|(id, values)| decode(id, values))
        .collect()
}

impl Runs for RedisRuns {
    async fn create_run(&self, run: &NewRun, now: DateTime<Utc>) -> StoreResult<bool> {
        // Defence in depth: `RunId::parse` refuses control characters, but `RunId::new` takes
        // any fire text, and a run id holding the member separator would make every member
        // naming its deliveries (`leases`, `done`, histories) split at the wrong place: its
        // claims could never be recovered.
        if run.run.as_str().contains(crate::keys::SEP) {
            return Err(StoreError::Conflict(format!(
                "run {:?}: a run id may not contain the control character U+001F (the store's \
                 member separator)",
                run.run.as_str()
            )));
        }
        let mut call = invocation(&self.conn, &CREATE);
        call.arg(run.run.as_str())
            .arg(ms(now))
            .arg(run.campaign.as_str())
            .arg(run.purpose.as_str())
            .arg(&run.source)
            .arg(if run.at_least_once { "1" } else { "0" })
            .arg(
                run.audience_sha256
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
            )
            .arg(run.sender.as_deref().unwrap_or_default())
            .arg(if run.sender.is_some() { "1" } else { "0" })
            .arg(run.campaign_text.as_deref().unwrap_or_default())
            .arg(if run.campaign_text.is_some() {
                "1"
            } else {
                "0"
            });
        let created: i64 = run_script(&self.conn, &call).await?;
        Ok(created == 1)
    }

    async fn run(&self, run: &RunId) -> StoreResult<Option<RunRecord>> {
        let mut found = read_runs(&self.conn, &[run.as_str().to_owned()]).await?;
        Ok(found.pop().flatten())
    }

    async fn runs(&self) -> StoreResult<Vec<RunRecord>> {
        let mut manager = self.conn.manager.clone();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.conn.keys.key("runs"))
            .arg(0)
            .arg(-1)
            .query_async(&mut manager)
            .await
            .map_err(map_err)?;
        // ZRANGE orders ties by member; the newest first, ties the later created (listed last
        // by the zset only when names sort so) is the best a zset without sequence can say.
        let mut found: Vec<RunRecord> = read_runs(&self.conn, &ids)
            .await?
            .into_iter()
            .flatten()
            .collect();
        found.reverse();
        found.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Ok(found)
    }

    async fn finish_expansion(&self, run: &RunId, total: u64) -> StoreResult<()> {
        let mut call = invocation(&self.conn, &FINISH_EXPANSION);
        call.arg(run.as_str()).arg(total);
        let set: i64 = run_script(&self.conn, &call).await?;
        if set == 0 {
            return Err(StoreError::NotFound(format!("run {run}")));
        }
        Ok(())
    }

    async fn pause(&self, run: &RunId, by: &str, reason: &str) -> StoreResult<()> {
        self.set(run, RunState::Paused, by, reason).await
    }

    async fn set_run_state(&self, run: &RunId, state: RunState) -> StoreResult<()> {
        self.set(run, state, "", "").await?;
        if state == RunState::Cancelled {
            cancel_queued(&self.conn, run).await?;
        }
        Ok(())
    }
}

/// Ends every queued delivery of the cancelled `run` `skipped(cancelled)`, a bounded chunk per
/// script call. Claims already refuse the run (its state is set first), so nothing new starts
/// meanwhile; a crash halfway leaves the rest queued under a cancelled run, which `due` never
/// returns and the next cancel (or an insert's check) ends.
pub(crate) async fn cancel_queued(conn: &Conn, run: &RunId) -> StoreResult<()> {
    let mut chunks = 0u64;
    loop {
        let mut call = invocation(conn, &CANCEL_CHUNK);
        call.arg(run.as_str()).arg(CANCEL_CHUNK_SIZE);
        let left: i64 = run_script(conn, &call).await?;
        chunks += 1;
        if left == 0 {
            tracing::info!(run = %run, chunks, "cancelled run's queue ended");
            return Ok(());
        }
        tracing::debug!(run = %run, left, "cancel: a chunk ended");
    }
}
