//! `Feedback::record_status` and `Feedback::message`: provider status reports on the one-way
//! ladder of `herald_store::feedback`, and the early reports kept until the send is recorded.
//!
//! A `sent` delivery's rung is its `progress` column (NULL: accepted; `delivered`; `read`) and
//! also the label `run_counts` counts it under, so delivered and read are kept counts like every
//! other state. The message id is the `provider_id` column (indexed).
//!
//! Early reports wait in `kept_statuses`; [`apply_kept`] applies them in the transaction of the
//! write that records the send (`finish`, `apply`) or ends the lease (`recover_expired`), in the
//! order they arrived, each under the same rules as a report that finds its delivery. Expired
//! ones are deleted by every `record_status` (through their index: the table is small, at most
//! [`KEPT_STATUS_LIMIT`] rows) and never applied.

use herald_store::{
    DeliveryKey, KEPT_STATUS_LIMIT, Progress, ReportedStatus, SentMessage, StatusReport,
    StatusVerdict, StoreResult,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::codec::{corrupt, delivery_key, millis, parse_key, phone};
use crate::db::backend;
use crate::tally::{Label, Tally};

/// A delivery as a report sees it.
#[derive(Debug)]
pub(crate) struct Target {
    id: i64,
    run: i64,
    run_id: String,
    recipient: String,
    state: String,
    progress: Option<String>,
    provider_id: Option<String>,
    phone: Option<String>,
}

const TARGET_COLUMNS: &str =
    "d.id, d.run, r.run_id, d.recipient, d.state, d.progress, d.provider_id, d.phone";

impl Target {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            run: row.get(1)?,
            run_id: row.get(2)?,
            recipient: row.get(3)?,
            state: row.get(4)?,
            progress: row.get(5)?,
            provider_id: row.get(6)?,
            phone: row.get(7)?,
        })
    }

    fn name(&self) -> String {
        delivery_key(&self.run_id, &self.recipient)
    }

    fn key(&self) -> StoreResult<DeliveryKey> {
        parse_key(&self.run_id, &self.recipient)
    }

    /// The rung of a `sent` delivery.
    fn rung(&self) -> StoreResult<Progress> {
        match self.progress.as_deref() {
            None => Ok(Progress::Sent),
            Some(name) => Progress::parse(name)
                .ok_or_else(|| corrupt(self.name(), format!("unknown progress {name:?}"))),
        }
    }
}

/// Finds the newest delivery recorded with a message id: a seek of `deliveries_provider_id`.
const BY_PROVIDER_ID_SQL: &str = "SELECT d.id, d.run, r.run_id, d.recipient, d.state, d.progress,
     d.provider_id, d.phone
 FROM deliveries AS d INDEXED BY deliveries_provider_id
 JOIN runs AS r ON r.id = d.run
 WHERE d.provider_id = ?1 ORDER BY d.id DESC LIMIT 1";

/// The newest delivery recorded with message id `provider_id`.
fn by_provider_id(tx: &Connection, provider_id: &str) -> StoreResult<Option<Target>> {
    tx.prepare_cached(BY_PROVIDER_ID_SQL)
        .and_then(|mut stmt| stmt.query_row([provider_id], Target::read).optional())
        .map_err(backend)
}

/// The delivery `key` names.
fn by_key(tx: &Connection, run_id: &str, recipient: &str) -> StoreResult<Option<Target>> {
    tx.prepare_cached(&format!(
        "SELECT {TARGET_COLUMNS} FROM deliveries AS d JOIN runs AS r ON r.id = d.run
         WHERE r.run_id = ?1 AND d.recipient = ?2"
    ))
    .and_then(|mut stmt| stmt.query_row((run_id, recipient), Target::read).optional())
    .map_err(backend)
}

/// The `run_counts` label of a sent delivery at `rung`.
fn rung_label(rung: Progress) -> Label {
    match rung {
        Progress::Sent => Label::new(),
        other => other.as_str().to_owned(),
    }
}

/// The `progress` column of a sent delivery at `rung`.
fn rung_column(rung: Progress) -> Option<&'static str> {
    (rung != Progress::Sent).then(|| rung.as_str())
}

/// What one report did to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Applied,
    Unchanged,
    Refused,
    /// Still `sending`: the report waits for the send.
    Wait,
}

