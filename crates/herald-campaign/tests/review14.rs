//! Review 14: hostile cases for cron fire instants and the polled campaign directory, each
//! asserting a promise of README.md ("Recurring campaigns") or the module docs of `cron`,
//! `fires` and `dir`: DST days with lists and ranges, 30-minute DST (Lord Howe), a skipped
//! day (Samoa), steps across hours, pathological but valid expressions, `fires_between`
//! bounds, and weird directory contents (non-UTF-8 names, a FIFO, an oversized file).

use std::fs;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use herald_campaign::Campaign;
use herald_campaign::dir::{CampaignDir, DirEvent};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn text(expression: &str, zone: &str) -> String {
    format!(
        "id: digest\npurpose: service\naudience: {{ source: people.csv }}\n\
         template: {{ name: digest, language: en }}\n\
         schedule:\n  cron: \"{expression}\"\n  timezone: {zone}\n"
    )
}

fn parse(expression: &str, zone: &str, now: DateTime<Utc>) -> Result<Campaign, String> {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("people.csv"), "phone\n+79161234567\n").unwrap();
    herald_campaign::parse("c.yaml", dir.path(), &text(expression, zone), now)
        .map_err(|d| d.to_string())
}

fn campaign(expression: &str, zone: &str) -> Campaign {
    parse(expression, zone, at("2026-01-01T00:00:00Z"))
        .unwrap_or_else(|d| panic!("{expression} in {zone}: {d}"))
}

fn all(c: &Campaign, after: &str, until: &str) -> Vec<DateTime<Utc>> {
    c.fires_between(at(after), at(until), 10_000)
}

fn utcs(list: &[&str]) -> Vec<DateTime<Utc>> {
    list.iter().map(|s| at(s)).collect()
}

/// A fixed-time list and range (`0,30 1-3`) on Berlin's fall-back day fires each wall time
/// once, the repeated 02:00 and 02:30 at their first occurrence only.
#[test]
fn a_fixed_list_and_range_on_a_fall_back_day_fires_each_wall_time_once() {
    let c = campaign("0,30 1-3 * * *", "Europe/Berlin");
    assert_eq!(
        all(&c, "2026-10-24T21:00:00Z", "2026-10-25T04:00:00Z"),
        utcs(&[
            "2026-10-24T23:00:00Z", // 01:00 CEST
            "2026-10-24T23:30:00Z",
            "2026-10-25T00:00:00Z", // 02:00 CEST (first)
            "2026-10-25T00:30:00Z", // 02:30 CEST (first)
            "2026-10-25T02:00:00Z", // 03:00 CET
            "2026-10-25T02:30:00Z",
        ])
    );
}

/// The same expression on the spring-forward day: 02:00 and 02:30 both mean the jump (03:00
/// CEST), which the real 03:00 names too: one fire there, nothing twice.
#[test]
fn a_fixed_list_and_range_on_a_spring_forward_day_fires_the_gap_once_at_the_jump() {
    let c = campaign("0,30 1-3 * * *", "Europe/Berlin");
    assert_eq!(
        all(&c, "2026-03-28T22:00:00Z", "2026-03-29T03:00:00Z"),
        utcs(&[
            "2026-03-29T00:00:00Z", // 01:00 CET
            "2026-03-29T00:30:00Z",
            "2026-03-29T01:00:00Z", // 02:00, 02:30 (gap) and 03:00 CEST
            "2026-03-29T01:30:00Z", // 03:30 CEST
        ])
    );
}

/// `*/7` resets at every hour (00, 07, …, 56, then 00): 9 fires an hour, 216 a day, never
/// two within 4 minutes, and every one on a wall minute the expression names.
#[test]
fn a_seven_minute_step_resets_at_each_hour() {
    let c = campaign("*/7 * * * *", "Europe/Berlin");
    let day = all(&c, "2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z");
    assert_eq!(day.len(), 216);
    assert!(day.windows(2).all(|w| w[1] - w[0] >= TimeDelta::minutes(4)));
    let gaps: Vec<i64> = day
        .windows(2)
        .map(|w| (w[1] - w[0]).num_minutes())
        .collect();
    assert_eq!(gaps.iter().filter(|g| **g == 4).count(), 24);
    assert!(gaps.iter().all(|g| *g == 7 || *g == 4), "{gaps:?}");
}

