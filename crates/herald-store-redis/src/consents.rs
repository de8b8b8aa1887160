//! The consent port.

use chrono::{DateTime, Utc};
use herald_core::{PhoneNumber, RecordedConsent};
use herald_store::{Consents, StoreResult, StoredConsent};

use crate::conn::Conn;

/// The consent log in Redis (`consent:<channel>:<phone>`).
#[derive(Clone)]
pub struct RedisConsents {
    conn: Conn,
}

impl RedisConsents {
    pub(crate) fn new(conn: Conn) -> Self {
        Self { conn }
    }
}

#[allow(clippy::todo, unused_variables)]
impl Consents for RedisConsents {
    async fn append(&self, events: &[StoredConsent], now: DateTime<Utc>) -> StoreResult<u64> {
        let _ = &self.conn;
        todo!("A1")
    }

    async fn events(
        &self,
        channel: &str,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<RecordedConsent>> {
        todo!("A1")
    }

    async fn events_for(
        &self,
        channel: &str,
        phones: &[PhoneNumber],
    ) -> StoreResult<Vec<Vec<RecordedConsent>>> {
        todo!("A1")
    }
}
