//! Expansion: a run's audience into one delivery per recipient, streamed in batches.
//!
//! Idempotent by construction: every delivery is keyed by (run, recipient) and inserted with
//! "do nothing on conflict", and the run records its total only once the whole audience is in.
//! A crash half-way leaves a run without a total; running again re-reads the audience and inserts
//! only what is missing. Each row is decided once here with the same step `plan` uses, so a
//! delivery starts queued at its exact release instant (not polled) or already ended (duplicate,
//! broken row, no common window, …).

use chrono::{DateTime, Utc};
use herald_campaign::Campaign;
use herald_campaign::audience::{AudienceReader, PhoneSet, count_rows};
use herald_core::{Decision, Delivery, Facts, Outcome, RecipientId, RunId, SkipReason, decide};
use herald_store::{
    Deliveries, DeliveryKey, Initial, NewDelivery, NewRun, RecipientSnapshot, Runs, StoreError,
    Stores, Terminal,
};

use crate::prepare::prepare;

/// Rows per insert transaction: large enough to amortise the commit, small enough that a crash
/// loses little work and memory stays flat.
const BATCH: usize = 5_000;

/// Why expansion failed.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    /// The audience file as a whole is unusable.
    #[error(transparent)]
    Audience(#[from] herald_campaign::audience::AudienceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A cron campaign with no fire ahead.
    #[error("the campaign has no run to expand at {0}")]
    NoRun(DateTime<Utc>),
}

/// What expansion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expansion {
    /// Deliveries newly stored now.
    pub inserted: u64,
    /// The run's deliveries in total.
    pub total: u64,
    /// Whether the run had been expanded before (nothing was read).
    pub already_expanded: bool,
}

