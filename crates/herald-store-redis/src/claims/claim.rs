//! `Deliveries::claim`: a group of claims in one call of `scripts/claim.lua`, timed by the
//! store's now read once in the script.
//!
//! The script does, per claim and in the port's order, what the SQLite adapter's transaction
//! does (`herald-store-sqlite/src/queries/claim.rs`): the run is active (its state read once per
//! run per call), the sender neither blocked nor throttled (its hash read once per call), the
//! delivery queued and due, `HLEN` of the consent log and `ZCOUNT` of the phone's history since
//! the decision's horizon as the decision saw them, the tier (phones of the sender's last 24
//! hours, trimmed first; a phone already in it is admitted), then the GCRA slot: a burst of one,
//! `max(now, tat)`, `tat` moved one interval (`1 / per_second` rounded up to the µs) past it.
//! Once no slot is free within the horizon, the rest of the group is `RateAhead` too. Redis runs
//! a script alone, so every check and grant holds over every worker.
//!
//! The phone comes from the queued state's `p` when it has one, else from the snapshot (one
//! decode per claim); the sending state keeps it as `p` so requeue, finish and recovery reach
//! `hist:<phone>` without the snapshot.

use std::time::Duration;

use herald_store::{ClaimAnswer, ClaimGroup, Refusal, StoreResult};

use super::{CLAIM, corrupt, duration_ms, duration_us, from_micros, from_millis, int, text};
use crate::conn::Conn;
use crate::scripts;

/// Claims `group` in one script call.
pub(crate) async fn claim(conn: &Conn, group: &ClaimGroup) -> StoreResult<Vec<ClaimAnswer>> {
    if group.claims.is_empty() {
        return Ok(Vec::new());
    }
    let limits = &group.sender;
    let mut invocation = scripts::invocation(conn, &CLAIM);
    invocation
        .arg(group.owner.as_str())
        .arg(duration_ms(group.lease))
        .arg(&limits.name)
        .arg(limits.interval_us())
        .arg(limits.tier.map(|t| t.to_string()).unwrap_or_default())
        .arg(duration_us(limits.horizon))
        .arg(group.claims.len());
    for claim in &group.claims {
        invocation
            .arg(claim.key.run.as_str())
            .arg(claim.key.recipient.to_string())
            .arg(&claim.consent.channel)
            .arg(claim.consent.events)
            .arg(claim.history.since.timestamp_millis())
            .arg(claim.history.sends);
    }
    let reply: redis::Value = super::run_script(conn, &invocation).await?;
    decode(&reply, group.claims.len())
}

/// The script's reply: the store's now (µs), then a code and a value per claim.
fn decode(reply: &redis::Value, claims: usize) -> StoreResult<Vec<ClaimAnswer>> {
    const WHAT: &str = "claim reply";
    let redis::Value::Array(items) = reply else {
        return Err(corrupt(WHAT, format!("expected an array, got {reply:?}")));
    };
    if items.len() != 1 + 2 * claims {
        return Err(corrupt(
            WHAT,
            format!("{} elements for {claims} claims", items.len()),
        ));
    }
    let now_us = int(&items[0], WHAT)?;
    items[1..]
        .chunks_exact(2)
        .map(|pair| answer(now_us, &pair[0], &pair[1]))
        .collect()
}

/// One claim's answer from its code and value (see `scripts/claim.lua`).
fn answer(now_us: i64, code: &redis::Value, value: &redis::Value) -> StoreResult<ClaimAnswer> {
    const WHAT: &str = "claim reply";
    let refused = |refusal| Ok(ClaimAnswer::Refused(refusal));
    match int(code, WHAT)? {
        0 => {
            let slot_us = int(value, WHAT)?;
            let wait = u64::try_from(slot_us - now_us).unwrap_or(0);
            Ok(ClaimAnswer::Claimed {
                slot: from_micros(slot_us, WHAT)?,
                wait: Duration::from_micros(wait),
            })
        }
        1 => refused(Refusal::Taken),
        2 => refused(Refusal::RunPaused),
        3 => refused(Refusal::RunCancelled),
        4 => refused(Refusal::ConsentChanged),
        5 => refused(Refusal::CapChanged),
        6 => refused(Refusal::TierFull {
            frees: from_millis(int(value, WHAT)?, WHAT)?,
        }),
        7 => refused(Refusal::Throttled {
            until: from_millis(int(value, WHAT)?, WHAT)?,
        }),
        8 => refused(Refusal::Blocked {
            reason: text(value, WHAT)?,
        }),
        9 => refused(Refusal::RateAhead {
            next: from_micros(int(value, WHAT)?, WHAT)?,
        }),
        other => Err(corrupt(WHAT, format!("unknown answer code {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::*;

    #[test]
    fn a_reply_decodes_into_typed_answers() {
        let reply = Value::Array(vec![
            Value::Int(1_000_000),
            Value::Int(0),
            Value::Int(1_500_000),
            Value::Int(8),
            Value::BulkString(b"spam".to_vec()),
            Value::Int(6),
            Value::Int(5_000),
        ]);
        let answers = decode(&reply, 3).unwrap();
        assert_eq!(
            answers[0],
            ClaimAnswer::Claimed {
                slot: from_micros(1_500_000, "t").unwrap(),
                wait: Duration::from_millis(500),
            }
        );
        assert_eq!(
            answers[1],
            ClaimAnswer::Refused(Refusal::Blocked {
                reason: "spam".into()
            })
        );
        assert!(matches!(
            answers[2],
            ClaimAnswer::Refused(Refusal::TierFull { .. })
        ));
    }

    /// `scripts/claim_state.lua` reads the phone as the snapshot's first field without decoding
    /// the rest: the codec must keep writing it first.
    #[test]
    fn the_snapshot_starts_with_its_phone() {
        use herald_core::{AudienceId, PhoneNumber, RecipientId};
        let snapshot = herald_store::RecipientSnapshot {
            id: AudienceId::Given(RecipientId::parse("a").unwrap()),
            phone: PhoneNumber::parse("+4915112345678", None).unwrap(),
            zone: None,
            locale: Some("de-DE".into()),
            country: None,
            attributes: [("p".to_owned(), "+1".to_owned())].into_iter().collect(),
            line: 1,
        };
        let json = crate::codec::Snap::new(&snapshot, None, None).encode();
        assert!(json.starts_with(r#"{"p":"+4915112345678""#), "{json}");
    }

    #[test]
    fn a_malformed_reply_is_corrupt_not_a_panic() {
        for reply in [
            Value::Nil,
            Value::Array(vec![]),
            Value::Array(vec![Value::Int(0), Value::Int(42), Value::Int(0)]),
            Value::Array(vec![Value::Int(0), Value::Int(8), Value::Int(0)]),
            Value::Array(vec![Value::Int(0), Value::Int(0)]),
        ] {
            assert!(
                matches!(
                    decode(&reply, 1),
                    Err(herald_store::StoreError::Corrupt { .. })
                ),
                "{reply:?}"
            );
        }
    }
}
