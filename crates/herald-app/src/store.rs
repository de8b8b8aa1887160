//! The one place the app names a store backend. Everything else holds an [`AppStores`]: the
//! ports (`Stores`) plus the little `status` and messages need to say which store they mean.
//!
//! `[store] sqlite` (or nothing) opens the SQLite file, `[store] redis` the Redis; either way
//! [`open_store`] returns one type, [`AnyStores`], which delegates each port method to the
//! backend (see `any`).

mod any;

use std::collections::BTreeMap;
use std::time::Duration;

use herald_store::{StoreError, StoreTime, Stores};
use herald_store_redis::{PersistenceCheck, RedisConfig, RedisStores};

pub use any::{AnyConsents, AnyDeliveries, AnyRuns, AnySenders, AnyStores, Backend};

use crate::config::{RedisPersistence, RedisUrl};
use crate::{AppError, Settings};

/// How long a SQLite store may stay busy (another process's write lock held past the busy
/// timeout, such as a long expansion batch) before a loop gives up: a lock is released within
/// seconds, so half a minute of it means something is stuck.
pub const SQLITE_OUTAGE: Duration = Duration::from_secs(30);

/// How long a Redis may stay unreachable before a loop gives up and the process exits with the
/// error: long enough for a restart that replays a large AOF, short enough that a supervisor
/// (systemd, compose) sees a Redis that is gone.
pub const REDIS_OUTAGE: Duration = Duration::from_secs(300);

/// A store as the app uses it: the ports, and what describes the store to a person.
pub trait AppStores: Stores {
    /// Where the store is, for messages and `status` (a file path, a URL without secrets).
    fn location(&self) -> String;
    /// The version of the stored schema, for `status` and support.
    fn schema_version(&self) -> Result<i64, AppError>;
    /// How long the loops wait out a store that stays unavailable
    /// ([`StoreError::Unavailable`]) before they stop with the error.
    fn outage_budget(&self) -> Duration {
        SQLITE_OUTAGE
    }
}

impl AppStores for herald_store_sqlite::SqliteStores {
    fn location(&self) -> String {
        self.path().display().to_string()
    }

    fn schema_version(&self) -> Result<i64, AppError> {
        herald_store_sqlite::SqliteStores::schema_version(self).map_err(AppError::from)
    }
}

impl AppStores for AnyStores {
    fn location(&self) -> String {
        match self.backend() {
            Backend::Sqlite(stores) => stores.location(),
            Backend::Redis(stores) => stores.url().to_owned(),
        }
    }

    fn schema_version(&self) -> Result<i64, AppError> {
        match self.backend() {
            Backend::Sqlite(stores) => AppStores::schema_version(stores),
            Backend::Redis(stores) => Ok(stores.layout_version()),
        }
    }

    fn outage_budget(&self) -> Duration {
        match self.backend() {
            Backend::Sqlite(_) => SQLITE_OUTAGE,
            Backend::Redis(_) => REDIS_OUTAGE,
        }
    }
}

/// Opens the store the settings point at (the SQLite file, creating its directory, or the
/// Redis), timed by the backend's own clock.
pub async fn open_store(
    settings: &Settings,
    env: &BTreeMap<String, String>,
) -> Result<AnyStores, AppError> {
    open_store_with(settings, env, StoreTime::Backend).await
}

/// [`open_store`] with the store's time given: in-process tests drive leases and rate slots
/// with the clock they drive the run with.
pub async fn open_store_with(
    settings: &Settings,
    env: &BTreeMap<String, String>,
    time: StoreTime,
) -> Result<AnyStores, AppError> {
    open(settings, env, time, Purpose::Work).await
}

/// [`open_store`] for reading only (`herald status`): a Redis whose persistence Herald refuses
/// to claim on can still be looked at. Nothing may be written through it.
pub async fn open_store_to_inspect(
    settings: &Settings,
    env: &BTreeMap<String, String>,
) -> Result<AnyStores, AppError> {
    open(settings, env, StoreTime::Backend, Purpose::Inspect).await
}

/// What `herald init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initialised {
    /// A new store was created at this location.
    Created(String),
    /// A store was there already; nothing changed.
    Existing(String),
}

