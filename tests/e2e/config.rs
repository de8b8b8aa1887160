//! The user's config, wrong: an override that does not parse, a store that cannot be where the
//! config puts it. Exit 1, naming what to fix.

use std::fs;
use std::path::Path;

use crate::run::herald_cmd;
use crate::support::stderr;

fn with_store(dir: &Path, sqlite: &str) {
    fs::write(
        dir.join("herald.toml"),
        format!("[store]\nsqlite = {sqlite:?}\n"),
    )
    .unwrap();
}

#[test]
fn an_unusable_store_location_is_the_users_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("a-directory");
    fs::create_dir(&folder).unwrap();
    let text = dir.path().join("notes.txt");
    fs::write(
        &text,
        "not a database, but long enough to have a header of sorts\n".repeat(20),
    )
    .unwrap();
    for (sqlite, expected) in [
        (String::new(), "store.sqlite: must not be empty".to_owned()),
        (
            folder.display().to_string(),
            format!("cannot use the store at {}", folder.display()),
        ),
        (
            text.display().to_string(),
            format!(
                "cannot use the store at {}: file is not a database",
                text.display()
            ),
        ),
    ] {
        with_store(dir.path(), &sqlite);
        for args in [&["status"][..], &["consent", "show", "+79161000001"]] {
            let out = herald_cmd(dir.path(), args).output().unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{sqlite:?} {args:?}: {err}");
            assert!(err.contains(&expected), "{sqlite:?} {args:?}: {err}");
            assert!(!err.contains("internal error"), "{err}");
        }
    }
}

#[test]
fn a_bad_override_names_the_variable_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("herald.toml"),
        format!(
            "[store]\nsqlite = {:?}\n[senders.main]\nchannel = \"outbox\"\npath = \"o.jsonl\"\n",
            dir.path().join("h.db").display().to_string()
        ),
    )
    .unwrap();
    let out = herald_cmd(dir.path(), &["status"])
        .env("HERALD_SENDERS__MAIN__PER_SECOND", "abc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "HERALD_SENDERS__MAIN__PER_SECOND: senders.main.per_second: invalid type: string \"abc\""
        ),
        "{}",
        stderr(&out)
    );
}
