//! One audience row at a time: what delivery it becomes (on the reading threads), and whether
//! it is a duplicate of an earlier row (in file order, on the writing side).

use chrono::{DateTime, Utc};
use herald_campaign::Campaign;
use herald_campaign::audience::{PhoneSet, Recipient, RowError};
use herald_core::{ConsentState, Decision, Outcome, Policy, RecipientId, RunId, SkipReason};
use herald_store::{DeliveryKey, Initial, NewDelivery, RecipientSnapshot, Terminal};

use crate::prepare::{decide_prepared, prepare};

/// A row as decided on its own, before the duplicate check (which needs the rows before it).
pub(super) enum Candidate {
    /// Outside the campaign's `where`: no delivery at all.
    Outside,
    /// A row that could not be read: a delivery that starts `skipped(invalid_recipient)`.
    Broken(RowError),
    /// A recipient and the delivery it gets if no earlier row has its id or its phone.
    Recipient {
        /// The hash of the recipient id, for the duplicate check.
        id_hash: u64,
        /// The delivery, with the recipient's snapshot.
        first: NewDelivery,
    },
}

/// What a row is worth on its own: parsed, filtered, prepared and decided at `now`.
pub(super) fn candidate(
    campaign: &Campaign,
    run: &RunId,
    fire: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    (consent, policy): (&ConsentState, &Policy<'_>),
    row: Result<Recipient, RowError>,
) -> Candidate {
    let recipient = match row {
        Err(error) => return Candidate::Broken(error),
        Ok(recipient) if !campaign.audience.segment.matches(&recipient) => {
            return Candidate::Outside;
        }
        Ok(recipient) => recipient,
    };
    let id_hash = id_hash(recipient.id.as_str());
    let prepared = prepare(campaign, &recipient, fire);
    let snapshot = RecipientSnapshot {
        id: recipient.id.clone(),
        phone: recipient.phone,
        zone: recipient.zone,
        locale: recipient.locale,
        country: recipient.country,
        attributes: recipient.attributes,
        line: recipient.line,
    };
    let first = match prepared {
        Err(not) => ended(
            run,
            recipient.id.as_str(),
            Some(snapshot),
            not.reason,
            Some(not.detail),
        ),
        Ok(prepared) => {
            let decision = decide_prepared(now, policy, run, &recipient.id, &prepared, consent);
            let initial = match decision {
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
                key: DeliveryKey {
                    run: run.clone(),
                    recipient: recipient.id,
                },
                recipient: Some(snapshot),
                scheduled_at: Some(prepared.scheduled_at),
                expires_at: prepared.expires_at,
                initial,
            }
        }
    };
    Candidate::Recipient { id_hash, first }
}

/// The duplicate check, fed the candidates in file order: the first row with a given recipient
/// id or phone keeps its delivery, later ones become `skipped(duplicate)`.
pub(super) struct Dedupe {
    run: RunId,
    phones: PhoneSet,
    /// Recipient ids seen, as 64-bit hashes (8 bytes a recipient instead of the id's text). A
    /// collision, about one in 10^7 campaigns of a million, skips a recipient as a duplicate:
    /// it can only withhold a message, never send one twice.
    ids: std::collections::HashSet<u64, PrehashedIds>,
}

impl Dedupe {
    /// A check for `run`, its phone set sized for about `rows` rows.
    pub(super) fn new(run: RunId, rows: u64) -> Self {
        Self {
            run,
            phones: PhoneSet::with_capacity(rows),
            ids: Default::default(),
        }
    }

    /// The delivery `candidate` becomes, if any.
    pub(super) fn settle(&mut self, candidate: Candidate) -> Option<NewDelivery> {
        match candidate {
            Candidate::Outside => None,
            Candidate::Broken(error) => Some(ended(
                &self.run,
                &format!("line:{}", error.line),
                None,
                SkipReason::InvalidRecipient,
                Some(error.to_string()),
            )),
            Candidate::Recipient { id_hash, first } => {
                let new_id = self.ids.insert(id_hash);
                let new_phone = new_id
                    && first
                        .recipient
                        .as_ref()
                        .is_none_or(|snapshot| self.phones.insert(&snapshot.phone));
                if new_phone {
                    return Some(first);
                }
                // The line number makes the key unique within the file.
                let line = first.recipient.as_ref().map_or(0, |s| s.line);
                let id = format!("{}#line{line}", first.key.recipient);
                let detail = if new_id {
                    "the phone appears earlier in the audience"
                } else {
                    "the recipient id appears earlier in the audience"
                };
                Some(ended(
                    &self.run,
                    &id,
                    first.recipient,
                    SkipReason::Duplicate,
                    Some(detail.to_owned()),
                ))
            }
        }
    }
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
