//! The fires port ([`herald_store::Fires`]): the current version of each recurring campaign and
//! one record per fire instant. The keys are in [`crate::keys`] ("Recurring campaigns");
//! `scripts/put_campaign.lua` and `scripts/record_fire.lua` are the two writes, each one atomic
//! script, so two schedulers recording the same fire at once store one record and both read it
//! back.
//!
//! Decisions the port leaves to the store:
//! - A fire instant is stored as unix seconds (the member of `fires:<id>`, the field of
//!   `fire:<id>`). The port says fires are whole seconds; one with a fraction is refused
//!   (`Conflict`) rather than rounded, so the record read back is always the one written.
//! - Instants the caller passes (`stored_at`, `recorded_at`) are stored as RFC 3339 text with
//!   all their digits, so they read back exactly.
//! - Hashes must be what the port says they are, 64 lowercase hex digits: a hash is compared as
//!   text, and anything else would be a caller's bug that no comparison could catch later.
//! - `campaigns()` reads the index and every version in one round trip (a read-only script), so
//!   it is bounded by [`MAX_CAMPAIGNS`]: a new id beyond it is refused (`Conflict`).
//! - Decoding is strict: a record of an unknown outcome, a run id that does not parse or a
//!   field missing is [`herald_store::StoreError::Corrupt`] naming the key, never a fallback.

use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, Utc};
use herald_core::{CampaignId, RunId};
use herald_store::{
    CampaignProblem, CampaignVersion, FIRES_KEPT, FireOutcome, FireRecord, FireSkip, Fires,
    MAX_CAMPAIGN_TEXT_BYTES, MAX_PROBLEM_BYTES, MAX_PROBLEMS, StoreError, StoreResult,
    VersionChange, cut_to,
};
use redis::Script;
use serde::{Deserialize, Serialize};

use crate::codec::corrupt;
use crate::conn::Conn;
use crate::scripts::{invocation, run as run_script, script};

/// The most campaign ids a store holds versions of: `campaigns()` reads them all at once.
pub const MAX_CAMPAIGNS: usize = 10_000;

/// The longest `source` accepted (a file path, shown by `status`).
pub const MAX_SOURCE_BYTES: usize = 4_096;

static PUT: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("../scripts/put_campaign.lua")));
static RECORD: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("../scripts/record_fire.lua")));
static FIRES: LazyLock<Script> = LazyLock::new(|| script(include_str!("../scripts/fires.lua")));
static CAMPAIGNS: LazyLock<Script> = LazyLock::new(|| script(CAMPAIGNS_LUA));
static SET_PROBLEM: LazyLock<Script> = LazyLock::new(|| script(SET_PROBLEM_LUA));

/// `Fires::set_problem`. Own args: source, the problem's JSON (empty to clear), the most
/// problems kept. Returns 1, or 0 for a new source past the bound (nothing written).
const SET_PROBLEM_LUA: &str = r"
local e = check_epoch(); if e then return e end
local key = P .. 'campaign_problems'
if arg(2) == '' then
  redis.call('HDEL', key, arg(1))
  return 1
end
if redis.call('HEXISTS', key, arg(1)) == 0 and redis.call('HLEN', key) >= tonumber(arg(3)) then
  return 0
end
redis.call('HSET', key, arg(1), arg(2))
return 1
";

/// A problem as `campaign_problems` holds it (the source is its field).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredProblem {
    /// The diagnostics.
    d: String,
    /// When it was seen (RFC 3339).
    a: String,
}

/// `Fires::campaigns` (reads only): `{id, hash, text, source, at, …}` for every id of the
/// index, sorted by id; an indexed id whose version lacks a field is a `CORRUPT` error.
const CAMPAIGNS_LUA: &str = r"
local ids = redis.call('SMEMBERS', P .. 'campaigns')
table.sort(ids)
local fields = {'hash', 'text', 'source', 'at'}
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('HMGET', P .. 'campaign:' .. id, unpack(fields))
  out[#out + 1] = id
  for i = 1, 4 do
    if not v[i] then
      return redis.error_reply('CORRUPT campaign:' .. id .. ': an indexed campaign without its ' .. fields[i])
    end
    out[#out + 1] = v[i]
  end
end
return out
";

/// Campaign versions and fire records in Redis.
#[derive(Clone)]
pub struct RedisFires {
    conn: Conn,
}

impl RedisFires {
    pub(crate) fn new(conn: Conn) -> Self {
        Self { conn }
    }
}

/// A record as `fire:<id>` holds it (the campaign and the instant are its key and field).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    /// The outcome: `run`, `missed`, `superseded` or `overlap`.
    k: String,
    /// The run made (`run`) or still pending (`overlap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    /// The campaign version's hash.
    h: String,
    /// When it was recorded (RFC 3339).
    a: String,
}

/// Bad input, refused before anything is written.
fn refused(what: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Conflict(format!("{what}: {why}"))
}

fn campaign_id(id: &str) -> StoreResult<CampaignId> {
    CampaignId::parse(id).map_err(|e| refused("campaign id", e))
}

fn check_hash(what: &str, hash: &str) -> StoreResult<()> {
    let hex = hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex {
        Ok(())
    } else {
        Err(refused(
            what,
            "must be a SHA-256 in 64 lowercase hex digits",
        ))
    }
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn parse_instant(text: &str, key: &dyn Fn() -> String) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| corrupt(key(), format!("invalid instant {text:?}")))
}

