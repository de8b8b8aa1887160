//! The senders port: `sender:<sender>` (throttle end, block) and `senders` (those with one
//! recorded). The claim reads the same hash, so what one worker was told stops every worker.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use herald_store::{Block, MAX_THROTTLE, SenderState, Senders, StoreResult};
use redis::Script;

use crate::codec::{corrupt, from_ms, ms};
use crate::conn::{Conn, map_err};
use crate::scripts::{invocation, run as run_script, script};

static SENDER: LazyLock<Script> = LazyLock::new(|| script(include_str!("../scripts/sender.lua")));

/// Senders' shared state in Redis (`sender:<sender>`, `senders`).
#[derive(Clone)]
pub struct RedisSenders {
    conn: Conn,
}

impl RedisSenders {
    pub(crate) fn new(conn: Conn) -> Self {
        Self { conn }
    }

    /// The states of `names`, in one round trip.
    async fn read(&self, names: &[String]) -> StoreResult<Vec<SenderState>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for name in names {
            pipe.cmd("HMGET").arg(self.conn.keys.sender(name)).arg(&[
                "throttled",
                "block_code",
                "block_reason",
                "block_at",
            ]);
        }
        let mut manager = self.conn.manager.clone();
        let rows: Vec<Vec<Option<String>>> =
            pipe.query_async(&mut manager).await.map_err(map_err)?;
        names
            .iter()
            .zip(rows)
            .map(|(name, row)| decode(name, row))
            .collect()
    }
}

/// A sender from its `throttled`, `block_code`, `block_reason`, `block_at`.
fn decode(name: &str, row: Vec<Option<String>>) -> StoreResult<SenderState> {
    let key = || format!("sender:{name}");
    let int = |text: &str, what: &str| {
        text.parse::<i64>()
            .map_err(|_| corrupt(key(), format!("{what} is not an integer")))
    };
    let mut row = row.into_iter();
    let mut next = || row.next().flatten();
    let (throttled, code, reason, at) = (next(), next(), next(), next());
    let blocked = match (code, at) {
        (Some(code), Some(at)) => Some(Block {
            code,
            reason: reason.unwrap_or_default(),
            at: from_ms(int(&at, "block_at")?, &key)?,
        }),
        (Some(_), None) => return Err(corrupt(key(), "a block without its instant")),
        _ => None,
    };
    Ok(SenderState {
        name: name.to_owned(),
        throttled_until: throttled
            .map(|t| int(&t, "throttled").and_then(|t| from_ms(t, &key)))
            .transpose()?,
        blocked,
    })
}

impl Senders for RedisSenders {
    async fn sender(&self, name: &str) -> StoreResult<SenderState> {
        let mut one = self.read(&[name.to_owned()]).await?;
        one.pop()
            .ok_or_else(|| corrupt(format!("sender:{name}"), "no answer"))
    }

    async fn senders(&self) -> StoreResult<Vec<SenderState>> {
        let mut manager = self.conn.manager.clone();
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.conn.keys.key("senders"))
            .query_async(&mut manager)
            .await
            .map_err(map_err)?;
        names.sort();
        Ok(self
            .read(&names)
            .await?
            .into_iter()
            .filter(|s| s.throttled_until.is_some() || s.blocked.is_some())
            .collect())
    }

    async fn throttle(&self, name: &str, hold: std::time::Duration) -> StoreResult<DateTime<Utc>> {
        let ms_of = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let mut call = invocation(&self.conn, &SENDER);
        call.arg("throttle")
            .arg(name)
            .arg(ms_of(hold.min(MAX_THROTTLE)))
            .arg(ms_of(MAX_THROTTLE));
        let until: i64 = run_script(&self.conn, &call).await?;
        from_ms(until, &|| format!("sender:{name}"))
    }

    async fn block(
        &self,
        name: &str,
        code: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut call = invocation(&self.conn, &SENDER);
        call.arg("block")
            .arg(name)
            .arg(code)
            .arg(reason)
            .arg(ms(now));
        let _recorded: i64 = run_script(&self.conn, &call).await?;
        Ok(())
    }

    async fn resume(&self, name: &str) -> StoreResult<bool> {
        let mut call = invocation(&self.conn, &SENDER);
        call.arg("resume").arg(name);
        let blocked: i64 = run_script(&self.conn, &call).await?;
        Ok(blocked == 1)
    }
}
