//! `[store]`: which store, where, and how durable its claims are.
//!
//! Two backends: a SQLite file (`sqlite`, the default) for one machine, and a Redis (`redis`)
//! that schedulers and workers on any number of machines share. Setting both is an error, not a
//! precedence rule: an operator who meant Redis must not end up on a local file that no other
//! worker sees.
//!
//! The Redis URL never carries a password: it is shown in messages, logs and `herald status`.
//! The password comes from the environment variable `redis_password_env` names.

use std::path::PathBuf;
use std::time::Duration;

use herald_store::Durability;
use serde::{Deserialize, Deserializer};

/// `[store]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// The SQLite file; default `$XDG_DATA_HOME/herald/herald.db`, so a run started from another
    /// directory finds the same state.
    pub sqlite: Option<PathBuf>,
    /// The Redis to share: `redis://[user@]host:port/db`, without a password.
    pub redis: Option<RedisUrl>,
    /// The environment variable holding the Redis password.
    pub redis_password_env: Option<String>,
    /// Every Redis key starts with this (default `h:`).
    pub redis_prefix: Option<String>,
    /// What a stored claim survives (default `process-crash`), on either store.
    #[serde(default, deserialize_with = "durability")]
    pub durability: Durability,
    /// Whether Herald may trust a Redis whose persistence settings it cannot read.
    #[serde(default)]
    pub redis_persistence: RedisPersistence,
    /// Days a finished delivery is kept in Redis before compaction (1 to 365, default 7).
    #[serde(default, deserialize_with = "retention_days")]
    pub retention_days: RetentionDays,
}

/// A Redis URL without a password: `redis://`, a host, an optional port and database number
/// (`rediss://` is refused: this build's Redis client has no TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Parses `text`, refusing a password inside it (naming `store.redis_password_env`).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with("rediss://") {
            // The Redis client is built without TLS: refused here rather than failing to
            // connect later with a message about a cargo feature.
            return Err(
                "rediss:// (TLS) is not supported by this build of herald: use \
                        redis://host:port/db on a private network, or a TLS tunnel (stunnel, a \
                        sidecar) in front of Redis"
                    .into(),
            );
        }
        let rest = text.strip_prefix("redis://").ok_or_else(|| {
            // Only the scheme is echoed: the rest may hold a password (`valkey://:pw@h`).
            let scheme = text.split_once("://").map_or("", |(scheme, _)| scheme);
            format!("a URL of scheme {scheme:?} is not a Redis URL (redis://host:port/db)")
        })?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo.contains(':')
        {
            return Err(
                "the URL holds a password, which would show in messages, logs and \
                        `herald status`: remove it and name the environment variable holding it \
                        with store.redis_password_env"
                    .into(),
            );
        }
        if rest.contains("password=") {
            return Err(
                "the URL holds a password parameter: remove it and name the environment \
                        variable holding the password with store.redis_password_env"
                    .into(),
            );
        }
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        if host.is_empty() || host.starts_with(':') {
            return Err(format!("{text:?} names no host"));
        }
        Ok(Self(text.to_owned()))
    }

    /// The URL as written (it holds no secret).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RedisUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        RedisUrl::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn durability<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Durability, D::Error> {
    let text = String::deserialize(deserializer)?;
    Durability::parse(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{text:?}: expected \"process-crash\" (survives any process's crash) or \
             \"power-loss\" (also an OS crash, at an fsync per write)"
        ))
    })
}

/// `[store] redis_persistence`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisPersistence {
    /// Read the server's settings and refuse one that cannot be read (the default).
    #[default]
    Check,
    /// The operator vouches for the persistence of a Redis that hides its settings.
    Trust,
}

/// Days of retention, 1 to 365.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDays(u16);

impl Default for RetentionDays {
    fn default() -> Self {
        Self(7)
    }
}

impl RetentionDays {
    /// As a duration.
    pub fn duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0) * 24 * 3600)
    }

    /// The number of days.
    pub fn days(self) -> u16 {
        self.0
    }
}

fn retention_days<'de, D: Deserializer<'de>>(deserializer: D) -> Result<RetentionDays, D::Error> {
    let days = i64::deserialize(deserializer)?;
    u16::try_from(days)
        .ok()
        .filter(|d| (1..=365).contains(d))
        .map(RetentionDays)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{days}: must be 1 to 365 (caps and late status webhooks look back this far)"
            ))
        })
}

