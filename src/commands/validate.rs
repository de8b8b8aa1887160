//! `herald validate FILE...`

use crate::cli::ValidateArgs;
use crate::commands::Failure;

pub(crate) fn run(args: &ValidateArgs) -> Result<(), Failure> {
    let mut invalid = 0usize;
    for file in &args.files {
        match herald_campaign::load(file) {
            Ok(campaign) => println!("{}: ok ({})", file.display(), campaign.id),
            Err(diagnostics) => {
                invalid += 1;
                for diagnostic in &diagnostics.0 {
                    eprintln!("{diagnostic}");
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
