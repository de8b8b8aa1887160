//! A directory of campaign files, polled: `herald scheduler --campaigns DIR` and `herald serve
//! --campaigns DIR` call [`CampaignDir::scan`] every few seconds and apply the [`DirEvent`]s.
//! A new or changed file takes effect without a restart; an invalid edit is reported with its
//! `file:line:col` diagnostics and the previous valid version of that file stays in effect; a
//! removed file stops.
//!
//! # Why polling, not `notify`
//! A scan every few seconds works the same on every file system: NFS, Docker bind mounts, and
//! Kubernetes ConfigMap volumes (which swap a `..data` symlink) are all places where inotify
//! misses or reorders events. Polling needs no new dependency, a few seconds of latency does
//! not matter for schedules of minute granularity, and tests drive it deterministically by
//! calling `scan` (no timing).
//!
//! # Rules
//! - A file is parsed only when the SHA-256 of its content changed since the last scan (so a
//!   campaign whose audience file appears later is re-checked only when the campaign file is
//!   touched).
//! - Campaign ids are keys: of two files with one id, the later in name order is `Invalid`
//!   (a diagnostic at its `id` naming the other file) and not in effect; once the other file
//!   no longer holds the id, the next scan lets it take effect.
//! - An invalid file keeps its last valid version in effect; `Invalid` is reported once per
//!   distinct problem (again only if what it keeps changes), not on every scan.
//! - A file that becomes valid reports `Loaded` only when its content differs from the version
//!   in effect: a revert to the version in effect clears the problem and reports **nothing**,
//!   as nothing in effect changed ([`CampaignDir::problems`] shows the difference).
//! - Events that take a campaign out of effect come first (`Removed`, then `Invalid`), then
//!   `Loaded`, each in path order: a caller applying them in order never stops an id that moved
//!   to another file in the same scan.

mod entry;
mod listing;

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::campaign::Campaign;
use entry::{Entry, Events, Problem};
use listing::Read;

/// At most this many campaign files in a directory (more is an error for the scan, nothing
/// changes): a bound on the memory and time of one scan, far above any real deployment.
pub const MAX_FILES: usize = 1_000;

/// A valid campaign file as last read.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file, as `root.join(name)`.
    pub path: PathBuf,
    /// Its content (what a run stores as its campaign text).
    pub text: String,
    /// SHA-256 of `text`, lowercase hex: tells versions apart without comparing texts.
    pub hash: String,
    /// The validated campaign.
    pub campaign: Campaign,
}

/// What a scan found changed.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "a scan makes a few events, most of them `Loaded`: boxing would only add an \
              allocation to each and an indirection to every caller's match"
)]
pub enum DirEvent {
    /// A new file, or a changed one, valid: now in effect (`replaced`: the hash it replaces,
    /// for a changed one).
    Loaded {
        /// The version now in effect.
        loaded: Loaded,
        /// The hash of the version of this file it replaces, if one was in effect.
        replaced: Option<String>,
    },
    /// A file that does not validate (or cannot be read) now. `diagnostics` is exactly what
    /// `herald validate` prints (`file:line:col: message` lines). `kept`: the campaign id of
    /// its previous valid version, which stays in effect.
    Invalid {
        /// The file.
        path: PathBuf,
        /// `file:line:col: message` lines.
        diagnostics: String,
        /// The id still in effect from this file, if any.
        kept: Option<String>,
    },
    /// A file that is gone (its campaign, if it had a valid version, is no longer in effect).
    Removed {
        /// The file.
        path: PathBuf,
        /// The id that was in effect from it, if any.
        campaign: Option<String>,
    },
}

/// Why a scan failed as a whole (the directory is missing, unreadable, or holds more than
/// [`MAX_FILES`] files): nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// No such directory.
    #[error("campaign directory {}: does not exist", .path.display())]
    Missing {
        /// The directory.
        path: PathBuf,
    },
    /// The path is a file or something else.
    #[error("campaign directory {}: not a directory", .path.display())]
    NotDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// Listing it failed (permissions, I/O).
    #[error("campaign directory {}: cannot read: {source}", .path.display())]
    Unreadable {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Too many campaign files.
    #[error("campaign directory {}: holds more than {MAX_FILES} campaign files", .path.display())]
    TooManyFiles {
        /// The directory.
        path: PathBuf,
    },
}

