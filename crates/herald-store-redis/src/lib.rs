//! Herald's distributed store: the [`herald_store`] ports on one Redis that any number of
//! schedulers and workers on any number of machines share.
//!
//! # Why Herald's own queue
//! apalis-redis cannot carry a campaign (`shared/dependencies.md`: its worker dies once ~8,000
//! jobs fall due together, its default lock scan is O(backlog) per job, completed jobs stay
//! forever), so the queue is this crate's own, in Lua, the way BullMQ and Sidekiq build theirs.
//! The layout is in `keys`; the claim of a group (run state, sender block and throttle, the
//! delivery still queued and due, consent and history unchanged, the tier, GCRA rate slots, the
//! lease) is one script call timed by Redis's `TIME`.
//!
//! # Layout of this crate
//! - `keys`: every key and what it holds (the contract of the scripts).
//! - `conn`: the reconnecting connection, error classification, the write sequence a handle
//!   has seen.
//! - `scripts`: the calling convention (`scripts/prelude.lua`: prefix, epoch and sequence
//!   check, store time); `codec`: the snapshot and delivery-state JSON.
//! - `checks`: the Redis version and layout version, at open; `persistence`: the server's
//!   persistence, at open (why AOF with `appendfsync always`, why no eviction, why failover is
//!   unsupported).
//! - `runs`, `consents`, `senders`, `feedback`, `fires`: those ports (`feedback`: statuses on
//!   the ladder, the provider-id index, kept early reports, tags; `fires`: recurring campaigns'
//!   versions and fire records).
//! - `upgrade`: an older layout brought to this crate's at open.
//! - `queue`, `outcomes`, `waits`: expansion and the due queue; defers, outcomes and `apply`;
//!   what the queue waits for. `deliveries`: the port, delegating to them and to `claims`.
//! - `claims`: claims, leases, recovery, history, the tier, compaction.
//! - `scripts/*.lua`: the scripts, one per atomic operation; each validates its whole batch
//!   before its first write (Redis has no rollback).
//!
//! # Creating a store
//! Only [`RedisStores::init`] (`herald init`) creates one; see [`RedisStores::open`] for why.

mod checks;
mod claims;
mod codec;
mod conn;
mod consents;
mod deliveries;
mod feedback;
mod fires;
mod keys;
mod outcomes;
mod persistence;
mod queue;
mod runs;
mod scripts;
mod senders;
mod upgrade;
mod waits;

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_store::{Durability, StoreError, StoreResult, StoreTime, Stores};
use redis::IntoConnectionInfo;

pub use consents::RedisConsents;
pub use deliveries::RedisDeliveries;
pub use feedback::RedisFeedback;
pub use fires::{MAX_CAMPAIGNS, MAX_SOURCE_BYTES, RedisFires};
pub use persistence::{NotDurable, PersistenceCheck};
pub use runs::RedisRuns;
pub use senders::RedisSenders;

use conn::Conn;

/// How to reach and use a Redis.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://[user@]host:port/db`: a URL without a password, so it can be shown (see
    /// [`RedisConfig::password`]).
    pub url: String,
    /// The password, kept out of the URL so that no message, log or `status` shows it.
    pub password: Option<String>,
    /// Every key starts with this (default `h:`).
    pub prefix: String,
    /// What a claim must survive; checked against the server's persistence at open.
    pub durability: Durability,
    /// What to do when the persistence settings cannot be read (default: refuse).
    pub persistence: PersistenceCheck,
    /// How long a delivery's snapshot and state are kept once it ended (default 7 days):
    /// compaction then deletes their snapshots and states (a few-byte tombstone stays while
    /// the run's expansion is unfinished, as its dedupe), keeping the run's counts and the send
    /// history (see `claims/compact.rs`).
    pub retention: Duration,
    /// How long opening waits for a first connection before the store counts as unreachable.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("prefix", &self.prefix)
            .field("durability", &self.durability)
            .field("persistence", &self.persistence)
            .field("retention", &self.retention)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl RedisConfig {
    /// The defaults at `url`: prefix `h:`, no password, [`Durability::ProcessCrash`], the
    /// persistence checked, 7 days of retention, 5 s to connect.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password: None,
            prefix: "h:".to_owned(),
            durability: Durability::ProcessCrash,
            persistence: PersistenceCheck::Check,
            retention: Duration::from_secs(7 * 86_400),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The client for this config: the URL with the password added.
    fn client(&self) -> StoreResult<redis::Client> {
        let unusable = |e: redis::RedisError| StoreError::Unusable {
            location: self.url.clone(),
            source: Box::new(e),
        };
        let mut info = self.url.as_str().into_connection_info().map_err(unusable)?;
        if let Some(password) = &self.password {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        redis::Client::open(info).map_err(unusable)
    }
}

/// No first connection within [`RedisConfig::connect_timeout`].
#[derive(Debug, thiserror::Error)]
#[error("no connection to {url} within {timeout:?}")]
struct ConnectTimeout {
    url: String,
    timeout: Duration,
}

/// The Redis-backed ports over one connection.
pub struct RedisStores {
    conn: Conn,
    runs: RedisRuns,
    deliveries: RedisDeliveries,
    consents: RedisConsents,
    senders: RedisSenders,
    feedback: RedisFeedback,
    fires: RedisFires,
    url: String,
    layout: String,
    /// Whether this handle's opening created the store ([`RedisStores::init`]).
    created: bool,
}

/// What an opening may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Read only; no persistence check.
    Inspect,
    /// Work on an existing store.
    Use,
    /// Create the store if the Redis is empty.
    Init,
}

