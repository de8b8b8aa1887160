//! A fire record as its `fires` row stores it (the outcome as a kind plus an optional run id),
//! decoded strictly: an unknown kind, a run id where none belongs or missing where one does, or
//! one that does not parse, is `Corrupt` naming the row, never read as some other outcome. Also
//! `Fires::fires`, the newest records of a campaign.

use herald_core::RunId;
use herald_store::{FireOutcome, FireRecord, FireSkip, StoreResult};
use rusqlite::{Connection, Row};

use crate::codec::{corrupt, from_millis, instant, millis, secs};
use crate::db::backend;
use crate::fires::is_hash;

/// The columns [`FireRow::read`] reads, in order.
pub(crate) const COLUMNS: &str = "campaign, fire, kind, run, hash, recorded_at";

/// The columns of one row, as stored.
pub(crate) struct FireRow {
    pub(crate) campaign: String,
    /// Unix seconds.
    pub(crate) fire: i64,
    pub(crate) kind: String,
    pub(crate) run: Option<String>,
    pub(crate) hash: String,
    /// Unix milliseconds.
    pub(crate) recorded_at: i64,
}

impl FireRow {
    /// Encodes `record` (its fire already checked to be a whole second).
    pub(crate) fn new(record: &FireRecord) -> Self {
        let (kind, run) = match &record.outcome {
            FireOutcome::Run(run) => ("run", Some(run.as_str().to_owned())),
            FireOutcome::Skipped(skip @ FireSkip::Overlap { previous }) => {
                (skip.as_str(), Some(previous.as_str().to_owned()))
            }
            FireOutcome::Skipped(skip) => (skip.as_str(), None),
        };
        Self {
            campaign: record.campaign.clone(),
            fire: secs(record.fire),
            kind: kind.to_owned(),
            run,
            hash: record.hash.clone(),
            recorded_at: millis(record.recorded_at),
        }
    }

    /// Reads a row selected with [`COLUMNS`].
    pub(crate) fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            campaign: row.get(0)?,
            fire: row.get(1)?,
            kind: row.get(2)?,
            run: row.get(3)?,
            hash: row.get(4)?,
            recorded_at: row.get(5)?,
        })
    }

    /// The record this row stores.
    pub(crate) fn decode(self) -> StoreResult<FireRecord> {
        let key = || format!("fires/{}/{}", self.campaign, self.fire);
        let run = |run: &Option<String>| match run {
            Some(text) => RunId::parse(text).map_err(|_| corrupt(key(), "invalid run id")),
            None => Err(corrupt(
                key(),
                format!("kind {:?} without a run", self.kind),
            )),
        };
        let no_run = |outcome: FireOutcome| match &self.run {
            None => Ok(outcome),
            Some(_) => Err(corrupt(key(), format!("kind {:?} with a run", self.kind))),
        };
        let outcome = match self.kind.as_str() {
            "run" => FireOutcome::Run(run(&self.run)?),
            "overlap" => FireOutcome::Skipped(FireSkip::Overlap {
                previous: run(&self.run)?,
            }),
            "missed" => no_run(FireOutcome::Skipped(FireSkip::Missed))?,
            "superseded" => no_run(FireOutcome::Skipped(FireSkip::Superseded))?,
            other => return Err(corrupt(key(), format!("unknown kind {other:?}"))),
        };
        if !is_hash(&self.hash) {
            return Err(corrupt(key(), "hash is not 64 lowercase hex digits"));
        }
        Ok(FireRecord {
            fire: instant(self.fire, &key)?,
            recorded_at: from_millis(self.recorded_at, &key)?,
            campaign: self.campaign,
            outcome,
            hash: self.hash,
        })
    }
}

/// The read of [`fires`]: `?1` the campaign, `?2` the limit.
fn newest_sql() -> String {
    format!("SELECT {COLUMNS} FROM fires WHERE campaign = ?1 ORDER BY fire DESC LIMIT ?2")
}

/// The newest `limit` records of `campaign`, newest fire first (a backward walk of the primary
/// key; the caller bounds `limit`).
pub(crate) fn fires(
    conn: &Connection,
    campaign: &str,
    limit: usize,
) -> StoreResult<Vec<FireRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = conn
        .prepare_cached(&newest_sql())
        .and_then(|mut stmt| {
            stmt.query_map((campaign, limit), FireRow::read)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    rows.into_iter().map(FireRow::decode).collect()
}

#[cfg(test)]
mod tests {
    /// The newest records are a backward walk of one campaign in the primary key: no scan, no
    /// sort.
    #[test]
    fn the_newest_fires_are_read_in_the_primary_key_order() {
        let plan = crate::queries::query_plan(&super::newest_sql(), ("weekly", 10));
        let joined = plan.join("\n");
        assert_eq!(
            plan,
            ["SEARCH fires USING PRIMARY KEY (campaign=?)"],
            "{joined}"
        );
    }
}
