//! The send history (`hist:<phone>`, member → slot ms) read for frequency caps, and the recent
//! recipients (`recent`, phone → latest slot ms) read for the tier.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use herald_core::{CampaignId, PastSend, PhoneNumber, Purpose};
use herald_store::StoreResult;

use super::{corrupt, from_millis};
use crate::conn::{Conn, map_err};
use crate::keys::SEP;

/// Sends to each of `phones` at or after `since`, oldest first, in `phones`' order: one
/// pipeline for the histories, one for the runs they name (campaign and purpose, each run read
/// once per call).
pub(crate) async fn history_for(
    conn: &Conn,
    phones: &[PhoneNumber],
    since: DateTime<Utc>,
) -> StoreResult<Vec<Vec<PastSend>>> {
    if phones.is_empty() {
        return Ok(Vec::new());
    }
    let mut manager = conn.manager.clone();
    let mut pipe = redis::pipe();
    for phone in phones {
        pipe.cmd("ZRANGEBYSCORE")
            .arg(conn.keys.hist(phone.expose_e164()))
            .arg(since.timestamp_millis())
            .arg("+inf")
            .arg("WITHSCORES");
    }
    let histories: Vec<Vec<(String, i64)>> =
        pipe.query_async(&mut manager).await.map_err(map_err)?;
    let mut runs: Vec<&str> = Vec::new();
    for (member, _) in histories.iter().flatten() {
        let run = run_of(member)?;
        if !runs.contains(&run) {
            runs.push(run);
        }
    }
    let mut pipe = redis::pipe();
    for run in &runs {
        pipe.cmd("HMGET")
            .arg(conn.keys.run(run))
            .arg("campaign")
            .arg("purpose");
    }
    let read: Vec<(Option<String>, Option<String>)> = if runs.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(&mut manager).await.map_err(map_err)?
    };
    let mut sources: HashMap<&str, (CampaignId, Purpose)> = HashMap::new();
    for (run, (campaign, purpose)) in runs.iter().zip(read) {
        let key = || format!("run:{run}");
        let campaign = campaign
            .as_deref()
            .and_then(|c| CampaignId::parse(c).ok())
            .ok_or_else(|| corrupt(&key(), "missing or invalid campaign"))?;
        let purpose = purpose
            .as_deref()
            .and_then(|p| p.parse::<Purpose>().ok())
            .ok_or_else(|| corrupt(&key(), "missing or invalid purpose"))?;
        sources.insert(run, (campaign, purpose));
    }
    histories
        .iter()
        .map(|history| {
            history
                .iter()
                .map(|(member, at)| {
                    let (campaign, purpose) = &sources[run_of(member)?];
                    Ok(PastSend {
                        at: from_millis(*at, "hist")?,
                        campaign: campaign.clone(),
                        purpose: *purpose,
                    })
                })
                .collect()
        })
        .collect()
}

/// Every phone with a send (claim) at or after `since`, with its latest.
pub(crate) async fn recent_recipients(
    conn: &Conn,
    since: DateTime<Utc>,
) -> StoreResult<Vec<(PhoneNumber, DateTime<Utc>)>> {
    let mut manager = conn.manager.clone();
    let recent: Vec<(String, i64)> = redis::cmd("ZRANGEBYSCORE")
        .arg(conn.keys.key("recent"))
        .arg(since.timestamp_millis())
        .arg("+inf")
        .arg("WITHSCORES")
        .query_async(&mut manager)
        .await
        .map_err(map_err)?;
    recent
        .into_iter()
        .map(|(e164, at)| {
            let phone = PhoneNumber::parse(&e164, None)
                .map_err(|_| corrupt("recent", "a stored phone is not valid"))?;
            Ok((phone, from_millis(at, "recent")?))
        })
        .collect()
}

/// The run a history member (`<run>` SEP `<rcpt>`) names.
fn run_of(member: &str) -> StoreResult<&str> {
    member
        .split_once(SEP)
        .map(|(run, _)| run)
        .ok_or_else(|| corrupt("hist", "a member that names no delivery"))
}
