//! Which configured sender a campaign sends through, or an error pinned to its `sender:` value.
//!
//! `herald_campaign` keeps no positions in the parsed [`Campaign`]; the position of a problem
//! only the config can reveal (a sender it does not define) is found by reading the file's YAML
//! tree once more, only when there is such a problem.

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
    let (line, column, message) = match campaign.sender {
        // The file was read and parsed a moment ago; should it have changed since, the error
        // still stands, at the top of the file.
        Some(_) => {
            let (line, column) = value_position(file).unwrap_or((1, 1));
            (line, column, format!("sender `{name}` {missing}"))
        }
        None => (
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

/// Where the top-level `sender:` value of the campaign file is, if it can be read again.
fn value_position(file: &Path) -> Option<(usize, usize)> {
    // Bounded as the campaign loader reads it: a regular file of at most 1 MiB.
    let text =
        herald_campaign::input::read_document(file, herald_campaign::input::MAX_DOCUMENT_BYTES)
            .ok()?;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const CAMPAIGN: &str = "id: c\npurpose: transactional\naudience: { source: people.csv }\n\
                            template: { name: t, language: en }\n\
                            schedule: { at: 2026-01-01T00:00, in: Etc/UTC }\n";

    fn setup(campaign: &str) -> (tempfile::TempDir, Campaign, Settings) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("people.csv"), "id,phone\n").unwrap();
        std::fs::write(dir.path().join("c.yaml"), campaign).unwrap();
        let config = dir.path().join("herald.toml");
        std::fs::write(
            &config,
            "[senders.other]\nchannel = \"outbox\"\npath = \"o.jsonl\"\n",
        )
        .unwrap();
        let loaded =
            herald_campaign::load(&dir.path().join("c.yaml"), chrono::DateTime::UNIX_EPOCH)
                .unwrap();
        let settings = Settings::load(Some(&config), &BTreeMap::new()).unwrap();
        (dir, loaded, settings)
    }

    #[test]
    fn a_named_sender_the_config_lacks_is_reported_at_its_value() {
        let text = CAMPAIGN.replace("id: c\n", "id: c\nsender:   crm\n");
        let (dir, campaign, settings) = setup(&text);
        let file = dir.path().join("c.yaml");
        let error = check(&file, &campaign, &settings).unwrap();
        assert_eq!((error.line, error.column), (2, 11));
        assert!(
            error
                .message
                .starts_with("sender `crm` is not configured in ")
                && error.message.ends_with("herald.toml (configured: other)"),
            "{}",
            error.message
        );
        assert!(configured(&file, &campaign, &settings).is_err());
    }

    #[test]
    fn without_a_sender_the_campaign_needs_main() {
        let (dir, campaign, settings) = setup(CAMPAIGN);
        let error = check(&dir.path().join("c.yaml"), &campaign, &settings).unwrap();
        assert_eq!((error.line, error.column), (1, 1));
        assert!(
            error
                .message
                .starts_with("no `sender:` given, so the campaign uses `main`, which is not"),
            "{}",
            error.message
        );
        let text = CAMPAIGN.replace("id: c\n", "id: c\nsender: other\n");
        let (dir, campaign, settings) = setup(&text);
        let file = dir.path().join("c.yaml");
        assert_eq!(check(&file, &campaign, &settings), None);
        let (name, sender) = configured(&file, &campaign, &settings).unwrap();
        assert_eq!(
            (name.as_str(), sender.channel),
            ("other", crate::config::ChannelKind::Outbox)
        );
    }
}
