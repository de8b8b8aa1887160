//! The senders port.

use chrono::{DateTime, Utc};
use herald_store::{SenderState, Senders, StoreResult};

use crate::conn::Conn;

/// Senders' shared state in Redis (`sender:<sender>`, `senders`).
#[derive(Clone)]
pub struct RedisSenders {
    conn: Conn,
}

impl RedisSenders {
    pub(crate) fn new(conn: Conn) -> Self {
        Self { conn }
    }
}

#[allow(clippy::todo, unused_variables)]
impl Senders for RedisSenders {
    async fn sender(&self, name: &str) -> StoreResult<SenderState> {
        let _ = &self.conn;
        todo!("A1")
    }

    async fn senders(&self) -> StoreResult<Vec<SenderState>> {
        todo!("A1")
    }

    async fn throttle(&self, name: &str, hold: std::time::Duration) -> StoreResult<DateTime<Utc>> {
        todo!("A1")
    }

    async fn block(
        &self,
        name: &str,
        code: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        todo!("A1")
    }

    async fn resume(&self, name: &str) -> StoreResult<bool> {
        todo!("A1")
    }
}
