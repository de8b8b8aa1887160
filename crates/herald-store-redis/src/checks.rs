//! Checks of the server and the store at open, before any handle writes: a store this crate
//! would misread, or a Redis too old for its scripts, is refused with a clear error rather than
//! failing later in the middle of a campaign.
//!
//! - The layout version (`layout`, [`crate::keys::LAYOUT`]): a store written by another layout
//!   holds keys this crate would read wrongly (and write over), so it is refused naming the key
//!   and both versions; an older layout this crate upgrades ([`crate::keys::UPGRADABLE`]) passes,
//!   and the open upgrades it (`src/upgrade.rs`).
//! - The Redis version (`INFO server`, `redis_version`): the scripts use `ZADD … GT`, which
//!   Redis accepts from 6.2 on; an older Redis would fail every claim with a script error.

use std::fmt;

use herald_store::{StoreError, StoreResult};
use redis::aio::ConnectionManager;

use crate::conn::map_err;
use crate::keys::{Keys, LAYOUT, UPGRADABLE};

/// The oldest Redis the scripts run on: `ZADD … GT` (claims, the tier, `recent`) is 6.2's.
const MIN_REDIS: (u32, u32) = (6, 2);

/// An open-time check that failed, as the source of [`StoreError::Unusable`].
#[derive(Debug, thiserror::Error)]
enum Refused {
    /// The store was written by another layout version.
    #[error(
        "the store's layout version (key {key}) is {found:?}, this Herald reads and writes layout {expected:?}"
    )]
    Layout {
        key: String,
        found: String,
        expected: &'static str,
    },
    /// The server is older than the scripts need.
    #[error(
        "Redis {found} is too old: Herald's scripts need Redis {} or newer (ZADD GT)",
        Version(MIN_REDIS)
    )]
    TooOld { found: String },
    /// `INFO server` did not say which version the server is.
    #[error("Redis did not report a readable redis_version in INFO server (got {found:?})")]
    NoVersion { found: Option<String> },
}

struct Version((u32, u32));

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0.0, self.0.1)
    }
}

/// Refuses a Redis older than 6.2 and a store of another layout version. Reads only: an
/// empty store (no `layout` yet) passes, and the open initialises it.
pub(crate) async fn check_server(manager: &mut ConnectionManager, keys: &Keys) -> StoreResult<()> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(manager)
        .await
        .map_err(map_err)?;
    check_version(&info).map_err(|e| unusable(keys, "redis_version", e))?;
    let layout_key = keys.key("layout");
    let layout: Option<String> = redis::cmd("GET")
        .arg(&layout_key)
        .query_async(manager)
        .await
        .map_err(map_err)?;
    check_layout(&layout_key, layout).map_err(|e| unusable(keys, &layout_key, e))
}

fn unusable(keys: &Keys, what: &str, refused: Refused) -> StoreError {
    StoreError::Unusable {
        location: format!("Redis store {:?} ({what})", keys.prefix()),
        source: Box::new(refused),
    }
}

/// The layout found (none on an empty store) against this crate's: its own, or one it upgrades.
fn check_layout(key: &str, found: Option<String>) -> Result<(), Refused> {
    match found {
        Some(found) if found != LAYOUT && !UPGRADABLE.contains(&found.as_str()) => {
            Err(Refused::Layout {
                key: key.to_owned(),
                found,
                expected: LAYOUT,
            })
        }
        _ => Ok(()),
    }
}

/// `redis_version` of an `INFO server` reply, at least [`MIN_REDIS`].
fn check_version(info: &str) -> Result<(), Refused> {
    let found = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(|v| v.trim().to_owned());
    let Some(text) = found else {
        return Err(Refused::NoVersion { found: None });
    };
    let mut parts = text.split('.').map(str::parse::<u32>);
    let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
        return Err(Refused::NoVersion { found: Some(text) });
    };
    if (major, minor) < MIN_REDIS {
        return Err(Refused::TooOld { found: text });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_6_2_pass() {
        for v in ["6.2.0", "7.0.15", "10.0.1", "6.10.0"] {
            let info = format!("# Server\r\nredis_version:{v}\r\nredis_mode:standalone\r\n");
            assert!(check_version(&info).is_ok(), "{v} refused");
        }
    }

    #[test]
    fn older_or_unreadable_versions_are_refused() {
        for v in ["6.0.16", "5.0.7", "2.8.24"] {
            let info = format!("redis_version:{v}\r\n");
            let refused = check_version(&info).unwrap_err();
            assert!(matches!(refused, Refused::TooOld { .. }), "{v}: {refused}");
            assert!(refused.to_string().contains("6.2"), "{refused}");
        }
        assert!(matches!(
            check_version("redis_version:seven\r\n"),
            Err(Refused::NoVersion { .. })
        ));
        assert!(matches!(
            check_version("redis_mode:standalone\r\n"),
            Err(Refused::NoVersion { found: None })
        ));
    }

    #[test]
    fn another_layout_is_refused_naming_both_versions() {
        assert!(check_layout("h:layout", None).is_ok());
        assert!(check_layout("h:layout", Some(LAYOUT.to_owned())).is_ok());
        for older in ["1", "2"] {
            assert!(
                check_layout("h:layout", Some(older.to_owned())).is_ok(),
                "{older} is upgraded"
            );
        }
        assert!(
            check_layout("h:layout", Some("4".to_owned())).is_err(),
            "newer"
        );
        let refused = check_layout("h:layout", Some("99".to_owned())).unwrap_err();
        let text = refused.to_string();
        assert!(
            text.contains("h:layout") && text.contains("\"99\"") && text.contains(LAYOUT),
            "{text}"
        );
    }
}