impl RedisStores {
    /// Connects, checks that the server keeps what it acknowledges as `config.durability`
    /// requires (see the `persistence` module: [`StoreError::Unusable`] otherwise, naming the
    /// setting) and that it holds a Herald store (its epoch), timed by Redis's `TIME` or by
    /// `time`. An unreachable server is [`StoreError::Unavailable`] after at most
    /// `config.connect_timeout`.
    ///
    /// # Why opening never creates a store
    /// A Redis that lost its data (restarted without its AOF, flushed) looks exactly like a new
    /// one. Taking it for a new store would forget every opt-out and every send the caps count,
    /// and let a scheduler expand its campaigns again. So only [`RedisStores::init`] (`herald
    /// init`, once per deployment) writes an epoch; `open` of a Redis without one is
    /// [`StoreError::Unusable`] saying so.
    ///
    /// # Upgrades
    /// A store at an older layout this crate knows (1 or 2) is upgraded to its own (3) before the
    /// handle is returned: bounded, chunked and idempotent (`src/upgrade.rs` says why at open).
    pub async fn open(config: &RedisConfig, time: StoreTime) -> StoreResult<Self> {
        Self::open_checked(config, time, Mode::Use).await
    }

    /// Initialises the store of a new deployment: checks the server as [`RedisStores::open`]
    /// does and writes the epoch and layout version. `Ok(true)` when it created the store,
    /// `Ok(false)` when one was there already (nothing changed but an upgrade of an older layout,
    /// as [`RedisStores::open`] does). A Redis holding part of a store but no epoch is [`StoreError::Corrupt`]: it is not initialised over.
    pub async fn init(config: &RedisConfig) -> StoreResult<bool> {
        let stores = Self::open_checked(config, StoreTime::Backend, Mode::Init).await?;
        Ok(stores.created)
    }

    /// Opens for reading only (`herald status`): neither the persistence is checked nor an
    /// epoch written, so an operator can look at a store Herald refuses to claim on. Its
    /// handle's epoch is the stored one (or none on an empty store, where every write script
    /// then fails): callers must not use it to claim, expand or record consent. A store at an
    /// older layout is read as it is, not upgraded.
    pub async fn open_to_inspect(config: &RedisConfig, time: StoreTime) -> StoreResult<Self> {
        Self::open_checked(config, time, Mode::Inspect).await
    }

