//! `Deliveries::claim`: a worker's claims for one sender, in one `BEGIN IMMEDIATE` transaction.
//!
//! SQLite's write lock makes the transaction the only writer of the file while it runs, so what
//! it reads (the run's state, the sender's throttle, block, rate and tier, the consent log, the
//! send history) cannot move before it commits, in this process or another: every check and
//! every grant holds over all the workers sharing the file.
//!
//! Checks per claim, in the port's order: the run is active; the sender is neither blocked nor
//! throttled; the delivery is queued and due at the store's now; the consent log and the send
//! history hold as many entries as the decision saw; the tier admits the phone; a rate slot is
//! free within the horizon. The first failing check is the refusal, and nothing is written for
//! that claim. Once no slot is free within the horizon, the rest of the group gets the same
//! answer (later slots can only be later).
//!
//! # Rate
//! GCRA with a burst of one: the sender's theoretical arrival time (`senders.tat`, us) is the
//! earliest slot; a claim gets `max(now, tat)` and moves `tat` one emission interval past it. The
//! interval is `1 / per_second` rounded up to the microsecond, so slots are never closer than
//! that and no 1-second window holds more than `per_second` of them.
//!
//! # Tier
//! `tier` holds each phone of the sender's last 24 hours (store time) with its latest slot, and
//! `senders.tier_count` their number. The group first deletes the rows that left the window (a
//! range of `tier_by_time`), then each claim looks its phone up by key: a phone present is
//! admitted, a new one while the count is below the tier. Neither costs more with 100k phones.

use chrono::{DateTime, Utc};
use herald_store::{Claim, ClaimAnswer, ClaimGroup, Refusal, SenderLimits, StoreResult, StoreTime};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::RunIds;
use super::sender_row::SenderRow;
use crate::codec::{duration_ms, duration_us, from_micros, from_millis, micros, secs};
use crate::db::{backend, store_now};
use crate::tally::{Tally, unlabelled};

/// The tier's moving window.
const DAY_MS: i64 = 86_400_000;

/// Claims `group` at the store's now, read once the write lock is held: a claim that waited
/// for another process's transaction is timed when it runs, so its slots and lease are not
/// dated by as long as it waited (a stale now would hand out slots already past, letting
/// requests leave in a burst, and shorten the lease).
pub(crate) fn claim(
    conn: &mut Connection,
    group: &ClaimGroup,
    time: &StoreTime,
) -> StoreResult<Vec<ClaimAnswer>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let now = store_now(time);
    let name = group.sender.name.as_str();
    let mut step = Step {
        tx: &tx,
        limits: &group.sender,
        owner: group.owner.as_str(),
        lease_until: micros(now).div_euclid(1000) + duration_ms(group.lease),
        now,
        now_us: micros(now),
        sender: SenderRow::read(&tx, name)?,
        runs: RunIds::default(),
        tally: Tally::default(),
    };
    let before = step.sender.clone();
    step.leave_window()?;
    let mut answers = Vec::with_capacity(group.claims.len());
    let mut ahead = None;
    for claim in &group.claims {
        let answer = match ahead {
            Some(next) => ClaimAnswer::Refused(Refusal::RateAhead { next }),
            None => step.claim(claim)?,
        };
        if let ClaimAnswer::Refused(Refusal::RateAhead { next }) = answer {
            ahead = Some(next);
        }
        answers.push(answer);
    }
    let Step { sender, tally, .. } = step;
    if sender != before {
        sender.write(&tx, name)?;
    }
    tally.flush(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(answers)
}

/// One group's transaction and what it has changed so far.
struct Step<'t> {
    tx: &'t Connection,
    limits: &'t SenderLimits,
    owner: &'t str,
    /// Every claim of the group gets the same lease end (ms).
    lease_until: i64,
    now: DateTime<Utc>,
    now_us: i64,
    sender: SenderRow,
    runs: RunIds,
    tally: Tally,
}

/// The delivery a claim names, as stored.
struct Row {
    id: i64,
    run: i64,
    state: String,
    due_at: Option<i64>,
    phone: Option<String>,
}