impl StoreSettings {
    /// What is wrong with these settings together, naming the key; `None` when nothing.
    pub(super) fn check(&self) -> Option<String> {
        if self
            .sqlite
            .as_ref()
            .is_some_and(|path| path.as_os_str().is_empty())
        {
            return Some(
                "store.sqlite: must not be empty (leave it out for the default location)".into(),
            );
        }
        if self.sqlite.is_some() && self.redis.is_some() {
            return Some(
                "store: both sqlite and redis are set; a deployment uses one store (remove one)"
                    .into(),
            );
        }
        if self.redis.is_none() {
            for (key, set) in [
                ("redis_password_env", self.redis_password_env.is_some()),
                ("redis_prefix", self.redis_prefix.is_some()),
                (
                    "redis_persistence",
                    self.redis_persistence != RedisPersistence::Check,
                ),
            ] {
                if set {
                    return Some(format!(
                        "store.{key}: only used with store.redis, which is not set"
                    ));
                }
            }
        }
        if self.redis_password_env.as_deref() == Some("") {
            return Some("store.redis_password_env: must name an environment variable".into());
        }
        if self.redis_prefix.as_deref() == Some("") {
            return Some(
                "store.redis_prefix: must not be empty (leave it out for the default `h:`)".into(),
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::Settings;

    fn load(toml: &str) -> Result<Settings, String> {
        load_with(toml, &BTreeMap::new())
    }

    fn load_with(toml: &str, env: &BTreeMap<String, String>) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(&file, toml).unwrap();
        Settings::load(Some(&file), env).map_err(|e| e.to_string())
    }

    #[test]
    fn a_redis_store_with_every_key() {
        let settings = load(
            "[store]\nredis = \"redis://redis:6379/0\"\nredis_password_env = \"REDIS_PW\"\n\
             durability = \"power-loss\"\nretention_days = 30\nredis_prefix = \"hx:\"\n\
             redis_persistence = \"trust\"\n",
        )
        .unwrap();
        let store = &settings.store;
        assert_eq!(
            store.redis.as_ref().map(RedisUrl::as_str),
            Some("redis://redis:6379/0")
        );
        assert_eq!(store.redis_password_env.as_deref(), Some("REDIS_PW"));
        assert_eq!(store.durability, Durability::PowerLoss);
        assert_eq!(store.retention_days.days(), 30);
        assert_eq!(store.redis_prefix.as_deref(), Some("hx:"));
        assert_eq!(store.redis_persistence, RedisPersistence::Trust);

        let defaults = load("[store]\nredis = \"redis://127.0.0.1/\"\n")
            .unwrap()
            .store;
        assert_eq!(defaults.durability, Durability::ProcessCrash);
        assert_eq!(
            defaults.retention_days.duration(),
            Duration::from_secs(7 * 86400)
        );
        assert_eq!(defaults.redis_persistence, RedisPersistence::Check);
    }

    #[test]
    fn a_password_in_the_url_is_refused_pointing_at_the_password_variable() {
        for url in [
            "redis://:secret@redis:6379/0",
            "redis://user:secret@redis/0",
            "redis://redis/0?password=secret",
        ] {
            let error = load(&format!("[store]\nredis = \"{url}\"\n")).unwrap_err();
            assert!(error.contains("store.redis"), "{error}");
            assert!(error.contains("store.redis_password_env"), "{error}");
            assert!(!error.contains("secret"), "the password is echoed: {error}");
        }
        // Other schemes are refused showing the scheme only; TLS is refused as unsupported.
        for url in [
            "valkey://:secret@h/0",
            "REDIS://:secret@h/0",
            "rediss://:secret@h/0",
        ] {
            let error = load(&format!("[store]\nredis = \"{url}\"\n")).unwrap_err();
            assert!(error.contains("store.redis"), "{error}");
            assert!(!error.contains("secret"), "the password is echoed: {error}");
        }
        assert!(
            load("[store]\nredis = \"rediss://redis/0\"\n")
                .unwrap_err()
                .contains("TLS")
        );
        // A user name alone (an ACL user) is no secret.
        assert!(load("[store]\nredis = \"redis://herald@redis:6379/0\"\n").is_ok());
        // So is a variable override.
        let env = BTreeMap::from([(
            "HERALD_STORE__REDIS".to_owned(),
            "redis://:pw@h/0".to_owned(),
        )]);
        let error = load_with("", &env).unwrap_err();
        assert!(error.contains("HERALD_STORE__REDIS"), "{error}");
        assert!(error.contains("store.redis_password_env"), "{error}");
    }

    #[test]
    fn bad_store_values_name_their_key() {
        for (toml, expected) in [
            ("redis = \"http://redis/0\"", "store.redis"),
            ("redis = \"redis:///0\"", "names no host"),
            (
                "sqlite = \"a.db\"\nredis = \"redis://r/0\"",
                "both sqlite and redis",
            ),
            ("durability = \"fsync\"", "store.durability"),
            (
                "retention_days = 0",
                "store.retention_days: 0: must be 1 to 365",
            ),
            (
                "retention_days = 366",
                "store.retention_days: 366: must be 1 to 365",
            ),
            (
                "redis_password_env = \"PW\"",
                "store.redis_password_env: only used with",
            ),
            (
                "redis_prefix = \"x:\"",
                "store.redis_prefix: only used with",
            ),
            (
                "redis_persistence = \"trust\"",
                "store.redis_persistence: only used with",
            ),
            (
                "redis = \"redis://r/0\"\nredis_prefix = \"\"",
                "store.redis_prefix: must not",
            ),
            (
                "redis = \"redis://r/0\"\nredis_persistence = \"maybe\"",
                "store.redis_persistence",
            ),
            ("redis = \"redis://r/0\"\nredis_url = \"x\"", "redis_url"),
        ] {
            let error = load(&format!("[store]\n{toml}\n")).unwrap_err();
            assert!(error.contains(expected), "{toml}: {error}");
        }
    }
}
