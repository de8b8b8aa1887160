//! The binary against a real Redis (`[store] redis`): a campaign sent once per recipient and
//! not again, `herald status` on an unreachable one, and the persistence refusal as the operator
//! sees it.

use std::fmt::Write as _;
use std::fs;

use crate::run::herald_cmd;
use crate::support::{stderr, stdout};
use herald_testkit::provider::FakeProvider;
use herald_testkit::redis::{Persistence, RedisServer};

fn config(dir: &std::path::Path, store: &str) {
    fs::write(
        dir.join("herald.toml"),
        format!("[store]\n{store}\n[senders.main]\nchannel = \"outbox\"\npath = \"out.jsonl\"\n"),
    )
    .unwrap();
}

/// `herald status` against a Redis nobody listens on says the store at that URL is unreachable
/// and exits 1; the password (read from its variable) is never shown.
#[test]
fn status_says_an_unreachable_redis_is_unreachable() {
    let server = RedisServer::start();
    let url = server.url();
    drop(server);
    let dir = tempfile::tempdir().unwrap();
    config(
        dir.path(),
        &format!("redis = \"{url}\"\nredis_password_env = \"HERALD_TEST_REDIS_PW\""),
    );
    let output = herald_cmd(dir.path(), &["status"])
        .env("HERALD_TEST_REDIS_PW", "pw-not-to-be-shown")
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("the store at {url} is unreachable")),
        "{err}"
    );
    assert!(!err.contains("pw-not-to-be-shown"), "{err}");
    assert!(stdout(&output).is_empty());
}

/// A worker refuses a Redis without AOF, naming the setting; `herald status` still reads it.
#[test]
fn a_worker_refuses_a_redis_without_aof_and_status_still_reads_it() {
    let server = RedisServer::with(Persistence::RdbOnly);
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &format!("redis = \"{}\"", server.url()));
    let output = herald_cmd(dir.path(), &["worker"]).output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("`appendonly no`"), "{err}");
    assert!(err.contains("Set `appendonly yes`"), "{err}");

    // `status` reads a store Herald refuses to claim on; this one was never initialised, and
    // status says so rather than showing an empty, healthy-looking store.
    let output = herald_cmd(dir.path(), &["status"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("holds no Herald store"),
        "{}",
        stderr(&output)
    );
    // Initialised (AOF on meanwhile), it reads it even with the AOF turned off again.
    server.command(&["CONFIG", "SET", "appendonly", "yes"]);
    server.command(&["CONFIG", "SET", "appendfsync", "always"]);
    let init = herald_cmd(dir.path(), &["init"]).output().unwrap();
    assert_eq!(init.status.code(), Some(0), "{}", stderr(&init));
    server.command(&["CONFIG", "SET", "appendonly", "no"]);
    let output = herald_cmd(dir.path(), &["status"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("no runs yet"),
        "{}",
        stdout(&output)
    );
}

/// `herald run FILE --until-idle` on Redis sends a small campaign through the (fake) provider
/// exactly once per recipient; running it again sends nothing more.
#[test]
fn a_campaign_on_redis_is_sent_once_per_recipient_and_not_again() {
    let server = RedisServer::start();
    let receiver = FakeProvider::start();
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..5 {
        writeln!(csv, "r{i},+7 916 {:07},Europe/Moscow", 4_000_000 + i).unwrap();
    }
    fs::write(dir.path().join("people.csv"), csv).unwrap();
    fs::write(
        dir.path().join("c.yaml"),
        "id: on-redis\npurpose: transactional\naudience: { source: people.csv }\n\
         template: { name: notice, language: en }\n\
         schedule: { at: 2026-01-01T00:00, in: Etc/UTC }\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("herald.toml"),
        format!(
            "[store]\nredis = \"{}\"\n[senders.main]\nchannel = \"webhook\"\nurl = \"{}\"\n\
             per_second = 50\n",
            server.url(),
            receiver.url()
        ),
    )
    .unwrap();
    // Before `herald init`, no command takes the empty Redis for a store.
    let refused = herald_cmd(dir.path(), &["run", "c.yaml", "--until-idle"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("herald init"),
        "{}",
        stderr(&refused)
    );
    assert!(receiver.recipients().is_empty());
    let init = herald_cmd(dir.path(), &["init"]).output().unwrap();
    assert_eq!(init.status.code(), Some(0), "{}", stderr(&init));
    assert!(
        stdout(&init).contains("created a new store"),
        "{}",
        stdout(&init)
    );
    for round in 0..2 {
        let output = herald_cmd(dir.path(), &["run", "c.yaml", "--until-idle"])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "round {round}: {}{}",
            stdout(&output),
            stderr(&output)
        );
        let mut recipients = receiver.recipients();
        assert_eq!(recipients.len(), 5, "round {round}: {recipients:?}");
        recipients.sort();
        recipients.dedup();
        assert_eq!(recipients.len(), 5, "a recipient got two messages");
    }
    let output = herald_cmd(dir.path(), &["status"]).output().unwrap();
    let shown = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(shown.contains("sent     5"), "{shown}");
}
