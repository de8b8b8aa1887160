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

mod listing;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::campaign::Campaign;
use crate::diagnostic::Diagnostic;
use crate::yaml::{self, NodeKind};
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

/// One file's state between scans.
#[derive(Debug)]
struct Entry {
    /// Its content as last read, parsed.
    content: Content,
    /// The version in effect from it.
    effect: Option<Loaded>,
    /// The version in effect before `effect`, which [`CampaignDir::refuse`] falls back to.
    previous: Option<Loaded>,
    /// Why its current content is not in effect.
    problem: Option<Problem>,
    /// The caller's refusal of one version (`hash`), until the content changes.
    refused: Option<Problem>,
}

/// What the last read of a file gave; kept so unchanged content is not parsed again.
#[derive(Debug)]
enum Content {
    /// Valid, with the position of its `id` value (for a duplicate-id diagnostic).
    Valid { loaded: Loaded, id_at: (usize, usize) },
    /// Does not validate.
    Invalid { hash: String, diagnostics: String },
    /// Cannot be read: `path:1:1: reason`.
    Unreadable { diagnostics: String },
}

impl Content {
    fn hash(&self) -> Option<&str> {
        match self {
            Content::Valid { loaded, .. } => Some(&loaded.hash),
            Content::Invalid { hash, .. } => Some(hash),
            Content::Unreadable { .. } => None,
        }
    }
}

/// A reported problem: the same problem is not reported twice.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Problem {
    /// The content it is about (`None`: unreadable).
    hash: Option<String>,
    diagnostics: String,
}

/// The events of one scan, grouped so stops come before starts.
#[derive(Default)]
struct Events {
    removed: Vec<DirEvent>,
    invalid: Vec<DirEvent>,
    loaded: Vec<DirEvent>,
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
            let entry = self.next_entry(path.clone(), text, prior, &claimed, now, &mut events);
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

    /// One listed file's new state from its `text` (or why it could not be read) and its
    /// state after the last scan, pushing its event if any.
    fn next_entry(
        &self,
        path: PathBuf,
        text: Result<String, String>,
        prior: Option<Entry>,
        claimed: &BTreeMap<String, PathBuf>,
        now: DateTime<Utc>,
        events: &mut Events,
    ) -> Entry {
        let label = path.display().to_string();
        let (old_content, old_effect, old_previous, old_problem, old_refused) = match prior {
            Some(e) => (Some(e.content), e.effect, e.previous, e.problem, e.refused),
            None => (None, None, None, None, None),
        };
        let old_content_hash = old_content
            .as_ref()
            .and_then(|c| c.hash().map(str::to_owned));
        let content = match text {
            Err(reason) => Content::Unreadable {
                diagnostics: at_start(&label, reason),
            },
            Ok(text) => {
                let hash = sha256_hex(&text);
                match old_content {
                    Some(content) if content.hash() == Some(hash.as_str()) => content,
                    _ => self.parse(&label, path.clone(), text, hash, now),
                }
            }
        };
        // A refusal holds until the content changes.
        let refused = old_refused.filter(|_| {
            old_content_hash.is_some() && old_content_hash.as_deref() == content.hash()
        });
        let problem = match &content {
            Content::Unreadable { diagnostics } => Some(Problem {
                hash: None,
                diagnostics: diagnostics.clone(),
            }),
            Content::Invalid { hash, diagnostics } => Some(Problem {
                hash: Some(hash.clone()),
                diagnostics: diagnostics.clone(),
            }),
            Content::Valid { loaded, id_at } => {
                let id = loaded.campaign.id.as_str();
                if let Some(refusal) = refused.as_ref().filter(|r| r.hash.as_ref() == Some(&loaded.hash)) {
                    Some(refusal.clone())
                } else if let Some(other) = claimed.get(id) {
                    Some(Problem {
                        hash: Some(loaded.hash.clone()),
                        diagnostics: Diagnostic {
                            file: label.clone(),
                            line: id_at.0,
                            column: id_at.1,
                            message: format!(
                                "campaign id `{id}` is already used by {}",
                                other.display()
                            ),
                        }
                        .to_string(),
                    })
                } else {
                    None
                }
            }
        };
        let old_hash = old_effect.as_ref().map(|l| l.hash.clone());
        let (effect, previous) = match (&content, &problem) {
            (Content::Valid { loaded, .. }, None) => match old_effect {
                Some(same) if same.hash == loaded.hash => (Some(same), old_previous),
                replaced => (Some(loaded.clone()), replaced.or(old_previous)),
            },
            // The current content is not in effect: the last valid version stays, unless the
            // caller refused it or an earlier file now holds its id.
            _ => {
                let kept = old_effect.filter(|l| {
                    !claimed.contains_key(l.campaign.id.as_str())
                        && refused.as_ref().is_none_or(|r| r.hash.as_ref() != Some(&l.hash))
                });
                (kept, old_previous)
            }
        };
        let new_hash = effect.as_ref().map(|l| l.hash.clone());
        match (&problem, &effect) {
            (Some(p), _) if Some(p) != old_problem.as_ref() || new_hash != old_hash => {
                events.invalid.push(DirEvent::Invalid {
                    path: path.clone(),
                    diagnostics: p.diagnostics.clone(),
                    kept: effect.as_ref().map(|l| l.campaign.id.to_string()),
                });
            }
            (None, Some(loaded)) if new_hash != old_hash => {
                events.loaded.push(DirEvent::Loaded {
                    loaded: loaded.clone(),
                    replaced: old_hash,
                });
            }
            _ => {}
        }
        Entry {
            content,
            effect,
            previous,
            problem,
            refused,
        }
    }

    /// Validates new content as `herald validate` does (audience relative to the directory).
    fn parse(
        &self,
        label: &str,
        path: PathBuf,
        text: String,
        hash: String,
        now: DateTime<Utc>,
    ) -> Content {
        match crate::validate::parse(label, &self.root, &text, now) {
            Ok(campaign) => Content::Valid {
                id_at: id_position(label, &text),
                loaded: Loaded {
                    path,
                    text,
                    hash,
                    campaign,
                },
            },
            Err(diagnostics) => Content::Invalid {
                hash,
                diagnostics: diagnostics.to_string(),
            },
        }
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

/// `path:1:1: reason`, for a file that cannot be read (as `herald validate` reports it).
fn at_start(label: &str, reason: String) -> String {
    Diagnostic {
        file: label.to_owned(),
        line: 1,
        column: 1,
        message: reason,
    }
    .to_string()
}

/// Where the `id` value of valid campaign YAML is, `(1, 1)` if it cannot be found.
fn id_position(label: &str, text: &str) -> (usize, usize) {
    let Ok((root, _)) = yaml::parse(label, text) else {
        return (1, 1);
    };
    let NodeKind::Map(entries) = &root.kind else {
        return (1, 1);
    };
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some("id"))
        .map_or((1, 1), |(_, v)| (v.line, v.column))
}

/// SHA-256 of `text`, lowercase hex.
fn sha256_hex(text: &str) -> String {
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(text.as_bytes()) {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}
