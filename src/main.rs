//! The `herald` command. For now it only reports its version; the commands arrive with the
//! campaign, engine and channel crates.

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None | Some("--version") | Some("-V") | Some("version") => {
            println!(
                "herald {} (policy core, tzdata {})",
                env!("CARGO_PKG_VERSION"),
                herald_core::tz::TZDATA_VERSION
            );
        }
        Some(other) => {
            eprintln!("herald: unknown command {other:?}; this build only supports --version");
            std::process::exit(1);
        }
    }
}
