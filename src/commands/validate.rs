//! `herald validate FILE...`

use std::path::Path;

use crate::cli::ValidateArgs;
use crate::commands::{Failure, environment};
use crate::output::Output;

/// The settings of the config file, when there is one (`--config`, `HERALD_CONFIG`, then
/// `./herald.toml`, the file `run` would read): `validate` and `plan` need no config file, and
/// check `sender` only against one that exists.
pub(crate) fn config_settings(
    config: Option<&Path>,
) -> Result<Option<herald_app::Settings>, Failure> {
    let env = environment()?;
    if herald_app::Settings::file(config, &env).is_none() {
        return Ok(None);
    }
    herald_app::Settings::load(config, &env)
        .map(Some)
        .map_err(|e| Failure::User(e.to_string()))
}

pub(crate) fn run(
    config: Option<&Path>,
    args: &ValidateArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let settings = config_settings(config)?;
    // A cron schedule must fire within five years of now (the validator reads no clock).
    let now = chrono::Utc::now();
    let mut invalid = 0usize;
    for file in &args.files {
        match herald_campaign::load(file, now) {
            Ok(campaign) => match settings
                .as_ref()
                .and_then(|settings| herald_app::sender::check(file, &campaign, settings))
            {
                None => writeln!(out, "{}: ok ({})", file.display(), campaign.id)?,
                Some(diagnostic) => {
                    invalid += 1;
                    writeln!(out.stderr(), "{diagnostic}");
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
