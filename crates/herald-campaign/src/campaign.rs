//! The validated campaign: every field parsed into its domain type, so the engine and `plan`
//! never see raw YAML.

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone as _, Utc};
use herald_core::template::{LanguageMap, ParamTemplate};
use herald_core::window::Place;
use herald_core::{
    CampaignId, FrequencyCap, Purpose, RunId, SendWindow, SenderId, TimeZone, UnknownZone,
};

use crate::audience::Segment;
use crate::fires::CronFires;

/// A campaign ready to plan or run.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// Unique id.
    pub id: CampaignId,
    /// Human-readable name.
    pub name: String,
    /// The configured sender, when named.
    pub sender: Option<SenderId>,
    /// Decides the consent needed.
    pub purpose: Purpose,
    /// Who receives it.
    pub audience: Audience,
    /// What they receive.
    pub template: Template,
    /// When.
    pub schedule: Schedule,
    /// When sending is allowed.
    pub window: SendWindow,
    /// The file has no `send_window` (allowed for transactional and service campaigns only):
    /// `window` is open at every hour, and `plan` says so.
    pub always_open: bool,
    /// What to do when a recipient's zone is unknown.
    pub unknown_zone: UnknownZone,
    /// Per-recipient caps, including the ones law presets add.
    pub caps: Vec<FrequencyCap>,
    /// Messages per second, if the campaign lowers the sender's rate.
    pub rate_per_second: Option<u32>,
    /// Delivery guarantee.
    pub delivery: DeliveryMode,
    /// Width over which deliveries due together are released.
    pub spread: TimeDelta,
}

/// The audience source and filter.
#[derive(Debug, Clone)]
pub struct Audience {
    /// The file, resolved against the campaign file's directory.
    pub source: PathBuf,
    /// The path as written, for messages.
    pub source_as_written: String,
    /// The `where` filter.
    pub segment: Segment,
    /// Country for national-format phones.
    pub default_country: Option<herald_core::Region>,
}

/// The template message.
#[derive(Debug, Clone)]
pub struct Template {
    /// Provider-approved name.
    pub name: String,
    /// Language per locale.
    pub language: LanguageMap,
    /// Optional header.
    pub header: Option<Header>,
    /// Named body parameters, in file order.
    pub params: Vec<(String, ParamTemplate)>,
    /// Quick-reply buttons.
    pub buttons: Vec<Button>,
}

/// A template header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// Media by link.
    Media {
        /// image, video or document.
        kind: MediaKind,
        /// The https URL.
        link: String,
    },
    /// A text parameter.
    Text(ParamTemplate),
}

/// Media header kinds WhatsApp accepts by link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// image/jpeg, image/png.
    Image,
    /// video/mp4.
    Video,
    /// application/pdf and friends.
    Document,
}

/// A quick-reply button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// The payload returned when tapped.
    pub payload: String,
    /// What a tap does.
    pub on_reply: Option<OnReply>,
}

/// Effects of a button tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnReply {
    /// Record an opt-out of marketing.
    OptOut,
    /// Tag the recipient.
    Tag(String),
}

/// At-most-once (default) or at-least-once (design §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryMode {
    /// An unknown outcome stays unknown.
    #[default]
    AtMostOnce,
    /// An unknown outcome is retried.
    AtLeastOnce,
}

/// When a campaign fires.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// One-off or recurring.
    pub kind: ScheduleKind,
    /// Deliveries expire this long after their scheduled instant.
    pub expires_after: Option<TimeDelta>,
    /// What a scheduler does about fires missed while none ran (cron only; the default with `at`).
    pub catch_up: CatchUp,
    /// What a fire does while the previous run still has deliveries pending (cron only; the
    /// default with `at`).
    pub overlap: Overlap,
}

/// `schedule.catch_up`: what a scheduler does about fires missed while none ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatchUp {
    /// Run the newest missed fire, once: the latest news still goes out, a backlog does not.
    #[default]
    Latest,
    /// Run none of them: the next fire is the next one to come.
    None,
}

/// `schedule.overlap`: what a fire does while the previous run still has deliveries pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// The fire does not start a run, so a slow run never stacks up behind itself.
    #[default]
    Skip,
    /// The fire starts its run alongside the previous one.
    Allow,
}

