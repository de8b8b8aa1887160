//! Whether this Redis keeps what it acknowledged: read at open, before anything is claimed.
//!
//! # Why Herald refuses a Redis without an AOF
//! A claim must be stored before its request leaves (at-most-once). A Redis persisting only RDB
//! snapshots comes back from a crash with its last snapshot: every delivery claimed and sent
//! since then is queued again, and is sent again.
//!
//! # Why `appendfsync always`, for both durability levels
//! The issue that specified this module expected `appendfsync everysec` to survive the crash of
//! the Redis process, on the grounds that Redis writes the AOF before it replies. It does not
//! always: under `everysec`, while a background fsync is still running (a busy disk), Redis
//! *postpones* writing its AOF buffer for up to two seconds (`flushAppendOnlyFile` in
//! `aof.c`) and replies to the clients meanwhile. A Redis killed in that window loses claims it
//! acknowledged, and their deliveries, already sent, are queued and sent again. The hostile review
//! of this store reproduced it on this machine: 2 of 8 kill-and-restart runs under load lost an
//! acknowledged claim on `everysec`, none of 20 on `always`. So Herald claims only on
//! `appendfsync always`, which writes and fsyncs before replying (one fsync per event-loop
//! round, shared by every command of that round, and Herald's claims come in groups);
//! [`Durability::PowerLoss`] further requires `no-appendfsync-on-rewrite no`, since skipping the
//! fsync during a rewrite reopens the window for an OS crash. Redis 7.0 has no `WAITAOF`, so
//! there is no cheaper way to wait for the fsync of one write. The cost is measured by
//! `herald-bench` (`herald_worker_noop_aof*`).
//!
//! # Why a Redis that evicts is refused
//! With an `allkeys-*` `maxmemory-policy`, a full Redis deletes keys to make room: a consent
//! log, a send history, a delivery's state. Every check of a claim compares with what is stored,
//! so a deleted STOP or send is simply not there: nothing would notice. Herald sets no TTL, so
//! `noeviction` (the default) and the `volatile-*` policies are accepted.
//!
//! # Why a replica is refused and failover is unsupported
//! Replication is asynchronous: a primary acknowledges a claim before any replica has it. If the
//! primary dies and a replica is promoted, the claims it had not received yet are gone and their
//! deliveries, already sent, are queued again. `WAIT 1 <ms>` before each request would only
//! narrow that window (a replica that acknowledged may still lose the write before its own AOF
//! has it, and Redis 7.0 has no `WAITAOF`), so Herald does not pretend: it works against one
//! primary, and a promoted replica is a new deployment, not a failover. A handle opened on a
//! replica (`role:slave`) is refused, since its writes would fail or be lost at the next sync.
//!
//! # When the settings cannot be read
//! A managed Redis may disable or rename `CONFIG`. Herald then refuses, saying it could not
//! check, unless the operator vouches for the persistence with `[store] redis_persistence =
//! "trust"` ([`PersistenceCheck::Trust`]); settings it *can* read are checked even then.

use herald_store::{Durability, StoreError, StoreResult};
use redis::aio::ConnectionManager;

use crate::conn::map_err;

/// What Herald does when it cannot read the server's persistence settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PersistenceCheck {
    /// Refuse (fail closed): the default.
    #[default]
    Check,
    /// The operator vouches for `appendonly yes` and `appendfsync always` (and
    /// `no-appendfsync-on-rewrite no` under [`Durability::PowerLoss`]) on a Redis whose `CONFIG` (or `INFO`) is disabled or renamed.
    /// Settings that can be read are still checked.
    Trust,
    /// Nothing is checked: a Redis crash may bring back claimed deliveries, which would be sent
    /// again. Not reachable from the config file (`redis_persistence` is `check` or `trust`):
    /// herald-bench uses it to measure on the Redis BullMQ ran on (no AOF), like for like.
    Skip,
}

/// Why a Redis is not durable enough to claim on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotDurable {
    /// `appendonly no`.
    #[error(
        "this Redis runs with `appendonly no`, so Herald will not claim deliveries on it: after a \
         crash Redis would restore its last RDB snapshot and bring back as queued deliveries \
         already sent, which would go out again. Set `appendonly yes` (in redis.conf, or \
         `CONFIG SET appendonly yes` then `CONFIG REWRITE`)"
    )]
    NoAof,
    /// A Redis that does not write and fsync its AOF before it replies.
    #[error(
        "this Redis has `appendfsync {appendfsync}`, and Herald claims only on `appendfsync \
         always`: with `everysec`, a Redis whose background fsync is slow postpones writing its \
         AOF for up to two seconds while it keeps replying, so a crash of the Redis process (not \
         only of the machine) can drop claims it acknowledged, and their deliveries, already \
         sent, would go out again. Set `appendfsync always` (redis.conf, or `CONFIG SET \
         appendfsync always` then `CONFIG REWRITE`)"
    )]
    FsyncNotAlways {
        /// What the server has.
        appendfsync: String,
    },
    /// A Redis that evicts keys when it is full.
    #[error(
        "this Redis has `maxmemory-policy {policy}`, so when it is full it deletes keys Herald \
         needs: a recipient's consent log (a STOP forgotten), the send history caps count, a \
         delivery's state (the dedupe); nothing would notice, since the checks compare against \
         what is left. Set `maxmemory-policy noeviction` (a full Redis then refuses writes, and \
         Herald stops with the error)"
    )]
    Evicts {
        /// What the server has.
        policy: String,
    },
    /// `durability = "power-loss"` on a Redis that skips the fsync during a rewrite.
    #[error(
        "`[store] durability = \"power-loss\"` needs `no-appendfsync-on-rewrite no`, and this \
         Redis has `yes`: during an AOF rewrite it would not fsync, and an OS crash or power loss \
         then could drop claims it acknowledged. Set `no-appendfsync-on-rewrite no`, or choose \
         `durability = \"process-crash\"`"
    )]
    NoFsyncOnRewrite,
    /// A replica.
    #[error(
        "this Redis is a replica (`role:slave`): Herald works against one primary only (failover \
         is unsupported: replication is asynchronous, so a promoted replica may lack claims the \
         primary acknowledged); point `[store] redis` at the primary"
    )]
    Replica,
    /// The settings could not be read.
    #[error(
        "could not check this Redis's persistence (`{command}` answered: {answer}); Herald claims \
         only on a Redis it knows keeps an append-only file. If this Redis is known to run with \
         `appendonly yes` (a managed Redis with CONFIG disabled, say), set `[store] \
         redis_persistence = \"trust\"`"
    )]
    Unchecked {
        /// The command that failed.
        command: String,
        /// Its error.
        answer: String,
    },
}