/// `*/7` on Berlin's fall-back day is a wildcard job: both repeated 02:xx hours fire, 9 fires
/// each, and the hour skipped in spring has none.
#[test]
fn a_seven_minute_step_fires_both_repeated_hours_and_none_in_the_gap() {
    let c = campaign("*/7 2 * * *", "Europe/Berlin");
    let fall = all(&c, "2026-10-24T22:00:00Z", "2026-10-25T03:00:00Z");
    assert_eq!(fall.len(), 18, "{fall:?}");
    assert_eq!(fall[0], at("2026-10-25T00:00:00Z"));
    assert_eq!(fall[9], at("2026-10-25T01:00:00Z"));
    let spring = all(&c, "2026-03-28T22:00:00Z", "2026-03-29T03:00:00Z");
    assert!(spring.is_empty(), "{spring:?}");
}

/// Lord Howe moves its clocks by 30 minutes. Fall-back 2026-04-05 repeats 01:30-02:00: a fixed
/// 01:45 fires once (the first), a wildcard `*/15 1` fires both 01:30 and both 01:45.
#[test]
fn a_half_hour_fall_back_repeats_only_half_an_hour() {
    let fixed = campaign("45 1 * * *", "Australia/Lord_Howe");
    assert_eq!(
        all(&fixed, "2026-04-04T12:00:00Z", "2026-04-04T18:00:00Z"),
        utcs(&["2026-04-04T14:45:00Z"])
    );
    let wild = campaign("*/15 1 * * *", "Australia/Lord_Howe");
    assert_eq!(
        all(&wild, "2026-04-04T12:00:00Z", "2026-04-04T18:00:00Z"),
        utcs(&[
            "2026-04-04T14:00:00Z",
            "2026-04-04T14:15:00Z",
            "2026-04-04T14:30:00Z",
            "2026-04-04T14:45:00Z",
            "2026-04-04T15:00:00Z", // second 01:30 (+10:30)
            "2026-04-04T15:15:00Z", // second 01:45
        ])
    );
}

/// Lord Howe's spring-forward 2026-10-04 skips 02:00-02:30: a fixed 02:15 fires at the jump
/// (02:30 +11), a wildcard `*/15 2` fires only 02:30 and 02:45.
#[test]
fn a_half_hour_gap_fires_a_fixed_job_at_the_jump() {
    let fixed = campaign("15 2 * * *", "Australia/Lord_Howe");
    assert_eq!(
        all(&fixed, "2026-10-03T12:00:00Z", "2026-10-03T18:00:00Z"),
        utcs(&["2026-10-03T15:30:00Z"])
    );
    let wild = campaign("*/15 2 * * *", "Australia/Lord_Howe");
    assert_eq!(
        all(&wild, "2026-10-03T12:00:00Z", "2026-10-03T18:00:00Z"),
        utcs(&["2026-10-03T15:30:00Z", "2026-10-03T15:45:00Z"])
    );
}

/// Samoa skipped 2011-12-30: README's known limit says a fixed-time job of the skipped day
/// fires at the jump; an hourly wildcard job fires every real hour (no burst, no gap).
#[test]
fn samoas_skipped_day_fires_a_fixed_job_at_the_jump_and_an_hourly_job_every_hour() {
    let fixed = campaign("0 12 * * *", "Pacific/Apia");
    let got = fixed.fires_between(at("2011-12-29T00:00:00Z"), at("2011-12-31T12:00:00Z"), 100);
    assert_eq!(
        got,
        utcs(&[
            "2011-12-29T22:00:00Z", // 12:00 -10 on the 29th
            "2011-12-30T10:00:00Z", // the skipped 30th: at the jump
            "2011-12-30T22:00:00Z", // 12:00 +14 on the 31st
        ])
    );
    let hourly = campaign("0 * * * *", "Pacific/Apia");
    let got = hourly.fires_between(at("2011-12-29T12:00:00Z"), at("2011-12-30T12:00:00Z"), 100);
    assert_eq!(got.len(), 24, "{got:?}");
    assert!(got.windows(2).all(|w| w[1] - w[0] == TimeDelta::hours(1)));
}

