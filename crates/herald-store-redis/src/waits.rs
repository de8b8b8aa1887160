//! `Deliveries::waits`: one run's queue by why it waits. What is due is a count of `due:<run>`
//! up to now; what waits is walked (the reason is in each delivery's state) from now to
//! `before`, in chunks of [`CHUNK`] per script call so a large queue never blocks Redis.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use herald_core::RunId;
use herald_store::{QueueWaits, StoreError, StoreResult, WaitReason, Waiting};
use redis::Script;

use crate::codec::{corrupt, from_ms, ms, ms_ceil};
use crate::conn::Conn;
use crate::scripts::{invocation, run as run_script, script};

static WAITS: LazyLock<Script> = LazyLock::new(|| script(include_str!("../scripts/waits.lua")));

/// Queued deliveries looked at per script call.
const CHUNK: usize = 5_000;

/// The queue of `run` as of `now`, looking only at deliveries due before `before` if given.
pub(crate) async fn waits(
    conn: &Conn,
    run: &RunId,
    now: DateTime<Utc>,
    before: Option<DateTime<Utc>>,
) -> StoreResult<QueueWaits> {
    let name = || format!("run:{run}");
    let int = |text: &str| {
        text.parse::<i64>()
            .map_err(|_| corrupt(name(), "waits: not an integer"))
    };
    let mut waits = QueueWaits::default();
    let mut offset = 0usize;
    loop {
        let mut call = invocation(conn, &WAITS);
        call.arg(run.as_str())
            .arg(ms(now))
            .arg(before.map(|b| ms_ceil(b).to_string()).unwrap_or_default())
            .arg(offset)
            .arg(CHUNK);
        let flat: Vec<String> = run_script(conn, &call).await?;
        let [state, due, first, looked, groups @ ..] = flat.as_slice() else {
            return Err(StoreError::NotFound(format!("run {run}")));
        };
        let due = u64::try_from(int(due)?).map_err(|_| corrupt(name(), "negative count"))?;
        if state == "paused" {
            if due > 0 {
                let next = from_ms(int(first)?, &name)?;
                waits
                    .waiting
                    .insert(WaitReason::Pause, Waiting { count: due, next });
            }
            return Ok(waits);
        }
        if offset == 0 {
            waits.due = due;
        }
        for group in groups.chunks(3) {
            let [reason, count, at] = group else {
                return Err(corrupt(name(), "waits: a short group"));
            };
            let count =
                u64::try_from(int(count)?).map_err(|_| corrupt(name(), "negative count"))?;
            if reason.is_empty() {
                // Queued without a reason: nothing holds it back, so it is due whatever its
                // instant.
                waits.due += count;
                continue;
            }
            let reason = WaitReason::parse(reason)
                .ok_or_else(|| corrupt(name(), format!("unknown wait reason {reason:?}")))?;
            let at = from_ms(int(at)?, &name)?;
            let entry = waits
                .waiting
                .entry(reason)
                .or_insert(Waiting { count: 0, next: at });
            entry.count += count;
            entry.next = entry.next.min(at);
        }
        let looked = usize::try_from(int(looked)?).unwrap_or_default();
        if looked < CHUNK {
            return Ok(waits);
        }
        offset += looked;
    }
}
