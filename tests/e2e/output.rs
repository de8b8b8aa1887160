//! Stdout that cannot be written: a reader that leaves early (`herald … | head`) ends the
//! command quietly with the exit code it would have had; a full disk is an error, exit 2. Never
//! a panic (exit 101), for every command that prints.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::run::herald_cmd;
use crate::support::{stderr, stdout};

/// A project whose run ends at once: a transactional campaign already due, `n` recipients, an
/// outbox sender, the store in the temp dir.
fn project(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..n {
        writeln!(csv, "r{i},+7 916 {:07},Europe/Moscow", 1_000_000 + i).unwrap();
    }
    fs::write(dir.path().join("people.csv"), csv).unwrap();
    fs::write(
        dir.path().join("c.yaml"),
        "id: notice\npurpose: transactional\naudience: { source: people.csv }\n\
         template: { name: notice, language: en }\n\
         schedule: { at: 2026-01-01T00:00, in: Etc/UTC }\n",
    )
    .unwrap();
    fs::write(dir.path().join("bad.yaml"), "id: x\npurpose: sometimes\n").unwrap();
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"outbox\"\npath = \"out.jsonl\"\n",
        dir.path().join("herald.db").display()
    );
    fs::write(dir.path().join("herald.toml"), config).unwrap();
    dir
}

/// Every command that writes to stdout, with arguments that succeed on [`project`].
fn commands() -> Vec<Vec<&'static str>> {
    vec![
        vec!["validate", "c.yaml"],
        vec!["plan", "c.yaml"],
        vec!["plan", "c.yaml", "--format", "json"],
        vec!["run", "c.yaml"],
        vec!["status"],
        vec!["status", "--format", "json"],
        vec!["consent", "show", "+79161000001"],
        vec!["consent", "opt-out", "+79161000002", "--scope", "marketing"],
        vec!["schema"],
        vec!["--help"],
    ]
}

/// Runs `cmd` with stdout the write end of a pipe whose read end is already closed, so that
/// every write to stdout fails with `BrokenPipe` (no race with the reader).
fn with_closed_pipe(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped()).output().unwrap()
}

fn with_full_disk(mut cmd: Command) -> Output {
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    cmd.stdout(full).stderr(Stdio::piped()).output().unwrap()
}

fn assert_no_panic(args: &[&str], out: &Output) {
    let err = stderr(out);
    assert!(
        out.status.code() != Some(101) && !err.contains("panicked"),
        "{args:?}: {:?} {err}",
        out.status
    );
}

#[test]
fn a_reader_gone_before_the_first_write_ends_each_command_quietly_with_exit_0() {
    let dir = project(20);
    for args in commands() {
        let out = with_closed_pipe(herald_cmd(dir.path(), &args));
        assert_no_panic(&args, &out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
    // The run went to its end all the same.
    let out = herald_cmd(dir.path(), &["status"]).output().unwrap();
    assert!(stdout(&out).contains("sent     20"), "{}", stdout(&out));
}

#[test]
fn a_closed_pipe_keeps_the_exit_code_the_command_would_have_had() {
    let dir = project(3);
    let args = ["validate", "c.yaml", "bad.yaml", "c.yaml"];
    let out = with_closed_pipe(herald_cmd(dir.path(), &args));
    assert_no_panic(&args, &out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:2:10: invalid purpose"), "{err}");
    assert!(err.contains("1 of 3 file(s) invalid"), "{err}");
    assert!(!err.contains("cannot write"), "{err}");
}

/// Reads the first line, then closes the pipe while the command still has much to write.
fn read_a_line_then_close(mut cmd: Command) -> (String, Output) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    (first, child.wait_with_output().unwrap())
}

#[test]
fn a_reader_that_leaves_after_one_line_ends_plan_and_validate_quietly() {
    // Each output is far larger than a pipe's buffer, so the command is still writing when the
    // reader leaves.
    let dir = project(3_000);
    let many: Vec<&str> = std::iter::once("validate")
        .chain(std::iter::repeat_n("c.yaml", 3_000))
        .collect();
    for args in [
        vec!["plan", "c.yaml"],
        vec!["plan", "c.yaml", "--format", "json"],
        many,
    ] {
        let (first, out) = read_a_line_then_close(herald_cmd(dir.path(), &args));
        assert!(!first.is_empty(), "{:?}", &args[..2]);
        assert_no_panic(&args[..2], &out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{:?}: {}",
            &args[..2],
            stderr(&out)
        );
        assert_eq!(stderr(&out), "", "{:?}", &args[..2]);
    }
}

#[test]
fn a_full_disk_under_stdout_is_an_error_with_exit_2() {
    let dir = project(20);
    for args in commands() {
        let out = with_full_disk(herald_cmd(dir.path(), &args));
        assert_no_panic(&args, &out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("herald: cannot write to standard output: No space left on device"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_full_disk_under_a_failing_validation_still_says_both() {
    let dir = project(1);
    let args = ["validate", "c.yaml", "bad.yaml"];
    let out = with_full_disk(herald_cmd(dir.path(), &args));
    assert_no_panic(&args, &out);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:2:10: invalid purpose"), "{err}");
    assert!(
        err.contains("herald: cannot write to standard output: No space left on device"),
        "{err}"
    );
}

#[test]
fn help_to_a_closed_pipe_or_a_full_disk() {
    let bare = |dir: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
        cmd.current_dir(dir).arg("--help");
        cmd
    };
    let dir = tempfile::tempdir().unwrap();
    let out = with_closed_pipe(bare(dir.path()));
    assert_eq!((out.status.code(), stderr(&out)), (Some(0), String::new()));
    let out = with_full_disk(bare(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
