//! The upgrade of an older layout to [`crate::keys::LAYOUT`], run by [`crate::RedisStores::open`]
//! and [`crate::RedisStores::init`] when they find layout `1` (`open_to_inspect` never writes,
//! and reads a layout 1 store as it is: nothing it reads changed).
//!
//! # Why at open, not only by `herald init`
//! A deployment upgrades by restarting its processes with the new binary. Refusing to open
//! until an operator runs a command would stop every worker at once for a step that needs no
//! decision; the upgrade is bounded, idempotent and safe to run by several processes at once,
//! so the first process to open does it (the others opening meanwhile do the same work again,
//! which changes nothing). `herald init` on an existing store upgrades it too, as it opens it.
//!
//! # Layout 1 → 2
//! Layout 2 adds keys only (`src/keys.rs`, "Layout versions"); the one thing layout 1 data
//! implies is the provider-id index (`mid`) of the deliveries already `sent`: a status or a
//! reply for a message sent before the upgrade must find its delivery. So every run's
//! `dl:<run>` is scanned in chunks of [`CHUNK`] fields, one script call each
//! (`scripts/upgrade_2.lua`, `HSETNX` of the `sent` states' detail), then the layout version is
//! set to 2 (`scripts/set_layout.lua`). An upgrade stopped anywhere (a crash, a lost connection)
//! leaves the version at 1, and the next open starts it again; entries already added stay.
//!
//! Processes of the previous version must be stopped before the upgrade (they checked the
//! layout when they opened, and their sends would not be indexed): a rolling upgrade across
//! layouts is not supported.

use std::sync::LazyLock;

use herald_store::StoreResult;
use redis::Script;

use crate::conn::{Conn, map_err};
use crate::keys::LAYOUT;
use crate::scripts::{invocation, run as run_script, script};

/// Fields of one `dl:<run>` read per script call (a bound on how long one call holds Redis).
pub(crate) const CHUNK: usize = 1_000;

/// Run ids read per round trip.
const RUNS_PAGE: isize = 1_000;

static UPGRADE_2: LazyLock<Script> =
    LazyLock::new(|| crate::claims::state_script(include_str!("../scripts/upgrade_2.lua")));
static SET_LAYOUT: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("../scripts/set_layout.lua")));

/// Upgrades the store from layout `found` to [`LAYOUT`]; returns the layout now stored.
pub(crate) async fn upgrade(conn: &Conn, found: &str) -> StoreResult<String> {
    if found != "1" {
        return Ok(found.to_owned());
    }
    let mut manager = conn.manager.clone();
    let (mut runs, mut indexed, mut start) = (0u64, 0i64, 0isize);
    loop {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(conn.keys.key("runs"))
            .arg(start)
            .arg(start + RUNS_PAGE - 1)
            .query_async(&mut manager)
            .await
            .map_err(map_err)?;
        for run in &ids {
            indexed += index_run(conn, run).await?;
            runs += 1;
        }
        if ids.len() < usize::try_from(RUNS_PAGE).unwrap_or(usize::MAX) {
            break;
        }
        start += RUNS_PAGE;
    }
    let mut call = invocation(conn, &SET_LAYOUT);
    call.arg(found).arg(LAYOUT);
    let now: String = run_script(conn, &call).await?;
    tracing::info!(
        from = found,
        to = %now,
        runs,
        indexed,
        "Redis store upgraded: provider ids of sent deliveries indexed"
    );
    Ok(now)
}

/// Indexes the `sent` deliveries of one run, a chunk per call; how many entries were added.
async fn index_run(conn: &Conn, run: &str) -> StoreResult<i64> {
    let (mut cursor, mut added) = (String::from("0"), 0i64);
    loop {
        let mut call = invocation(conn, &UPGRADE_2);
        call.arg(run).arg(&cursor).arg(CHUNK);
        let (next, n): (String, i64) = run_script(conn, &call).await?;
        added += n;
        if next == "0" {
            return Ok(added);
        }
        cursor = next;
    }
}
