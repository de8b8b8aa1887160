//! `Fires::campaign` and `Fires::campaigns`: a campaign version as its `campaigns` row stores it,
//! decoded strictly (a row that is not a version the port could have written is `Corrupt`).

use herald_core::CampaignId;
use herald_store::{CampaignVersion, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::codec::{corrupt, from_millis};
use crate::db::backend;
use crate::fires::is_hash;

/// The columns [`decode`] reads, in order.
const COLUMNS: &str = "campaign, hash, text, source, stored_at";

/// The columns of one row, as stored.
struct CampaignRow {
    campaign: String,
    hash: String,
    text: String,
    source: String,
    stored_at: i64,
}

impl CampaignRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            campaign: row.get(0)?,
            hash: row.get(1)?,
            text: row.get(2)?,
            source: row.get(3)?,
            stored_at: row.get(4)?,
        })
    }

    fn decode(self) -> StoreResult<CampaignVersion> {
        let key = || format!("campaigns/{}", self.campaign);
        if CampaignId::parse(&self.campaign).is_err() {
            return Err(corrupt(key(), "invalid campaign id"));
        }
        if !is_hash(&self.hash) {
            return Err(corrupt(key(), "hash is not 64 lowercase hex digits"));
        }
        let stored_at = from_millis(self.stored_at, &key)?;
        Ok(CampaignVersion {
            campaign: self.campaign,
            hash: self.hash,
            text: self.text,
            source: self.source,
            stored_at,
        })
    }
}

/// The current version of `campaign` (a seek of the primary key).
pub(crate) fn campaign(conn: &Connection, campaign: &str) -> StoreResult<Option<CampaignVersion>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM campaigns WHERE campaign = ?1"
        ))
        .and_then(|mut stmt| stmt.query_row([campaign], CampaignRow::read).optional())
        .map_err(backend)?;
    row.map(CampaignRow::decode).transpose()
}

/// The current version of every campaign, by id (the primary key's order).
pub(crate) fn campaigns(conn: &Connection) -> StoreResult<Vec<CampaignVersion>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM campaigns ORDER BY campaign"
        ))
        .and_then(|mut stmt| {
            stmt.query_map([], CampaignRow::read)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    rows.into_iter().map(CampaignRow::decode).collect()
}
