//! Herald's distributed store: the [`herald_store`] ports on one Redis that any number of
//! schedulers and workers on any number of machines share.
//!
//! # Why Herald's own queue
//! apalis-redis cannot carry a campaign (`shared/dependencies.md`: its worker dies once ~8,000
//! jobs fall due together, its default lock scan is O(backlog) per job, completed jobs stay
//! forever), so the queue is this crate's own, in Lua, the way BullMQ and Sidekiq build theirs.
//! The layout is in [`keys`]; the claim of a group (run state, sender block and throttle, the
//! delivery still queued and due, consent and history unchanged, the tier, GCRA rate slots, the
//! lease) is one script call timed by Redis's `TIME`.
//!
//! # Layout of this crate
//! - `keys`: every key and what it holds (the contract of the scripts).
//! - `conn`: the reconnecting connection and error classification.
//! - `runs`, `consents`, `senders`: those ports.
//! - `queue`: expansion, the due queue, defers, outcomes, counts.
//! - `claims`: claims, leases, recovery, history, the tier, compaction.
//! - `scripts/*.lua`: the scripts, one per atomic operation.

mod claims;
mod codec;
mod conn;
mod consents;
mod deliveries;
mod keys;
mod outcomes;
mod queue;
mod runs;
mod scripts;
mod senders;
mod waits;

use chrono::{DateTime, Utc};
use herald_store::{StoreResult, StoreTime, Stores};

pub use consents::RedisConsents;
pub use deliveries::RedisDeliveries;
pub use runs::RedisRuns;
pub use senders::RedisSenders;

use conn::Conn;

/// How to reach and use a Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`.
    pub url: String,
    /// Every key starts with this (default `h:`).
    pub prefix: String,
    /// How long a delivery's snapshot and state are kept once it ended (default 7 days):
    /// compaction then deletes them, keeping the run's counts and the send history (see
    /// `claims/compact.rs`).
    pub retention: std::time::Duration,
}

impl RedisConfig {
    /// The default prefix at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "h:".to_owned(),
            retention: std::time::Duration::from_secs(7 * 86_400),
        }
    }
}

/// The four Redis-backed ports over one connection.
pub struct RedisStores {
    conn: Conn,
    runs: RedisRuns,
    deliveries: RedisDeliveries,
    consents: RedisConsents,
    senders: RedisSenders,
}

impl RedisStores {
    /// Connects, initialises an empty store (its epoch and layout version) or checks an existing
    /// one, timed by Redis's `TIME` or by `time`.
    pub async fn open(config: &RedisConfig, time: StoreTime) -> StoreResult<Self> {
        let mut manager = Conn::connect(&config.url).await?;
        let keys = keys::Keys::new(&config.prefix);
        let epoch = init_epoch(&mut manager, &keys).await?;
        let conn = Conn {
            manager,
            keys,
            time,
            epoch,
            retention_ms: i64::try_from(config.retention.as_millis()).unwrap_or(i64::MAX),
        };
        Ok(Self {
            runs: RedisRuns::new(conn.clone()),
            deliveries: RedisDeliveries::new(conn.clone()),
            consents: RedisConsents::new(conn.clone()),
            senders: RedisSenders::new(conn.clone()),
            conn,
        })
    }

    /// The epoch this handle works in.
    pub fn epoch(&self) -> &str {
        &self.conn.epoch
    }
}

/// Reads the store's epoch, writing a new one (and the layout version) on an empty store.
async fn init_epoch(
    manager: &mut redis::aio::ConnectionManager,
    keys: &keys::Keys,
) -> StoreResult<String> {
    let fresh = format!(
        "{:x}-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
        std::process::id()
    );
    let (epoch,): (String,) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(keys.key("epoch"))
        .arg(&fresh)
        .arg("NX")
        .ignore()
        .cmd("GET")
        .arg(keys.key("epoch"))
        .cmd("SET")
        .arg(keys.key("layout"))
        .arg(keys::LAYOUT)
        .arg("NX")
        .ignore()
        .query_async(manager)
        .await
        .map_err(conn::map_err)?;
    Ok(epoch)
}

impl Stores for RedisStores {
    type Runs = RedisRuns;
    type Deliveries = RedisDeliveries;
    type Consents = RedisConsents;
    type Senders = RedisSenders;

    fn senders(&self) -> &RedisSenders {
        &self.senders
    }

    async fn now(&self) -> StoreResult<DateTime<Utc>> {
        claims::store_now(&self.conn).await
    }

    fn runs(&self) -> &RedisRuns {
        &self.runs
    }

    fn deliveries(&self) -> &RedisDeliveries {
        &self.deliveries
    }

    fn consents(&self) -> &RedisConsents {
        &self.consents
    }
}
