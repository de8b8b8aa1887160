//! Recurring campaigns: which fires of a cron campaign are due at a scheduler's `now`, what each
//! does (a run, or a skip and why), recorded once in the store, and the run of a fire expanded.
//!
//! # One run per fire
//! A scheduler calls [`tick`] for each cron campaign it holds, as often as it likes. A tick
//! decides the fires due since the newest fire recorded for the campaign and records each with
//! [`Fires::record_fire`], which keeps the first record of a (campaign, fire) and returns it:
//! every scheduler then follows the stored record, whoever wrote it, and only a record whose
//! outcome is a run is expanded (idempotently). Two schedulers, a scheduler restarted at the
//! fire instant, or one that crashed between recording a fire and expanding its run (see below)
//! all give one run per fire.
//!
//! # Which fires are due
//! Fires in `(lower, now]`, where `lower` is the latest of:
//! - `now` minus the look-back: the campaign's `expires_after` (an older fire's deliveries
//!   would expire on arrival), or [`DEFAULT_LOOK_BACK`] without one;
//! - the newest recorded fire: nothing at or before it is ever looked at again, which is also
//!   why a store may drop old records;
//! - while no fire of the campaign is recorded, [`ON_TIME`] before the instant its version was
//!   stored: a new campaign never fires for an instant well before Herald knew it (a campaign
//!   first run a few seconds after its first fire, as by a system cron calling `herald run
//!   --until-idle`, still makes it). Once fires are recorded, an edit changes nothing here: a
//!   fire due after a restart uses the version current when it is made, so saving a file a
//!   second before a fire, or deploying a second after it, never loses that fire;
//! - the instant the campaign came back into the scheduler's set, if it left it (a file
//!   removed and put back does not fire for the time it was out).
//!
//! # A crash between a record and its run
//! A tick with nothing new to fire looks at the run of the newest record (or, after missed
//! fires, the run before them): one recorded but not wholly expanded is expanded now if its
//! fire is within the look-back, and cancelled otherwise (logged), so a scheduler that was
//! down for long never sends a stale fire late, and the campaign is not held up by a run that
//! would stay unfinished (`overlap: skip` waits for a pending previous run). A run whose
//! expansion keeps failing (its audience changed under it) holds the campaign's later fires
//! as `overlap` until an operator cancels it (`herald cancel RUN`); each failure is logged.
//! - A fire at most [`ON_TIME`] old is on time: a scheduler polling every few seconds, or
//!   restarted at the fire instant, still makes its run.
//! - Older fires were missed while nothing ran. `catch_up: latest` runs the newest due fire
//!   and records the older ones `superseded`; `catch_up: none` records every missed fire
//!   `missed` and runs only an on-time one. At most [`MAX_RECORDED_MISSES`] missed fires (the
//!   newest) are recorded per tick; older ones in the look-back are not recorded at all.
//! - `overlap: skip` (the default) records the fire that would run `overlap` when the previous
//!   run of the campaign still has deliveries queued or in flight; `overlap: allow` runs it.

use chrono::{DateTime, TimeDelta, Utc};
use herald_campaign::Campaign;
use herald_campaign::campaign::{CatchUp, Overlap};
use herald_core::RunId;
use herald_store::{
    CampaignVersion, Deliveries, FIRES_KEPT, FireOutcome, FireRecord, FireSkip, Fires, Runs,
    Stores, VersionChange,
};

use crate::expand::{ExpandError, Expansion, Occurrence, RunSource, expand_occurrence};

/// A fire seen at most this long after its instant is on time.
pub const ON_TIME: TimeDelta = TimeDelta::seconds(60);

/// How far back missed fires are looked for when the campaign has no `expires_after`.
pub const DEFAULT_LOOK_BACK: TimeDelta = TimeDelta::hours(24);

/// Missed fires recorded per tick, at most (the newest).
pub const MAX_RECORDED_MISSES: usize = 100;

/// The fires due at `now` and what each does, before overlap is looked at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Due {
    /// Fires that make no run, ascending.
    pub skipped: Vec<(DateTime<Utc>, FireSkip)>,
    /// The fire that makes a run, if any (the newest due).
    pub run: Option<DateTime<Utc>>,
}

