//! `Runs::run`: one run by id, and the row decoding `runs` shares.

use herald_core::{CampaignId, RunId};
use herald_store::{AudienceHash, NewRun, RunRecord, RunState, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::codec::{corrupt, instant, purpose};
use crate::db::backend;

/// The columns [`StoredRun::read`] expects, in order.
pub(crate) const COLUMNS: &str = "run_id, campaign, purpose, source, at_least_once, created_at, \
     total, state, state_reason, audience_sha256, sender, campaign_text, paused_by";

/// A runs row as stored.
pub(crate) struct StoredRun {
    run_id: String,
    campaign: String,
    purpose: String,
    source: String,
    at_least_once: bool,
    created_at: i64,
    total: Option<i64>,
    state: String,
    state_reason: Option<String>,
    audience_sha256: Option<String>,
    sender: Option<String>,
    campaign_text: Option<String>,
    paused_by: Option<String>,
}

impl StoredRun {
    /// Reads [`COLUMNS`].
    pub(crate) fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            run_id: row.get(0)?,
            campaign: row.get(1)?,
            purpose: row.get(2)?,
            source: row.get(3)?,
            at_least_once: row.get(4)?,
            created_at: row.get(5)?,
            total: row.get(6)?,
            state: row.get(7)?,
            state_reason: row.get(8)?,
            audience_sha256: row.get(9)?,
            sender: row.get(10)?,
            campaign_text: row.get(11)?,
            paused_by: row.get(12)?,
        })
    }

    /// Decodes the row, naming it in any [`herald_store::StoreError::Corrupt`].
    pub(crate) fn decode(self) -> StoreResult<RunRecord> {
        let key = || format!("runs/{}", self.run_id);
        let bad = |what: &str| corrupt(key(), format!("invalid {what}"));
        Ok(RunRecord {
            run: NewRun {
                run: RunId::parse(&self.run_id).map_err(|_| bad("run id"))?,
                campaign: CampaignId::parse(&self.campaign).map_err(|_| bad("campaign id"))?,
                purpose: purpose(&self.purpose, &key)?,
                source: self.source.clone(),
                sender: self.sender.clone(),
                campaign_text: self.campaign_text.clone(),
                at_least_once: self.at_least_once,
                audience_sha256: self
                    .audience_sha256
                    .as_deref()
                    .map(|hex| AudienceHash::parse_hex(hex).ok_or_else(|| bad("audience hash")))
                    .transpose()?,
            },
            created_at: instant(self.created_at, &key)?,
            total: self
                .total
                .map(u64::try_from)
                .transpose()
                .map_err(|_| bad("total"))?,
            state: RunState::parse(&self.state).ok_or_else(|| bad("state"))?,
            state_reason: self.state_reason.clone(),
            paused_by: self.paused_by.clone(),
        })
    }
}

/// The run `run_id`, if recorded.
pub(crate) fn run(conn: &mut Connection, run_id: &RunId) -> StoreResult<Option<RunRecord>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM runs WHERE run_id = ?1"))
        .and_then(|mut stmt| {
            stmt.query_row([run_id.as_str()], StoredRun::read)
                .optional()
        })
        .map_err(backend)?
        .map(StoredRun::decode)
        .transpose()
}
