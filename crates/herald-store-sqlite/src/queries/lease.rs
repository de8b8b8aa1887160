//! Leases: `Deliveries::renew`, `recover_expired` and `claims`.
//!
//! A claim is its owner's until `lease_until` (ms, store time). A live worker renews the leases
//! of its requests in flight; a worker that died stops renewing, and once the lease has ended any
//! worker's `recover_expired` ends the delivery (`unknown`: the request may have reached the
//! provider) or, for an `at_least_once` run, queues it again (or, its run cancelled, ends it
//! `skipped(cancelled)`: nothing would ever claim it again). The check and the change are one
//! UPDATE guarded by `state = 'sending'`, inside the same transaction as the read, so the dead
//! worker's late outcome (an UPDATE guarded by its ownership of a `sending` row) finds the row
//! changed and is refused: the first terminal write wins.

use herald_core::{RunId, SkipReason};
use herald_store::{ClaimRecord, DeliveryKey, Recovered, StoreResult, StoreTime, WorkerId};
use rusqlite::{Connection, TransactionBehavior};

use super::{RunIds, no_run, status};
use crate::codec::{corrupt, delivery_key, duration_ms, from_micros, millis, parse_key, secs_ceil};
use crate::db::{backend, store_now};
use crate::tally::{Tally, unlabelled};

/// The statement that finds expired leases, public to the crate so a test can check its plan.
pub(crate) const EXPIRED_SQL: &str =
    "SELECT d.id, d.run, r.run_id, d.recipient, d.owner, r.at_least_once,
        r.state = 'cancelled'
 FROM deliveries AS d INDEXED BY deliveries_lease
 CROSS JOIN runs AS r ON r.id = d.run
 WHERE d.state = 'sending' AND d.lease_until <= ?1
 ORDER BY d.lease_until
 LIMIT ?2";

/// Extends `owner`'s leases on `keys` to the store's now (read once the write lock is held,
/// so a renewal that waited for it is not shortened by the wait) + `lease`; how many were its
/// own and sending.
pub(crate) fn renew(
    conn: &mut Connection,
    owner: &WorkerId,
    keys: &[DeliveryKey],
    time: &StoreTime,
    lease: std::time::Duration,
) -> StoreResult<u64> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let lease_until = millis(store_now(time)) + duration_ms(lease);
    let mut runs = RunIds::default();
    let mut renewed = 0;
    for key in keys {
        let Some(run) = runs.get(&tx, &key.run)? else {
            continue;
        };
        renewed += tx
            .prepare_cached(
                "UPDATE deliveries SET lease_until = ?4
                 WHERE run = ?1 AND recipient = ?2 AND state = 'sending' AND owner = ?3",
            )
            .and_then(|mut stmt| {
                stmt.execute((
                    run.id,
                    key.recipient.to_string(),
                    owner.as_str(),
                    lease_until,
                ))
            })
            .map_err(backend)? as u64;
    }
    tx.commit().map_err(backend)?;
    Ok(renewed)
}

