//! `herald validate FILE...`

use std::path::Path;

use herald_campaign::Campaign;

use crate::cli::ValidateArgs;
use crate::commands::{Failure, environment};
use crate::output::Output;

/// The senders of the config, when one is given (`--config` or `HERALD_CONFIG`): `validate` and
/// `plan` need no config file, and check `sender` only against one that is named.
pub(crate) fn configured_senders(config: Option<&Path>) -> Result<Option<Vec<String>>, Failure> {
    Ok(configured_settings(config)?.map(|settings| settings.senders.keys().cloned().collect()))
}

/// The settings, when a config is given (as for [`configured_senders`]).
pub(crate) fn configured_settings(
    config: Option<&Path>,
) -> Result<Option<herald_app::Settings>, Failure> {
    let env = environment()?;
    if config.is_none() && !env.contains_key("HERALD_CONFIG") {
        return Ok(None);
    }
    herald_app::Settings::load(config, &env)
        .map(Some)
        .map_err(|e| Failure::User(e.to_string()))
}

/// A message when the campaign names a sender the given config lacks.
pub(crate) fn unknown_sender(campaign: &Campaign, senders: Option<&Vec<String>>) -> Option<String> {
    let senders = senders?;
    let name = campaign.sender.as_ref().map_or("main", |s| s.as_str());
    (!senders.iter().any(|s| s == name)).then(|| {
        format!(
            "sender `{name}` is not configured (configured: {})",
            senders.join(", ")
        )
    })
}

pub(crate) fn run(
    config: Option<&Path>,
    args: &ValidateArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let senders = configured_senders(config)?;
    // A cron schedule must fire within five years of now (the validator reads no clock).
    let now = chrono::Utc::now();
    let mut invalid = 0usize;
    for file in &args.files {
        match herald_campaign::load(file, now) {
            Ok(campaign) => match unknown_sender(&campaign, senders.as_ref()) {
                None => writeln!(out, "{}: ok ({})", file.display(), campaign.id)?,
                Some(message) => {
                    invalid += 1;
                    writeln!(out.stderr(), "{}: {message}", file.display());
                }
            },
            Err(diagnostics) => {
                invalid += 1;
                for diagnostic in &diagnostics.0 {
                    writeln!(out.stderr(), "{diagnostic}");
                }
            }
        }
    }
    match invalid {
        0 => Ok(()),
        n => Err(Failure::User(format!(
            "{n} of {} file(s) invalid",
            args.files.len()
        ))),
    }
}