/// Valid but rare: New Year's Eve's last minute fires once a year, at the zone's instant, in
/// the zone furthest ahead (+14) and furthest behind (-12).
#[test]
fn the_last_minute_of_the_year_fires_once_a_year_in_extreme_zones() {
    for (zone, instant) in [
        ("Pacific/Kiritimati", "2026-12-31T09:59:00Z"),
        ("Etc/GMT+12", "2027-01-01T11:59:00Z"),
    ] {
        let c = campaign("59 23 31 12 *", zone);
        assert_eq!(
            c.next_fires(at("2026-06-01T00:00:00Z"), 2),
            vec![at(instant), at(instant) + TimeDelta::days(365)],
            "{zone}"
        );
    }
}

/// A schedule that can never fire is refused with a clear error (never accepted and then
/// silently idle), and a leap-day schedule is accepted and fires on the next 29 February.
#[test]
fn impossible_dates_are_refused_and_leap_days_fire() {
    for expression in ["* * 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
        let error = parse(expression, "Etc/UTC", at("2026-06-01T00:00:00Z")).expect_err(expression);
        assert!(error.contains("never fires"), "{expression}: {error}");
        assert!(error.contains("c.yaml:"), "{expression}: {error}");
    }
    let leap = parse("30 8 29 2 *", "Europe/Berlin", at("2026-06-01T00:00:00Z")).unwrap();
    assert_eq!(
        leap.next_fires(at("2026-06-01T00:00:00Z"), 1),
        vec![at("2028-02-29T07:30:00Z")]
    );
}

/// Malformed day-of-week fields are errors, never panics (steps of zero, backwards ranges,
/// empty items, non-ASCII names, out-of-range numbers).
#[test]
fn malformed_day_fields_are_errors_not_panics() {
    for expression in [
        "0 0 * * */0",
        "0 0 * * 6-1",
        "0 0 * * MON,,TUE",
        "0 0 * * ÉÉÉ",
        "0 0 * * 8",
        "0 0 * * SAT-SUN",
        "0 0 * * 1/x",
        "0 0 * *",
        "0 0 * * * *",
        "61 0 * * *",
        "0 24 * * *",
    ] {
        let result = parse(expression, "Etc/UTC", at("2026-06-01T00:00:00Z"));
        assert!(result.is_err(), "{expression} accepted");
    }
    // Sunday as 0 and 7 together, and a range ending on 7, mean Sunday once.
    let c = campaign("0 9 * * 0,7", "Etc/UTC");
    assert_eq!(
        c.next_fires(at("2026-06-01T00:00:00Z"), 2),
        utcs(&["2026-06-07T09:00:00Z", "2026-06-14T09:00:00Z"])
    );
    let c = campaign("0 9 * * 5-7", "Etc/UTC");
    assert_eq!(
        c.next_fires(at("2026-06-04T00:00:00Z"), 4),
        utcs(&[
            "2026-06-05T09:00:00Z",
            "2026-06-06T09:00:00Z",
            "2026-06-07T09:00:00Z",
            "2026-06-12T09:00:00Z"
        ])
    );
}

/// `fires_between` bounds: `after` exclusive and `until` inclusive even when they fall on
/// the two instants of a repeated wall time; empty for an empty window; no panic at the ends
/// of the representable range.
#[test]
fn fires_between_bounds_hold_on_repeated_instants_and_extreme_ends() {
    let c = campaign("*/30 2 * * *", "Europe/Berlin");
    // The first 02:30 (00:30Z) excluded, the second 02:30 (01:30Z) included.
    assert_eq!(
        all(&c, "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"),
        utcs(&["2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z"])
    );
    let t = at("2026-10-25T01:00:00Z");
    assert!(c.fires_between(t, t, 5).is_empty());
    assert_eq!(c.fires_between(t - TimeDelta::seconds(1), t, 5), vec![t]);
    assert_eq!(
        c.fires_between(t - TimeDelta::seconds(1), t, usize::MAX),
        vec![t]
    );
    // The ends of chrono's range: nothing to find, nothing to panic on.
    let max = DateTime::<Utc>::MAX_UTC;
    let min = DateTime::<Utc>::MIN_UTC;
    assert!(c.fires_between(max - TimeDelta::days(3), max, 5).is_empty());
    assert!(c.next_fires(max - TimeDelta::days(1), 3).is_empty());
    let early = c.next_fires(min, 1);
    assert!(early.len() <= 1);
}

