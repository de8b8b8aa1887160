//! Compaction: what a long-lived store forgets, so Redis's memory follows the traffic of the
//! retention (default 7 days, [`crate::RedisConfig::retention`]) rather than of its whole life.
//!
//! Each [`super::recover_expired`] (every worker calls it periodically) compacts at most
//! [`PER_CALL`] deliveries that became terminal (`done`) before the store's now − retention:
//! their snapshot (`snap:<run>`) is deleted, and so is their state (`dl:<run>`) once the run's
//! expansion is finished. What stays, and why:
//! - while the run's expansion is unfinished, the state reduced to a *tombstone*, the terminal
//!   state's name and reason or code (`{"s":"sent"}`, `{"s":"skipped","x":"opted_out"}`): the
//!   `dl:<run>` field is the (run, recipient) dedupe, and the engine re-inserts every row of an
//!   unfinished expansion when it resumes it, so without the field a delivery sent long ago
//!   would be queued a second time. Once the expansion is finished (`total` set) the run is
//!   sealed instead: `insert_batch` refuses every row the run lacks, so the field can go. No
//!   path re-creates a compacted delivery either way: `insert_batch` finds the row or the seal,
//!   a claim or an outcome finds a terminal state or none. A tombstone is kept only for an
//!   expansion interrupted for longer than the retention, and stays (nothing revisits it once
//!   the run is sealed). Measured (Redis 7.0, jemalloc, `used_memory` over a million fields of
//!   one hash, recipient keys of 12 characters): 72 bytes per `sent`/`unknown`/`expired`
//!   tombstone, 104 for a `skipped`/`failed` one with its reason, where the full state and
//!   snapshot took about 290 (136 + 152); the dict entry and the key are most of it, so a
//!   shorter encoding of the state would save at most 8 bytes;
//! - the run and its counters (`run:<run>`), so `counts` still adds up after compaction;
//! - the phones' send history (`hist:<phone>`), which frequency caps read: it is trimmed only
//!   below now − [`HISTORY_KEEP`], longer than any cap period the campaign language allows;
//! - the phones of `recent` (the tier's unique recipients) sent to since now − [`RECENT_KEEP`].
//!
//! Nothing else about the delivery: [`herald_store::Deliveries::claims`] lists only the
//! deliveries not compacted yet (a tombstone has no owner), and the provider-id index entry
//! (`mid`) is deleted with the delivery, so a status or reply for a message older than the
//! retention finds nothing (a status is then kept, and expires). A tombstone keeps no rung
//! either: `c:delivered`/`c:read` stay in the run's counters. Re-inserting a compacted row of a sealed run
//! is a `Conflict` (the row is gone, the seal refuses it), never a second delivery; the engine
//! does not expand a sealed run again.

use std::time::Duration;

use herald_store::StoreResult;

use super::{COMPACT, duration_ms};
use crate::conn::Conn;
use crate::scripts;

/// The most deliveries one call compacts: a bounded script (Redis runs one script at a time, so
/// a long one would hold every worker's claims back).
pub(crate) const PER_CALL: usize = 1_000;

/// How long a phone's send history is kept. The longest cap period `herald_core::CapPeriod`
/// parses is 366 × 24 units, and a unit may be a day (`8784d`, rolling or calendar days), so a
/// cap may look back 8,784 days (about 24 years; 400 days would silently drop sends such a cap
/// counts). Two more days cover calendar days read in any time zone (UTC−12 to UTC+14).
pub(crate) const HISTORY_KEEP: Duration = Duration::from_secs((366 * 24 + 2) * 86_400);

/// How long a phone stays in `recent` after its latest send. `recent_recipients` answers the
/// messaging tier, which counts unique recipients over a moving 24 h (the claim trims
/// `tier:<sender>` at 24 h too): a caller asks since now − 24 h. Twice that leaves a day for a
/// caller whose clock is behind the store's; without a trim `recent` would grow with every
/// phone ever sent to (it was trimmed only at [`HISTORY_KEEP`], 24 years).
pub(crate) const RECENT_KEEP: Duration = Duration::from_secs(2 * 86_400);

/// Compacts up to [`PER_CALL`] deliveries terminal for longer than the retention; how many.
pub(crate) async fn compact(conn: &Conn) -> StoreResult<u64> {
    let mut invocation = scripts::invocation(conn, &COMPACT);
    invocation
        .arg(conn.retention_ms)
        .arg(PER_CALL)
        .arg(duration_ms(HISTORY_KEEP))
        .arg(duration_ms(RECENT_KEEP));
    let compacted: i64 = super::run_script(conn, &invocation).await?;
    Ok(u64::try_from(compacted).unwrap_or(0))
}