impl Step<'_> {
    fn now_ms(&self) -> i64 {
        self.now_us.div_euclid(1000)
    }

    /// Deletes the sender's tier rows that left the 24-hour window and uncounts them.
    fn leave_window(&mut self) -> StoreResult<()> {
        let left = self
            .tx
            .prepare_cached("DELETE FROM tier WHERE sender = ?1 AND at <= ?2")
            .and_then(|mut stmt| stmt.execute((&self.limits.name, self.now_ms() - DAY_MS)))
            .map_err(backend)?;
        self.sender.tier_count = (self.sender.tier_count - left as i64).max(0);
        Ok(())
    }

    fn claim(&mut self, claim: &Claim) -> StoreResult<ClaimAnswer> {
        match self.check(claim)? {
            Ok((row, phone_in_tier)) => self.grant(&row, phone_in_tier),
            Err(refusal) => Ok(ClaimAnswer::Refused(refusal)),
        }
    }

    /// Every check but the rate, in order: the delivery's row and whether its phone is in the
    /// tier window already, or the refusal.
    fn check(&mut self, claim: &Claim) -> StoreResult<Result<(Row, bool), Refusal>> {
        let Some(run) = self.runs.get(self.tx, &claim.key.run)? else {
            return Ok(Err(Refusal::Taken));
        };
        if run.cancelled {
            return Ok(Err(Refusal::RunCancelled));
        }
        if !run.active {
            return Ok(Err(Refusal::RunPaused));
        }
        if self.sender.block_code.is_some() {
            let reason = self.sender.block_reason.clone().unwrap_or_default();
            return Ok(Err(Refusal::Blocked { reason }));
        }
        if let Some(until) = self.sender.throttled_until.filter(|&u| u > self.now_ms()) {
            let until = from_millis(until, &|| format!("senders/{}", self.limits.name))?;
            return Ok(Err(Refusal::Throttled { until }));
        }
        let Some(row) = self.row(run.id, claim)? else {
            return Ok(Err(Refusal::Taken));
        };
        let due = row
            .due_at
            .is_some_and(|due| due.saturating_mul(1000) <= self.now_ms());
        let Some(phone) = row.phone.clone().filter(|_| row.state == "queued" && due) else {
            return Ok(Err(Refusal::Taken));
        };
        if self.consent_events(claim, &phone)? != claim.consent.events {
            return Ok(Err(Refusal::ConsentChanged));
        }
        if self.sends_since(claim, &phone)? != claim.history.sends {
            return Ok(Err(Refusal::CapChanged));
        }
        let in_tier = self.in_tier(&phone)?;
        if let Some(tier) = self.limits.tier {
            let full = u64::try_from(self.sender.tier_count).unwrap_or(0) >= tier;
            if !in_tier && full {
                let frees = self.tier_frees()?;
                return Ok(Err(Refusal::TierFull { frees }));
            }
        }
        Ok(Ok((row, in_tier)))
    }

    /// The rate's slot, then the claim itself: the row goes `sending` under the group's owner
    /// and lease, its send recorded at the slot, the phone in the tier.
    fn grant(&mut self, row: &Row, in_tier: bool) -> StoreResult<ClaimAnswer> {
        let slot_us = self
            .sender
            .tat
            .map_or(self.now_us, |tat| tat.max(self.now_us));
        let key = || format!("senders/{}", self.limits.name);
        let slot = from_micros(slot_us, &key)?;
        if slot_us - self.now_us > duration_us(self.limits.horizon) {
            return Ok(ClaimAnswer::Refused(Refusal::RateAhead { next: slot }));
        }
        let claimed = self
            .tx
            .prepare_cached(
                "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, sent_at = ?2,
                     owner = ?3, lease_until = ?4, slot = ?5, recovered = 0
                 WHERE id = ?1 AND state = 'queued'",
            )
            .and_then(|mut stmt| {
                stmt.execute((row.id, secs(slot), self.owner, self.lease_until, slot_us))
            })
            .map_err(backend)?;
        if claimed == 0 {
            return Ok(ClaimAnswer::Refused(Refusal::Taken));
        }
        self.tally
            .moved(row.run, unlabelled("queued"), unlabelled("sending"), 1);
        self.sender.tat = Some(slot_us + self.limits.interval_us());
        self.enter_tier(
            row.phone.as_deref().unwrap_or_default(),
            slot_us.div_euclid(1000),
        )?;
        if !in_tier {
            self.sender.tier_count += 1;
        }
        let wait = (slot - self.now).to_std().unwrap_or_default();
        Ok(ClaimAnswer::Claimed { slot, wait })
    }

    fn row(&self, run: i64, claim: &Claim) -> StoreResult<Option<Row>> {
        self.tx
            .prepare_cached(
                "SELECT id, state, due_at, phone FROM deliveries
                 WHERE run = ?1 AND recipient = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row((run, claim.key.recipient.to_string()), |row| {
                    Ok(Row {
                        id: row.get(0)?,
                        run,
                        state: row.get(1)?,
                        due_at: row.get(2)?,
                        phone: row.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(backend)
    }

    fn consent_events(&self, claim: &Claim, phone: &str) -> StoreResult<u64> {
        self.tx
            .prepare_cached("SELECT count(*) FROM consents WHERE channel = ?1 AND phone = ?2")
            .and_then(|mut stmt| {
                stmt.query_row((&claim.consent.channel, phone), |row| row.get::<_, i64>(0))
            })
            .map(|n| n.unsigned_abs())
            .map_err(backend)
    }

    /// Sends to `phone` at or after the decision's horizon, counted as `history` reads them.
    fn sends_since(&self, claim: &Claim, phone: &str) -> StoreResult<u64> {
        self.tx
            .prepare_cached(
                "SELECT count(*) FROM deliveries INDEXED BY deliveries_sent
                 WHERE phone = ?1 AND sent_at >= ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row((phone, secs(claim.history.since)), |row| {
                    row.get::<_, i64>(0)
                })
            })
            .map(|n| n.unsigned_abs())
            .map_err(backend)
    }

    fn in_tier(&self, phone: &str) -> StoreResult<bool> {
        self.tx
            .prepare_cached("SELECT 1 FROM tier WHERE sender = ?1 AND phone = ?2")
            .and_then(|mut stmt| {
                stmt.query_row((&self.limits.name, phone), |_| Ok(()))
                    .optional()
            })
            .map(|found| found.is_some())
            .map_err(backend)
    }

    fn enter_tier(&self, phone: &str, at_ms: i64) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO tier (sender, phone, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sender, phone) DO UPDATE SET at = max(at, excluded.at)",
            )
            .and_then(|mut stmt| stmt.execute((&self.limits.name, phone, at_ms)))
            .map_err(backend)?;
        Ok(())
    }

    /// When the oldest phone of the window leaves it.
    fn tier_frees(&self) -> StoreResult<DateTime<Utc>> {
        let oldest: Option<i64> = self
            .tx
            .prepare_cached("SELECT min(at) FROM tier WHERE sender = ?1")
            .and_then(|mut stmt| stmt.query_row([&self.limits.name], |row| row.get(0)))
            .map_err(backend)?;
        let frees = oldest.map_or(self.now_ms(), |at| at + DAY_MS);
        from_millis(frees, &|| format!("tier/{}", self.limits.name))
    }
}

#[cfg(test)]
mod tests {
    /// The tier's deletes and lookups are seeks of its keys, never a scan.
    #[test]
    fn the_tier_is_read_by_its_keys() {
        let plan = crate::queries::query_plan(
            "DELETE FROM tier WHERE sender = ?1 AND at <= ?2",
            ("main", 0),
        );
        assert!(
            plan.iter()
                .any(|s| s.contains("USING COVERING INDEX tier_by_time (sender=? AND at<?)")),
            "{plan:?}"
        );
        let plan =
            crate::queries::query_plan("SELECT min(at) FROM tier WHERE sender = ?1", ["main"]);
        assert!(plan.iter().any(|s| s.contains("tier_by_time")), "{plan:?}");
        assert!(!plan.iter().any(|s| s.starts_with("SCAN")), "{plan:?}");
    }
}