/// Applies `status`, reported for message `provider_id`, to `target` under the ladder rules,
/// updating the row, `target` and the counts.
fn step(
    tx: &Connection,
    target: &mut Target,
    provider_id: &str,
    status: &ReportedStatus,
    tally: &mut Tally,
) -> StoreResult<Step> {
    let same_id = target.provider_id.as_deref() == Some(provider_id);
    match target.state.as_str() {
        "sending" => Ok(Step::Wait),
        // A sent message reported under another id is not this report's message.
        "sent" if target.provider_id.is_some() && !same_id => Ok(Step::Refused),
        "sent" => {
            let rung = target.rung()?;
            if target.provider_id.is_none() {
                // A `sent` recorded without its id, found by the callback: index the id now.
                set(tx, target.id, "provider_id = ?2", provider_id)?;
                target.provider_id = Some(provider_id.to_owned());
            }
            match status {
                ReportedStatus::Reached(to) if *to > rung => {
                    tx.prepare_cached("UPDATE deliveries SET progress = ?2 WHERE id = ?1")
                        .and_then(|mut stmt| stmt.execute((target.id, rung_column(*to))))
                        .map_err(backend)?;
                    let from = ("sent", rung_label(rung));
                    tally.moved(target.run, from, ("sent", rung_label(*to)), 1);
                    target.progress = rung_column(*to).map(str::to_owned);
                    Ok(Step::Applied)
                }
                ReportedStatus::Failed { code } if rung == Progress::Sent => {
                    fail(tx, target, provider_id, code, ("sent", Label::new()), tally)?;
                    Ok(Step::Applied)
                }
                _ => Ok(Step::Unchanged),
            }
        }
        "unknown" => {
            match status {
                ReportedStatus::Reached(to) => {
                    tx.prepare_cached(
                        "UPDATE deliveries SET state = 'sent', progress = ?2, provider_id = ?3,
                             detail = ?3
                         WHERE id = ?1",
                    )
                    .and_then(|mut stmt| stmt.execute((target.id, rung_column(*to), provider_id)))
                    .map_err(backend)?;
                    let from = ("unknown", Label::new());
                    tally.moved(target.run, from, ("sent", rung_label(*to)), 1);
                    target.state = "sent".into();
                    target.progress = rung_column(*to).map(str::to_owned);
                    target.provider_id = Some(provider_id.to_owned());
                }
                ReportedStatus::Failed { code } => {
                    let from = ("unknown", Label::new());
                    fail(tx, target, provider_id, code, from, tally)?;
                }
            }
            Ok(Step::Applied)
        }
        // Failed by an earlier report (its id is recorded): past every rung.
        "failed" if same_id => Ok(Step::Unchanged),
        _ => Ok(Step::Refused),
    }
}

