//! The scheduler role: the campaigns a scheduler holds (files named on the command line and
//! the files of a campaign directory) made into runs, again and again for recurring ones.
//!
//! [`CampaignSet::step`] is one pass, driven by the caller's clock (the binary's loop in
//! [`run_scheduler`], a test's manual clock): it rescans the directory, schedules each one-off
//! campaign once per version (idempotently, as `herald scheduler FILE` always has), registers
//! each recurring campaign's version in the store and ticks it (`herald_engine::recurring`:
//! the fires due, each recorded once in the store whoever fires it, a run expanded per fire).
//!
//! # Bad input
//! A file of the directory that does not validate, or names a sender the config lacks, is
//! reported (logged as a warning with its `file:line:col` diagnostics, and stored for `herald
//! status`) and its previous valid version, if any, keeps firing. One campaign failing (its
//! audience changed under an unfinished run, say) does not keep the others from being
//! scheduled: it is logged and tried again at the next step.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_campaign::dir::{CampaignDir, DirEvent};
use herald_engine::Shutdown;
use herald_engine::expand::{ExpandError, Expansion, RunSource};
use herald_engine::recurring::{Held, register, tick};
use herald_store::{CampaignProblem, FireRecord, Fires, MAX_PROBLEM_BYTES, StoreError, cut_to};

use crate::outage::Outage;
use crate::schedule::{CampaignFile, Scheduled, schedule};
use crate::{AppError, AppStores, Settings};

/// How often a campaign directory is rescanned.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(2);

