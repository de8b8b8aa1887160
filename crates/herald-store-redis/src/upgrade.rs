//! The upgrade of an older layout to [`crate::keys::LAYOUT`] (3), run by
//! [`crate::RedisStores::open`] and [`crate::RedisStores::init`] when they find layout `1` or `2`
//! (`open_to_inspect` never writes, and reads an older store as it is: nothing it reads of the
//! older keys changed). Each step moves the version by one (1 → 2 → 3), so a layout 1 store
//! goes through every step in order.
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
//! # Layout 2 → 3
//! Layout 3 adds the keys of recurring campaigns only (`campaigns`, `campaign:*`, `fires:*`,
//! `fire:*`; `src/keys.rs`, "Layout versions"), and nothing a layout 2 store holds implies any
//! of them: a campaign version is put by the next scheduler that loads the campaign, and a
//! campaign with no fire record is one whose fires the scheduler has not considered yet. So this
//! step creates nothing and backfills nothing: it only sets the layout version from 2 to 3
//! (`scripts/set_layout.lua`, which moves it only if it still reads 2).
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

/// Upgrades the store from layout `found` to [`LAYOUT`], one step at a time; returns the layout
/// now stored.
pub(crate) async fn upgrade(conn: &Conn, found: &str) -> StoreResult<String> {
    let mut layout = found.to_owned();
    if layout == "1" {
        layout = upgrade_1_to_2(conn).await?;
    }
    if layout == "2" {
        layout = set_layout(conn, "2", LAYOUT).await?;
        tracing::info!(
            from = "2",
            to = %layout,
            "Redis store upgraded: recurring campaigns' keys (nothing to backfill)"
        );
    }
    Ok(layout)
}

/// Moves the stored layout version from `from` to `to` (unless another handle did); returns the
/// version now stored.
async fn set_layout(conn: &Conn, from: &str, to: &str) -> StoreResult<String> {
    let mut call = invocation(conn, &SET_LAYOUT);
    call.arg(from).arg(to);
    run_script(conn, &call).await
}

/// Layout 1 → 2: indexes the provider ids of every run's `sent` deliveries, then sets the
/// version to 2.
async fn upgrade_1_to_2(conn: &Conn) -> StoreResult<String> {
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
    let now = set_layout(conn, "1", "2").await?;
    tracing::info!(
        from = "1",
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
