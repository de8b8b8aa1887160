//! `herald init`: create the configured store of a new deployment.

use std::path::Path;

use herald_app::Initialised;

use crate::commands::{Failure, environment, runtime, settings};
use crate::output::Output;

pub(crate) fn run(config: Option<&Path>, out: &mut Output) -> Result<(), Failure> {
    let env = environment()?;
    let settings = settings(config, &env)?;
    match runtime()?.block_on(herald_app::init_store(&settings, &env))? {
        Initialised::Created(location) => writeln!(out, "created a new store at {location}")?,
        Initialised::Existing(location) => {
            writeln!(
                out,
                "the store at {location} exists already; nothing changed"
            )?;
        }
    }
    Ok(())
}