/// The longest a scheduler sleeps between steps, whatever the schedules say.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// What happened in a step, for the caller to print or count.
#[derive(Debug, Clone)]
pub enum Event {
    /// A directory file took effect (new, or changed).
    Loaded {
        /// The file.
        path: PathBuf,
        /// Its campaign.
        campaign: String,
    },
    /// A directory file was refused; its previous valid version, if any, stays in effect.
    Invalid {
        /// The file.
        path: PathBuf,
        /// `file:line:col: message` lines.
        diagnostics: String,
    },
    /// A directory file is gone: its campaign fires no more (a run already started goes on).
    Removed {
        /// The file.
        path: PathBuf,
        /// Its campaign, if it had a valid version.
        campaign: Option<String>,
    },
    /// A one-off campaign scheduled.
    Scheduled(Box<Scheduled>),
    /// A fire recorded by this scheduler.
    Fired(FireRecord),
    /// A fire's run expanded (or found expanded by another scheduler).
    Expanded {
        /// The run.
        run: herald_core::RunId,
        /// What expansion did.
        expansion: Expansion,
    },
    /// A campaign could not be scheduled this step (tried again at the next).
    Failed {
        /// Its file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// The campaigns one scheduler holds.
pub struct CampaignSet {
    files: Vec<CampaignFile>,
    dir: Option<CampaignDir>,
    last_scan: Option<DateTime<Utc>>,
    /// One-off campaigns scheduled, by id: the hash scheduled.
    scheduled: BTreeMap<String, String>,
    /// Recurring campaigns registered in the store by this scheduler, by id: the hash.
    registered: BTreeMap<String, String>,
    /// Problems of directory files to record in the store (`None` clears), in order.
    problem_writes: Vec<(String, Option<CampaignProblem>)>,
    /// Campaigns that came (back) into the directory after the first scan, by id: when. They
    /// never fire for an instant before (see `herald_engine::recurring::tick`).
    not_before: BTreeMap<String, DateTime<Utc>>,
    /// Directory files invalid with no valid version loaded by this process (it started while
    /// they were broken): the version the store holds for that source stands in, so a broken
    /// edit keeps the previous version firing across a restart too. `None` until looked up.
    fallbacks: BTreeMap<PathBuf, Option<CampaignFile>>,
    /// Campaigns whose last attempt failed, with the message said (said again only when it
    /// changes).
    failing: BTreeMap<PathBuf, String>,
    /// Whether a scan of the directory has succeeded.
    scanned: bool,
}

impl CampaignSet {
    /// `files` (validated, their senders checked) and, with `dir`, the campaign files in it.
    pub fn new(files: Vec<CampaignFile>, dir: Option<PathBuf>) -> Self {
        Self {
            files,
            dir: dir.map(CampaignDir::new),
            last_scan: None,
            scheduled: BTreeMap::new(),
            registered: BTreeMap::new(),
            problem_writes: Vec::new(),
            not_before: BTreeMap::new(),
            fallbacks: BTreeMap::new(),
            failing: BTreeMap::new(),
            scanned: false,
        }
    }

    /// Whether the set may fire again later (a directory, or a recurring campaign): the
    /// scheduler keeps running; otherwise one step schedules everything there is.
    pub fn keeps_firing(&self) -> bool {
        self.dir.is_some() || self.files.iter().any(CampaignFile::is_recurring)
    }

    /// The files of the directory that do not load now, with their diagnostics.
    pub fn problems(&self) -> Vec<(PathBuf, String)> {
        self.dir.as_ref().map_or_else(Vec::new, |dir| {
            dir.problems()
                .into_iter()
                .map(|(path, text)| (path.to_owned(), text.to_owned()))
                .collect()
        })
    }

    /// The campaigns in effect now: the command line's, then the directory's (a directory
    /// campaign with the id of a command-line one is left out: the command line wins).
    pub fn current(&self) -> Vec<CampaignFile> {
        let mut all: Vec<CampaignFile> = self.files.clone();
        if let Some(dir) = &self.dir {
            for loaded in dir.current() {
                if all.iter().any(|f| f.campaign.id == loaded.campaign.id) {
                    continue;
                }
                all.push(CampaignFile::from_parts(
                    loaded.path.clone(),
                    loaded.text.clone(),
                    loaded.campaign.clone(),
                ));
            }
        }
        for fallback in self.fallbacks.values().flatten() {
            if !all.iter().any(|f| f.campaign.id == fallback.campaign.id) {
                all.push(fallback.clone());
            }
        }
        all
    }

    /// One pass at `now` (see the module doc). A store that becomes unavailable is waited out
    /// (up to the store's outage budget) and the pass made again, which only adds what is
    /// missing.
    pub async fn step<S: AppStores>(
        &mut self,
        stores: &S,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> Result<Vec<Event>, AppError> {
        let mut events = self.scan(settings, now);
        let mut outage = Outage::new(stores.outage_budget());
        loop {
            match self.fire_all(stores, settings, now, &mut events).await {
                Ok(()) => return Ok(events),
                Err(Failure::Unavailable(error)) => {
                    let delay = outage.wait(&*error, "the scheduler")?;
                    tokio::time::sleep(delay).await;
                }
                Err(Failure::Halt(error)) => return Err(error),
                Err(Failure::User(message)) => return Err(AppError::User(message)),
            }
        }
    }

    /// When the next step is worth making after one at `now`: the next fire of a recurring
    /// campaign, the next rescan of the directory, at most [`MAX_SLEEP`] away.
    pub fn next_step(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let mut next = now + TimeDelta::from_std(MAX_SLEEP).unwrap_or_default();
        if self.dir.is_some() {
            next = next.min(now + TimeDelta::from_std(SCAN_INTERVAL).unwrap_or_default());
        }
        for file in self.current() {
            if let Some(fire) = file.campaign.next_fires(now, 1).first() {
                next = next.min(*fire);
            }
        }
        next
    }

    fn scan(&mut self, settings: &Settings, now: DateTime<Utc>) -> Vec<Event> {
        let Some(dir) = self.dir.as_mut() else {
            return Vec::new();
        };
        let interval = TimeDelta::from_std(SCAN_INTERVAL).unwrap_or_default();
        if self
            .last_scan
            .is_some_and(|last| now >= last && now - last < interval)
        {
            return Vec::new();
        }
        // The first scan that succeeds loads what was there all along: only campaigns that
        // appear in a later one came (back) now.
        let first = !self.scanned;
        self.last_scan = Some(now);
        let before: Vec<String> = dir
            .current()
            .iter()
            .map(|loaded| loaded.campaign.id.to_string())
            .collect();
        let found = match dir.scan(now) {
            Ok(found) => found,
            Err(error) => {
                tracing::error!(dir = %dir.root().display(), error = %error, "the campaign directory could not be read; the campaigns loaded before stay in effect");
                return Vec::new();
            }
        };
        self.scanned = true;
        let mut events = Vec::new();
        for event in found {
            match event {
                DirEvent::Loaded { loaded, replaced } => {
                    let file = CampaignFile::from_parts(
                        loaded.path.clone(),
                        loaded.text.clone(),
                        loaded.campaign.clone(),
                    );
                    if let Err(error) = file.sender(settings) {
                        let diagnostics = error.to_string();
                        tracing::warn!(path = %loaded.path.display(), diagnostics = %diagnostics, "campaign file refused; its previous version, if any, stays in effect");
                        dir.refuse(&loaded.path, diagnostics.clone());
                        self.problem_writes
                            .push(problem(&loaded.path, &diagnostics, now));
                        if !dir.current().iter().any(|l| l.path == loaded.path) {
                            self.fallbacks.entry(loaded.path.clone()).or_insert(None);
                        }
                        events.push(Event::Invalid {
                            path: loaded.path,
                            diagnostics,
                        });
                        continue;
                    }
                    tracing::info!(path = %loaded.path.display(), campaign = %loaded.campaign.id, hash = %loaded.hash, replaced = replaced.as_deref().unwrap_or(""), "campaign file loaded");
                    self.problem_writes
                        .push((loaded.path.display().to_string(), None));
                    self.fallbacks.remove(&loaded.path);
                    events.push(Event::Loaded {
                        path: loaded.path,
                        campaign: loaded.campaign.id.to_string(),
                    });
                }
                DirEvent::Invalid {
                    path,
                    diagnostics,
                    kept,
                } => {
                    tracing::warn!(path = %path.display(), diagnostics = %diagnostics, kept = kept.as_deref().unwrap_or(""), "campaign file invalid; its previous version, if any, stays in effect");
                    self.problem_writes.push(problem(&path, &diagnostics, now));
                    if kept.is_none() {
                        self.fallbacks.entry(path.clone()).or_insert(None);
                    }
                    events.push(Event::Invalid { path, diagnostics });
                }
                DirEvent::Removed { path, campaign } => {
                    tracing::info!(path = %path.display(), campaign = campaign.as_deref().unwrap_or(""), "campaign file removed: it fires no more (a run already started goes on)");
                    self.problem_writes.push((path.display().to_string(), None));
                    self.fallbacks.remove(&path);
                    events.push(Event::Removed { path, campaign });
                }
            }
        }
        if !first {
            for loaded in dir.current() {
                let id = loaded.campaign.id.to_string();
                if !before.contains(&id) {
                    self.not_before.insert(id, now);
                }
            }
        }
        events
    }

    async fn fire_all<S: AppStores>(
        &mut self,
        stores: &S,
        settings: &Settings,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) -> Result<(), Failure> {
        // Recorded before anything fires, so `status` shows a refused file even when a
        // campaign below fails; kept until written (a store outage retries the pass).
        while let Some((source, problem)) = self.problem_writes.first() {
            stores
                .fires()
                .set_problem(source, problem.as_ref())
                .await
                .map_err(|e| classify(source, ExpandError::Store(e)))?;
            self.problem_writes.remove(0);
        }
        self.look_up_fallbacks(stores, settings, now).await?;
        for file in self.current() {
            let id = file.campaign.id.to_string();
            let result = if file.is_recurring() {
                self.fire_one(stores, settings, &file, now, events).await
            } else if self.scheduled.get(&id) != Some(&file.hash) {
                match schedule(stores, &file, settings, now).await {
                    Ok(scheduled) => {
                        self.scheduled.insert(id, file.hash.clone());
                        events.push(Event::Scheduled(Box::new(scheduled)));
                        Ok(())
                    }
                    Err(AppError::User(message)) => Err(Failure::User(message)),
                    Err(other) => Err(Failure::Halt(other)),
                }
            } else {
                Ok(())
            };
            match result {
                Ok(()) => {
                    self.failing.remove(&file.path);
                }
                // Said once per distinct failure, not at every step it is tried again.
                Err(Failure::User(message)) => {
                    if self.failing.get(&file.path) != Some(&message) {
                        tracing::error!(path = %file.path.display(), error = %message, "campaign not scheduled; tried again at every step");
                        self.failing.insert(file.path.clone(), message.clone());
                        events.push(Event::Failed {
                            path: file.path.clone(),
                            message,
                        });
                    }
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// The stored versions standing in for broken files this process never loaded.
    async fn look_up_fallbacks<S: AppStores>(
        &mut self,
        stores: &S,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let wanted: Vec<PathBuf> = self
            .fallbacks
            .iter()
            .filter(|(_, found)| found.is_none())
            .map(|(path, _)| path.clone())
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let versions = stores
            .fires()
            .campaigns()
            .await
            .map_err(|e| classify("the campaign directory", ExpandError::Store(e)))?;
        for path in wanted {
            let source = path.display().to_string();
            let Some(version) = versions.iter().find(|v| v.source == source) else {
                // Nothing stored for it: nothing stands in (looked up again only if it
                // breaks anew).
                self.fallbacks.remove(&path);
                continue;
            };
            match stored_version(&path, version, settings, now) {
                Ok(stored) => {
                    tracing::warn!(path = %source, campaign = %version.campaign, hash = %version.hash, "the file is broken: its version stored before keeps firing");
                    self.fallbacks.insert(path, Some(stored));
                }
                Err(message) => {
                    tracing::warn!(path = %source, error = %message, "the file is broken and its stored version cannot stand in");
                    self.fallbacks.remove(&path);
                }
            }
        }
        Ok(())
    }

    async fn fire_one<S: AppStores>(
        &mut self,
        stores: &S,
        settings: &Settings,
        file: &CampaignFile,
        now: DateTime<Utc>,
        events: &mut Vec<Event>,
    ) -> Result<(), Failure> {
        let id = file.campaign.id.to_string();
        let path = file.path.display().to_string();
        if self.registered.get(&id) != Some(&file.hash) {
            let (sender, _) = file.sender(settings).map_err(Failure::from)?;
            let held = held(file, &path, &sender);
            register(stores, held, now)
                .await
                .map_err(|e| classify(&path, e))?;
            self.registered.insert(id.clone(), file.hash.clone());
        }
        // A fire uses the version current in the store: another scheduler may have loaded
        // other content for this id since (it replaced ours, and said so in its log).
        let stored = stores
            .fires()
            .campaign(&id)
            .await
            .map_err(|e| classify(&path, ExpandError::Store(e)))?;
        let Some(stored) = stored else {
            return Err(Failure::User(format!(
                "{path}: campaign {id}: no version stored (registered and gone since?)"
            )));
        };
        let current = if stored.hash == file.hash {
            Cow::Borrowed(file)
        } else {
            match stored_version(&file.path, &stored, settings, now) {
                Ok(current) => Cow::Owned(current),
                Err(message) => {
                    return Err(Failure::User(format!(
                        "{path}: campaign {id}: the version stored by another scheduler \
                         ({}, SHA-256 {}) cannot be used here: {message}",
                        stored.source, stored.hash
                    )));
                }
            }
        };
        let (sender, _) = current.sender(settings).map_err(Failure::from)?;
        let source = current.path.display().to_string();
        let not_before = self.not_before.get(&id).copied();
        let tick = tick(
            stores,
            held(&current, &source, &sender),
            &stored,
            not_before,
            now,
        )
        .await
        .map_err(|e| classify(&path, e))?;
        for record in tick.recorded {
            tracing::info!(campaign = %record.campaign, fire = %record.fire, outcome = ?record.outcome, "fire recorded");
            events.push(Event::Fired(record));
        }
        if let Some((run, expansion)) = tick.expanded {
            events.push(Event::Expanded { run, expansion });
        }
        Ok(())
    }
}

fn held<'a>(file: &'a CampaignFile, path: &'a str, sender: &'a str) -> Held<'a> {
    Held {
        campaign: &file.campaign,
        hash: &file.hash,
        source: RunSource {
            path,
            sender,
            text: &file.text,
        },
    }
}

/// A stored version of a campaign, validated here: its audience is read beside `file` (the
/// schedulers of one deployment share the directory layout).
fn stored_version(
    file: &std::path::Path,
    version: &herald_store::CampaignVersion,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<CampaignFile, String> {
    let base = file.parent().unwrap_or_else(|| std::path::Path::new("."));
    let campaign = herald_campaign::parse(&version.source, base, &version.text, now)
        .map_err(|d| d.to_string())?;
    let stored = CampaignFile::from_parts(
        PathBuf::from(&version.source),
        version.text.clone(),
        campaign,
    );
    stored.sender(settings).map_err(|e| e.to_string())?;
    if stored.hash != version.hash {
        return Err("its text does not match its hash".into());
    }
    Ok(stored)
}

fn problem(
    path: &std::path::Path,
    diagnostics: &str,
    now: DateTime<Utc>,
) -> (String, Option<CampaignProblem>) {
    let source = path.display().to_string();
    let problem = CampaignProblem {
        source: source.clone(),
        diagnostics: cut_to(diagnostics, MAX_PROBLEM_BYTES).to_owned(),
        at: now,
    };
    (source, Some(problem))
}

/// Why a pass failed: the store (waited out), a campaign (logged, tried again), or for good.
enum Failure {
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    User(String),
    Halt(AppError),
}

impl From<AppError> for Failure {
    fn from(error: AppError) -> Self {
        match error {
            AppError::User(message) => Failure::User(message),
            other => Failure::Halt(other),
        }
    }
}

fn classify(path: &str, error: ExpandError) -> Failure {
    match error {
        ExpandError::Store(StoreError::Unavailable(why)) => Failure::Unavailable(why),
        ExpandError::Store(other) => Failure::from(AppError::from(other)),
        other => Failure::User(format!("{path}: {other}")),
    }
}

/// The store's now ([`herald_store::Stores::now`]), waiting out an unavailable store.
pub async fn store_now<S: AppStores>(stores: &S) -> Result<DateTime<Utc>, AppError> {
    let mut outage = Outage::new(stores.outage_budget());
    loop {
        match stores.now().await {
            Ok(now) => return Ok(now),
            Err(StoreError::Unavailable(why)) => {
                let delay = outage.wait(&*why, "the store's time")?;
                tokio::time::sleep(delay).await;
            }
            Err(other) => return Err(AppError::from(other)),
        }
    }
}

/// Steps `set` at the times it asks for, by the store's clock, until `shutdown` fires.
pub async fn run_scheduler<S: AppStores>(
    stores: &S,
    settings: &Settings,
    set: &mut CampaignSet,
    shutdown: Shutdown,
    mut on_events: impl FnMut(&[Event]),
) -> Result<(), AppError> {
    let mut wake_on = shutdown.clone();
    loop {
        if shutdown.is_shutdown() {
            return Ok(());
        }
        // Fires are timed by the store's clock, as leases and rate slots are: schedulers on
        // machines whose clocks disagree still agree on which fires are due.
        let now = store_now(stores).await?;
        let events = set.step(stores, settings, now).await?;
        on_events(&events);
        if !set.keeps_firing() {
            return Ok(());
        }
        let now = store_now(stores).await?;
        let next = set.next_step(now);
        let wait = (next - now)
            .to_std()
            .unwrap_or_default()
            .clamp(Duration::from_millis(50), MAX_SLEEP);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake_on.recv() => {}
        }
    }
}
