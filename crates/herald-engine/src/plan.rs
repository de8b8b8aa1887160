//! `herald plan`: who would get what, when, without sending anything.
//!
//! The audience is streamed: each row is planned and handed to the caller's sink at once, and
//! the summary keeps counters only, so memory stays flat whatever the audience size (the one
//! exception is the duplicate set, ~9-10 bytes per phone).

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use herald_campaign::Campaign;
use herald_campaign::audience::{AudienceError, AudienceReader, PhoneSet, RowError, count_rows};
use herald_core::{ConsentState, Decision, Policy, RunId, SkipReason, TimeZone};

use crate::prepare::prepare;

/// Why a plan could not be made at all (row problems are not errors: they are planned skips).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The audience file as a whole is unusable.
    #[error(transparent)]
    Audience(#[from] AudienceError),
    /// The audience could not be read to its end (an I/O error, a quote left open to the end
    /// of the file): a plan of the rows before it would pass for the whole audience.
    #[error("{0}")]
    Unreadable(RowError),
    /// A cron campaign with no fire time ahead.
    #[error("the cron schedule never fires after {now}")]
    NoFire {
        /// The planning instant.
        now: DateTime<Utc>,
    },
}

/// The plan for one audience row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRow {
    /// The row's line in the audience file.
    pub line: u64,
    /// The recipient id (absent when the row itself is unusable).
    pub recipient: Option<String>,
    /// The phone, masked.
    pub phone: Option<String>,
    /// The zone(s) the window is evaluated in.
    pub zones: Vec<TimeZone>,
    /// What happens.
    pub outcome: PlannedOutcome,
    /// The template language chosen.
    pub language: Option<String>,
    /// A human explanation for skips.
    pub detail: Option<String>,
}

/// What happens to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannedOutcome {
    /// Sent at this instant (consent and caps permitting at that moment).
    Send(DateTime<Utc>),
    /// Skipped for this reason.
    Skip(SkipReason),
    /// Cannot go out before expiry.
    Expire,
}

/// Counts by outcome and by hour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanSummary {
    /// The run planned.
    pub run: Option<String>,
    /// Rows in the audience after the segment filter (bad rows included: they are recipients
    /// whose data is broken).
    pub audience: u64,
    /// Rows the `where` filter left out.
    pub filtered_out: u64,
    /// Planned sends.
    pub sends: u64,
    /// Expired.
    pub expired: u64,
    /// Skips by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Planned sends by UTC hour.
    pub by_hour: BTreeMap<DateTime<Utc>, u64>,
    /// For cron campaigns: the next fire times.
    pub next_fires: Vec<DateTime<Utc>>,
    /// The campaign has no `send_window` (transactional or service): it sends at any hour.
    pub always_open: bool,
    /// `where: { tags }` is set: a run also matches the tags stored for each phone (button
    /// replies), which `plan` does not read (it reads no store), so `filtered_out` counts
    /// recipients a run may still send to. See [`STORED_TAGS_NOTE`].
    pub stored_tags_unseen: bool,
}

/// What `plan` says when `where: { tags }` is set.
pub const STORED_TAGS_NOTE: &str = "where.tags: matched against the audience file only; tags \
    stored from button replies are not visible to plan, so a run may send to some recipients \
    counted as filtered out";

/// Plans `campaign` as of `now`, calling `sink` for every row in file order.
pub fn plan(
    campaign: &Campaign,
    now: DateTime<Utc>,
    mut sink: impl FnMut(&PlannedRow),
) -> Result<PlanSummary, PlanError> {
    let next_fires = campaign.next_fires(now, 5);
    let (run, fire) = campaign.run_at(now).ok_or(PlanError::NoFire { now })?;
    let source = &campaign.audience.source;
    let reader = AudienceReader::open(source, campaign.audience.default_country)?;
    let mut seen = PhoneSet::with_capacity(count_rows(source)?);
    let consent = crate::prepare::assumed_consent();
    let policy = crate::prepare::timing_policy(campaign);
    let mut summary = PlanSummary {
        run: Some(run.to_string()),
        next_fires,
        always_open: campaign.always_open,
        stored_tags_unseen: !campaign.audience.segment.tags.is_empty(),
        ..PlanSummary::default()
    };
    for row in reader {
        let planned = match row {
            Err(error) if error.unreadable => return Err(PlanError::Unreadable(error)),
            Err(error) => PlannedRow {
                line: error.line,
                recipient: None,
                phone: None,
                zones: Vec::new(),
                outcome: PlannedOutcome::Skip(SkipReason::InvalidRecipient),
                language: None,
                detail: Some(error.to_string()),
            },
            Ok(recipient) => {
                if !campaign.audience.segment.matches(&recipient) {
                    summary.filtered_out += 1;
                    continue;
                }
                let mut planned = PlannedRow {
                    line: recipient.line,
                    recipient: Some(recipient.id.as_str().to_owned()),
                    phone: Some(recipient.phone.to_string()),
                    zones: recipient.zone.into_iter().collect(),
                    outcome: PlannedOutcome::Skip(SkipReason::Duplicate),
                    language: None,
                    detail: None,
                };
                if !seen.insert(&recipient.phone) {
                    planned.detail = Some("the phone appears earlier in the audience".into());
                } else {
                    match prepare(campaign, &recipient, fire) {
                        Err(not) => {
                            planned.outcome = PlannedOutcome::Skip(not.reason);
                            planned.detail = Some(not.detail);
                        }
                        Ok(prepared) => {
                            planned.zones = prepared.place.zones().to_vec();
                            planned.language = Some(prepared.language.clone());
                            planned.outcome = decide_row(
                                now,
                                &policy,
                                &run,
                                recipient.id.id(),
                                &prepared,
                                &consent,
                            );
                        }
                    }
                }
                planned
            }
        };
        count(&mut summary, &planned.outcome);
        sink(&planned);
    }
    Ok(summary)
}

fn decide_row(
    now: DateTime<Utc>,
    policy: &Policy<'_>,
    run: &RunId,
    recipient: &herald_core::RecipientId,
    prepared: &crate::prepare::Prepared,
    consent: &ConsentState,
) -> PlannedOutcome {
    match crate::prepare::decide_prepared(now, policy, run, recipient, prepared, consent) {
        Decision::Send => PlannedOutcome::Send(now),
        Decision::Defer { until, .. } => PlannedOutcome::Send(until),
        Decision::Skip(reason) => PlannedOutcome::Skip(reason),
        Decision::Expire => PlannedOutcome::Expire,
    }
}

fn count(summary: &mut PlanSummary, outcome: &PlannedOutcome) {
    summary.audience += 1;
    match outcome {
        PlannedOutcome::Send(at) => {
            summary.sends += 1;
            let hour = at.duration_trunc(TimeDelta::hours(1)).unwrap_or(*at);
            *summary.by_hour.entry(hour).or_default() += 1;
        }
        PlannedOutcome::Skip(reason) => *summary.skipped.entry(reason.as_str()).or_default() += 1,
        PlannedOutcome::Expire => summary.expired += 1,
    }
}

/// A recipient's local rendering of `at`, in their (first) zone.
pub fn local_time(row: &PlannedRow, at: DateTime<Utc>) -> Option<String> {
    let zone = row.zones.first()?;
    Some(
        at.with_timezone(&zone.tz())
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
    )
}
