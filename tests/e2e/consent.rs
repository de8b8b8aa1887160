//! `herald consent` against the store a run uses: import, opt-in, opt-out, show, and an opt-out
//! made from the command line while a delivery waits, which stops it.

use std::fs;
use std::time::Duration;

use chrono::{DurationRound, TimeDelta, Utc};

use crate::run::{herald_cmd, status, write_webhook_config};
use crate::support::{stderr, stdout};
use herald_testkit::provider::FakeProvider;

#[test]
fn a_cli_opt_out_while_deferred_stops_the_delivery_and_an_older_opt_in_cannot_undo_it() {
    let receiver = FakeProvider::start();
    let dir = tempfile::tempdir().unwrap();
    let (stopped, kept) = ("+79161000001", "+79161000002");
    fs::write(
        dir.path().join("people.csv"),
        format!("id,phone,timezone\nstopped,{stopped},Etc/UTC\nkept,{kept},Etc/UTC\n"),
    )
    .unwrap();
    // A marketing campaign due a few seconds from now (UTC wall time), always inside its window.
    // The margin is for the commands below to run before it is due, on a loaded machine too;
    // the status check after the first run says so if they did not.
    let at = (Utc::now() + TimeDelta::seconds(12))
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap();
    let campaign = format!(
        "id: promo\npurpose: marketing\naudience: {{ source: people.csv }}\n\
         template: {{ name: promo, language: en }}\n\
         schedule: {{ at: {}, in: recipient }}\n\
         send_window: {{ hours: {{ daily: \"00:00-24:00\" }} }}\nspread: 1s\n",
        at.format("%Y-%m-%dT%H:%M:%S")
    );
    fs::write(dir.path().join("c.yaml"), campaign).unwrap();
    write_webhook_config(dir.path(), &receiver.url());
    let ok = |args: &[&str]| {
        let out = herald_cmd(dir.path(), args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };

    // Both opted in a month ago, by an import with its proof.
    let month_ago = (Utc::now() - TimeDelta::days(30)).to_rfc3339();
    fs::write(
        dir.path().join("optins.csv"),
        format!(
            "phone,kind,occurred_at,scope,source,proof\n\
             {stopped},opt_in,{month_ago},marketing,signup-form,https://example.test/form/1\n\
             {kept},opt_in,{month_ago},marketing,signup-form,https://example.test/form/2\n"
        ),
    )
    .unwrap();
    let imported = ok(&["consent", "import", "optins.csv"]);
    assert!(imported.contains("2 events stored"), "{imported}");

    // The run expands and defers both to `at`, then exits: nothing is due yet.
    ok(&["run", "c.yaml", "--until-idle"]);
    let s = status(dir.path());
    assert_eq!(
        (s["queued"].as_u64(), s["sent"].as_u64()),
        (Some(2), Some(0)),
        "{s}"
    );

    // STOP arrives while the delivery waits; then an opt-in older than the STOP arrives late.
    ok(&[
        "consent",
        "opt-out",
        stopped,
        "--scope",
        "marketing",
        "--source",
        "sms-stop",
    ]);
    let week_ago = (Utc::now() - TimeDelta::days(7)).to_rfc3339();
    ok(&[
        "consent",
        "opt-in",
        stopped,
        "--scope",
        "marketing",
        "--at",
        &week_ago,
        "--source",
        "old-crm-export",
    ]);
    let shown = ok(&["consent", "show", stopped]);
    assert!(shown.contains("marketing      opted out"), "{shown}");
    assert!(shown.contains("marketing campaigns: skip"), "{shown}");
    assert!(shown.contains("audit trail (3 events"), "{shown}");
    for source in [
        "source=signup-form proof=https://example.test/form/1",
        "source=old-crm-export",
        "source=sms-stop",
    ] {
        assert!(shown.contains(source), "{source} missing from:\n{shown}");
    }

    // Once `at` (and its one-second spread) has passed, the next run sends to the other only.
    while Utc::now() < at + TimeDelta::seconds(2) {
        std::thread::sleep(Duration::from_millis(100));
    }
    ok(&["run", "c.yaml", "--until-idle"]);
    assert_eq!(receiver.recipients(), ["kept"]);
    let s = status(dir.path());
    assert_eq!(s["sent"].as_u64(), Some(1), "{s}");
    assert_eq!(s["skipped"]["opted_out"].as_u64(), Some(1), "{s}");
}

#[test]
fn bad_consent_input_names_the_row_and_keeps_the_good_rows() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("herald.toml"),
        format!(
            "[store]\nsqlite = \"{}\"\n",
            dir.path().join("herald.db").display()
        ),
    )
    .unwrap();
    fs::write(
        dir.path().join("optins.csv"),
        "phone,kind,occurred_at,scope\n\
         +79161000001,opt_in,2026-10-01T10:00:00Z,marketing\n\
         +7916,opt_in,2026-10-01T10:00:00Z,marketing\n\
         +79161000003,maybe,2026-10-01T10:00:00Z,marketing\n",
    )
    .unwrap();
    let out = herald_cmd(dir.path(), &["consent", "import", "optins.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let errors = stderr(&out);
    assert!(errors.contains("optins.csv:3"), "{errors}");
    assert!(errors.contains("optins.csv:4"), "{errors}");
    assert!(stdout(&out).contains("3 rows read, 1 events stored, 2 rows rejected"));
    let shown = herald_cmd(dir.path(), &["consent", "show", "+79161000001"])
        .output()
        .unwrap();
    assert!(
        stdout(&shown).contains("audit trail (1 events"),
        "{}",
        stdout(&shown)
    );
    let bad = herald_cmd(dir.path(), &["consent", "opt-out", "not-a-phone"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("not-a-phone"), "{}", stderr(&bad));
}
