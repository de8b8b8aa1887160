use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use serde_json::Value;

use crate::support::{herald, stderr, stdout};

const ZONES: [&str; 44] = [
    "Europe/Moscow",
    "Europe/Kaliningrad",
    "Asia/Yekaterinburg",
    "Asia/Novosibirsk",
    "Asia/Vladivostok",
    "Asia/Kamchatka",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tehran",
    "Asia/Kabul",
    "Asia/Yangon",
    "Asia/Tokyo",
    "Asia/Shanghai",
    "Asia/Dubai",
    "Asia/Almaty",
    "Australia/Adelaide",
    "Australia/Darwin",
    "Australia/Lord_Howe",
    "Australia/Eucla",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Pacific/Honolulu",
    "Pacific/Marquesas",
    "America/St_Johns",
    "America/Halifax",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "America/Sao_Paulo",
    "America/Santiago",
    "America/Caracas",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Lisbon",
    "Africa/Cairo",
    "Africa/Lagos",
    "Atlantic/Azores",
    "Asia/Colombo",
    "Europe/Istanbul",
];

/// A window check written here, independent of herald-core's search: convert the instant to the
/// zone's wall clock with chrono-tz and compare with the campaign's hours.
fn inside_window(at: DateTime<Utc>, zone: &str) -> bool {
    let tz: chrono_tz::Tz = zone.parse().unwrap();
    let local = at.with_timezone(&tz).naive_local();
    let t = local.time();
    let between = |a: (u32, u32), b: (u32, u32)| {
        t >= NaiveTime::from_hms_opt(a.0, a.1, 0).unwrap()
            && t < NaiveTime::from_hms_opt(b.0, b.1, 0).unwrap()
    };
    if local.date() == NaiveDate::from_ymd_opt(2026, 12, 1).unwrap() {
        return false;
    }
    match local.weekday() {
        Weekday::Sat => between((10, 0), (14, 0)),
        Weekday::Sun => false,
        _ => between((9, 0), (12, 30)) || between((14, 0), (20, 0)),
    }
}

const CAMPAIGN: &str = r#"id: big-plan
purpose: marketing
audience: { source: people.csv }
template:
  name: promo
  language: en
  params: { name: "{{ first_name | default('friend') }}" }
schedule: { at: 2026-11-30T09:00, in: recipient, expires_after: 7d }
send_window:
  hours: { mon-fri: ["09:00-12:30", "14:00-20:00"], sat: "10:00-14:00" }
  holidays: ["2026-12-01"]
"#;