/// The record's stored text, after checking what the store keys by.
fn encode(record: &FireRecord) -> StoreResult<(i64, String)> {
    campaign_id(&record.campaign)?;
    check_hash("fire record hash", &record.hash)?;
    if record.fire.timestamp_subsec_nanos() != 0 {
        return Err(refused("fire instant", "must be whole seconds"));
    }
    let (k, r) = match &record.outcome {
        FireOutcome::Run(run) => ("run", Some(run.as_str().to_owned())),
        FireOutcome::Skipped(skip) => (
            skip.as_str(),
            match skip {
                FireSkip::Overlap { previous } => Some(previous.as_str().to_owned()),
                FireSkip::Missed | FireSkip::Superseded => None,
            },
        ),
    };
    let stored = Stored {
        k: k.to_owned(),
        r,
        h: record.hash.clone(),
        a: instant(record.recorded_at),
    };
    let text = serde_json::to_string(&stored).map_err(|e| StoreError::Backend(Box::new(e)))?;
    Ok((record.fire.timestamp(), text))
}

/// Reads a stored record back, strictly.
fn decode(campaign: &str, fire: &str, text: &str) -> StoreResult<FireRecord> {
    let key = || format!("fire:{campaign}/{fire}");
    let secs: i64 = fire
        .parse()
        .map_err(|_| corrupt(key(), "invalid fire instant"))?;
    let fire_at = DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| corrupt(key(), "fire instant out of range"))?;
    let stored: Stored =
        serde_json::from_str(text).map_err(|e| corrupt(key(), format!("not a record: {e}")))?;
    let run = |r: Option<String>| -> StoreResult<RunId> {
        let r =
            r.ok_or_else(|| corrupt(key(), format!("a {} record without its run", stored.k)))?;
        RunId::parse(&r).map_err(|_| corrupt(key(), "invalid run id"))
    };
    let outcome = match stored.k.as_str() {
        "run" => FireOutcome::Run(run(stored.r.clone())?),
        "overlap" => FireOutcome::Skipped(FireSkip::Overlap {
            previous: run(stored.r.clone())?,
        }),
        "missed" | "superseded" if stored.r.is_some() => {
            return Err(corrupt(key(), format!("a {} record with a run", stored.k)));
        }
        "missed" => FireOutcome::Skipped(FireSkip::Missed),
        "superseded" => FireOutcome::Skipped(FireSkip::Superseded),
        other => return Err(corrupt(key(), format!("unknown outcome {other:?}"))),
    };
    Ok(FireRecord {
        campaign: campaign.to_owned(),
        fire: fire_at,
        outcome,
        hash: stored.h,
        recorded_at: parse_instant(&stored.a, &key)?,
    })
}

/// A version from its stored fields.
fn version(
    campaign: &str,
    hash: Option<String>,
    text: Option<String>,
    source: Option<String>,
    at: Option<String>,
) -> StoreResult<CampaignVersion> {
    let key = || format!("campaign:{campaign}");
    let missing = |field: &str| corrupt(key(), format!("no {field}"));
    let at = at.ok_or_else(|| missing("at"))?;
    Ok(CampaignVersion {
        campaign: campaign.to_owned(),
        hash: hash.ok_or_else(|| missing("hash"))?,
        text: text.ok_or_else(|| missing("text"))?,
        source: source.ok_or_else(|| missing("source"))?,
        stored_at: parse_instant(&at, &key)?,
    })
}

impl Fires for RedisFires {
    async fn put_campaign(&self, version: &CampaignVersion) -> StoreResult<VersionChange> {
        campaign_id(&version.campaign)?;
        check_hash("campaign hash", &version.hash)?;
        if version.text.len() > MAX_CAMPAIGN_TEXT_BYTES {
            return Err(refused(
                "campaign text",
                format!("longer than {MAX_CAMPAIGN_TEXT_BYTES} bytes"),
            ));
        }
        if version.source.len() > MAX_SOURCE_BYTES {
            return Err(refused(
                "campaign source",
                format!("longer than {MAX_SOURCE_BYTES} bytes"),
            ));
        }
        let mut call = invocation(&self.conn, &PUT);
        call.arg(&version.campaign)
            .arg(&version.hash)
            .arg(&version.text)
            .arg(&version.source)
            .arg(instant(version.stored_at))
            .arg(MAX_CAMPAIGNS);
        let answer: Vec<String> = run_script(&self.conn, &call).await?;
        let change = match answer.as_slice() {
            [a] if a == "added" => VersionChange::Added,
            [a] if a == "unchanged" => VersionChange::Unchanged,
            [a, previous] if a == "replaced" => VersionChange::Replaced {
                previous_hash: previous.clone(),
            },
            [a] if a == "full" => {
                return Err(refused(
                    "campaign",
                    format!("the store holds {MAX_CAMPAIGNS} campaigns already"),
                ));
            }
            other => {
                return Err(corrupt(
                    format!("campaign:{}", version.campaign),
                    format!("unexpected answer {other:?}"),
                ));
            }
        };
        tracing::debug!(campaign = %version.campaign, hash = %version.hash, ?change, "campaign version put");
        Ok(change)
    }

