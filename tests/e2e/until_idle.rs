//! `herald run --until-idle` and how a run ends, against the real binary and a receiver on
//! 127.0.0.1:0; and which sender a campaign may name (issue 10, items 10 to 12).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::{CampaignId, RecipientId, RunId};

use crate::run::{herald_cmd, status, write_webhook_config};
use crate::support::{stderr, stdout};
use herald_testkit::provider::{FakeProvider, Match, Reply};

/// `audience` as (id, zone) rows and a transactional campaign `id` with `extra` YAML.
fn campaign(dir: &Path, id: &str, audience: &[String], extra: &str) {
    let mut csv = String::from("id,phone,timezone\n");
    for (i, recipient) in audience.iter().enumerate() {
        writeln!(csv, "{recipient},+7 916 {:07},Etc/UTC", 5_000_000 + i).unwrap();
    }
    fs::write(dir.join("people.csv"), csv).unwrap();
    fs::write(
        dir.join("c.yaml"),
        format!(
            "id: {id}\npurpose: transactional\naudience: {{ source: people.csv }}\n\
             template: {{ name: notice, language: en }}\n{extra}"
        ),
    )
    .unwrap();
}

/// A config whose `main` sender is WhatsApp, pointed at `receiver` as a fake Cloud API.
fn whatsapp_config(dir: &Path, receiver: &FakeProvider) {
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.main]\nchannel = \"whatsapp\"\nphone_number_id = \"1234567890\"\n\
         token_env = \"HERALD_TEST_WA_TOKEN\"\nbase_url = \"http://{}\"\nper_second = 100\n",
        dir.join("herald.db").display(),
        receiver.addr()
    );
    fs::write(dir.join("herald.toml"), config).unwrap();
}

fn run_until_idle(dir: &Path) -> Output {
    herald_cmd(dir, &["run", "c.yaml", "--until-idle"])
        .env("HERALD_TEST_WA_TOKEN", "test-token-0123456789")
        .output()
        .unwrap()
}

