//! `Consents::events`: one phone's log on one channel, an ordered range of the primary key.

use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, RecordedConsent, Scope};
use herald_store::StoreResult;
use rusqlite::Connection;

use crate::codec::{corrupt, instant};
use crate::db::backend;

/// The stored name of a consent kind.
pub(crate) fn kind_name(kind: ConsentKind) -> &'static str {
    match kind {
        ConsentKind::OptIn => "opt_in",
        ConsentKind::OptOut => "opt_out",
    }
}

/// Every event of `phone` on `channel`, by when it happened, with when it was recorded.
pub(crate) fn consent_events(
    conn: &Connection,
    channel: &str,
    phone: &PhoneNumber,
) -> StoreResult<Vec<RecordedConsent>> {
    let stored = conn
        .prepare_cached(
            "SELECT occurred_at, kind, scope, source, proof, recorded_at FROM consents
             WHERE channel = ?1 AND phone = ?2 ORDER BY occurred_at",
        )
        .and_then(|mut stmt| {
            stmt.query_map((channel, phone.expose_e164()), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    // The masked phone: a corrupt-data error must not print the number.
    let key = || format!("consents/{channel}/{phone}");
    stored
        .into_iter()
        .map(|(occurred_at, kind, scope, source, proof, recorded_at)| {
            Ok(RecordedConsent {
                event: ConsentEvent {
                    kind: kind
                        .parse()
                        .map_err(|_| corrupt(key(), format!("unknown consent kind {kind:?}")))?,
                    scope: scope
                        .parse::<Scope>()
                        .map_err(|_| corrupt(key(), format!("unknown consent scope {scope:?}")))?,
                    occurred_at: instant(occurred_at, &key)?,
                    source,
                    proof,
                },
                recorded_at: instant(recorded_at, &key)?,
            })
        })
        .collect()
}