    async fn campaign(&self, campaign: &str) -> StoreResult<Option<CampaignVersion>> {
        campaign_id(campaign)?;
        let mut manager = self.conn.manager.clone();
        let (hash, text, source, at): (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = redis::cmd("HMGET")
            .arg(self.conn.keys.campaign(campaign))
            .arg("hash")
            .arg("text")
            .arg("source")
            .arg("at")
            .query_async(&mut manager)
            .await
            .map_err(crate::conn::map_err)?;
        if hash.is_none() && text.is_none() && source.is_none() && at.is_none() {
            return Ok(None);
        }
        version(campaign, hash, text, source, at).map(Some)
    }

    async fn campaigns(&self) -> StoreResult<Vec<CampaignVersion>> {
        let call = invocation(&self.conn, &CAMPAIGNS);
        let flat: Vec<String> = run_script(&self.conn, &call).await?;
        let mut versions = Vec::with_capacity(flat.len() / 5);
        for chunk in flat.chunks(5) {
            let [id, hash, text, source, at] = chunk else {
                return Err(corrupt("campaigns".into(), "unexpected answer"));
            };
            let some = |s: &String| Some(s.clone());
            versions.push(version(id, some(hash), some(text), some(source), some(at))?);
        }
        Ok(versions)
    }

    async fn record_fire(&self, record: &FireRecord) -> StoreResult<(bool, FireRecord)> {
        let (fire, text) = encode(record)?;
        let fire = fire.to_string();
        let mut call = invocation(&self.conn, &RECORD);
        call.arg(&record.campaign)
            .arg(&fire)
            .arg(&text)
            .arg(FIRES_KEPT);
        let (stored, text): (i64, String) = run_script(&self.conn, &call).await?;
        let now = decode(&record.campaign, &fire, &text)?;
        if stored == 1 {
            tracing::debug!(campaign = %record.campaign, fire = %record.fire, outcome = ?now.outcome, "fire recorded");
        }
        Ok((stored == 1, now))
    }

    async fn set_problem(
        &self,
        source: &str,
        problem: Option<&CampaignProblem>,
    ) -> StoreResult<()> {
        if source.len() > MAX_SOURCE_BYTES {
            return Err(refused("source", "longer than 4 KiB"));
        }
        let text = match problem {
            None => String::new(),
            Some(problem) => serde_json::to_string(&StoredProblem {
                d: cut_to(&problem.diagnostics, MAX_PROBLEM_BYTES).to_owned(),
                a: instant(problem.at),
            })
            .map_err(|e| StoreError::Backend(Box::new(e)))?,
        };
        let mut call = invocation(&self.conn, &SET_PROBLEM);
        call.arg(source).arg(&text).arg(MAX_PROBLEMS);
        let written: i64 = run_script(&self.conn, &call).await?;
        if written == 0 {
            return Err(StoreError::Conflict(format!(
                "{source}: {MAX_PROBLEMS} campaign files already have a recorded problem"
            )));
        }
        Ok(())
    }

    async fn problems(&self) -> StoreResult<Vec<CampaignProblem>> {
        let mut manager = self.conn.manager.clone();
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(self.conn.keys.campaign_problems())
            .query_async(&mut manager)
            .await
            .map_err(crate::conn::map_err)?;
        let mut problems = all
            .into_iter()
            .map(|(source, text)| {
                let key = || format!("campaign_problems/{source}");
                let stored: StoredProblem = serde_json::from_str(&text)
                    .map_err(|e| corrupt(key(), format!("not a problem: {e}")))?;
                Ok(CampaignProblem {
                    at: parse_instant(&stored.a, &key)?,
                    diagnostics: stored.d,
                    source,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        problems.sort_by(|a, b| a.source.cmp(&b.source));
        Ok(problems)
    }

    async fn fires(&self, campaign: &str, limit: usize) -> StoreResult<Vec<FireRecord>> {
        campaign_id(campaign)?;
        let limit = limit.min(FIRES_KEPT);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut call = invocation(&self.conn, &FIRES);
        call.arg(campaign).arg(limit);
        let flat: Vec<String> = run_script(&self.conn, &call).await?;
        flat.chunks(2)
            .map(|pair| match pair {
                [fire, text] => decode(campaign, fire, text),
                _ => Err(corrupt(format!("fires:{campaign}"), "unexpected answer")),
            })
            .collect()
    }
}