/// Creates the configured store of a new deployment (`herald init`). On Redis this is the only
/// way a store comes to exist: every other command refuses a Redis without one, so that a Redis
/// that lost its data is never taken for a new deployment (see `RedisStores::open`). A SQLite
/// file is created by any command that opens it (a missing file is the first run on a laptop,
/// not a loss a process could tell from one); `init` creates it too, for symmetry.
pub async fn init_store(
    settings: &Settings,
    env: &BTreeMap<String, String>,
) -> Result<Initialised, AppError> {
    if let Some(url) = &settings.store.redis {
        let config = redis_config(settings, url, env)?;
        return match RedisStores::init(&config).await {
            Ok(true) => Ok(Initialised::Created(url.as_str().to_owned())),
            Ok(false) => Ok(Initialised::Existing(url.as_str().to_owned())),
            Err(StoreError::Unavailable(why)) => Err(unreachable(url.as_str(), &*why)),
            Err(other) => Err(AppError::from(other)),
        };
    }
    let existed = settings.sqlite_path(env).exists();
    let stores = open_store(settings, env).await?;
    let location = stores.location();
    Ok(if existed {
        Initialised::Existing(location)
    } else {
        Initialised::Created(location)
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Work,
    Inspect,
}

async fn open(
    settings: &Settings,
    env: &BTreeMap<String, String>,
    time: StoreTime,
    purpose: Purpose,
) -> Result<AnyStores, AppError> {
    if let Some(url) = &settings.store.redis {
        let config = redis_config(settings, url, env)?;
        let opened = match purpose {
            Purpose::Work => RedisStores::open(&config, time).await,
            Purpose::Inspect => RedisStores::open_to_inspect(&config, time).await,
        };
        return match opened {
            // An empty Redis read by `status` is not shown as a healthy store with no runs: it
            // may be one that lost its data, and an operator must not take it for new.
            Ok(stores) if stores.epoch().is_empty() => Err(AppError::User(format!(
                "the Redis at {} holds no Herald store (no `{}epoch` key). On a new deployment, \
                 create it with `herald init`. If it held one, it lost its data: do not \
                 initialise it before reading \"Running on Redis\" in the README",
                url.as_str(),
                config.prefix
            ))),
            Ok(stores) => Ok(AnyStores::new(Backend::Redis(Box::new(stores)))),
            Err(StoreError::Unavailable(why)) => Err(unreachable(url.as_str(), &*why)),
            Err(other) => Err(AppError::from(other)),
        };
    }
    let path = settings.sqlite_path(env);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            AppError::User(format!(
                "cannot create the store's directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    // Two processes opening a new file at once (two `herald run` of two campaigns) race on
    // creating and migrating it, and SQLite can answer "database is locked" without waiting
    // (a journal-mode change, a read turned write). That is a busy store, not a broken one:
    // opening is retried, with a capped back-off, for as long as any busy store is waited out.
    let deadline = std::time::Instant::now() + SQLITE_OUTAGE;
    let mut pause = Duration::from_millis(20);
    loop {
        match herald_store_sqlite::SqliteStores::open_durable(
            &path,
            time.clone(),
            settings.store.durability,
        ) {
            Ok(stores) => return Ok(AnyStores::new(Backend::Sqlite(stores))),
            Err(StoreError::Unavailable(e)) if std::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "the store is busy while opening; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(AppError::from(e)),
        }
    }
}

/// The message for a store that cannot be reached, naming it (the URL holds no password).
fn unreachable(location: &str, why: &dyn std::error::Error) -> AppError {
    AppError::User(format!(
        "the store at {location} is unreachable: {why} (the store is set by `[store] redis` in \
         the config or HERALD_STORE__REDIS)"
    ))
}

/// The Redis settings, the password read from the variable `redis_password_env` names.
fn redis_config(
    settings: &Settings,
    url: &RedisUrl,
    env: &BTreeMap<String, String>,
) -> Result<RedisConfig, AppError> {
    let store = &settings.store;
    let mut config = RedisConfig::new(url.as_str());
    if let Some(var) = &store.redis_password_env {
        let password = env.get(var).ok_or_else(|| {
            AppError::User(format!(
                "store.redis_password_env names {var}, which is not set"
            ))
        })?;
        config.password = Some(password.clone());
    }
    if let Some(prefix) = &store.redis_prefix {
        config.prefix = prefix.clone();
    }
    config.durability = store.durability;
    config.persistence = match store.redis_persistence {
        RedisPersistence::Check => PersistenceCheck::Check,
        RedisPersistence::Trust => PersistenceCheck::Trust,
    };
    config.retention = store.retention_days.duration();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str, env: &BTreeMap<String, String>) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(&file, toml).unwrap();
        Settings::load(Some(&file), env).unwrap()
    }

    #[test]
    fn a_missing_password_variable_is_named() {
        let env = BTreeMap::new();
        let settings = settings(
            "[store]\nredis = \"redis://127.0.0.1:1/0\"\nredis_password_env = \"HERALD_REDIS_PW\"\n",
            &env,
        );
        let url = settings.store.redis.clone().unwrap();
        let Err(AppError::User(message)) = redis_config(&settings, &url, &env) else {
            panic!("a missing password variable was accepted");
        };
        assert_eq!(
            message,
            "store.redis_password_env names HERALD_REDIS_PW, which is not set"
        );
        let env = BTreeMap::from([("HERALD_REDIS_PW".to_owned(), "s3cret".to_owned())]);
        let config = redis_config(&settings, &url, &env).unwrap();
        assert_eq!(config.password.as_deref(), Some("s3cret"));
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
