//! [`Senders`] on SQLite: the provider's throttles and blocks in the `senders` table, which
//! every worker's claim reads in its transaction.

use chrono::{DateTime, Utc};
use herald_store::{SenderState, Senders, StoreResult, StoreTime};

use crate::codec::{from_millis, millis};
use crate::db::Db;
use crate::queries::senders;

/// [`Senders`] on SQLite.
pub struct SqliteSenders {
    db: Db,
    time: StoreTime,
}

impl SqliteSenders {
    pub(crate) fn new(db: Db, time: StoreTime) -> Self {
        Self { db, time }
    }
}

impl Senders for SqliteSenders {
    async fn sender(&self, name: &str) -> StoreResult<SenderState> {
        let name = name.to_owned();
        self.db.call(move |conn| senders::sender(conn, &name)).await
    }

    async fn senders(&self) -> StoreResult<Vec<SenderState>> {
        self.db.call(senders::senders).await
    }

    async fn throttle(&self, name: &str, hold: std::time::Duration) -> StoreResult<DateTime<Utc>> {
        let name = name.to_owned();
        let time = self.time.clone();
        let until = self
            .db
            .call(move |conn| senders::throttle(conn, &name, &time, hold))
            .await?;
        from_millis(until, &|| String::from("senders/throttle"))
    }

    async fn block(
        &self,
        name: &str,
        code: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (name, code, reason) = (name.to_owned(), code.to_owned(), reason.to_owned());
        self.db
            .call(move |conn| senders::block(conn, &name, (&code, &reason), millis(now)))
            .await
    }

    async fn resume(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_owned();
        self.db.call(move |conn| senders::resume(conn, &name)).await
    }
}