/// A fire instant is strictly after `now`: a campaign asked at the second instant of a
/// repeated wall time does not hand that instant back.
#[test]
fn next_fires_is_strictly_after_a_repeated_instant() {
    let c = campaign("30 * * * *", "Europe/Berlin");
    assert_eq!(
        c.next_fires(at("2026-10-25T01:30:00Z"), 2),
        utcs(&["2026-10-25T02:30:00Z", "2026-10-25T03:30:00Z"])
    );
    assert_eq!(
        c.next_fires(at("2026-10-25T00:30:00Z"), 1),
        utcs(&["2026-10-25T01:30:00Z"])
    );
}

fn dir_with_audience() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("people.csv"), "phone\n+79161234567\n").unwrap();
    dir
}

fn summary(events: &[DirEvent]) -> Vec<String> {
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    events
        .iter()
        .map(|e| match e {
            DirEvent::Loaded { loaded, .. } => format!("loaded {}", name(&loaded.path)),
            DirEvent::Invalid { path, .. } => format!("invalid {}", name(path)),
            DirEvent::Removed { path, .. } => format!("removed {}", name(path)),
        })
        .collect()
}

/// A file whose name is not UTF-8 is not a campaign file: it is skipped, not a panic, and the
/// valid files beside it load.
#[cfg(unix)]
#[test]
fn a_non_utf8_file_name_is_skipped_and_the_rest_loads() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;
    let dir = dir_with_audience();
    fs::write(dir.path().join("good.yaml"), text("0 9 * * *", "Etc/UTC")).unwrap();
    let bad = OsStr::from_bytes(b"bad-\xff\xfe.yaml");
    fs::write(dir.path().join(bad), text("0 9 * * *", "Etc/UTC")).unwrap();
    let mut campaigns = CampaignDir::new(dir.path());
    let events = campaigns.scan(at("2026-06-01T00:00:00Z")).unwrap();
    assert_eq!(summary(&events), ["loaded good.yaml"]);
    assert_eq!(campaigns.current().len(), 1);
}

/// A FIFO named `*.yaml` is refused before anything is read (README "Input limits"): the scan
/// returns (never blocks on an open with no writer) and reports it at its start.
#[cfg(unix)]
#[test]
fn a_fifo_named_yaml_is_refused_without_blocking() {
    let dir = dir_with_audience();
    let fifo = dir.path().join("pipe.yaml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    fs::write(dir.path().join("good.yaml"), text("0 9 * * *", "Etc/UTC")).unwrap();
    let mut campaigns = CampaignDir::new(dir.path());
    let events = campaigns.scan(at("2026-06-01T00:00:00Z")).unwrap();
    assert_eq!(summary(&events), ["invalid pipe.yaml", "loaded good.yaml"]);
    let problems = campaigns.problems();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].1.contains("pipe.yaml:1:1:"),
        "{}",
        problems[0].1
    );
}

/// A file over 1 MiB is refused with a diagnostic, and an edit that makes a valid file
/// oversized keeps its previous version in effect.
#[test]
fn an_oversized_file_is_refused_and_keeps_the_previous_version() {
    let dir = dir_with_audience();
    let path = dir.path().join("big.yaml");
    let valid = text("0 9 * * *", "Etc/UTC");
    fs::write(&path, &valid).unwrap();
    let mut campaigns = CampaignDir::new(dir.path());
    assert_eq!(
        summary(&campaigns.scan(at("2026-06-01T00:00:00Z")).unwrap()),
        ["loaded big.yaml"]
    );
    let mut huge = valid.clone();
    huge.push('#');
    huge.push_str(&"x".repeat(2 * 1024 * 1024));
    huge.push('\n');
    fs::write(&path, &huge).unwrap();
    let events = campaigns.scan(at("2026-06-01T00:00:02Z")).unwrap();
    assert_eq!(summary(&events), ["invalid big.yaml"]);
    let current = campaigns.current();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].text, valid);
}