/// The look-back of `campaign`: its `expires_after`, or [`DEFAULT_LOOK_BACK`].
pub fn look_back(campaign: &Campaign) -> TimeDelta {
    campaign.schedule.expires_after.unwrap_or(DEFAULT_LOOK_BACK)
}

/// Pure: the fires of `campaign` due at `now` (see the module doc), given the newest recorded
/// fire, the instant the campaign's version was stored (used only while no fire is recorded)
/// and the instant it came back into the scheduler's set, if it left it.
pub fn due(
    campaign: &Campaign,
    newest_recorded: Option<DateTime<Utc>>,
    known_since: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Due {
    let floor = newest_recorded.unwrap_or(known_since - ON_TIME);
    let mut lower = floor.max(now - look_back(campaign));
    if let Some(not_before) = not_before {
        lower = lower.max(not_before);
    }
    if lower >= now {
        return Due::default();
    }
    let fires = campaign.fires_between(lower, now, MAX_RECORDED_MISSES + 1);
    let Some((&newest, older)) = fires.split_last() else {
        return Due::default();
    };
    let on_time = now - newest <= ON_TIME;
    let (older_skip, run) = match (campaign.schedule.catch_up, on_time) {
        (CatchUp::Latest, _) => (FireSkip::Superseded, Some(newest)),
        (CatchUp::None, true) => (FireSkip::Missed, Some(newest)),
        (CatchUp::None, false) => (FireSkip::Missed, None),
    };
    let mut skipped: Vec<_> = older.iter().map(|&f| (f, older_skip.clone())).collect();
    if run.is_none() {
        skipped.push((newest, FireSkip::Missed));
    }
    // Only the newest misses are recorded.
    let excess = skipped.len().saturating_sub(MAX_RECORDED_MISSES);
    skipped.drain(..excess);
    Due { skipped, run }
}

/// A campaign version as a scheduler holds it: parsed, with the text it was parsed from.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    /// The campaign.
    pub campaign: &'a Campaign,
    /// SHA-256 of `source.text`, lowercase hex.
    pub hash: &'a str,
    /// Where it came from and its sender.
    pub source: RunSource<'a>,
}

/// Makes `held` the current version of its campaign in the store (see
/// [`Fires::put_campaign`]); logs a replacement.
pub async fn register<S: Stores>(
    stores: &S,
    held: Held<'_>,
    now: DateTime<Utc>,
) -> Result<VersionChange, ExpandError> {
    let version = CampaignVersion {
        campaign: held.campaign.id.to_string(),
        hash: held.hash.to_owned(),
        text: held.source.text.to_owned(),
        source: held.source.path.to_owned(),
        stored_at: now,
    };
    let change = stores.fires().put_campaign(&version).await?;
    if let VersionChange::Replaced { previous_hash } = &change {
        tracing::info!(
            campaign = %held.campaign.id,
            source = held.source.path,
            hash = held.hash,
            previous_hash = %previous_hash,
            "this scheduler loaded other content for the campaign: it replaces the stored version"
        );
    }
    Ok(change)
}

/// What one [`tick`] did.
#[derive(Debug, Clone, Default)]
pub struct Tick {
    /// Fire records this tick stored (another scheduler's records are not in it).
    pub recorded: Vec<FireRecord>,
    /// The run this tick expanded (or found expanded), with what expansion did.
    pub expanded: Option<(RunId, Expansion)>,
}

