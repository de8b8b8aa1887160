//! Claims, leases, recovery, the send history, the tier, and compaction: the functions of the
//! deliveries port that [`crate::deliveries`] hands here, each one script call (or one read
//! pipeline) however many deliveries it names.
//!
//! - `claim`: the claim of a group (`scripts/claim.lua`).
//! - `lease`: renewals, recovery of ended leases, and `claims` (who claimed what).
//! - `compact`: what a long-lived store forgets, run with every recovery.
//! - `history`: the send history and the recent recipients.

mod claim;
mod compact;
mod history;
mod lease;

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use herald_store::{StoreError, StoreResult};
use redis::{Script, ScriptInvocation};

use crate::conn::{Conn, map_err};
use crate::scripts;

pub(crate) use claim::claim;
pub(crate) use history::{history_for, recent_recipients};
pub(crate) use lease::{claims, recover_expired, renew};

/// The store's now: the caller's clock, or Redis's `TIME` (to the microsecond).
pub(crate) async fn store_now(conn: &Conn) -> StoreResult<DateTime<Utc>> {
    if let herald_store::StoreTime::Clock(clock) = &conn.time {
        return Ok(clock.now());
    }
    let mut manager = conn.manager.clone();
    let (secs, micros): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut manager)
        .await
        .map_err(map_err)?;
    from_micros(
        secs.saturating_mul(1_000_000).saturating_add(micros),
        "TIME",
    )
}

/// A script of this module: the prelude, then `scripts/claim_state.lua` (the state JSON), then `body`.
pub(crate) fn state_script(body: &str) -> Script {
    scripts::script(&format!(
        "{}\n{body}",
        include_str!("../scripts/claim_state.lua")
    ))
}

static CLAIM: LazyLock<Script> =
    LazyLock::new(|| state_script(include_str!("../scripts/claim.lua")));
static RENEW: LazyLock<Script> =
    LazyLock::new(|| state_script(include_str!("../scripts/renew.lua")));
/// With `feedback.lua`: a delivery ended `unknown` takes the reports kept for it.
static RECOVER: LazyLock<Script> = LazyLock::new(|| {
    state_script(&format!(
        "{}\n{}",
        include_str!("../scripts/feedback.lua"),
        include_str!("../scripts/recover_expired.lua")
    ))
});
static COMPACT: LazyLock<Script> =
    LazyLock::new(|| state_script(include_str!("../scripts/compact.lua")));

/// Runs one of this module's scripts, its errors classified by [`crate::conn::map_err`] (a
/// script's `CORRUPT` error, a state or snapshot it cannot read, is [`StoreError::Corrupt`]).
async fn run_script<T: redis::FromRedisValue>(
    conn: &Conn,
    invocation: &ScriptInvocation<'_>,
) -> StoreResult<T> {
    scripts::run(conn, invocation).await
}

/// A [`StoreError::Corrupt`] at `key` (see [`crate::codec::corrupt`]).
fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    crate::codec::corrupt(key.to_owned(), reason)
}

/// An instant from unix microseconds as the store keeps slots.
fn from_micros(us: i64, key: &str) -> StoreResult<DateTime<Utc>> {
    crate::codec::from_us(us, &|| key.to_owned())
}

/// An instant from unix milliseconds as the store keeps leases, history and the tier.
fn from_millis(ms: i64, key: &str) -> StoreResult<DateTime<Utc>> {
    crate::codec::from_ms(ms, &|| key.to_owned())
}

/// Milliseconds of a duration, saturating (a lease or a retention is never near the bound).
fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Microseconds of a duration, saturating.
fn duration_us(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Text of a reply element (a bulk or simple string).
fn text(value: &redis::Value, what: &str) -> StoreResult<String> {
    match value {
        redis::Value::BulkString(bytes) => {
            String::from_utf8(bytes.clone()).map_err(|_| corrupt(what, "reply is not UTF-8"))
        }
        redis::Value::SimpleString(s) => Ok(s.clone()),
        other => Err(corrupt(what, format!("expected text, got {other:?}"))),
    }
}

/// Integer of a reply element.
fn int(value: &redis::Value, what: &str) -> StoreResult<i64> {
    match value {
        redis::Value::Int(n) => Ok(*n),
        other => Err(corrupt(what, format!("expected an integer, got {other:?}"))),
    }
}
