use std::fs;

use crate::support::{herald, repo, stderr, stdout};

const VALID: &str = r#"id: spring-sale
name: Spring sale
purpose: marketing
audience:
  source: people.csv
template:
  name: spring_sale
  language: { ru: ru, default: en }
schedule:
  at: 2027-03-01T10:00
  in: recipient
delivery: at_most_once
send_window:
  hours: { mon-fri: "09:00-20:00" }
"#;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("people.csv"), "phone\n+7 916 123 45 67\n").unwrap();
    dir
}

#[test]
fn a_valid_file_passes() {
    let dir = project();
    fs::write(dir.path().join("ok.yaml"), VALID).unwrap();
    let out = herald(dir.path(), &["validate", "ok.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok.yaml: ok (spring-sale)"));
}

#[test]
fn a_wrong_enum_value_on_line_12_is_reported_there() {
    let dir = project();
    let text = VALID.replace("delivery: at_most_once", "delivery: at_most_twice");
    assert_eq!(
        text.lines().nth(11),
        Some("delivery: at_most_twice"),
        "the mistake is on line 12"
    );
    fs::write(dir.path().join("bad.yaml"), text).unwrap();
    let out = herald(dir.path(), &["validate", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("bad.yaml:12:11: invalid delivery `at_most_twice`"),
        "{err}"
    );
    assert!(first.contains("did you mean `at_most_once`?"), "{err}");
}

#[test]
fn three_independent_mistakes_give_three_lines() {
    let dir = project();
    let text = VALID
        .replace("purpose: marketing", "purpse: marketing")
        .replace("at: 2027-03-01T10:00", "at: 2027-03-01T25:00")
        .replace("\"09:00-20:00\"", "\"20:00-09:00\"");
    fs::write(dir.path().join("three.yaml"), text).unwrap();
    let out = herald(dir.path(), &["validate", "three.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let diagnostics: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("three.yaml:"))
        .collect();
    assert_eq!(diagnostics.len(), 3, "{err}");
    assert!(
        diagnostics[0].starts_with(
            "three.yaml:3:1: unknown field `purpse` in the campaign; did you mean `purpose`?"
        ),
        "{err}"
    );
    assert!(
        diagnostics[1].starts_with("three.yaml:10:7: invalid schedule.at"),
        "{err}"
    );
    assert!(
        diagnostics[2].starts_with("three.yaml:14:21: invalid hours"),
        "{err}"
    );
}

#[test]
fn every_example_campaign_validates() {
    let campaigns = repo().join("campaigns");
    let mut files: Vec<String> = fs::read_dir(&campaigns)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = herald(repo(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_wrong_flag_exits_1_with_the_usage() {
    let out = herald(repo(), &["plan", "--frobnicate", "x.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("--frobnicate") && err.contains("Usage:"),
        "{err}"
    );
    let help = herald(repo(), &["plan", "--help"]);
    assert_eq!(help.status.code(), Some(0));
}

#[test]
fn a_missing_file_is_a_user_error() {
    let dir = project();
    let out = herald(dir.path(), &["validate", "nope.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("nope.yaml:1:1: cannot read"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_sender_is_checked_only_against_a_config_file() {
    let dir = project();
    fs::write(
        dir.path().join("ok.yaml"),
        VALID.replace("name: Spring sale", "name: Spring sale\nsender: crm"),
    )
    .unwrap();
    let without = herald(dir.path(), &["validate", "ok.yaml"]);
    assert_eq!(
        without.status.code(),
        Some(0),
        "no config, no sender check: {}",
        stderr(&without)
    );
    fs::write(
        dir.path().join("herald.toml"),
        "[senders.main]\nchannel = \"outbox\"\npath = \"o.jsonl\"\n",
    )
    .unwrap();
    // Named, or found as ./herald.toml (the file `run` would read): the error is at the value.
    for args in [
        &["validate", "ok.yaml", "--config", "herald.toml"][..],
        &["validate", "ok.yaml"][..],
    ] {
        let with = herald(dir.path(), args);
        assert_eq!(with.status.code(), Some(1));
        assert!(
            stderr(&with).contains(
                "ok.yaml:3:9: sender `crm` is not configured in herald.toml (configured: main)"
            ),
            "{}",
            stderr(&with)
        );
    }
}