/// Creates the run of `campaign` at `now` (its `at`, or the next cron fire) and expands it.
pub async fn expand<S: Stores>(
    stores: &S,
    campaign: &Campaign,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(RunId, Expansion), ExpandError> {
    let (run, fire) = campaign.run_at(now).ok_or(ExpandError::NoRun(now))?;
    let new_run = NewRun {
        run: run.clone(),
        campaign: campaign.id.clone(),
        purpose: campaign.purpose,
        source: source.to_owned(),
        at_least_once: campaign.delivery == herald_campaign::campaign::DeliveryMode::AtLeastOnce,
    };
    stores.runs().create_run(&new_run, now).await?;
    if let Some(record) = stores.runs().run(&run).await?
        && let Some(total) = record.total
    {
        return Ok((
            run,
            Expansion {
                inserted: 0,
                total,
                already_expanded: true,
            },
        ));
    }
    // Reading and deciding rows (phone validation above all) and writing them cost about the
    // same, so they run side by side: a blocking thread builds the batches while this task
    // writes the previous one, with at most two batches waiting in between (memory stays flat).
    let (batches, mut ready) = tokio::sync::mpsc::channel(2);
    let producer = {
        let (campaign, run) = (campaign.clone(), run.clone());
        tokio::task::spawn_blocking(move || build_batches(&campaign, &run, fire, now, &batches))
    };
    let mut inserted = 0;
    let mut failure = None;
    while let Some(batch) = ready.recv().await {
        let written = match batch {
            Ok(batch) => stores
                .deliveries()
                .insert_batch(&batch)
                .await
                .map_err(ExpandError::Store),
            Err(e) => Err(e),
        };
        match written {
            Ok(n) => inserted += n,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // Dropping the receiver makes the producer stop at its next batch.
    drop(ready);
    if let Err(join) = producer.await
        && join.is_panic()
    {
        std::panic::resume_unwind(join.into_panic());
    }
    if let Some(error) = failure {
        return Err(error);
    }
    let total = stores.deliveries().counts(&run).await?.total();
    stores.runs().finish_expansion(&run, total).await?;
    Ok((
        run,
        Expansion {
            inserted,
            total,
            already_expanded: false,
        },
    ))
}

/// Reads the audience and decides each row, sending full batches to `batches`; stops early when
/// the receiver is gone (the writer failed). Runs on a blocking thread: it is all CPU and file
/// reads.
fn build_batches(
    campaign: &Campaign,
    run: &RunId,
    fire: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    batches: &tokio::sync::mpsc::Sender<Result<Vec<NewDelivery>, ExpandError>>,
) {
    let audience = match open_audience(campaign) {
        Ok(audience) => audience,
        Err(e) => {
            let _ = batches.blocking_send(Err(e));
            return;
        }
    };
    let (reader, mut seen) = audience;
    // Recipient ids seen, as 64-bit hashes (8 bytes a recipient instead of the id's text). A
    // collision, about one in 10^7 campaigns of a million, skips a recipient as a duplicate: it
    // can only withhold a message, never send one twice.
    let mut ids = std::collections::HashSet::<u64, PrehashedIds>::default();
    let consent = crate::prepare::assumed_consent();
    let policy = crate::prepare::timing_policy(campaign);
    let mut batch = Vec::with_capacity(BATCH);
    for row in reader {
        let delivery = match row {
            Err(error) => ended(
                run,
                &format!("line:{}", error.line),
                None,
                SkipReason::InvalidRecipient,
                Some(error.to_string()),
            ),
            Ok(recipient) if !campaign.audience.segment.matches(&recipient) => continue,
            Ok(recipient) => {
                let snapshot = RecipientSnapshot {
                    id: recipient.id.clone(),
                    phone: recipient.phone.clone(),
                    zone: recipient.zone,
                    locale: recipient.locale.clone(),
                    country: recipient.country,
                    attributes: recipient.attributes.clone(),
                    line: recipient.line,
                };
                let new_id = ids.insert(id_hash(recipient.id.as_str()));
                if !new_id || !seen.insert(&recipient.phone) {
                    // The line number makes the key unique within the file.
                    let id = format!("{}#line{}", recipient.id, recipient.line);
                    let detail = if new_id {
                        "the phone appears earlier in the audience"
                    } else {
                        "the recipient id appears earlier in the audience"
                    };
                    ended(
                        run,
                        &id,
                        Some(snapshot),
                        SkipReason::Duplicate,
                        Some(detail.to_owned()),
                    )
                } else {
                    match prepare(campaign, &recipient, fire) {
                        Err(not) => ended(
                            run,
                            recipient.id.as_str(),
                            Some(snapshot),
                            not.reason,
                            Some(not.detail),
                        ),
                        Ok(prepared) => {
                            let key = DeliveryKey {
                                run: run.clone(),
                                recipient: recipient.id.clone(),
                            };
                            let delivery = Delivery {
                                run,
                                recipient: &recipient.id,
                                scheduled_at: prepared.scheduled_at,
                                expires_at: prepared.expires_at,
                            };
                            let facts = Facts {
                                place: &prepared.place,
                                consent: &consent,
                                history: &[],
                            };
                            let initial = match decide(now, &policy, &delivery, &facts) {
                                Decision::Send => Initial::Queued { due_at: now },
                                Decision::Defer { until } => Initial::Queued { due_at: until },
                                Decision::Skip(reason) => Initial::Ended(Terminal {
                                    outcome: Outcome::Skipped(reason),
                                    detail: None,
                                }),
                                Decision::Expire => Initial::Ended(Terminal {
                                    outcome: Outcome::Expired,
                                    detail: None,
                                }),
                            };
                            NewDelivery {
                                key,
                                recipient: Some(snapshot),
                                scheduled_at: Some(prepared.scheduled_at),
                                expires_at: prepared.expires_at,
                                initial,
                            }
                        }
                    }
                }
            }
        };
        batch.push(delivery);
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if batches.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = batches.blocking_send(Ok(batch));
    }
}

/// The audience's reader and a set of phones sized for it.
fn open_audience(campaign: &Campaign) -> Result<(AudienceReader, PhoneSet), ExpandError> {
    let audience = &campaign.audience.source;
    let seen = PhoneSet::with_capacity(count_rows(audience)?);
    let reader = AudienceReader::open(audience, campaign.audience.default_country)?;
    Ok((reader, seen))
}

/// The recipient-id set's keys are already 64-bit hashes: hashing them again (SipHash, the
/// default) cost more than the set operation itself.
type PrehashedIds = std::hash::BuildHasherDefault<Prehashed>;

#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `HashSet<u64>`; anything else is folded in, not dropped.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

fn id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

fn ended(
    run: &RunId,
    recipient: &str,
    snapshot: Option<RecipientSnapshot>,
    reason: SkipReason,
    detail: Option<String>,
) -> NewDelivery {
    // Row-derived ids (`line:17`, `c-1#line9`) contain no whitespace, so they always parse; the
    // fallback only guards against a future id rule.
    let recipient = RecipientId::parse(recipient)
        .unwrap_or_else(|_| RecipientId::parse("invalid").unwrap_or_else(|_| unreachable!()));
    NewDelivery {
        key: DeliveryKey {
            run: run.clone(),
            recipient,
        },
        recipient: snapshot,
        scheduled_at: None,
        expires_at: None,
        initial: Initial::Ended(Terminal {
            outcome: Outcome::Skipped(reason),
            detail,
        }),
    }
}
