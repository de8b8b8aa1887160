//! `run_counts` deltas gathered during a write transaction and applied once at its end.
//!
//! Every write that changes a delivery's state knows the old and the new (state, label) of the
//! rows it changed, so it notes them here and [`Tally::flush`] adds them with one upsert per
//! distinct (run, state, label): a batch of a hundred claims becomes two statements instead of
//! two hundred trigger runs. The flush must run in the same transaction as the changes, which is
//! why it takes the transaction's connection and every caller flushes before committing.

use std::collections::HashMap;

use herald_store::StoreResult;
use rusqlite::Connection;

use crate::db::backend;

/// The label a state is counted under: the skip reason, the failure code, or nothing.
pub(crate) type Label = String;

/// Pending changes to `run_counts`, keyed by (run id, state, label).
#[derive(Debug, Default)]
pub(crate) struct Tally {
    deltas: HashMap<(i64, &'static str, Label), i64>,
}

impl Tally {
    /// Counts `n` rows of `run` moving from `from` to `to`.
    pub(crate) fn moved(
        &mut self,
        run: i64,
        from: (&'static str, Label),
        to: (&'static str, Label),
        n: i64,
    ) {
        if n == 0 || from == to {
            return;
        }
        *self.deltas.entry((run, from.0, from.1)).or_default() -= n;
        *self.deltas.entry((run, to.0, to.1)).or_default() += n;
    }

    /// Counts `n` new rows of `run` in `state`.
    pub(crate) fn added(&mut self, run: i64, state: &'static str, label: Label, n: i64) {
        *self.deltas.entry((run, state, label)).or_default() += n;
    }

    /// Writes the deltas into `run_counts` inside the caller's transaction.
    pub(crate) fn flush(self, tx: &Connection) -> StoreResult<()> {
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO run_counts (run, state, label, n) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (run, state, label) DO UPDATE SET n = n + excluded.n",
            )
            .map_err(backend)?;
        for ((run, state, label), n) in self.deltas {
            if n != 0 {
                upsert.execute((run, state, label, n)).map_err(backend)?;
            }
        }
        Ok(())
    }
}

/// The label a row is counted under: its skip reason, else its failure code, else nothing.
pub(crate) fn label(reason: Option<&str>, code: Option<&str>) -> Label {
    reason.or(code).unwrap_or_default().to_owned()
}

/// The (state, label) of a queued or sending delivery: neither carries a reason or a code.
pub(crate) fn unlabelled(state: &'static str) -> (&'static str, Label) {
    (state, Label::new())
}
