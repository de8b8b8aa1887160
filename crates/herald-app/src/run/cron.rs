//! `herald run FILE` of a recurring campaign: this process is the campaign's scheduler and its
//! worker. Its fires are recorded in the store as any scheduler's are (so a `herald scheduler`
//! holding the same campaign, or a second `herald run`, makes no second run of a fire), and
//! the runs it works are the campaign's runs still pending, newest fires first looked at.

use chrono::{DateTime, Utc};
use herald_engine::expand::{ExpandError, Expansion, RunSource};
use herald_engine::recurring::{Held, pending_runs, register, tick};
use herald_store::{Fires, RunCounts, Runs, StoreError, Stores};

use super::session::Session;
use super::{Ending, ProgressView, RunReport};
use crate::outage::Outage;
use crate::schedule::CampaignFile;
use crate::{AppError, AppStores};

/// Fire records looked at for the campaign's pending runs.
const PENDING_SEARCH: usize = 20;

/// See [`super::run_campaign`].
pub(super) async fn run_recurring(
    session: &Session,
    file: &CampaignFile,
    on_progress: &mut impl FnMut(&ProgressView),
) -> Result<RunReport, AppError> {
    let path = file.path.display().to_string();
    let held = Held {
        campaign: &file.campaign,
        hash: &file.hash,
        source: RunSource {
            path: &path,
            sender: &session.sender_name,
            text: &file.text,
        },
    };
    let stores = &*session.stores;
    // Registered, like every fire, on the store's clock.
    let registered_at = crate::recurring::store_now(stores).await?;
    retrying(stores, &path, || register(stores, held, registered_at)).await?;
    let mut last: Option<RunReport> = None;
    let mut wake_on = session.shutdown.clone();
    loop {
        if session.shutdown.is_shutdown() {
            return Ok(last.unwrap_or_else(|| nothing(session, file, Ending::Interrupted)));
        }
        // Timed by the store's clock, as every scheduler's fires are.
        let now = crate::recurring::store_now(stores).await?;
        let fired = retrying(stores, &path, || async {
            // Another scheduler may hold other content for this id: then it fires, not this.
            match stores.fires().campaign(file.campaign.id.as_str()).await? {
                Some(stored) => tick(stores, held, &stored, None, now).await,
                None => Err(ExpandError::Store(StoreError::NotFound(format!(
                    "campaign {}: no version stored",
                    file.campaign.id
                )))),
            }
        })
        .await?;
        for record in &fired.recorded {
            tracing::info!(campaign = %record.campaign, fire = %record.fire, outcome = ?record.outcome, "fire recorded");
        }
        let pending = retrying(stores, &path, || {
            pending_runs(stores, file.campaign.id.as_str(), PENDING_SEARCH)
        })
        .await?;
        let next_fire = file.campaign.next_fires(now, 1).first().copied();
        // `--until-idle`: the newest pending run (the fire made now, or the one a killed
        // `herald run` left), worked until idle. Otherwise the oldest pending run that is not
        // paused: a paused run waits for an operator, and new fires keep being recorded.
        let pick = if session.options.until_idle {
            pending.first()
        } else {
            let mut active = None;
            for run in pending.iter().rev() {
                let paused = stores
                    .runs()
                    .run(run)
                    .await?
                    .is_some_and(|r| r.state == herald_store::RunState::Paused);
                if paused {
                    tracing::warn!(run = %run, "a run of this campaign is paused: it waits for `herald resume`, new fires are still recorded");
                } else {
                    active = Some(run);
                    break;
                }
            }
            active
        };
        let Some(run) = pick.cloned() else {
            if session.options.until_idle {
                return Ok(nothing(
                    session,
                    file,
                    Ending::NoFireDue { next: next_fire },
                ));
            }
            let Some(next) = next_fire else {
                return Ok(last
                    .unwrap_or_else(|| nothing(session, file, Ending::NoFireDue { next: None })));
            };
            let wait = (next - crate::recurring::store_now(stores).await?)
                .to_std()
                .unwrap_or_default()
                .min(std::time::Duration::from_secs(30));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = wake_on.recv() => {}
            }
            continue;
        };
        let expansion = match &fired.expanded {
            Some((expanded, expansion)) if *expanded == run => *expansion,
            _ => Expansion {
                inserted: 0,
                total: stores
                    .runs()
                    .run(&run)
                    .await?
                    .and_then(|r| r.total)
                    .unwrap_or_default(),
                already_expanded: true,
            },
        };
        // The worker reads this process's clock: the next fire (a store-clock instant) is
        // turned into the same moment on it, so clocks that disagree neither stop the run
        // early nor spin.
        let stop_at = if session.options.until_idle {
            None
        } else {
            next_fire.map(|fire| session.clock.now() + (fire - now))
        };
        let report = session
            .work_run(
                run,
                expansion,
                None,
                file.campaign.spread,
                stop_at,
                on_progress,
            )
            .await?;
        match report.ending {
            Ending::NextFire(_) | Ending::Done if !session.options.until_idle => {
                last = Some(report);
            }
            _ => return Ok(report),
        }
    }
}

/// A report with no run worked: its `run` names the campaign's epoch fire, which no schedule
/// has; only the ending is shown.
fn nothing(session: &Session, file: &CampaignFile, ending: Ending) -> RunReport {
    let run = file.campaign.run_of_fire(DateTime::<Utc>::UNIX_EPOCH);
    session.report(run, Expansion::default(), RunCounts::default(), ending)
}

/// Runs `attempt` until the store answers, waiting out unavailability up to the store's outage
/// budget (the attempts are idempotent).
async fn retrying<S: AppStores, T, F, Fut>(
    stores: &S,
    what: &str,
    mut attempt: F,
) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ExpandError>>,
{
    let mut outage = Outage::new(stores.outage_budget());
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(ExpandError::Store(StoreError::Unavailable(why))) => {
                let delay = outage.wait(&*why, what)?;
                tokio::time::sleep(delay).await;
            }
            Err(ExpandError::Store(other)) => return Err(AppError::from(other)),
            Err(other) => return Err(AppError::User(format!("{what}: {other}"))),
        }
    }
}
