//! Scheduling: a campaign file into a run in the store, with everything a worker on any machine
//! needs to send it (the sender's name and the campaign's text), and its audience expanded into
//! deliveries. `herald scheduler`, `herald serve` and `herald run` all schedule through here.
//!
//! Expansion is idempotent (deliveries are keyed by run and recipient, the run is sealed only
//! once its whole audience is in), so a scheduler restarted after a crash mid-expansion
//! schedules the same files again and only what is missing is added.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use herald_campaign::Campaign;
use herald_campaign::input::{MAX_DOCUMENT_BYTES, read_document};
use herald_core::RunId;
use herald_engine::expand::{ExpandError, Expansion, RunSource, expand};
use herald_store::{Deliveries, RunCounts, Runs, StoreError};

use crate::config::SenderSettings;
use crate::outage::Outage;
use crate::{AppError, AppStores, Settings};

/// A campaign file read and validated, with its exact text (stored with its runs).
#[derive(Debug, Clone)]
pub struct CampaignFile {
    /// The file as given.
    pub path: PathBuf,
    /// Its text, as validated.
    pub text: String,
    /// The campaign.
    pub campaign: Campaign,
    /// SHA-256 of `text`, lowercase hex: the version of the campaign (see
    /// `herald_store::CampaignVersion`).
    pub hash: String,
}

impl CampaignFile {
    /// Reads `path` once (a regular file of at most 1 MiB) and validates that text, so the text
    /// stored with the run is exactly the campaign that was checked.
    pub fn load(path: &Path, now: DateTime<Utc>) -> Result<Self, AppError> {
        let label = path.display().to_string();
        let text = read_document(path, MAX_DOCUMENT_BYTES)
            .map_err(|e| AppError::User(format!("{label}:1:1: {}", e.kind)))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let campaign = herald_campaign::parse(&label, base, &text, now)
            .map_err(|d| AppError::User(d.to_string()))?;
        Ok(Self::from_parts(path.to_owned(), text, campaign))
    }

    /// A campaign already read and validated from `path`.
    pub fn from_parts(path: PathBuf, text: String, campaign: Campaign) -> Self {
        let hash = text_hash(&text);
        Self {
            path,
            text,
            campaign,
            hash,
        }
    }

    /// Whether the campaign is recurring (`schedule.cron`).
    pub fn is_recurring(&self) -> bool {
        matches!(
            self.campaign.schedule.kind,
            herald_campaign::campaign::ScheduleKind::Cron { .. }
        )
    }

    /// The configured sender the campaign names: an error at its `sender:` value otherwise.
    pub fn sender<'s>(
        &self,
        settings: &'s Settings,
    ) -> Result<(String, &'s SenderSettings), AppError> {
        crate::sender::configured(&self.path, &self.campaign, settings)
    }
}

/// SHA-256 of a campaign's text, lowercase hex.
pub fn text_hash(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A campaign scheduled: its run, what expansion did, and the run's counts after it.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// The campaign file.
    pub file: PathBuf,
    /// The run.
    pub run: RunId,
    /// Its sender.
    pub sender: String,
    /// What expansion did.
    pub expansion: Expansion,
    /// The run's counts after expansion.
    pub counts: RunCounts,
}

/// Creates the run of `file` as of `now` (its `at`, or the next cron fire), with its sender
/// and text, and expands its audience; idempotent. A store that becomes unavailable is waited
/// out (see the app's `outage` module) and the scheduling tried again from the start, which adds only
/// what is missing.
pub async fn schedule<S: AppStores>(
    stores: &S,
    file: &CampaignFile,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Scheduled, AppError> {
    let mut outage = Outage::new(stores.outage_budget());
    let what = file.path.display().to_string();
    loop {
        match schedule_once(stores, file, settings, now).await {
            Ok(scheduled) => return Ok(scheduled),
            Err(Attempt::Unavailable(error)) => {
                let delay = outage.wait(&*error, &what)?;
                tokio::time::sleep(delay).await;
            }
            Err(Attempt::Failed(error)) => return Err(error),
        }
    }
}

/// Why one scheduling attempt failed: worth trying again, or not.
enum Attempt {
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    Failed(AppError),
}

impl From<StoreError> for Attempt {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(why) => Attempt::Unavailable(why),
            other => Attempt::Failed(AppError::from(other)),
        }
    }
}

impl From<AppError> for Attempt {
    fn from(error: AppError) -> Self {
        Attempt::Failed(error)
    }
}

async fn schedule_once<S: AppStores>(
    stores: &S,
    file: &CampaignFile,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Scheduled, Attempt> {
    let (sender, _) = file.sender(settings)?;
    let source = file.path.display().to_string();
    let from = RunSource {
        path: &source,
        sender: &sender,
        text: &file.text,
    };
    let (run, expansion) =
        expand(stores, &file.campaign, from, now)
            .await
            .map_err(|e| match e {
                ExpandError::Store(s) => Attempt::from(s),
                other => Attempt::Failed(AppError::User(format!("{source}: {other}"))),
            })?;
    adopt(stores, &run, &sender, &file.text, now).await?;
    let counts = stores.deliveries().counts(&run).await?;
    Ok(Scheduled {
        file: file.path.clone(),
        run,
        sender,
        expansion,
        counts,
    })
}

/// A run stored by an older herald (before runs kept their sender and campaign text) adopts
/// them when its campaign is scheduled again: until then no worker's scope includes it. The
/// store adopts them on `create_run` of the existing run; expansion skips that call for a run
/// whose audience was already expanded, so it is made here.
async fn adopt<S: AppStores>(
    stores: &S,
    run: &RunId,
    sender: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(record) = stores.runs().run(run).await? else {
        return Ok(());
    };
    if record.run.sender.is_some() && record.run.campaign_text.is_some() {
        return Ok(());
    }
    let mut adopted = record.run;
    adopted.sender = Some(sender.to_owned());
    adopted.campaign_text = Some(text.to_owned());
    stores.runs().create_run(&adopted, now).await?;
    tracing::info!(run = %run, sender, "a run stored by an older herald adopted its sender and campaign text");
    Ok(())
}
