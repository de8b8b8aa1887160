//! `Deliveries::in_flight`: what a crash left claimed, read through the small partial index of
//! sending rows.

use herald_store::{DeliveryKey, StoreResult};
use rusqlite::Connection;

use crate::codec::parse_key;
use crate::db::backend;

/// Every sending delivery, ordered by key.
pub(crate) fn in_flight(conn: &mut Connection) -> StoreResult<Vec<DeliveryKey>> {
    let stored = conn
        .prepare_cached(
            "SELECT r.run_id, d.recipient
             FROM deliveries AS d INDEXED BY deliveries_sending
             CROSS JOIN runs AS r ON r.id = d.run
             WHERE d.state = 'sending'
             ORDER BY r.run_id, d.recipient",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    stored
        .iter()
        .map(|(run, recipient)| parse_key(run, recipient))
        .collect()
}
