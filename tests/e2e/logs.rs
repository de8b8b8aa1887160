//! Logs: `HERALD_LOG`, else `RUST_LOG`; a filter herald cannot parse is said, not ignored; colours
//! only on a terminal (stderr is a pipe here, so never).

use std::process::Command;

use crate::run::herald_cmd;
use crate::support::stderr;

/// `herald status` on an empty store, with the given log variables and no others.
fn status(vars: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        format!(
            "[store]\nsqlite = \"{}\"\n",
            dir.path().join("h.db").display()
        ),
    )
    .unwrap();
    let mut cmd: Command = herald_cmd(dir.path(), &["status"]);
    cmd.env_remove("HERALD_LOG")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    cmd.envs(vars.iter().copied());
    cmd.output().unwrap()
}

/// The debug event every command that loads settings logs.
const DEBUG_EVENT: &str = "settings loaded";

#[test]
fn rust_log_is_accepted_and_herald_log_wins_when_both_are_set() {
    let cases: [(&[(&str, &str)], bool); 5] = [
        (&[], false),
        (&[("RUST_LOG", "debug")], true),
        (&[("HERALD_LOG", "debug")], true),
        (&[("HERALD_LOG", "warn"), ("RUST_LOG", "debug")], false),
        (&[("HERALD_LOG", "debug"), ("RUST_LOG", "off")], true),
    ];
    for (vars, logged) in cases {
        let out = status(vars);
        assert_eq!(out.status.code(), Some(0), "{vars:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).contains(DEBUG_EVENT),
            logged,
            "{vars:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn an_invalid_herald_log_is_an_error_and_an_invalid_rust_log_a_warning() {
    let out = status(&[("HERALD_LOG", "herald=loud")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid HERALD_LOG \"herald=loud\""),
        "{}",
        stderr(&out)
    );
    let out = status(&[("RUST_LOG", "herald=loud")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ignoring RUST_LOG \"herald=loud\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn logs_into_a_pipe_carry_no_colour_codes() {
    let out = status(&[("HERALD_LOG", "debug")]);
    let err = stderr(&out);
    assert!(err.contains(DEBUG_EVENT), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}