/// One-off or recurring.
#[derive(Debug, Clone)]
pub enum ScheduleKind {
    /// A single run at a local wall time.
    At {
        /// The wall time.
        local: NaiveDateTime,
        /// As written in the file (it names the run).
        written: String,
        /// In whose zone.
        zone: AtZone,
    },
    /// Recurring runs.
    Cron {
        /// The 5-field expression as written.
        expression: String,
        /// The parsed schedule (6 fields, seconds first).
        schedule: Box<cron::Schedule>,
        /// The zone it runs in.
        zone: TimeZone,
    },
}

/// Where an `at` time is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtZone {
    /// In each recipient's own zone.
    Recipient,
    /// In one zone for everybody.
    Fixed(TimeZone),
}

impl Campaign {
    /// The run id of a one-off campaign; for a cron campaign the run of its next fire after `now`.
    pub fn run_at(&self, now: DateTime<Utc>) -> Option<(RunId, Option<DateTime<Utc>>)> {
        match &self.schedule.kind {
            ScheduleKind::At { written, .. } => Some((RunId::new(&self.id, written), None)),
            ScheduleKind::Cron { .. } => {
                let fire = self.next_fires(now, 1).into_iter().next()?;
                Some((self.run_of_fire(fire), Some(fire)))
            }
        }
    }

    /// The run id of the fire at `fire` (`<id>@<fire as RFC 3339 UTC, seconds, Z>`): one run
    /// per fire, named the same by every process that computes it.
    pub fn run_of_fire(&self, fire: DateTime<Utc>) -> RunId {
        RunId::new(
            &self.id,
            &fire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    }

    /// The next `n` fires strictly after `now` (empty for one-off campaigns). DST-correct: see
    /// [`crate::cron`]'s rules.
    pub fn next_fires(&self, now: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.cron_fires()
            .map(|fires| fires.next(now, n))
            .unwrap_or_default()
    }

    /// The newest `limit` fires in `(after, until]`, ascending (empty for one-off campaigns):
    /// what a scheduler that last looked at `after` has missed by `until`. Fires more than
    /// [`HORIZON_YEARS`](crate::cron::HORIZON_YEARS) after `after` are not looked for.
    pub fn fires_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        self.cron_fires()
            .map(|fires| fires.between(after, until, limit))
            .unwrap_or_default()
    }

    fn cron_fires(&self) -> Option<CronFires<'_>> {
        match &self.schedule.kind {
            ScheduleKind::Cron {
                expression,
                schedule,
                zone,
            } => Some(CronFires::new(schedule, expression, *zone)),
            ScheduleKind::At { .. } => None,
        }
    }

    /// The instant a recipient's delivery is scheduled for. For an unknown zone read in each
    /// recipient's zone, the latest of the candidate zones' instants: only then has the wall
    /// time been reached everywhere the recipient might be.
    pub fn scheduled_instant(
        &self,
        place: &Place,
        fire: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        match (&self.schedule.kind, fire) {
            (_, Some(fire)) => Some(fire),
            (
                ScheduleKind::At {
                    local,
                    zone: AtZone::Fixed(zone),
                    ..
                },
                None,
            ) => wall_to_utc(*local, *zone),
            (
                ScheduleKind::At {
                    local,
                    zone: AtZone::Recipient,
                    ..
                },
                None,
            ) => place
                .zones()
                .iter()
                .filter_map(|zone| wall_to_utc(*local, *zone))
                .max(),
            (ScheduleKind::Cron { .. }, None) => None,
        }
    }
}

/// A wall time in a zone as an instant: the earlier of a repeated time; for a skipped time, the
/// instant the clocks jump (the first existing local time after it).
pub fn wall_to_utc(local: NaiveDateTime, zone: TimeZone) -> Option<DateTime<Utc>> {
    for minutes in 0..=180 {
        match zone
            .tz()
            .from_local_datetime(&(local + TimeDelta::minutes(minutes)))
        {
            LocalResult::Single(t) => {
                if minutes == 0 {
                    return Some(t.to_utc());
                }
                // Inside a gap: the first existing minute; step back to the exact jump.
                let after = t.to_utc();
                let mut instant = after;
                while zone.local(instant - TimeDelta::seconds(1)) > local {
                    instant -= TimeDelta::seconds(1);
                    if after - instant > TimeDelta::hours(3) {
                        break;
                    }
                }
                return Some(instant);
            }
            LocalResult::Ambiguous(earliest, _) => return Some(earliest.to_utc()),
            LocalResult::None => {}
        }
    }
    None
}

impl FromStr for DeliveryMode {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "at_most_once" => Ok(DeliveryMode::AtMostOnce),
            "at_least_once" => Ok(DeliveryMode::AtLeastOnce),
            _ => Err(()),
        }
    }
}