/// Exactly `MAX_FILES` campaign files (each valid, distinct ids) all load in one scan, and an
/// unchanged rescan reports nothing.
#[test]
fn the_maximum_number_of_files_loads_and_rescans_quietly() {
    let dir = dir_with_audience();
    for i in 0..herald_campaign::dir::MAX_FILES {
        let body = text("0 9 * * *", "Etc/UTC").replace("id: digest", &format!("id: c{i}"));
        fs::write(dir.path().join(format!("c{i:04}.yaml")), body).unwrap();
    }
    let mut campaigns = CampaignDir::new(dir.path());
    let events = campaigns.scan(at("2026-06-01T00:00:00Z")).unwrap();
    assert_eq!(events.len(), herald_campaign::dir::MAX_FILES);
    assert_eq!(campaigns.current().len(), herald_campaign::dir::MAX_FILES);
    assert!(
        campaigns
            .scan(at("2026-06-01T00:00:02Z"))
            .unwrap()
            .is_empty()
    );
}

/// A file renamed within the directory (same content) is one campaign throughout: the scan
/// that sees the rename removes the old name and loads the new one, and the id stays current.
#[test]
fn a_rename_keeps_the_campaign_current() {
    let dir = dir_with_audience();
    fs::write(dir.path().join("a.yaml"), text("0 9 * * *", "Etc/UTC")).unwrap();
    let mut campaigns = CampaignDir::new(dir.path());
    campaigns.scan(at("2026-06-01T00:00:00Z")).unwrap();
    fs::rename(dir.path().join("a.yaml"), dir.path().join("z.yaml")).unwrap();
    let events = campaigns.scan(at("2026-06-01T00:00:02Z")).unwrap();
    assert_eq!(summary(&events), ["removed a.yaml", "loaded z.yaml"]);
    let current = campaigns.current();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].campaign.id.as_str(), "digest");
}

/// A scheduler sees fires in `(lower, now]` windows whose bounds fall anywhere: across every
/// DST change of the sample, splitting a night into windows at any instant gives exactly the
/// fires of the whole night (none lost, none twice), and `next_fires` from any instant agrees.
#[test]
fn fires_do_not_depend_on_where_a_scheduler_splits_its_windows() {
    let cases = [
        (
            "Europe/Berlin",
            "2026-10-24T20:00:00Z",
            "2026-10-25T06:00:00Z",
        ),
        (
            "Europe/Berlin",
            "2026-03-28T20:00:00Z",
            "2026-03-29T06:00:00Z",
        ),
        (
            "Australia/Lord_Howe",
            "2026-04-04T10:00:00Z",
            "2026-04-04T20:00:00Z",
        ),
        (
            "Australia/Lord_Howe",
            "2026-10-03T10:00:00Z",
            "2026-10-03T20:00:00Z",
        ),
        (
            "America/New_York",
            "2026-11-01T02:00:00Z",
            "2026-11-01T10:00:00Z",
        ),
        (
            "America/New_York",
            "2026-03-08T02:00:00Z",
            "2026-03-08T10:00:00Z",
        ),
    ];
    let expressions = [
        "0,30 1-3 * * *",
        "*/7 * * * *",
        "30 2 * * *",
        "*/15 1,2 * * *",
        "45 1 * * *",
        "0 * * * *",
        "15 2,3 * * *",
    ];
    for (zone, from, to) in cases {
        for expression in expressions {
            let c = campaign(expression, zone);
            let whole = all(&c, from, to);
            let (from, to) = (at(from), at(to));
            let mut split = from + TimeDelta::minutes(3);
            while split < to {
                let mut pieces = c.fires_between(from, split, 10_000);
                pieces.extend(c.fires_between(split, to, 10_000));
                assert_eq!(pieces, whole, "{expression} in {zone} split at {split}");
                let next = c.next_fires(split, 1);
                let expected = whole.iter().find(|f| **f > split).copied();
                if let Some(expected) = expected {
                    assert_eq!(next, vec![expected], "{expression} in {zone} at {split}");
                }
                split += TimeDelta::minutes(7);
            }
        }
    }
}