/// Decides, records and expands the fires of `held` due at `now` (see the module doc). A fire
/// uses the version the store holds: the caller reads it (`stored`, which also bounds a
/// campaign with no fire yet by when it was stored) and holds that content; `held` of other
/// content fires nothing (`Ok` with an empty tick, logged). No fire at or before `not_before` is made (a campaign that
/// came back into a scheduler's set, such as a file removed and put back, does not fire for
/// the time it was out).
///
/// Whatever another scheduler recorded first is followed: a skip this tick wanted to record
/// but found decided otherwise ends the tick (the next one starts from what is stored), so
/// two schedulers catching up at once with different clocks never both make a run.
pub async fn tick<S: Stores>(
    stores: &S,
    held: Held<'_>,
    stored: &CampaignVersion,
    not_before: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Tick, ExpandError> {
    let id = &held.campaign.id;
    if stored.campaign != id.as_str() || stored.hash != held.hash {
        tracing::warn!(
            campaign = %id,
            stored_hash = %stored.hash,
            stored_source = %stored.source,
            held_hash = held.hash,
            "the campaign held is not the version stored: nothing fires from it"
        );
        return Ok(Tick::default());
    }
    let newest = stores
        .fires()
        .fires(id.as_str(), 1)
        .await?
        .into_iter()
        .next();
    let due = due(
        held.campaign,
        newest.as_ref().map(|r| r.fire),
        stored.stored_at,
        not_before,
        now,
    );
    let mut tick = Tick::default();
    for (fire, skip) in due.skipped {
        let skipped = FireOutcome::Skipped(skip);
        if !record(stores, held, fire, skipped, now, &mut tick).await? {
            return Ok(tick);
        }
    }
    let Some(fire) = due.run else {
        // Nothing new fires: finish the newest run if a crash left it unexpanded.
        if let Some(newest) = newest {
            resume(stores, held, &newest, now, &mut tick).await?;
        }
        return Ok(tick);
    };
    let mut outcome = FireOutcome::Run(held.campaign.run_of_fire(fire));
    if held.campaign.schedule.overlap == Overlap::Skip
        && let Some(previous) = previous_run(stores, id.as_str()).await?
    {
        // A previous run a crash left unexpanded is finished (or, past the look-back,
        // cancelled) first: a stale one must not hold this fire.
        if let Some(record) = stores.runs().run(&previous).await?
            && record.total.is_none()
            && record.state != herald_store::RunState::Cancelled
        {
            finish(stores, held, &previous, now, &mut tick).await?;
        }
        if pending(stores, &previous).await? {
            outcome = FireOutcome::Skipped(FireSkip::Overlap { previous });
        }
    }
    let record = fire_record(held, fire, outcome, now);
    let (stored, kept) = stores.fires().record_fire(&record).await?;
    if stored {
        tick.recorded.push(record);
    }
    if let FireOutcome::Run(_) = kept.outcome {
        tick.expanded = Some(expand_fire(stores, held, kept.fire, now).await?);
    }
    Ok(tick)
}

/// Records one skipped fire; `false` when another scheduler recorded that fire otherwise.
async fn record<S: Stores>(
    stores: &S,
    held: Held<'_>,
    fire: DateTime<Utc>,
    outcome: FireOutcome,
    now: DateTime<Utc>,
    tick: &mut Tick,
) -> Result<bool, ExpandError> {
    let record = fire_record(held, fire, outcome, now);
    let (stored, kept) = stores.fires().record_fire(&record).await?;
    if stored {
        tick.recorded.push(record);
        return Ok(true);
    }
    if kept.outcome != record.outcome {
        tracing::info!(campaign = %record.campaign, fire = %fire, outcome = ?kept.outcome, "another scheduler recorded this fire first; following it");
        return Ok(false);
    }
    Ok(true)
}

/// The run the newest record made or skipped for, when a crash left it unexpanded: expanded
/// now if its fire is within the campaign's look-back (as a missed fire would be caught up),
/// cancelled otherwise, so a scheduler down for long never sends a stale fire late.
async fn resume<S: Stores>(
    stores: &S,
    held: Held<'_>,
    newest: &FireRecord,
    now: DateTime<Utc>,
    tick: &mut Tick,
) -> Result<(), ExpandError> {
    let run = match &newest.outcome {
        FireOutcome::Run(run) | FireOutcome::Skipped(FireSkip::Overlap { previous: run }) => {
            run.clone()
        }
        // Missed fires since: the run before them, if any.
        FireOutcome::Skipped(_) => match previous_run(stores, &newest.campaign).await? {
            Some(run) => run,
            None => return Ok(()),
        },
    };
    let run = &run;
    let Some(record) = stores.runs().run(run).await? else {
        // Recorded, never created (a crash right after the record).
        return finish(stores, held, run, now, tick).await;
    };
    if record.total.is_some() || record.state == herald_store::RunState::Cancelled {
        return Ok(());
    }
    finish(stores, held, run, now, tick).await
}

async fn finish<S: Stores>(
    stores: &S,
    held: Held<'_>,
    run: &RunId,
    now: DateTime<Utc>,
    tick: &mut Tick,
) -> Result<(), ExpandError> {
    let Some(fire) = fire_of(held.campaign, run) else {
        return Ok(());
    };
    if now - fire > look_back(held.campaign) {
        if stores.runs().run(run).await?.is_some() {
            tracing::warn!(run = %run, fire = %fire, "a run left unexpanded by a crash is older than the campaign's look-back: cancelled, not sent late");
            stores
                .runs()
                .set_run_state(run, herald_store::RunState::Cancelled)
                .await?;
        }
        return Ok(());
    }
    tick.expanded = Some(expand_fire(stores, held, fire, now).await?);
    Ok(())
}

/// The fire instant a run of `campaign` was made for (`<id>@<instant>`).
fn fire_of(campaign: &Campaign, run: &RunId) -> Option<DateTime<Utc>> {
    let (id, fire) = run.as_str().split_once('@')?;
    if id != campaign.id.as_str() {
        return None;
    }
    let fire = DateTime::parse_from_rfc3339(fire).ok()?.to_utc();
    (campaign.run_of_fire(fire) == *run).then_some(fire)
}

/// The campaign's previous run: the one its newest `run` record made, or the one its newest
/// `overlap` record was skipped for (so a long run of overlaps never loses it), among the
/// records a store keeps.
async fn previous_run<S: Stores>(stores: &S, campaign: &str) -> Result<Option<RunId>, ExpandError> {
    let records = stores.fires().fires(campaign, FIRES_KEPT).await?;
    Ok(records.into_iter().find_map(|r| match r.outcome {
        FireOutcome::Run(run) | FireOutcome::Skipped(FireSkip::Overlap { previous: run }) => {
            Some(run)
        }
        FireOutcome::Skipped(_) => None,
    }))
}

fn fire_record(
    held: Held<'_>,
    fire: DateTime<Utc>,
    outcome: FireOutcome,
    now: DateTime<Utc>,
) -> FireRecord {
    FireRecord {
        campaign: held.campaign.id.to_string(),
        fire,
        outcome,
        hash: held.hash.to_owned(),
        recorded_at: now,
    }
}

async fn expand_fire<S: Stores>(
    stores: &S,
    held: Held<'_>,
    fire: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(RunId, Expansion), ExpandError> {
    expand_occurrence(
        stores,
        held.campaign,
        held.source,
        Occurrence::Fire(fire),
        now,
    )
    .await
}

/// Whether `run` still has deliveries queued or in flight (or is not wholly expanded yet).
pub async fn pending<S: Stores>(stores: &S, run: &RunId) -> Result<bool, ExpandError> {
    let Some(record) = stores.runs().run(run).await? else {
        return Ok(false);
    };
    if record.state == herald_store::RunState::Cancelled {
        return Ok(false);
    }
    if record.total.is_none() {
        return Ok(true);
    }
    let counts = stores.deliveries().counts(run).await?;
    Ok(counts.queued + counts.sending > 0)
}

/// The runs of `campaign` that still have deliveries queued or in flight, newest first (at
/// most `limit`, among the runs its kept fire records name): what `herald run` of a cron
/// campaign works.
pub async fn pending_runs<S: Stores>(
    stores: &S,
    campaign: &str,
    limit: usize,
) -> Result<Vec<RunId>, ExpandError> {
    let mut runs: Vec<RunId> = Vec::new();
    let mut looked = 0;
    for record in stores.fires().fires(campaign, FIRES_KEPT).await? {
        let run = match record.outcome {
            FireOutcome::Run(run) | FireOutcome::Skipped(FireSkip::Overlap { previous: run }) => {
                run
            }
            FireOutcome::Skipped(_) => continue,
        };
        if runs.contains(&run) {
            continue;
        }
        looked += 1;
        if looked > limit {
            break;
        }
        if pending(stores, &run).await? {
            runs.push(run);
        }
    }
    Ok(runs)
}
