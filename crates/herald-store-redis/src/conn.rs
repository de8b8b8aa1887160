//! One handle's connection to Redis: a [`ConnectionManager`] (multiplexed, reconnecting), the
//! store's time, the key prefix and the epoch this handle saw when it opened.

use std::time::Duration;

use herald_store::{StoreError, StoreResult, StoreTime};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::keys::Keys;

/// What every port of one handle shares. Cloning shares the connection.
#[derive(Clone)]
pub(crate) struct Conn {
    pub(crate) manager: ConnectionManager,
    pub(crate) keys: Keys,
    pub(crate) time: StoreTime,
    /// The store's epoch as this handle found or wrote it at open.
    pub(crate) epoch: String,
    /// How long an ended delivery is kept before compaction ([`crate::RedisConfig::retention`]).
    pub(crate) retention_ms: i64,
}

impl Conn {
    /// A connection through `client`, reconnecting with a capped exponential back-off.
    pub(crate) async fn connect(client: redis::Client) -> StoreResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(5))
            .set_number_of_retries(6)
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        ConnectionManager::new_with_config(client, config)
            .await
            .map_err(map_err)
    }

    /// The store's now as a script argument: the caller's clock in unix ms, or empty for
    /// "read `TIME`".
    pub(crate) fn now_arg(&self) -> String {
        match &self.time {
            StoreTime::Backend => String::new(),
            StoreTime::Clock(clock) => clock.now().timestamp_millis().to_string(),
        }
    }
}

/// Classifies a Redis error: a dropped or refused connection or a timeout is
/// [`StoreError::Unavailable`] (retry), a script's `EPOCH` error [`StoreError::Corrupt`] (halt),
/// anything else [`StoreError::Backend`].
pub(crate) fn map_err(error: redis::RedisError) -> StoreError {
    if error.code() == Some("EPOCH") {
        return StoreError::Corrupt {
            key: "epoch".to_owned(),
            reason: error
                .detail()
                .unwrap_or("the store lost its state")
                .to_owned(),
        };
    }
    if error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.code() == Some("LOADING")
        || error.code() == Some("BUSY")
    {
        return StoreError::Unavailable(Box::new(error));
    }
    StoreError::Backend(Box::new(error))
}
