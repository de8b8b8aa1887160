//! The Lua scripts, each with `scripts/prelude.lua` in front (the calling convention, the epoch
//! check, the store's now). Invoked by EVALSHA; redis-rs loads a script again when a restarted
//! Redis answers NOSCRIPT.

use herald_store::StoreResult;
use redis::{Script, ScriptInvocation};

use crate::conn::{Conn, map_err};

/// A script with the prelude.
pub(crate) fn script(body: &str) -> Script {
    Script::new(&format!(
        "{}\n{body}",
        include_str!("../scripts/prelude.lua")
    ))
}

/// An invocation with the prelude's arguments (prefix, epoch and the write sequence this handle
/// has seen, now) already pushed; push the script's own arguments after.
pub(crate) fn invocation<'a>(conn: &Conn, script: &'a Script) -> ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    invocation
        .arg(conn.keys.prefix())
        .arg(format!("{}|{}", conn.epoch, conn.seen_seq()))
        .arg(conn.now_arg());
    invocation
}

/// Runs an invocation, classifying errors.
pub(crate) async fn run<T: redis::FromRedisValue>(
    conn: &Conn,
    invocation: &ScriptInvocation<'_>,
) -> StoreResult<T> {
    let mut manager = conn.manager.clone();
    invocation.invoke_async(&mut manager).await.map_err(map_err)
}
