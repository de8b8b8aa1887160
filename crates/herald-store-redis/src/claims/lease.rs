//! Leases: `Deliveries::renew`, `recover_expired` and `claims`.
//!
//! A claim is its owner's until its lease end (ms of store time, the state's `l` and the score
//! of its member in `leases`). A live worker renews the leases of its requests in flight; once a
//! lease has ended any worker's `recover_expired` ends the delivery `unknown` (its request may
//! have reached the provider) or, for an `at_least_once` run, queues it again due at once with
//! its history entry removed, as the SQLite adapter does (`queries/lease.rs`). The check and the
//! change are one script, so the dead worker's late outcome (a script that checks its ownership
//! of a `sending` state) finds the state changed and is refused: the first terminal write wins.

use herald_core::RunId;
use herald_store::{ClaimRecord, DeliveryKey, Recovered, StoreResult, WorkerId};

use super::{RECOVER, RENEW, corrupt, duration_ms, from_micros, int, text};
use crate::codec::{StateJson, delivery_name, parse_key};
use crate::conn::{Conn, map_err};
use crate::scripts;

/// Fields of `dl:<run>` read per `HSCAN` round trip of [`claims`].
const SCAN_CHUNK: usize = 1_000;

/// Extends `owner`'s leases on `keys` to the store's now + `lease`, in one script call; how many
/// were its own and still sending.
pub(crate) async fn renew(
    conn: &Conn,
    owner: &WorkerId,
    keys: &[DeliveryKey],
    lease: std::time::Duration,
) -> StoreResult<u64> {
    if keys.is_empty() {
        return Ok(0);
    }
    let mut invocation = scripts::invocation(conn, &RENEW);
    invocation
        .arg(owner.as_str())
        .arg(duration_ms(lease))
        .arg(keys.len());
    for key in keys {
        invocation
            .arg(key.run.as_str())
            .arg(key.recipient.to_string());
    }
    let renewed: i64 = super::run_script(conn, &invocation).await?;
    Ok(u64::try_from(renewed).unwrap_or(0))
}

/// Ends or requeues up to `limit` deliveries whose lease ended by the store's now, then
/// compacts (see [`super::compact`]): every worker calls this periodically, so compaction needs
/// no process of its own.
pub(crate) async fn recover_expired(conn: &Conn, limit: usize) -> StoreResult<Vec<Recovered>> {
    let mut invocation = scripts::invocation(conn, &RECOVER);
    invocation
        .arg(limit)
        .arg(crate::feedback::KEPT_TRIM_PER_CALL);
    let reply: redis::Value = super::run_script(conn, &invocation).await?;
    let recovered = decode_recovered(&reply)?;
    // The recovery is written: an error of the compaction after it must not lose the reports of
    // what it recovered (a retry would not return them). Compaction is bounded housekeeping and
    // runs again with the next call, so its error is logged, not returned.
    let compacted = match super::compact::compact(conn).await {
        Ok(compacted) => compacted,
        Err(error) => {
            tracing::warn!(
                error = %error,
                recovered = recovered.len(),
                "compaction after a recovery failed; it is retried with the next recovery"
            );
            0
        }
    };
    if !recovered.is_empty() || compacted > 0 {
        tracing::info!(
            recovered = recovered.len(),
            compacted,
            "recovered ended leases"
        );
    }
    Ok(recovered)
}

/// The recovery script's reply: run, recipient, owner, requeued per delivery.
fn decode_recovered(reply: &redis::Value) -> StoreResult<Vec<Recovered>> {
    const WHAT: &str = "recover_expired reply";
    let redis::Value::Array(items) = reply else {
        return Err(corrupt(WHAT, format!("expected an array, got {reply:?}")));
    };
    if items.len() % 4 != 0 {
        return Err(corrupt(WHAT, format!("{} elements", items.len())));
    }
    items
        .chunks_exact(4)
        .map(|item| {
            let (run, recipient) = (text(&item[0], WHAT)?, text(&item[1], WHAT)?);
            let owner = text(&item[2], WHAT)?;
            Ok(Recovered {
                key: parse_key(&run, &recipient)?,
                owner: WorkerId::parse(&owner)
                    .ok_or_else(|| corrupt(&delivery_name(&run, &recipient), "invalid owner"))?,
                requeued: int(&item[3], WHAT)? == 1,
            })
        })
        .collect()
}

/// Every delivery of `run` that was ever claimed (its state has an owner), with its last owner
/// and slot, in slot order: `HSCAN` of `dl:<run>` in chunks. Compacted deliveries (terminal for
/// longer than the retention) keep no owner (a tombstone or nothing) and are not listed.
pub(crate) async fn claims(conn: &Conn, run: &RunId) -> StoreResult<Vec<ClaimRecord>> {
    let key = conn.keys.dl(run.as_str());
    let mut manager = conn.manager.clone();
    let mut records = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, fields): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
            .arg(&key)
            .arg(cursor)
            .arg("COUNT")
            .arg(SCAN_CHUNK)
            .query_async(&mut manager)
            .await
            .map_err(map_err)?;
        for (recipient, state) in fields {
            if let Some(record) = record(run, &recipient, &state)? {
                records.push(record);
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if records.is_empty() && !run_exists(conn, run).await? {
        return Err(herald_store::StoreError::NotFound(format!(
            "run {}",
            run.as_str()
        )));
    }
    records.sort_by(|x, y| {
        (x.slot, x.key.recipient.to_string()).cmp(&(y.slot, y.key.recipient.to_string()))
    });
    Ok(records)
}

async fn run_exists(conn: &Conn, run: &RunId) -> StoreResult<bool> {
    let mut manager = conn.manager.clone();
    redis::cmd("EXISTS")
        .arg(conn.keys.run(run.as_str()))
        .query_async(&mut manager)
        .await
        .map_err(map_err)
}

/// The claim a stored state records, `None` for a delivery never claimed (no owner).
fn record(run: &RunId, recipient: &str, state: &str) -> StoreResult<Option<ClaimRecord>> {
    let name = || delivery_name(run.as_str(), recipient);
    let json = StateJson::decode(state, &name)?;
    let Some(owner) = json.owner(&name)? else {
        return Ok(None);
    };
    let slot = json
        .t
        .ok_or_else(|| corrupt(&name(), "a claim without its slot"))?;
    let state = match json.s.as_str() {
        "q" => "queued",
        "s" => "sending",
        terminal => terminal,
    };
    Ok(Some(ClaimRecord {
        key: parse_key(run.as_str(), recipient)?,
        owner,
        slot: from_micros(slot, &name())?,
        state: state.to_owned(),
        recovered: json.r == Some(1),
    }))
}
