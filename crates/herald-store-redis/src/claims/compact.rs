//! Compaction: what a long-lived store forgets, so Redis's memory follows the traffic of the
//! retention (default 7 days, [`crate::RedisConfig::retention`]) rather than of its whole life.
//!
//! Each [`super::recover_expired`] (every worker calls it periodically) compacts at most
//! [`PER_CALL`] deliveries that became terminal (`done`) before the store's now − retention:
//! their snapshot (`snap:<run>`) and state (`dl:<run>`) fields are deleted. What stays:
//! - the run and its counters (`run:<run>`), so `counts` still adds up after compaction;
//! - the phones' send history (`hist:<phone>`), which frequency caps read: it is trimmed only
//!   below now − [`HISTORY_KEEP`], longer than any cap period the campaign language allows;
//! - nothing else about the delivery: [`herald_store::Deliveries::claims`] lists only the
//!   deliveries not compacted yet, and a provider status webhook for a compacted delivery
//!   (issue 13) will need its own index from the provider's message id (wamid) to the
//!   delivery, kept for the same retention.

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

/// Compacts up to [`PER_CALL`] deliveries terminal for longer than the retention; how many.
pub(crate) async fn compact(conn: &Conn) -> StoreResult<u64> {
    let mut invocation = scripts::invocation(conn, &COMPACT);
    invocation
        .arg(conn.retention_ms)
        .arg(PER_CALL)
        .arg(duration_ms(HISTORY_KEEP));
    let compacted: i64 = super::run_script(conn, &invocation).await?;
    Ok(u64::try_from(compacted).unwrap_or(0))
}
