//! The recurring campaigns part of `herald status`: each campaign's current version (where a
//! scheduler loaded it, its content hash, since when) and its newest fires, the skipped ones
//! with why.

use herald_store::{
    CampaignProblem, CampaignVersion, FireOutcome, FireRecord, FireSkip, Fires, Stores,
};

use crate::AppError;

/// Fires shown per campaign (the newest).
pub const FIRES_SHOWN: usize = 10;

/// One recurring campaign as `status` shows it.
#[derive(Debug, Clone)]
pub struct CampaignStatus {
    /// Its current version.
    pub version: CampaignVersion,
    /// Its newest fires, newest first.
    pub fires: Vec<FireRecord>,
}

/// Every campaign version in the store, with its newest fires.
pub(super) async fn campaigns(stores: &impl Stores) -> Result<Vec<CampaignStatus>, AppError> {
    let mut all = Vec::new();
    for version in stores.fires().campaigns().await? {
        let fires = stores.fires().fires(&version.campaign, FIRES_SHOWN).await?;
        all.push(CampaignStatus { version, fires });
    }
    Ok(all)
}

/// Every campaign file a scheduler could not load, by path.
pub(super) async fn problems(stores: &impl Stores) -> Result<Vec<CampaignProblem>, AppError> {
    Ok(stores.fires().problems().await?)
}

/// Why a fire made no run, in words.
pub fn describe_skip(skip: &FireSkip) -> String {
    match skip {
        FireSkip::Missed => {
            "missed: not fired within 60 s of its time (no scheduler ran, or it was busy), and \
             catch_up is none"
                .into()
        }
        FireSkip::Superseded => "missed: not fired within 60 s of its time (no scheduler ran, \
                                 or it was busy); catch_up latest ran a later fire"
            .into(),
        FireSkip::Overlap { previous } => {
            format!("overlap: run {previous} still had deliveries pending, and overlap is skip")
        }
    }
}

/// A fire's outcome, in words: `run ID` or `skipped (why)`.
pub fn describe_outcome(outcome: &FireOutcome) -> String {
    match outcome {
        FireOutcome::Run(run) => format!("run {run}"),
        FireOutcome::Skipped(skip) => format!("skipped ({})", describe_skip(skip)),
    }
}