#[test]
fn ten_thousand_recipients_in_44_zones_are_planned_inside_their_windows() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,phone,timezone,first_name\n");
    for i in 0..10_000u32 {
        // Every 97th recipient has no zone.
        let zone = if i % 97 == 0 {
            ""
        } else {
            ZONES[(i as usize * 7) % ZONES.len()]
        };
        // Unknown-zone rows are Kazakh numbers (+7 7xx): planned for every zone of Kazakhstan.
        let phone = if zone.is_empty() {
            format!("+7 701 {:07}", i)
        } else {
            format!("+7 916 {:07}", i)
        };
        writeln!(csv, "r{i},{phone},{zone},Name{i}").unwrap();
    }
    fs::write(dir.path().join("people.csv"), csv).unwrap();
    fs::write(dir.path().join("c.yaml"), CAMPAIGN).unwrap();

    let out = herald(
        dir.path(),
        &[
            "plan",
            "c.yaml",
            "--now",
            "2026-11-29T00:00:00Z",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value =
        serde_json::from_str(&stdout(&out)).expect("plan --format json is one JSON document");
    let rows = doc["recipients"].as_array().unwrap();
    assert_eq!(rows.len(), 10_000);

    let mut zones_seen = BTreeSet::new();
    let (mut sends, mut conservative) = (0u64, 0u64);
    for row in rows {
        if row["outcome"] != "send" {
            continue;
        }
        sends += 1;
        let at: DateTime<Utc> = row["send_at_utc"].as_str().unwrap().parse().unwrap();
        let zones: Vec<&str> = row["zones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|z| z.as_str().unwrap())
            .collect();
        if zones.len() > 1 {
            conservative += 1;
        }
        for zone in &zones {
            assert!(
                inside_window(at, zone),
                "{} planned at {at}, outside the window in {zone}",
                row["recipient"]
            );
            zones_seen.insert(zone.to_string());
        }
        assert!(at >= "2026-11-29T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }
    assert!(zones_seen.len() >= 40, "only {} zones", zones_seen.len());
    assert!(conservative > 0, "no unknown-zone recipient was planned");

    let summary = &doc["summary"];
    let skipped: u64 = summary["skipped"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let planned = summary["send"].as_u64().unwrap();
    assert_eq!(planned, sends);
    assert_eq!(
        planned + skipped + summary["expired"].as_u64().unwrap(),
        10_000
    );
    assert_eq!(summary["audience"].as_u64().unwrap(), 10_000);
    let by_hour: u64 = summary["by_hour_utc"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_hour, planned);
}

#[test]
fn bad_rows_are_reported_and_counted_while_the_plan_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,phone,timezone,first_name\n\
               a,+7 916 000 00 01,Europe/Moscow,Anna\n\
               b,+7 916 000 00 02,Europe/Moscow\n\
               c,12345,Europe/Moscow,Carl\n\
               d,+7 916 000 00 01,Europe/Moscow,Dup\n\
               e,+7 916 000 00 05,Mars/Base,Eve\n\
               f,+7 916 000 00 06,Asia/Kolkata,Fay\n";
    fs::write(dir.path().join("people.csv"), csv).unwrap();
    fs::write(dir.path().join("c.yaml"), CAMPAIGN).unwrap();
    let out = herald(
        dir.path(),
        &["plan", "c.yaml", "--now", "2026-11-29T00:00:00Z"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    // Paths are shown as the campaign names them, relative to where herald runs.
    let file = "people.csv";
    assert!(
        err.contains(&format!("{file}:3: expected 4 fields")),
        "malformed row not reported: {err}"
    );
    assert!(
        err.contains(&format!("{file}:4: invalid phone \"12345\"")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:6: unknown time zone \"Mars/Base\"")),
        "{err}"
    );
    let table = stdout(&out);
    assert!(table.contains("skipped(invalid_recipient) 3"), "{table}");
    assert!(table.contains("skipped(duplicate) 1"), "{table}");
    assert!(table.contains("send     2"), "{table}");
    assert!(table.contains("audience 6"), "{table}");
}

#[test]
fn a_cron_campaign_shows_its_next_fire_times() {
    let out = herald(
        crate::support::repo(),
        &[
            "plan",
            "campaigns/weekly-digest.yaml",
            "--now",
            "2026-11-26T12:00:00Z",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "next fires (Europe/Moscow):\n  2026-11-30 10:00 +03:00  2026-11-30T07:00:00Z\n  \
             2026-12-07 10:00 +03:00  2026-12-07T07:00:00Z\n  \
             2026-12-14 10:00 +03:00  2026-12-14T07:00:00Z\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("run weekly-digest@2026-11-30T07:00:00Z"),
        "{text}"
    );
}

#[test]
fn a_bad_now_is_a_user_error() {
    let out = herald(
        crate::support::repo(),
        &[
            "plan",
            "campaigns/black-friday-2026.yaml",
            "--now",
            "tomorrow",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid --now"), "{}", stderr(&out));
}

/// A daily 02:30 in Berlin fires at the spring-forward jump (03:00 CEST) and once on the
/// fall-back day; `plan` shows the local time beside the UTC instant.
#[test]
fn a_cron_campaign_across_dst_changes_fires_once_a_day() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("people.csv"), "phone\n+4915123456789\n").unwrap();
    fs::write(
        dir.path().join("c.yaml"),
        "id: nightly\npurpose: service\naudience: { source: people.csv }\n\
         template: { name: nightly, language: en }\n\
         schedule: { cron: \"30 2 * * *\", timezone: Europe/Berlin }\n",
    )
    .unwrap();
    let plan = |now: &str| {
        let out = herald(dir.path(), &["plan", "c.yaml", "--now", now]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let spring = plan("2026-03-28T12:00:00Z");
    assert!(
        spring.contains(
            "next fires (Europe/Berlin):\n  2026-03-29 03:00 +02:00  2026-03-29T01:00:00Z\n  \
             2026-03-30 02:30 +02:00  2026-03-30T00:30:00Z\n"
        ),
        "{spring}"
    );
    let fall = plan("2026-10-24T12:00:00Z");
    assert!(
        fall.contains(
            "next fires (Europe/Berlin):\n  2026-10-25 02:30 +02:00  2026-10-25T00:30:00Z\n  \
             2026-10-26 02:30 +01:00  2026-10-26T01:30:00Z\n"
        ),
        "{fall}"
    );
}
