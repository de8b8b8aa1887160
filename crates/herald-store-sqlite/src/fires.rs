//! [`Fires`] on SQLite: campaign versions (`queries/put_campaign.rs`, `queries/campaign_row.rs`)
//! and fire records (`queries/record_fire.rs`, `queries/fire_row.rs`).
//!
//! Input is checked here, before any query: the port's types are plain strings and instants, and
//! what the tables cannot hold faithfully (a fire between two seconds) or must never hold (an id
//! that could not be a campaign's, a text past the bound) is refused with
//! [`StoreError::Conflict`] rather than stored and found corrupt later.

use herald_core::CampaignId;
use herald_store::{
    CampaignProblem, CampaignVersion, FIRES_KEPT, FireRecord, Fires, MAX_CAMPAIGN_TEXT_BYTES,
    StoreError, StoreResult, VersionChange,
};

use crate::db::Db;
use crate::queries::{campaign_row, fire_row, problems, put_campaign, record_fire};

/// [`Fires`] on SQLite: the `campaigns` and `fires` tables (schema 10).
pub struct SqliteFires {
    db: Db,
}

impl SqliteFires {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }
}

/// A campaign id as [`CampaignId`] parses it.
fn check_campaign(campaign: &str) -> StoreResult<()> {
    CampaignId::parse(campaign)
        .map(drop)
        .map_err(|e| StoreError::Conflict(format!("fires: {e}")))
}

/// Whether `hash` has the stored form of a SHA-256: 64 lowercase hex digits.
pub(crate) fn is_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_hash(campaign: &str, hash: &str) -> StoreResult<()> {
    match is_hash(hash) {
        true => Ok(()),
        false => Err(StoreError::Conflict(format!(
            "campaign {campaign}: the hash is not 64 lowercase hex digits"
        ))),
    }
}

impl Fires for SqliteFires {
    async fn put_campaign(&self, version: &CampaignVersion) -> StoreResult<VersionChange> {
        check_campaign(&version.campaign)?;
        check_hash(&version.campaign, &version.hash)?;
        if version.text.len() > MAX_CAMPAIGN_TEXT_BYTES {
            return Err(StoreError::Conflict(format!(
                "campaign {}: the text is {} bytes, over the bound of {MAX_CAMPAIGN_TEXT_BYTES}",
                version.campaign,
                version.text.len()
            )));
        }
        let version = version.clone();
        self.db
            .call(move |conn| put_campaign::put_campaign(conn, &version))
            .await
    }

    async fn campaign(&self, campaign: &str) -> StoreResult<Option<CampaignVersion>> {
        let campaign = campaign.to_owned();
        self.db
            .call(move |conn| campaign_row::campaign(conn, &campaign))
            .await
    }

    async fn campaigns(&self) -> StoreResult<Vec<CampaignVersion>> {
        self.db.call(|conn| campaign_row::campaigns(conn)).await
    }

    async fn record_fire(&self, record: &FireRecord) -> StoreResult<(bool, FireRecord)> {
        check_campaign(&record.campaign)?;
        check_hash(&record.campaign, &record.hash)?;
        if record.fire.timestamp_subsec_nanos() != 0 {
            return Err(StoreError::Conflict(format!(
                "campaign {}: the fire instant {} is not a whole second",
                record.campaign,
                record.fire.to_rfc3339()
            )));
        }
        let record = record.clone();
        self.db
            .call(move |conn| record_fire::record_fire(conn, &record))
            .await
    }

    async fn fires(&self, campaign: &str, limit: usize) -> StoreResult<Vec<FireRecord>> {
        let campaign = campaign.to_owned();
        let limit = limit.min(FIRES_KEPT);
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.db
            .call(move |conn| fire_row::fires(conn, &campaign, limit))
            .await
    }

    async fn set_problem(
        &self,
        source: &str,
        problem: Option<&CampaignProblem>,
    ) -> StoreResult<()> {
        let (source, problem) = (source.to_owned(), problem.cloned());
        self.db
            .call(move |conn| problems::set_problem(conn, &source, problem.as_ref()))
            .await
    }

    async fn problems(&self) -> StoreResult<Vec<CampaignProblem>> {
        self.db.call(|conn| problems::problems(conn)).await
    }
}
