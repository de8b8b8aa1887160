//! The `Senders` port's reads and writes of `senders`: the provider's throttle and block, shared
//! by every worker through the claim, which reads the same row.

use herald_store::{Block, MAX_THROTTLE, SenderState, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

use super::sender_row::SenderRow;
use crate::codec::{duration_ms, from_millis};
use crate::db::backend;

/// The sender `name` as the port shows it.
pub(crate) fn sender(conn: &mut Connection, name: &str) -> StoreResult<SenderState> {
    state(name, SenderRow::read(conn, name)?)
}

/// Every sender with a throttle or a block recorded, by name.
pub(crate) fn senders(conn: &mut Connection) -> StoreResult<Vec<SenderState>> {
    let names = conn
        .prepare_cached(
            "SELECT name FROM senders
             WHERE throttled_until IS NOT NULL OR block_code IS NOT NULL ORDER BY name",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    super::in_one_read(conn, |conn| {
        names
            .iter()
            .map(|name| state(name, SenderRow::read(conn, name)?))
            .collect()
    })
}

/// Throttles `name` until `now_ms + hold` (at most [`MAX_THROTTLE`]); a later end already
/// recorded is kept, capped at [`MAX_THROTTLE`] from now too. Returns the end (ms).
pub(crate) fn throttle(
    conn: &mut Connection,
    name: &str,
    time: &herald_store::StoreTime,
    hold: std::time::Duration,
) -> StoreResult<i64> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    // Read once the write lock is held: a throttle that waited for it still ends `hold` after
    // it is recorded.
    let now_ms = crate::codec::millis(crate::db::store_now(time));
    let mut row = SenderRow::read(&tx, name)?;
    let cap = now_ms + duration_ms(MAX_THROTTLE);
    let asked = now_ms + duration_ms(hold.min(MAX_THROTTLE));
    let until = row.throttled_until.map_or(asked, |t| t.max(asked)).min(cap);
    row.throttled_until = Some(until);
    row.write(&tx, name)?;
    tx.commit().map_err(backend)?;
    Ok(until)
}

/// Blocks `name` with `code` and `reason` at `at_ms`, unless it is blocked already.
pub(crate) fn block(
    conn: &mut Connection,
    name: &str,
    (code, reason): (&str, &str),
    at_ms: i64,
) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut row = SenderRow::read(&tx, name)?;
    if row.block_code.is_none() {
        row.block_code = Some(code.to_owned());
        row.block_reason = Some(reason.to_owned());
        row.blocked_at = Some(at_ms);
        row.write(&tx, name)?;
    }
    tx.commit().map_err(backend)
}

/// Clears `name`'s block and throttle; whether it was blocked.
pub(crate) fn resume(conn: &mut Connection, name: &str) -> StoreResult<bool> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut row = SenderRow::read(&tx, name)?;
    let blocked = row.block_code.is_some();
    if blocked || row.throttled_until.is_some() {
        row.block_code = None;
        row.block_reason = None;
        row.blocked_at = None;
        row.throttled_until = None;
        row.write(&tx, name)?;
    }
    tx.commit().map_err(backend)?;
    Ok(blocked)
}

fn state(name: &str, row: SenderRow) -> StoreResult<SenderState> {
    let key = || format!("senders/{name}");
    let blocked = match (row.block_code, row.blocked_at) {
        (Some(code), Some(at)) => Some(Block {
            code,
            reason: row.block_reason.unwrap_or_default(),
            at: from_millis(at, &key)?,
        }),
        _ => None,
    };
    Ok(SenderState {
        name: name.to_owned(),
        throttled_until: row
            .throttled_until
            .map(|until| from_millis(until, &key))
            .transpose()?,
        blocked,
    })
}
