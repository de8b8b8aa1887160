//! One audience row at a time: what delivery it becomes (on the reading threads), and whether
//! it is a duplicate of an earlier row (in file order, on the writing side).

use chrono::{DateTime, Utc};
use herald_campaign::Campaign;
use herald_campaign::audience::{IdHash, Recipient, RowError};
use herald_core::{
    AudienceId, ConsentState, Decision, Outcome, Policy, RecipientKey, RunId, SkipReason,
};
use herald_store::{DeliveryKey, Initial, NewDelivery, RecipientSnapshot, Terminal};

use crate::first_seen::FirstSeen;
use crate::prepare::{decide_prepared, prepare};

/// A row as decided on its own, before the duplicate check (which needs the rows before it).
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every row is a `Recipient`: boxing it would add an allocation per row to \
              save memory only on the rare rows outside the segment or broken"
)]
pub(super) enum Candidate {
    /// Outside the campaign's `where`: no delivery at all.
    Outside,
    /// A row that could not be read: a delivery that starts `skipped(invalid_recipient)`.
    Broken(RowError),
    /// A recipient and the delivery it gets if no earlier row has its id or its phone.
    Recipient {
        /// `where` tags the audience row lacks: the row is in only if the phone's stored tags
        /// (button replies) hold them all, looked up for a whole batch at once before the
        /// duplicate check. Empty (no allocation) for nearly every row.
        missing_tags: Vec<String>,
        /// The hash of the row's given id, for the duplicate check (`None` without one).
        id_hash: Option<IdHash>,
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
        Ok(recipient) if !campaign.audience.segment.matches_except_tags(&recipient) => {
            return Candidate::Outside;
        }
        Ok(recipient) => recipient,
    };
    let missing_tags = campaign.audience.segment.missing_tags(&recipient);
    let id_hash = match &recipient.id {
        AudienceId::Given(id) => Some(IdHash::of(id)),
        AudienceId::Phone(_) => None,
    };
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
            RecipientKey::Recipient(recipient.id),
            Some(snapshot),
            not.reason,
            Some(not.detail),
        ),
        Ok(prepared) => {
            let decision = decide_prepared(now, policy, run, recipient.id.id(), &prepared, consent);
            let initial = match decision {
                Decision::Send => Initial::Queued {
                    due_at: now,
                    wait: None,
                },
                Decision::Defer { until, reason } => Initial::Queued {
                    due_at: until,
                    wait: Some(reason.into()),
                },
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
                    recipient: RecipientKey::Recipient(recipient.id),
                },
                recipient: Some(snapshot),
                scheduled_at: Some(prepared.scheduled_at),
                expires_at: prepared.expires_at,
                initial,
            }
        }
    };
    Candidate::Recipient {
        missing_tags,
        id_hash,
        first,
    }
}

/// The duplicate check, fed the candidates in file order: the first row with a given recipient
/// id or phone keeps its delivery, later ones become `skipped(duplicate)`.
pub(super) struct Dedupe {
    run: RunId,
    seen: FirstSeen,
}

impl Dedupe {
    /// A check for `run`, sized for about `rows` rows.
    pub(super) fn new(run: RunId, rows: u64) -> Self {
        Self {
            run,
            seen: FirstSeen::with_capacity(rows),
        }
    }

    /// The delivery `candidate` becomes, if any.
    pub(super) fn settle(&mut self, candidate: Candidate) -> Option<NewDelivery> {
        match candidate {
            Candidate::Outside => None,
            // Not resolved against the stored tags: out (fail closed; `tags::resolve` clears
            // the list of every row it lets in).
            Candidate::Recipient { missing_tags, .. } if !missing_tags.is_empty() => None,
            Candidate::Broken(error) => Some(ended(
                &self.run,
                RecipientKey::Unreadable { line: error.line },
                None,
                SkipReason::InvalidRecipient,
                Some(error.to_string()),
            )),
            Candidate::Recipient { id_hash, first, .. } => {
                let Some(snapshot) = first.recipient.as_ref() else {
                    return Some(first);
                };
                let Err(detail) = self.seen.check(id_hash, &snapshot.phone) else {
                    return Some(first);
                };
                // The line makes the key unique within the file (a row starts on a line of its
                // own); the row's id says whose it was.
                let key = RecipientKey::Duplicate {
                    row: snapshot.id.clone(),
                    line: snapshot.line,
                };
                Some(ended(
                    &self.run,
                    key,
                    first.recipient,
                    SkipReason::Duplicate,
                    Some(detail.to_owned()),
                ))
            }
        }
    }
}

fn ended(
    run: &RunId,
    recipient: RecipientKey,
    snapshot: Option<RecipientSnapshot>,
    reason: SkipReason,
    detail: Option<String>,
) -> NewDelivery {
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