    async fn open_checked(config: &RedisConfig, time: StoreTime, mode: Mode) -> StoreResult<Self> {
        let client = config.client()?;
        let mut manager = tokio::time::timeout(config.connect_timeout, Conn::connect(client))
            .await
            .map_err(|_| {
                StoreError::Unavailable(Box::new(ConnectTimeout {
                    url: config.url.clone(),
                    timeout: config.connect_timeout,
                }))
            })??;
        let keys = keys::Keys::new(&config.prefix);
        checks::check_server(&mut manager, &keys).await?;
        if mode != Mode::Inspect {
            persistence::require_durable(
                &mut manager,
                config.durability,
                config.persistence,
                &config.url,
            )
            .await?;
        }
        let (epoch, layout, created) = init_epoch(&mut manager, &keys, mode == Mode::Init).await?;
        if mode == Mode::Use && epoch.is_empty() {
            return Err(StoreError::Unusable {
                location: config.url.clone(),
                source: format!(
                    "this Redis holds no Herald store (no `{}epoch` key). On a new deployment, \
                     create it once with `herald init`. If it held one, it lost its data (a \
                     restart without its AOF, a flush): do not initialise it, or every campaign \
                     would be expanded again and every opt-out forgotten; restore it from the AOF \
                     it was writing up to the loss (an older backup brings back as queued what \
                     was sent since, and forgets the opt-outs recorded since)",
                    config.prefix
                )
                .into(),
            });
        }
        let conn = Conn {
            manager,
            keys,
            time,
            epoch,
            retention_ms: i64::try_from(config.retention.as_millis()).unwrap_or(i64::MAX),
            seen: std::sync::Arc::default(),
        };
        let mut layout = layout.unwrap_or_else(|| keys::LAYOUT.to_owned());
        if mode != Mode::Inspect {
            // From here on, a store whose write sequence goes below what this handle saw is
            // refused (see `scripts/prelude.lua`).
            conn.observe_seq().await?;
            if layout != keys::LAYOUT {
                // `checks` let only a layout this crate upgrades through.
                layout = upgrade::upgrade(&conn, &layout).await?;
            }
        }
        Ok(Self {
            runs: RedisRuns::new(conn.clone()),
            deliveries: RedisDeliveries::new(conn.clone()),
            consents: RedisConsents::new(conn.clone()),
            senders: RedisSenders::new(conn.clone()),
            feedback: RedisFeedback::new(conn.clone()),
            fires: RedisFires::new(conn.clone()),
            conn,
            url: config.url.clone(),
            layout,
            created,
        })
    }

    /// The epoch this handle works in.
    pub fn epoch(&self) -> &str {
        &self.conn.epoch
    }

    /// The Redis URL, without a password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The layout version of the stored keys (for `herald status` and support).
    pub fn layout_version(&self) -> i64 {
        self.layout.parse().unwrap_or(-1)
    }
}

/// Reads the store's epoch and layout version, and whether this call created them. With
/// `create`, an empty store gets a new epoch and the layout version. A store that holds runs, claims, sender state or campaign versions but no epoch (it was
/// half emptied: keys evicted or deleted) is [`StoreError::Corrupt`] at `epoch`, exactly as the
/// write scripts answer a vanished epoch: starting a new epoch there would take what is left
/// for a new deployment and re-expand and resend.
async fn init_epoch(
    manager: &mut redis::aio::ConnectionManager,
    keys: &keys::Keys,
    create: bool,
) -> StoreResult<(String, Option<String>, bool)> {
    let fresh = format!(
        "{:x}-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
        std::process::id()
    );
    let (epoch, layout, created): (String, String, i64) = INIT_EPOCH
        .key(keys.key("epoch"))
        .key(keys.key("layout"))
        .key(keys.key("runs"))
        .key(keys.key("leases"))
        .key(keys.key("done"))
        .key(keys.key("senders"))
        .key(keys.key("campaigns"))
        .arg(&fresh)
        .arg(keys::LAYOUT)
        .arg(if create { "1" } else { "" })
        .invoke_async(manager)
        .await
        .map_err(conn::map_err)?;
    Ok((epoch, Some(layout).filter(|l| !l.is_empty()), created == 1))
}

/// KEYS: epoch, layout, then keys whose presence means the store holds state. ARGV: a fresh
/// epoch, the layout version, `1` to initialise an empty store. Returns `[epoch, layout,
/// created]`, empty strings for none (a Lua table cannot hold a nil), `created` 1 or 0.
static INIT_EPOCH: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  for i = 3, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then
      return redis.error_reply('EPOCH the store at this Redis holds ' .. KEYS[i] .. ' but no epoch: it lost part of its state (emptied, flushed or evicted) and is not taken for a new store')
    end
  end
  if ARGV[3] ~= '1' then
    return {'', redis.call('GET', KEYS[2]) or '', 0}
  end
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], ARGV[2], 'NX')
  return {ARGV[1], redis.call('GET', KEYS[2]) or '', 1}
end
return {epoch, redis.call('GET', KEYS[2]) or '', 0}
",
    )
});

impl Stores for RedisStores {
    type Runs = RedisRuns;
    type Deliveries = RedisDeliveries;
    type Consents = RedisConsents;
    type Senders = RedisSenders;
    type Feedback = RedisFeedback;
    type Fires = RedisFires;

    fn fires(&self) -> &RedisFires {
        &self.fires
    }

    fn feedback(&self) -> &RedisFeedback {
        &self.feedback
    }

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
