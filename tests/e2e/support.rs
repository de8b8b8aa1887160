//! Running the real binary.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `herald` with `args` in `dir`.
pub(crate) fn herald(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("herald runs")
}

/// The repository root (campaigns/ lives there).
pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
