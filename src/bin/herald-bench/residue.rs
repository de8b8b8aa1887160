//! X2: what a drained run leaves in Redis beyond what the store means to keep.
//!
//! # Definition
//! Measured after the W1 run (JOBS deliveries expanded into an emptied Redis, opt-ins imported,
//! every delivery sent):
//!
//! ```text
//! queued   = used_memory after expansion − used_memory of the emptied server
//! residue  = used_memory after the drain − used_memory of the emptied server
//!            − Σ MEMORY USAGE(kept keys)          (key, value and key entry, SAMPLES 0)
//!            − growth of used_memory_overhead     (INFO memory, drained − emptied)
//! X2       = residue / queued
//! ```
//!
//! *Kept keys* are the families the layout (`herald-store-redis/src/keys.rs`) keeps after a
//! delivery ends, on purpose:
//! - the ledger: `run:`, `runs`, `sruns:`, `dl:` (every delivery's terminal state), `snap:`
//!   (the recipient snapshots, kept with the ledger until compaction, 7 days by default), `done`
//!   (what compaction walks);
//! - consent: `consent:`;
//! - send history: `hist:`, `tier:`, `recent` (what caps and the tier count);
//! - sender state and the store's identity: `sender:`, `senders`, `epoch`, `layout`.
//!
//! Everything else counts as residue: the queue's own keys (`due:`, `leases`), any family the
//! layout does not list, and data memory no key accounts for (`unattributed_bytes`). The
//! server's overhead is subtracted: it is bookkeeping, not data a job left, and most of its
//! growth is the key index of the kept consent and history keys (one key per phone each;
//! `index_growth_bytes` shows that part, see `Admin::index_bytes`), the rest clients' buffers
//! and the script cache. The snapshots are shown apart (`snap_bytes`) because they are the one
//! kept family that compaction, not the drain, removes.

use std::fmt::Write as _;

use crate::server::Footprint;

/// Families kept by design after a delivery ends (see the module docs).
const KEPT: &[&str] = &[
    "run", "runs", "sruns", "dl", "snap", "done", "consent", "hist", "tier", "recent", "sender",
    "senders", "epoch", "layout",
];

/// The memory figures X2 is computed from.
pub(crate) struct Memory {
    /// `used_memory` of the emptied server.
    pub(crate) empty: u64,
    /// `used_memory` right after expansion.
    pub(crate) expanded: u64,
    /// `used_memory` after the drain.
    pub(crate) drained: u64,
    /// `used_memory_overhead` of the emptied server.
    pub(crate) overhead_empty: u64,
    /// `used_memory_overhead` after the drain.
    pub(crate) overhead_drained: u64,
    /// The key index's bytes of the emptied server.
    pub(crate) index_empty: u64,
    /// The key index's bytes after the drain.
    pub(crate) index_drained: u64,
}

/// The `herald_residue` line's JSON.
pub(crate) fn line(jobs: u64, memory: &Memory, footprint: &Footprint) -> String {
    let queued = memory.expanded.saturating_sub(memory.empty);
    let grown = memory.drained as i64 - memory.empty as i64;
    let (mut kept, mut other) = (0u64, 0u64);
    let mut families = String::new();
    for (family, (keys, bytes)) in &footprint.families {
        if KEPT.contains(&family.as_str()) {
            kept += bytes;
        } else {
            other += bytes;
        }
        let _ = write!(
            families,
            "{}\"{family}\":{{\"keys\":{keys},\"bytes\":{bytes}}}",
            if families.is_empty() { "" } else { "," }
        );
    }
    let index = memory.index_drained as i64 - memory.index_empty as i64;
    let overhead = memory.overhead_drained as i64 - memory.overhead_empty as i64;
    let residue = grown - kept as i64 - overhead;
    let snap = footprint.families.get("snap").map_or(0, |(_, b)| *b);
    format!(
        "{{\"bench\":\"herald_residue\",\"jobs\":{jobs},\"residue_fraction\":{:.4},\
         \"residue_bytes\":{residue},\"queued_bytes\":{queued},\"kept_bytes\":{kept},\
         \"snap_bytes\":{snap},\"overhead_growth_bytes\":{overhead},\"index_growth_bytes\":{index},\"unkept_keys_bytes\":{other},\
         \"unattributed_bytes\":{},\"families\":{{{families}}}}}",
        residue as f64 / queued.max(1) as f64,
        residue - other as i64,
    )
}