/// Ends `target` `failed(code)` after the provider accepted it. Its `sent_at` is kept: the
/// provider took the message, so it counts toward the recipient's caps (the safe side).
fn fail(
    tx: &Connection,
    target: &mut Target,
    provider_id: &str,
    code: &str,
    from: (&'static str, Label),
    tally: &mut Tally,
) -> StoreResult<()> {
    tx.prepare_cached(
        "UPDATE deliveries SET state = 'failed', code = ?2, progress = NULL, provider_id = ?3
         WHERE id = ?1",
    )
    .and_then(|mut stmt| stmt.execute((target.id, code, provider_id)))
    .map_err(backend)?;
    tally.moved(target.run, from, ("failed", code.to_owned()), 1);
    target.state = "failed".into();
    target.progress = None;
    target.provider_id = Some(provider_id.to_owned());
    Ok(())
}

fn set(tx: &Connection, id: i64, assignment: &str, value: &str) -> StoreResult<()> {
    tx.prepare_cached(&format!("UPDATE deliveries SET {assignment} WHERE id = ?1"))
        .and_then(|mut stmt| stmt.execute((id, value)))
        .map_err(backend)?;
    Ok(())
}

/// A status as `kept_statuses` stores it: the status name and the failure code.
fn status_columns(status: &ReportedStatus) -> (&'static str, Option<&str>) {
    match status {
        ReportedStatus::Reached(rung) => (rung.as_str(), None),
        ReportedStatus::Failed { code } => ("failed", Some(code)),
    }
}

/// Applies one report, atomically (module doc, and `herald_store::feedback`).
pub(crate) fn record_status(
    conn: &mut Connection,
    report: &StatusReport,
    now_ms: i64,
    ttl_ms: i64,
) -> StoreResult<StatusVerdict> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    tx.prepare_cached("DELETE FROM kept_statuses WHERE expires_at <= ?1")
        .and_then(|mut stmt| stmt.execute([now_ms]))
        .map_err(backend)?;
    let callback = report
        .callback
        .as_ref()
        .map(|key| (key.run.as_str().to_owned(), key.recipient.to_string()));
    let mut target = by_provider_id(&tx, &report.provider_id)?;
    if target.is_none()
        && let Some((run_id, recipient)) = &callback
    {
        target = by_key(&tx, run_id, recipient)?;
    }
    let mut tally = Tally::default();
    let verdict = match target {
        Some(mut target) => {
            let provider_id = &report.provider_id;
            match step(&tx, &mut target, provider_id, &report.status, &mut tally)? {
                Step::Applied => StatusVerdict::Applied {
                    key: target.key()?,
                    phone: target_phone(&target)?,
                },
                Step::Unchanged => StatusVerdict::Unchanged { key: target.key()? },
                Step::Refused => StatusVerdict::Refused { key: target.key()? },
                Step::Wait => keep(&tx, report, callback.as_ref(), now_ms + ttl_ms)?,
            }
        }
        None => keep(&tx, report, callback.as_ref(), now_ms + ttl_ms)?,
    };
    tally.flush(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(verdict)
}

fn target_phone(target: &Target) -> StoreResult<herald_core::PhoneNumber> {
    let stored = target
        .phone
        .as_deref()
        .ok_or_else(|| corrupt(target.name(), "a sent delivery without a phone"))?;
    phone(stored, &|| target.name())
}

/// Keeps an early report until `expires_at`, unless [`KEPT_STATUS_LIMIT`] are kept already.
fn keep(
    tx: &Connection,
    report: &StatusReport,
    callback: Option<&(String, String)>,
    expires_at: i64,
) -> StoreResult<StatusVerdict> {
    let kept: i64 = tx
        .prepare_cached("SELECT count(*) FROM kept_statuses")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(backend)?;
    if u64::try_from(kept).unwrap_or(u64::MAX) >= KEPT_STATUS_LIMIT {
        return Ok(StatusVerdict::Dropped);
    }
    let (status, code) = status_columns(&report.status);
    tx.prepare_cached(
        "INSERT INTO kept_statuses
             (provider_id, run_id, recipient, status, code, reported_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.execute((
            &report.provider_id,
            callback.map(|(run, _)| run),
            callback.map(|(_, recipient)| recipient),
            status,
            code,
            millis(report.at),
            expires_at,
        ))
    })
    .map_err(backend)?;
    Ok(StatusVerdict::Kept)
}

/// Applies the kept reports for the delivery `run_id`/`recipient` (row `delivery`) that a write
/// just ended `sent` as message `provider_id`, or `unknown` (`provider_id` `None`): those kept
/// under that id or naming that delivery in their callback, not expired at `now_ms`, in the
/// order they arrived. They are deleted, applied or not (a report for another message under the
/// same callback cannot apply later either). Called inside the caller's write transaction.
pub(crate) fn apply_kept(
    tx: &Connection,
    (run_id, recipient): (&str, &str),
    provider_id: Option<&str>,
    now_ms: i64,
    tally: &mut Tally,
) -> StoreResult<()> {
    let kept: Vec<(i64, String, String, Option<String>)> = tx
        .prepare_cached(
            "SELECT id, provider_id, status, code FROM kept_statuses
             WHERE (provider_id = ?1 OR (run_id = ?2 AND recipient = ?3)) AND expires_at > ?4
             ORDER BY id",
        )
        .and_then(|mut stmt| {
            stmt.query_map((provider_id, run_id, recipient, now_ms), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?
            .collect::<Result<_, _>>()
        })
        .map_err(backend)?;
    if kept.is_empty() {
        return Ok(());
    }
    let mut target = by_key(tx, run_id, recipient)?
        .ok_or_else(|| corrupt(delivery_key(run_id, recipient), "ended and then not found"))?;
    let mut forget = tx
        .prepare_cached("DELETE FROM kept_statuses WHERE id = ?1")
        .map_err(backend)?;
    for (id, kept_id, status, code) in kept {
        let status = match (status.as_str(), code) {
            ("failed", Some(code)) => ReportedStatus::Failed { code },
            (name, _) => ReportedStatus::Reached(Progress::parse(name).ok_or_else(|| {
                corrupt(
                    format!("kept_statuses/{id}"),
                    format!("unknown status {name:?}"),
                )
            })?),
        };
        step(tx, &mut target, &kept_id, &status, tally)?;
        forget.execute([id]).map_err(backend)?;
    }
    Ok(())
}

/// The delivery message `provider_id` was recorded for.
pub(crate) fn message(conn: &Connection, provider_id: &str) -> StoreResult<Option<SentMessage>> {
    let Some(target) = by_provider_id(conn, provider_id)? else {
        return Ok(None);
    };
    let progress = match target.state.as_str() {
        "sent" => Some(target.rung()?),
        _ => None,
    };
    Ok(Some(SentMessage {
        key: target.key()?,
        phone: target_phone(&target)?,
        progress,
    }))
}

#[cfg(test)]
mod tests {
    use super::BY_PROVIDER_ID_SQL;

    /// A status finds its delivery by one seek of the message-id index, never a scan.
    #[test]
    fn a_message_id_is_a_seek_of_its_index() {
        let plan = crate::queries::query_plan(BY_PROVIDER_ID_SQL, ["wamid.X"]);
        let joined = plan.join("\n");
        assert!(
            plan.iter()
                .any(|s| s.contains("SEARCH d USING INDEX deliveries_provider_id (provider_id=?)")),
            "{joined}"
        );
        assert!(!plan.iter().any(|s| s.starts_with("SCAN")), "{joined}");
    }
}
