//! Recurring campaigns in the store: the current version of each campaign (keyed by id, with
//! its content hash) and one record per fire instant, saying whether that fire made a run or
//! was skipped and why.
//!
//! # Exactly one run per fire
//! Every scheduler (`herald scheduler`, `herald serve`, `herald run` of a cron campaign) decides
//! a fire's outcome and then calls [`Fires::record_fire`], which stores it only if no record of
//! that (campaign, fire instant) exists, atomically (one transaction, one script). Whoever
//! stored it first decides: the others read back the stored record and follow it. A run is
//! expanded only for a record whose outcome is [`FireOutcome::Run`]; expansion itself is
//! idempotent (runs and deliveries are keyed), so two schedulers following the same record, or
//! one restarted half-way, still make one run.
//!
//! # Bounds
//! A store keeps the newest [`FIRES_KEPT`] records per campaign (older ones are dropped when a
//! new one is recorded). Nothing is lost by that: schedulers never consider a fire at or before
//! the newest record of its campaign, so a dropped record is never needed again.

use std::future::Future;

use chrono::{DateTime, Utc};
use herald_core::RunId;

use crate::StoreResult;

/// Fire records kept per campaign (the newest).
pub const FIRES_KEPT: usize = 1_000;

/// A campaign's text is at most this many bytes (as campaign files are: 1 MiB).
pub const MAX_CAMPAIGN_TEXT_BYTES: usize = 1 << 20;

/// One version of a campaign, as a scheduler loaded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignVersion {
    /// The campaign id (`[a-z0-9-]+`).
    pub campaign: String,
    /// The SHA-256 of `text`, lowercase hex: two versions are the same iff their hashes are.
    pub hash: String,
    /// The campaign YAML, exactly as validated.
    pub text: String,
    /// Where the scheduler read it (a file path, for status and logs).
    pub source: String,
    /// When this version became the current one.
    pub stored_at: DateTime<Utc>,
}

/// What [`Fires::put_campaign`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionChange {
    /// The store held no version of that id.
    Added,
    /// The store held this very version (same hash): nothing changed (not even `stored_at` or
    /// `source`).
    Unchanged,
    /// The store held another version, now replaced.
    Replaced {
        /// The hash of the version replaced.
        previous_hash: String,
    },
}

/// Why a fire made no run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireSkip {
    /// Missed while no scheduler ran, and the campaign says `catch_up: none`.
    Missed,
    /// Missed while no scheduler ran; `catch_up: latest` ran a later fire instead.
    Superseded,
    /// The previous run still had deliveries pending, and the campaign says `overlap: skip`.
    Overlap {
        /// That run.
        previous: RunId,
    },
}

impl FireSkip {
    /// A stable name, as stored and shown: `missed`, `superseded`, `overlap`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FireSkip::Missed => "missed",
            FireSkip::Superseded => "superseded",
            FireSkip::Overlap { .. } => "overlap",
        }
    }
}

/// What a fire did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireOutcome {
    /// It made this run.
    Run(RunId),
    /// It made none.
    Skipped(FireSkip),
}

/// One fire of a recurring campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireRecord {
    /// The campaign id.
    pub campaign: String,
    /// The fire instant (whole seconds).
    pub fire: DateTime<Utc>,
    /// What it did.
    pub outcome: FireOutcome,
    /// The hash of the campaign version it used (see [`CampaignVersion::hash`]).
    pub hash: String,
    /// When it was recorded (the recording scheduler's now).
    pub recorded_at: DateTime<Utc>,
}

/// Campaign versions and fire records.
pub trait Fires: Send + Sync {
    /// Makes `version` the current version of its campaign id (unless it already is, by hash).
    /// A text over [`MAX_CAMPAIGN_TEXT_BYTES`], a campaign id that is not a valid
    /// [`herald_core::CampaignId`], or a hash that is not 64 lowercase hex digits is refused
    /// (`Conflict`) and stores nothing.
    fn put_campaign(
        &self,
        version: &CampaignVersion,
    ) -> impl Future<Output = StoreResult<VersionChange>> + Send;
    /// The current version of one campaign.
    fn campaign(
        &self,
        campaign: &str,
    ) -> impl Future<Output = StoreResult<Option<CampaignVersion>>> + Send;
    /// The current version of every campaign, by id.
    fn campaigns(&self) -> impl Future<Output = StoreResult<Vec<CampaignVersion>>> + Send;
    /// Stores `record` unless a record of the same (campaign, fire) exists; atomic. Returns
    /// whether this call stored it, and the record now stored (this one, or the one stored
    /// first, unchanged). Drops the campaign's records beyond the newest [`FIRES_KEPT`] (this one
    /// too, if it is older than all of them). A fire instant with a fraction of a second, an
    /// invalid campaign id or a malformed hash is refused (`Conflict`).
    fn record_fire(
        &self,
        record: &FireRecord,
    ) -> impl Future<Output = StoreResult<(bool, FireRecord)>> + Send;
    /// The newest `limit` fire records of a campaign, newest fire first (`limit` is clamped to
    /// [`FIRES_KEPT`]).
    fn fires(
        &self,
        campaign: &str,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<FireRecord>>> + Send;
}