/// Ends or requeues up to `limit` deliveries whose lease ended by the store's now (read again
/// once the write lock is held).
pub(crate) fn recover_expired(
    conn: &mut Connection,
    time: &StoreTime,
    limit: usize,
) -> StoreResult<Vec<Recovered>> {
    let now = store_now(time);
    // Every worker asks often and almost always for nothing: a read first, so that asking
    // takes no write lock from the claims.
    let any = conn
        .prepare_cached(
            "SELECT 1 FROM deliveries INDEXED BY deliveries_lease
             WHERE state = 'sending' AND lease_until <= ?1 LIMIT 1",
        )
        .and_then(|mut stmt| stmt.exists([millis(now)]))
        .map_err(backend)?;
    if !any {
        return Ok(Vec::new());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let now = store_now(time);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    type Expired = (i64, i64, String, String, Option<String>, bool, bool);
    let expired: Vec<Expired> = tx
        .prepare_cached(EXPIRED_SQL)
        .and_then(|mut stmt| {
            stmt.query_map((millis(now), limit), |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    let mut tally = Tally::default();
    let mut recovered = Vec::with_capacity(expired.len());
    for (id, run, run_id, recipient, owner, at_least_once, cancelled) in expired {
        let key = parse_key(&run_id, &recipient)?;
        let owner_text = owner.unwrap_or_default();
        let owner = WorkerId::parse(&owner_text)
            .ok_or_else(|| corrupt(delivery_key(&run_id, &recipient), "invalid owner"))?;
        // An at_least_once requeue under a cancelled run would stay queued for ever (a
        // cancelled run is never claimed): it ends `skipped(cancelled)` instead, out of the
        // send history as a requeue would be (nothing proves it was sent).
        let cancel = at_least_once && cancelled;
        let changed = if cancel {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'skipped', reason = ?2, sent_at = NULL,
                     wait_reason = NULL, lease_until = NULL, recovered = 1
                 WHERE id = ?1 AND state = 'sending'",
            )
            .and_then(|mut stmt| stmt.execute((id, SkipReason::Cancelled.as_str())))
        } else if at_least_once {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'queued', due_at = ?2, sent_at = NULL,
                     wait_reason = NULL, lease_until = NULL, recovered = 1
                 WHERE id = ?1 AND state = 'sending'",
            )
            .and_then(|mut stmt| stmt.execute((id, secs_ceil(now))))
        } else {
            // The old crash recovery's words, with whose claim it was.
            let detail = format!(
                "interrupted while its request may have been in flight (the lease of {owner} \
                 ended)"
            );
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'unknown', detail = ?2, lease_until = NULL,
                     recovered = 1
                 WHERE id = ?1 AND state = 'sending'",
            )
            .and_then(|mut stmt| stmt.execute((id, detail)))
        }
        .map_err(backend)?;
        if changed == 0 {
            continue;
        }
        let to = if cancel {
            ("skipped", SkipReason::Cancelled.as_str().to_owned())
        } else {
            unlabelled(if at_least_once { "queued" } else { "unknown" })
        };
        tally.moved(run, unlabelled("sending"), to, 1);
        if !at_least_once {
            // A report that came while it was sending, naming it in its callback, proves
            // what became of it: applied now, in this transaction.
            status::apply_kept(&tx, (&run_id, &recipient), None, millis(now), &mut tally)?;
        }
        recovered.push(Recovered {
            key,
            owner,
            requeued: at_least_once && !cancel,
        });
    }
    tally.flush(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(recovered)
}

/// Every delivery of `run` ever claimed, with its last owner and slot, in slot order.
pub(crate) fn claims(conn: &mut Connection, run: &RunId) -> StoreResult<Vec<ClaimRecord>> {
    let Some(row) = RunIds::default().get(conn, run)? else {
        return Err(no_run(run.as_str()));
    };
    let stored: Vec<(String, String, Option<i64>, String, bool)> = conn
        .prepare_cached(
            "SELECT recipient, owner, slot, state, recovered FROM deliveries
             WHERE run = ?1 AND owner IS NOT NULL
             ORDER BY slot, recipient",
        )
        .and_then(|mut stmt| {
            stmt.query_map([row.id], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    stored
        .into_iter()
        .map(|(recipient, owner, slot, state, recovered)| {
            let name = || delivery_key(run.as_str(), &recipient);
            Ok(ClaimRecord {
                key: parse_key(run.as_str(), &recipient)?,
                owner: WorkerId::parse(&owner).ok_or_else(|| corrupt(name(), "invalid owner"))?,
                slot: from_micros(
                    slot.ok_or_else(|| corrupt(name(), "claim without slot"))?,
                    &name,
                )?,
                state,
                recovered,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::EXPIRED_SQL;

    /// Recovery reads the small partial index of sending rows by lease end, never the ledger.
    #[test]
    fn expired_leases_are_a_seek_of_their_index() {
        let plan = crate::queries::query_plan(EXPIRED_SQL, (0, 10));
        let joined = plan.join("\n");
        assert!(
            plan.iter()
                .any(|s| s.contains("SEARCH d USING INDEX deliveries_lease (lease_until<?)")),
            "{joined}"
        );
        assert!(!plan.iter().any(|s| s.starts_with("SCAN")), "{joined}");
        assert!(!joined.contains("TEMP B-TREE"), "{joined}");
    }
}
