//! One file's state between scans, and how a scan moves it on: which version is in effect,
//! what problem is shown, and which event (at most one) that is worth.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{DirEvent, Loaded};
use crate::diagnostic::Diagnostic;
use crate::yaml::{self, NodeKind};

/// One file's state between scans.
#[derive(Debug)]
pub(super) struct Entry {
    /// Its content as last read, parsed.
    pub(super) content: Content,
    /// The version in effect from it.
    pub(super) effect: Option<Loaded>,
    /// The version in effect before `effect`, which [`super::CampaignDir::refuse`] falls
    /// back to.
    pub(super) previous: Option<Loaded>,
    /// Why its current content is not in effect.
    pub(super) problem: Option<Problem>,
    /// The caller's refusal of one version (`hash`), until the content changes.
    pub(super) refused: Option<Problem>,
}

/// What the last read of a file gave; kept so unchanged content is not parsed again.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every file is valid: boxing would add an allocation per file to save \
              memory only on the few invalid ones"
)]
pub(super) enum Content {
    /// Valid, with the position of its `id` value (for a duplicate-id diagnostic).
    Valid {
        loaded: Loaded,
        id_at: (usize, usize),
    },
    /// Does not validate.
    Invalid { hash: String, diagnostics: String },
    /// Cannot be read: `path:1:1: reason`.
    Unreadable { diagnostics: String },
}

impl Content {
    /// The SHA-256 of the content (`None`: it could not be read).
    pub(super) fn hash(&self) -> Option<&str> {
        match self {
            Content::Valid { loaded, .. } => Some(&loaded.hash),
            Content::Invalid { hash, .. } => Some(hash),
            Content::Unreadable { .. } => None,
        }
    }
}

/// A reported problem: the same problem is not reported twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    /// The content it is about (`None`: unreadable).
    pub(super) hash: Option<String>,
    /// `file:line:col: message` lines.
    pub(super) diagnostics: String,
}

/// The events of one scan, grouped so stops come before starts.
#[derive(Default)]
pub(super) struct Events {
    pub(super) removed: Vec<DirEvent>,
    pub(super) invalid: Vec<DirEvent>,
    pub(super) loaded: Vec<DirEvent>,
}

impl Entry {
    /// One listed file's new state from its `text` (or why it could not be read) and its
    /// state after the last scan, pushing its event if any.
    pub(super) fn next(
        root: &Path,
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
                    _ => parse(root, &label, path.clone(), text, hash, now),
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
                let refusal = refused
                    .as_ref()
                    .filter(|r| r.hash.as_ref() == Some(&loaded.hash))
                    .cloned();
                refusal.or_else(|| {
                    claimed.get(id).map(|other| Problem {
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
                })
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
                        && refused
                            .as_ref()
                            .is_none_or(|r| r.hash.as_ref() != Some(&l.hash))
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
}

/// Validates new content as `herald validate` does (audience relative to the directory).
fn parse(
    root: &Path,
    label: &str,
    path: PathBuf,
    text: String,
    hash: String,
    now: DateTime<Utc>,
) -> Content {
    match crate::validate::parse(label, root, &text, now) {
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