/// Fails with [`StoreError::Unusable`] (naming the setting, why, and the fix) unless the Redis
/// behind `manager` keeps acknowledged writes as `durability` requires and is a primary.
/// `location` is the URL without a password.
pub(crate) async fn require_durable(
    manager: &mut ConnectionManager,
    durability: Durability,
    check: PersistenceCheck,
    location: &str,
) -> StoreResult<()> {
    verdict(manager, durability, check)
        .await?
        .map_err(|why| StoreError::Unusable {
            location: location.to_owned(),
            source: Box::new(why),
        })
}

/// `Err` (the store error) when Redis could not be asked; `Ok(Err(why))` when it answered that
/// it is not durable enough (or refused to answer and nobody vouched for it).
async fn verdict(
    manager: &mut ConnectionManager,
    durability: Durability,
    check: PersistenceCheck,
) -> StoreResult<Result<(), NotDurable>> {
    if check == PersistenceCheck::Skip {
        tracing::warn!("the Redis persistence settings are not checked (a benchmark's setting)");
        return Ok(Ok(()));
    }
    let unchecked = |command: &str, error: StoreError| match error {
        StoreError::Unavailable(_) => Err(error),
        other if check == PersistenceCheck::Trust => {
            tracing::warn!(command, error.message = %other, "cannot read the Redis persistence settings; trusted as configured (`redis_persistence = \"trust\"`)");
            Ok(None)
        }
        other => Ok(Some(NotDurable::Unchecked {
            command: command.to_owned(),
            answer: other.to_string(),
        })),
    };
    match config_get(manager, "appendonly").await {
        Ok(value) if value != "yes" => return Ok(Err(NotDurable::NoAof)),
        Ok(_) => {}
        Err(error) => {
            if let Some(why) = unchecked("CONFIG GET appendonly", error)? {
                return Ok(Err(why));
            }
        }
    }
    match config_get(manager, "appendfsync").await {
        Ok(value) if value != "always" => {
            return Ok(Err(NotDurable::FsyncNotAlways { appendfsync: value }));
        }
        Ok(_) => {}
        Err(error) => {
            if let Some(why) = unchecked("CONFIG GET appendfsync", error)? {
                return Ok(Err(why));
            }
        }
    }
    // Herald sets no TTL, so a `volatile-*` policy evicts none of its keys; any `allkeys-*`
    // policy may evict any of them.
    match config_get(manager, "maxmemory-policy").await {
        Ok(policy) if policy.starts_with("allkeys-") => {
            return Ok(Err(NotDurable::Evicts { policy }));
        }
        Ok(_) => {}
        Err(error) => {
            if let Some(why) = unchecked("CONFIG GET maxmemory-policy", error)? {
                return Ok(Err(why));
            }
        }
    }
    if durability == Durability::PowerLoss {
        match config_get(manager, "no-appendfsync-on-rewrite").await {
            Ok(value) if value != "no" => return Ok(Err(NotDurable::NoFsyncOnRewrite)),
            Ok(_) => {}
            Err(error) => {
                if let Some(why) = unchecked("CONFIG GET no-appendfsync-on-rewrite", error)? {
                    return Ok(Err(why));
                }
            }
        }
    }
    match role(manager).await {
        Ok(role) if role != "master" => return Ok(Err(NotDurable::Replica)),
        Ok(_) => {}
        Err(error) => {
            if let Some(why) = unchecked("INFO replication", error)? {
                return Ok(Err(why));
            }
        }
    }
    Ok(Ok(()))
}

/// One parameter's value; an error reply (CONFIG disabled or renamed) or no such parameter is
/// an error, never a default.
async fn config_get(manager: &mut ConnectionManager, name: &str) -> StoreResult<String> {
    let pairs: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(manager)
        .await
        .map_err(map_err)?;
    match pairs.as_slice() {
        [key, value] if key == name => Ok(value.clone()),
        _ => Err(StoreError::Backend(
            format!("CONFIG GET {name} returned {pairs:?}").into(),
        )),
    }
}

/// `master` or `slave`, from `INFO replication`.
async fn role(manager: &mut ConnectionManager) -> StoreResult<String> {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(manager)
        .await
        .map_err(map_err)?;
    info.lines()
        .find_map(|line| line.trim().strip_prefix("role:"))
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Backend("INFO replication has no role".into()))
}
