//! Which Redis a measurement uses and how the store is opened on it: the one place the bench
//! builds a [`RedisConfig`], so the parent and its child processes open the store alike.

use herald_store::StoreTime;
use herald_store_redis::{PersistenceCheck, RedisConfig, RedisStores};

/// What the store is told to promise (`[store] durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// A claim survives the crash of any process (the default).
    Process,
    /// A claim also survives an OS crash (`durability = "power-loss"`: Redis `appendfsync
    /// always`).
    PowerLoss,
}

impl Durability {
    /// The name used on a child's command line (and in the config file).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Durability::Process => "process",
            Durability::PowerLoss => "power-loss",
        }
    }

    /// The inverse of [`Durability::as_str`].
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text {
            "process" => Ok(Durability::Process),
            "power-loss" => Ok(Durability::PowerLoss),
            other => Err(format!(
                "durability: expected process or power-loss, got {other:?}"
            )),
        }
    }
}

/// A Redis to measure against.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `redis://host:port`.
    pub(crate) url: String,
    /// What the store is configured to promise.
    pub(crate) durability: Durability,
    /// Whether the server persists as Herald requires (`appendonly yes`, `appendfsync always`).
    /// The bench's own Redis (the one BullMQ ran on) has no AOF and the `everysec` one does not
    /// fsync before replying; the store refuses both, so the bench skips the check there
    /// ([`PersistenceCheck::Skip`], not reachable from a config).
    pub(crate) aof: bool,
}

impl Target {
    /// The store's configuration for this target: its durability, and on the Redis without
    /// AOF the persistence check skipped (the store refuses such a Redis otherwise, as it must
    /// in production).
    fn config(&self) -> RedisConfig {
        let mut config = RedisConfig::new(self.url.clone());
        config.durability = match self.durability {
            Durability::Process => herald_store::Durability::ProcessCrash,
            Durability::PowerLoss => herald_store::Durability::PowerLoss,
        };
        if !self.aof {
            config.persistence = PersistenceCheck::Skip;
        }
        config
    }

    /// Opens the store (creating it on a fresh Redis, as `herald init` does), timed by Redis's
    /// `TIME` as in production.
    pub(crate) async fn open(&self) -> Result<RedisStores, String> {
        RedisStores::init(&self.config())
            .await
            .map_err(|e| format!("creating the Redis store at {}: {e}", self.url))?;
        RedisStores::open(&self.config(), StoreTime::Backend)
            .await
            .map_err(|e| format!("opening the Redis store at {}: {e}", self.url))
    }
}
