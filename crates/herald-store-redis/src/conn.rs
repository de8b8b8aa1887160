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
    /// The highest write sequence (`seq`, incremented by every write script) this handle has
    /// read: a write finding the store's below it refuses (the store went back in time). Shared
    /// by the handle's ports.
    pub(crate) seen: std::sync::Arc<std::sync::atomic::AtomicI64>,
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

    /// The highest write sequence this handle has seen.
    pub(crate) fn seen_seq(&self) -> i64 {
        self.seen.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads the store's write sequence and remembers it if higher. Called once per worker step
    /// (`due`) and per recovery: a store that later goes below it is refused by every write.
    pub(crate) async fn observe_seq(&self) -> StoreResult<()> {
        let mut manager = self.manager.clone();
        let seq: Option<i64> = redis::cmd("GET")
            .arg(self.keys.key("seq"))
            .query_async(&mut manager)
            .await
            .map_err(map_err)?;
        self.seen
            .fetch_max(seq.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
        Ok(())
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

/// Classifies a Redis error:
/// - a script's `EPOCH` error (the store lost its state) and `CORRUPT` error (a state or
///   snapshot it cannot read, detail `<key>: <reason>`) are [`StoreError::Corrupt`]: halt;
/// - a dropped or refused connection, a timeout, and the server-side states that pass
///   (`LOADING`, `BUSY`, `READONLY` a replica or a demoted master, `MASTERDOWN`, `TRYAGAIN`,
///   `CLUSTERDOWN`) are [`StoreError::Unavailable`]: retry, nothing was written;
/// - `OOM` is [`StoreError::Backend`] saying so: Redis is at `maxmemory` and refuses writes,
///   which a retry will not change (halt; an operator frees memory). It never leaves half a
///   script behind: inside a script Redis refuses a write for memory only while the script has
///   written nothing yet ("only if this is the first write in the context of this script,
///   otherwise we can't stop in the middle", `scriptVerifyOOM` in Redis's `script.c`); after
///   its first write a script runs to its end, over `maxmemory` if need be. And every script
///   here reads and validates everything before its first write, so the refused write is
///   always the first one;
/// - anything else [`StoreError::Backend`].
pub(crate) fn map_err(error: redis::RedisError) -> StoreError {
    match error.code() {
        Some("EPOCH") => {
            return StoreError::Corrupt {
                key: "epoch".to_owned(),
                reason: error
                    .detail()
                    .unwrap_or("the store lost its state")
                    .to_owned(),
            };
        }
        Some("CORRUPT") => {
            let detail = error.detail().unwrap_or_default();
            let (key, reason) = detail.split_once(": ").unwrap_or((detail, "unreadable"));
            return StoreError::Corrupt {
                key: key.to_owned(),
                reason: reason.to_owned(),
            };
        }
        Some("OOM") => {
            return StoreError::Backend(
                format!(
                    "Redis is out of memory (maxmemory reached) and refused a write; \
                     nothing of this call was written: {error}"
                )
                .into(),
            );
        }
        Some("LOADING" | "BUSY" | "READONLY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN") => {
            return StoreError::Unavailable(Box::new(error));
        }
        _ => {}
    }
    if error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
    {
        return StoreError::Unavailable(Box::new(error));
    }
    StoreError::Backend(Box::new(error))
}
