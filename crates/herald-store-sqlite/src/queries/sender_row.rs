//! A sender's row of `senders` as one transaction reads and writes it: the claim reads it once
//! per group and writes the rate and tier back once, the `Senders` port reads and writes the
//! throttle and the block.

use herald_store::StoreResult;
use rusqlite::{Connection, OptionalExtension};

use crate::db::backend;

/// The columns of one sender (times as the table stores them: ms, the TAT in us).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SenderRow {
    pub(crate) throttled_until: Option<i64>,
    pub(crate) block_code: Option<String>,
    pub(crate) block_reason: Option<String>,
    pub(crate) blocked_at: Option<i64>,
    /// The rate's theoretical arrival time (GCRA): the earliest slot the next claim may get.
    pub(crate) tat: Option<i64>,
    /// How many phones `tier` holds for the sender.
    pub(crate) tier_count: i64,
}

impl SenderRow {
    /// The sender `name`'s row, or an empty one for a sender never recorded.
    pub(crate) fn read(tx: &Connection, name: &str) -> StoreResult<Self> {
        let row = tx
            .prepare_cached(
                "SELECT throttled_until, block_code, block_reason, blocked_at, tat, tier_count
                 FROM senders WHERE name = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([name], |row| {
                    Ok(Self {
                        throttled_until: row.get(0)?,
                        block_code: row.get(1)?,
                        block_reason: row.get(2)?,
                        blocked_at: row.get(3)?,
                        tat: row.get(4)?,
                        tier_count: row.get(5)?,
                    })
                })
                .optional()
            })
            .map_err(backend)?;
        Ok(row.unwrap_or_default())
    }

    /// Writes the whole row back.
    pub(crate) fn write(&self, tx: &Connection, name: &str) -> StoreResult<()> {
        tx.prepare_cached(
            "INSERT INTO senders (name, throttled_until, block_code, block_reason, blocked_at,
                 tat, tier_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (name) DO UPDATE SET throttled_until = excluded.throttled_until,
                 block_code = excluded.block_code, block_reason = excluded.block_reason,
                 blocked_at = excluded.blocked_at, tat = excluded.tat,
                 tier_count = excluded.tier_count",
        )
        .and_then(|mut stmt| {
            stmt.execute((
                name,
                self.throttled_until,
                self.block_code.as_deref(),
                self.block_reason.as_deref(),
                self.blocked_at,
                self.tat,
                self.tier_count,
            ))
        })
        .map_err(backend)?;
        Ok(())
    }
}