/// Issue 10, item 12: a campaign that starts now with `spread: 5s` and an open window. Its
/// recipients are chosen so their spread offsets are 0 s and 4 s: the old `--until-idle` sent
/// the first and left the others "waiting for their window" while it was open.
#[test]
fn until_idle_sends_a_campaign_starting_now_across_its_spread() {
    let receiver = FakeProvider::start();
    let dir = tempfile::tempdir().unwrap();
    let at = Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let run = RunId::new(&CampaignId::parse("soon").unwrap(), &at);
    let offset = |id: &str| {
        herald_core::spread::offset(
            &run,
            &RecipientId::parse(id).unwrap(),
            TimeDelta::seconds(5),
        )
        .num_seconds()
    };
    let mut audience = Vec::new();
    let (mut now, mut later) = (0, 0);
    for i in 0.. {
        let id = format!("r{i}");
        match offset(&id) {
            0 if now < 2 => now += 1,
            4 if later < 3 => later += 1,
            _ => continue,
        }
        audience.push(id);
        if now == 2 && later == 3 {
            break;
        }
    }
    campaign(
        dir.path(),
        "soon",
        &audience,
        &format!("schedule: {{ at: {at}, in: Etc/UTC }}\nspread: 5s\n"),
    );
    write_webhook_config(dir.path(), &receiver.url());
    let out = run_until_idle(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut got = receiver.recipients();
    got.sort();
    audience.sort();
    assert_eq!(got, audience, "{}", stdout(&out));
    let s = status(dir.path());
    assert_eq!(
        (s["sent"].as_u64(), s["queued"].as_u64()),
        (Some(5), Some(0))
    );
    assert!(!stdout(&out).contains("wait"), "{}", stdout(&out));
}

/// Issue 10, item 10: a 429 with `Retry-After: 86400` used to put the sender to sleep inside
/// the permit wait, so `--until-idle` hung for a day. It now stops at once, naming the sender
/// and until when (15 minutes at most), and leaves the deliveries queued for the throttle.
#[test]
fn until_idle_stops_at_once_when_the_sender_is_throttled_for_a_day() {
    let receiver = FakeProvider::start();
    receiver.script(
        Match::Any,
        Reply::Throttle {
            retry_after_secs: 86_400,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let audience: Vec<String> = (0..4).map(|i| format!("r{i}")).collect();
    campaign(
        dir.path(),
        "throttled",
        &audience,
        "schedule: { at: 2026-01-01T00:00, in: Etc/UTC }\nspread: 5s\n",
    );
    whatsapp_config(dir.path(), &receiver);
    let before: DateTime<Utc> = Utc::now();
    let out = run_until_idle(dir.path());
    let after: DateTime<Utc> = Utc::now();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let marker = "the provider throttles sender `main` until ";
    let until = text
        .split_once(marker)
        .and_then(|(_, rest)| rest.split(';').next())
        .unwrap_or_else(|| panic!("{text}"));
    let until: DateTime<Utc> = until.parse().unwrap();
    // Obeyed for 15 minutes, not a day: counted from when the answer came, between the two.
    let floor = |t: DateTime<Utc>| t - TimeDelta::nanoseconds(t.timestamp_subsec_nanos().into());
    assert!(
        until >= floor(before) + TimeDelta::minutes(15) && until <= after + TimeDelta::minutes(15),
        "{until} not 15 minutes after {before}..{after}"
    );
    assert!(
        text.contains("4 for the provider's throttle to pass"),
        "{text}"
    );
    let s = status(dir.path());
    assert_eq!(
        (s["sent"].as_u64(), s["queued"].as_u64()),
        (Some(0), Some(4))
    );
    assert_eq!(s["waits"]["throttle"]["count"].as_u64(), Some(4), "{s}");
}

/// Issue 11, item 6: a sender block (131048) is the sender's state, not a pause of the run.
/// `run` exits 1 naming the sender, the code and how to clear it; run again, it refuses to
/// start (nothing reaches the provider); `status` shows the block; `herald resume --sender`
/// clears it and the next run sends the rest.
#[test]
fn a_sender_block_stops_run_until_resume_sender() {
    let receiver = FakeProvider::start();
    receiver.script(Match::Any, Reply::BLOCK);
    let dir = tempfile::tempdir().unwrap();
    let audience: Vec<String> = (0..3).map(|i| format!("r{i}")).collect();
    campaign(
        dir.path(),
        "blocked",
        &audience,
        "schedule: { at: 2026-01-01T00:00, in: Etc/UTC }\nspread: 5s\n",
    );
    whatsapp_config(dir.path(), &receiver);
    let run = |args: &[&str]| {
        herald_cmd(dir.path(), args)
            .env("HERALD_TEST_WA_TOKEN", "test-token-0123456789")
            .output()
            .unwrap()
    };
    let out = run(&["run", "c.yaml", "--until-idle"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let errors = stderr(&out);
    assert!(
        errors.contains("sender `main` is blocked by the provider since"),
        "{errors}"
    );
    assert!(errors.contains("(131048: "), "{errors}");
    assert!(errors.contains("herald resume --sender main"), "{errors}");
    let requests = receiver.count();
    assert!(requests >= 1, "the block came from the provider");

    // Blocked: a second run refuses to start and sends nothing.
    for args in [
        &["run", "c.yaml"][..],
        &["run", "c.yaml", "--until-idle"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("nothing was sent"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(receiver.count(), requests, "no request while blocked");

    let s = status(dir.path());
    assert_eq!(s["state"], "active", "a block is not a pause: {s}");
    assert_eq!(s["sender_state"]["state"], "blocked", "{s}");
    assert_eq!(s["sender_state"]["blocked"]["code"], "131048", "{s}");
    assert_eq!(s["sent"].as_u64(), Some(0), "{s}");
    assert_eq!(s["queued"].as_u64(), Some(3), "nothing lost: {s}");
    let table = stdout(&run(&["status"]));
    assert!(table.contains("sender main: blocked since "), "{table}");
    assert!(table.contains("herald resume --sender main"), "{table}");

    receiver.clear_script();
    let out = run(&["resume", "--sender", "main"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("sender main resumed: cleared the provider's block"),
        "{}",
        stdout(&out)
    );
    let out = run(&["resume", "--sender", "main"]);
    assert!(
        stdout(&out).contains("sender main was not blocked"),
        "{}",
        stdout(&out)
    );
    let out = run(&["run", "c.yaml", "--until-idle"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = status(dir.path());
    assert_eq!(
        (s["sent"].as_u64(), s["queued"].as_u64()),
        (Some(3), Some(0)),
        "{s}"
    );
    assert_eq!(s["sender_state"]["state"], "ok", "{s}");
}

/// `herald resume` needs to be told what to resume; a sender nobody knows is an error.
#[test]
fn resume_names_its_forms_and_refuses_an_unknown_sender() {
    let receiver = FakeProvider::start();
    let dir = tempfile::tempdir().unwrap();
    whatsapp_config(dir.path(), &receiver);
    let out = herald_cmd(dir.path(), &["resume"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let errors = stderr(&out);
    assert!(
        errors.contains("herald resume --sender NAME") && errors.contains("herald resume RUN"),
        "{errors}"
    );
    let out = herald_cmd(dir.path(), &["resume", "--sender", "mian"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no sender `mian`") && stderr(&out).contains("configured: main"),
        "{}",
        stderr(&out)
    );
    let out = herald_cmd(dir.path(), &["resume", "nope@2026-01-01T00:00"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no run nope@2026-01-01T00:00"),
        "{}",
        stderr(&out)
    );
}

/// Issue 10, item 11: with a config that defines only `[senders.other]`, a campaign naming
/// `main` was "sent" into ./herald-outbox.jsonl. The implicit outbox exists only without any
/// config file; a sender the config lacks is an error at its `sender:` value.
#[test]
fn a_sender_the_config_lacks_is_an_error_at_its_value() {
    let dir = tempfile::tempdir().unwrap();
    campaign(
        dir.path(),
        "named",
        &["r0".to_owned()],
        "sender: main\nschedule: { at: 2026-01-01T00:00, in: Etc/UTC }\n",
    );
    fs::write(
        dir.path().join("herald.toml"),
        format!(
            "[store]\nsqlite = \"{}\"\n[senders.other]\nchannel = \"outbox\"\npath = \"other.jsonl\"\n",
            dir.path().join("herald.db").display()
        ),
    )
    .unwrap();
    let expected = "c.yaml:5:9: sender `main` is not configured in ";
    // `run` reads ./herald.toml; `validate` and `plan` check against it too, or a named one.
    for (args, with_flag) in [
        (&["run", "c.yaml"][..], true),
        (&["run", "c.yaml"][..], false),
        (&["validate", "c.yaml"][..], false),
        (&["validate", "c.yaml"][..], true),
        (&["plan", "c.yaml"][..], true),
    ] {
        let mut cmd = if with_flag {
            herald_cmd(dir.path(), args)
        } else {
            bare(dir.path(), args)
        };
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let errors = stderr(&out);
        assert!(errors.contains(expected), "{args:?}: {errors}");
        assert!(errors.contains("(configured: other)"), "{errors}");
    }
    assert!(!dir.path().join("herald-outbox.jsonl").exists());
    assert!(!dir.path().join("other.jsonl").exists());
}

/// Without any config file the implicit `main` outbox sends, and `run` says where it wrote.
#[test]
fn without_a_config_file_run_says_where_the_messages_went() {
    let dir = tempfile::tempdir().unwrap();
    campaign(
        dir.path(),
        "demo",
        &["r0".to_owned(), "r1".to_owned()],
        "schedule: { at: 2026-01-01T00:00, in: Etc/UTC }\nspread: 5s\n",
    );
    let out = bare(dir.path(), &["run", "c.yaml", "--until-idle"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let outbox = dir.path().join("herald-outbox.jsonl");
    assert_eq!(fs::read_to_string(&outbox).unwrap().lines().count(), 2);
    let errors = stderr(&out);
    assert!(errors.contains("no config file"), "{errors}");
    assert!(
        errors.contains(&outbox.canonicalize().unwrap().display().to_string()),
        "{errors}"
    );
    // A campaign naming another sender has nowhere to go.
    let text = fs::read_to_string(dir.path().join("c.yaml"))
        .unwrap()
        .replace("id: demo", "id: demo\nsender: crm");
    fs::write(dir.path().join("crm.yaml"), text).unwrap();
    let out = bare(dir.path(), &["run", "crm.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("crm.yaml:2:9: sender `crm` is not configured: there is no config file"),
        "{}",
        stderr(&out)
    );
}

/// `herald` in `dir` without `--config` or `HERALD_CONFIG`, its store under `dir`.
fn bare(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("HERALD_CONFIG")
        .env("XDG_DATA_HOME", dir);
    cmd
}
