//! Which configured sender a campaign sends through, or an error pinned to its `sender:` value.
//!
//! `herald_campaign` keeps no positions in the parsed [`Campaign`]; the position of a problem
//! only the config can reveal (a sender it does not define) is found by reading the file's YAML
//! tree once more, only when there is such a problem.

use std::io::Read;
use std::path::Path;

use herald_campaign::yaml::{Node, NodeKind};
use herald_campaign::{Campaign, Diagnostic};

use crate::AppError;
use crate::config::{IMPLICIT_SENDER, SenderSettings, Settings};

/// The name the campaign's `sender:` gives, or the implicit `main` when it gives none.
pub fn name(campaign: &Campaign) -> &str {
    campaign
        .sender
        .as_ref()
        .map_or(IMPLICIT_SENDER, |s| s.as_str())
}

/// The sender `campaign` (read from `file`) names, as `settings` configure it; an error at the
/// `sender:` value (`file:line:col: …`) when they do not.
pub fn configured<'s>(
    file: &Path,
    campaign: &Campaign,
    settings: &'s Settings,
) -> Result<(String, &'s SenderSettings), AppError> {
    let name = name(campaign);
    match settings.senders.get(name) {
        Some(sender) => Ok((name.to_owned(), sender)),
        None => Err(AppError::User(
            unknown(file, campaign, settings).to_string(),
        )),
    }
}

/// The error for a campaign naming a sender the settings lack, or `None` if they have it.
pub fn check(file: &Path, campaign: &Campaign, settings: &Settings) -> Option<Diagnostic> {
    (!settings.senders.contains_key(name(campaign))).then(|| unknown(file, campaign, settings))
}

fn unknown(file: &Path, campaign: &Campaign, settings: &Settings) -> Diagnostic {
    let name = name(campaign);
    let missing = match &settings.file {
        Some(config) => {
            let known: Vec<&str> = settings.senders.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            };
            format!(
                "is not configured in {} (configured: {known})",
                config.display()
            )
        }
        None => "is not configured: there is no config file (--config, HERALD_CONFIG, \
                 ./herald.toml), and without one the only sender is the implicit `main` outbox"
            .to_owned(),
    };
    let (line, column, message) = match (campaign.sender.as_ref(), value_position(file)) {
        (Some(_), Some((line, column))) => (line, column, format!("sender `{name}` {missing}")),
        _ => (
            1,
            1,
            format!("no `sender:` given, so the campaign uses `{name}`, which {missing}"),
        ),
    };
    Diagnostic {
        file: file.display().to_string(),
        line,
        column,
        message,
    }
}

/// The most of a campaign file read to find a position: the campaign loader's own limit.
const MAX_CAMPAIGN_BYTES: u64 = 1024 * 1024;

/// Where the top-level `sender:` value of the campaign file is, if it can be read again.
fn value_position(file: &Path) -> Option<(usize, usize)> {
    let text = read_bounded(file)?;
    let label = file.display().to_string();
    let (root, _) = herald_campaign::yaml::parse(&label, &text).ok()?;
    let NodeKind::Map(entries) = &root.kind else {
        return None;
    };
    entries
        .iter()
        .find(|(key, _)| key.as_str() == Some("sender"))
        .map(|(_, value): &(Node, Node)| (value.line, value.column))
}

/// The file's text if it is a regular file of at most [`MAX_CAMPAIGN_BYTES`].
fn read_bounded(file: &Path) -> Option<String> {
    let handle = std::fs::File::open(file).ok()?;
    if !handle.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    handle
        .take(MAX_CAMPAIGN_BYTES + 1)
        .read_to_string(&mut text)
        .ok()?;
    (text.len() as u64 <= MAX_CAMPAIGN_BYTES).then_some(text)
}