/// A polled campaign directory: what each file holds and which versions are in effect.
#[derive(Debug)]
pub struct CampaignDir {
    root: PathBuf,
    /// Every listed file, by path (so by name: one directory).
    files: BTreeMap<PathBuf, Entry>,
}

impl CampaignDir {
    /// A directory not yet scanned: nothing in effect.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            files: BTreeMap::new(),
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads the directory: `*.yaml` and `*.yml` regular files directly in it (not
    /// subdirectories; dotfiles and editor temp/backup files such as `.x.yaml.swp`, `x.yaml~`
    /// ignored because of the suffix rule and a leading dot), sorted by name. A file is
    /// re-parsed only when its content hash changed. `now` is the validation instant.
    pub fn scan(&mut self, now: DateTime<Utc>) -> Result<Vec<DirEvent>, DirError> {
        let paths = listing::list(&self.root)?;
        let mut old = std::mem::take(&mut self.files);
        let mut events = Events::default();
        // Ids in effect from files earlier in name order, and which file holds each.
        let mut claimed: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in paths {
            let prior = old.remove(&path);
            let text = match listing::read(&path) {
                Read::Gone => {
                    if let Some(prior) = prior {
                        old.insert(path, prior);
                    }
                    continue;
                }
                Read::Text(text) => Ok(text),
                Read::Failed(reason) => Err(reason),
            };
            let entry = Entry::next(
                &self.root,
                path.clone(),
                text,
                prior,
                &claimed,
                now,
                &mut events,
            );
            if let Some(effect) = &entry.effect {
                claimed.insert(effect.campaign.id.to_string(), path.clone());
            }
            self.files.insert(path, entry);
        }
        for (path, gone) in old {
            events.removed.push(DirEvent::Removed {
                path,
                campaign: gone.effect.map(|l| l.campaign.id.to_string()),
            });
        }
        let Events {
            mut removed,
            invalid,
            loaded,
        } = events;
        removed.extend(invalid);
        removed.extend(loaded);
        Ok(removed)
    }

    /// The campaigns in effect, by path order.
    pub fn current(&self) -> Vec<&Loaded> {
        self.files
            .values()
            .filter_map(|e| e.effect.as_ref())
            .collect()
    }

    /// Files whose current content is invalid, with their diagnostics (for `status`).
    pub fn problems(&self) -> Vec<(&Path, &str)> {
        self.files
            .iter()
            .filter_map(|(path, e)| {
                e.problem
                    .as_ref()
                    .map(|p| (path.as_path(), p.diagnostics.as_str()))
            })
            .collect()
    }

    /// Marks a loaded file as refused by the caller for a reason the crate cannot check (an
    /// unknown sender in the config): it becomes a problem with `diagnostics` and its previous
    /// valid version (if any, of another hash) stays in effect; re-validated when its content
    /// changes.
    ///
    /// The refusal is of the version in effect from `path`; a path with nothing in effect is
    /// left alone. The previous version comes back only if no other file holds its id now.
    /// When the file's content is not the refused version (an invalid edit keeps an older one
    /// in effect), the problem shown stays the content's own.
    pub fn refuse(&mut self, path: &Path, diagnostics: String) {
        let held: HashSet<String> = self
            .files
            .iter()
            .filter(|(other, _)| other.as_path() != path)
            .filter_map(|(_, e)| e.effect.as_ref().map(|l| l.campaign.id.to_string()))
            .collect();
        let Some(entry) = self.files.get_mut(path) else {
            return;
        };
        let Some(refused) = entry.effect.take() else {
            return;
        };
        let refusal = Problem {
            hash: Some(refused.hash.clone()),
            diagnostics,
        };
        if entry.content.hash() == Some(refused.hash.as_str()) {
            entry.problem = Some(refusal.clone());
        }
        entry.refused = Some(refusal);
        entry.effect = entry
            .previous
            .take()
            .filter(|p| p.hash != refused.hash && !held.contains(p.campaign.id.as_str()));
    }
}
