//! `Deliveries::history`: a phone's recent sends, for frequency caps: the deliveries with a
//! `sent_at`, by the partial `deliveries_sent` index, with their run's campaign and purpose.

use chrono::{DateTime, Utc};
use herald_core::{CampaignId, PastSend, PhoneNumber};
use herald_store::StoreResult;
use rusqlite::Connection;

use crate::codec::{corrupt, instant, purpose, secs};
use crate::db::backend;

/// Sends to `phone` at or after `since`, oldest first.
pub(crate) fn history(
    conn: &Connection,
    phone: &PhoneNumber,
    since: DateTime<Utc>,
) -> StoreResult<Vec<PastSend>> {
    let stored = conn
        .prepare_cached(
            "SELECT d.sent_at, r.campaign, r.purpose, d.id
             FROM deliveries AS d INDEXED BY deliveries_sent
             CROSS JOIN runs AS r ON r.id = d.run
             WHERE d.phone = ?1 AND d.sent_at >= ?2
             ORDER BY d.sent_at, d.id",
        )
        .and_then(|mut stmt| {
            stmt.query_map((phone.expose_e164(), secs(since)), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    stored
        .into_iter()
        .map(|(at, campaign, purpose_name, delivery)| {
            let key = || format!("deliveries/{delivery}");
            Ok(PastSend {
                at: instant(at, &key)?,
                campaign: CampaignId::parse(&campaign)
                    .map_err(|_| corrupt(key(), "invalid campaign id"))?,
                purpose: purpose(&purpose_name, &key)?,
            })
        })
        .collect()
}

/// Phones with a send at or after `since`, each with its latest send: one pass over the history
/// index (grouped by phone), read once when a worker starts.
pub(crate) fn recent_recipients(
    conn: &mut Connection,
    since: DateTime<Utc>,
) -> StoreResult<Vec<(PhoneNumber, DateTime<Utc>)>> {
    let rows = conn
        .prepare_cached(
            "SELECT phone, MAX(sent_at) FROM deliveries INDEXED BY deliveries_sent
             WHERE sent_at >= ?1 GROUP BY phone",
        )
        .and_then(|mut stmt| {
            stmt.query_map([secs(since)], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    rows.into_iter()
        .map(|(e164, at)| {
            let key = || String::from("deliveries/recent");
            let phone = PhoneNumber::parse(&e164, None)
                .map_err(|_| corrupt(key(), "stored phone is not valid"))?;
            Ok((phone, instant(at, &key)?))
        })
        .collect()
}
