//! Cron fire instants across DST changes against instants computed outside Herald:
//! `fixtures/cron_fires.json` was written by `fixtures/make_cron_fires.py`, which matches every
//! wall minute by brute force and maps it through Python's zoneinfo (fold=0/fold=1, gaps found
//! by round trip) with Vixie cron's rule. Regenerate with
//! `python3 tests/fixtures/make_cron_fires.py`.

use chrono::{DateTime, Utc};
use herald_campaign::{Campaign, CatchUp, Overlap};
use serde_json::Value;

struct Case {
    name: String,
    zone: String,
    expression: String,
    fixed: bool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    expected: Vec<DateTime<Utc>>,
}

fn fixtures() -> (String, Vec<Case>) {
    let doc: Value =
        serde_json::from_str(include_str!("fixtures/cron_fires.json")).expect("fixture parses");
    let instant = |v: &Value| -> DateTime<Utc> {
        v.as_str()
            .expect("an instant")
            .parse()
            .expect("RFC 3339 instant")
    };
    let text = |v: &Value| v.as_str().expect("text").to_owned();
    let cases = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            name: text(&c["name"]),
            zone: text(&c["zone"]),
            expression: text(&c["expression"]),
            fixed: c["fixed"].as_bool().expect("fixed"),
            from: instant(&c["from"]),
            to: instant(&c["to"]),
            expected: c["expected"]
                .as_array()
                .expect("expected")
                .iter()
                .map(instant)
                .collect(),
        })
        .collect();
    (text(&doc["tzdata"]), cases)
}

fn campaign(expression: &str, zone: &str, extra: &str, now: DateTime<Utc>) -> Campaign {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("people.csv"), "phone\n+79161234567\n").unwrap();
    let text = format!(
        "id: digest\npurpose: service\naudience: {{ source: people.csv }}\n\
         template: {{ name: digest, language: en }}\n\
         schedule:\n  cron: \"{expression}\"\n  timezone: {zone}\n{extra}"
    );
    herald_campaign::parse("c.yaml", dir.path(), &text, now)
        .unwrap_or_else(|d| panic!("{expression} in {zone}: {d}"))
}

#[test]
fn fixtures_match_the_bundled_tzdata() {
    assert_eq!(fixtures().0, herald_core::tz::TZDATA_VERSION);
}

#[test]
fn fires_match_the_zoneinfo_fixtures() {
    let (_, cases) = fixtures();
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for case in &cases {
        assert_eq!(
            herald_campaign::cron::is_fixed_time(&case.expression),
            case.fixed,
            "{}",
            case.name
        );
        let campaign = campaign(&case.expression, &case.zone, "", case.from);
        let between = campaign.fires_between(case.from, case.to, 10_000);
        if between != case.expected {
            failures.push(format!(
                "{}: fires_between gave {between:?}, want {:?}",
                case.name, case.expected
            ));
        }
        // The window ends before the next fire, so next_fires sees the same instants.
        let next = campaign.next_fires(case.from, case.expected.len());
        if next != case.expected {
            failures.push(format!(
                "{}: next_fires gave {next:?}, want {:?}",
                case.name, case.expected
            ));
        }
        // Only the newest are kept.
        let newest = campaign.fires_between(case.from, case.to, 2);
        let want = &case.expected[case.expected.len().saturating_sub(2)..];
        if newest != want {
            failures.push(format!(
                "{}: fires_between limit 2 gave {newest:?}, want {want:?}",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_required_cases_are_present() {
    let (_, cases) = fixtures();
    for (zone, expression, day) in [
        ("Europe/Berlin", "30 2 * * *", "2026-03-29"),
        ("Europe/Berlin", "30 2 * * *", "2026-10-25"),
        ("Europe/Berlin", "30 1 * * *", "2026-10-25"),
        ("Europe/Berlin", "*/30 * * * *", "2026-03-29"),
        ("Europe/Berlin", "*/30 * * * *", "2026-10-25"),
        ("America/New_York", "30 2 * * *", "2026-03-08"),
        ("America/New_York", "30 2 * * *", "2026-11-01"),
        ("America/New_York", "30 1 * * *", "2026-11-01"),
        ("America/New_York", "30 * * * *", "2026-03-08"),
        ("America/New_York", "30 * * * *", "2026-11-01"),
    ] {
        let date: chrono::NaiveDate = day.parse().unwrap();
        assert!(
            cases.iter().any(|c| c.zone == zone
                && c.expression == expression
                && c.from.date_naive() < date
                && c.to.date_naive() > date),
            "no case for {expression} in {zone} across {day}"
        );
    }
}

#[test]
fn a_daily_half_past_two_fires_every_day_exactly_once_across_both_changes() {
    let from: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
    let until: DateTime<Utc> = "2026-11-30T00:00:00Z".parse().unwrap();
    let campaign = campaign("30 2 * * *", "Europe/Berlin", "", from);
    let fires = campaign.fires_between(from, until, 1000);
    // 2026-03-01 .. 2026-11-29: 274 days, one fire each.
    assert_eq!(fires.len(), 274);
    let days: std::collections::BTreeSet<_> = fires
        .iter()
        .map(|t| (*t + chrono::TimeDelta::hours(1)).date_naive())
        .collect();
    assert_eq!(days.len(), 274);
}

#[test]
fn run_ids_name_the_fire_in_utc_and_run_at_uses_the_next_fire() {
    let now: DateTime<Utc> = "2026-03-28T12:00:00Z".parse().unwrap();
    let campaign = campaign("30 2 * * *", "Europe/Berlin", "", now);
    let fire: DateTime<Utc> = "2026-03-29T01:00:00Z".parse().unwrap();
    assert_eq!(
        campaign.run_of_fire(fire).to_string(),
        "digest@2026-03-29T01:00:00Z"
    );
    let (run, at) = campaign.run_at(now).unwrap();
    assert_eq!(at, Some(fire));
    assert_eq!(run, campaign.run_of_fire(fire));
}

#[test]
fn catch_up_and_overlap_default_and_parse() {
    let now: DateTime<Utc> = "2026-11-26T12:00:00Z".parse().unwrap();
    let plain = campaign("0 10 * * MON", "Europe/Moscow", "", now);
    assert_eq!(plain.schedule.catch_up, CatchUp::Latest);
    assert_eq!(plain.schedule.overlap, Overlap::Skip);
    let set = campaign(
        "0 10 * * MON",
        "Europe/Moscow",
        "  catch_up: none\n  overlap: allow\n",
        now,
    );
    assert_eq!(set.schedule.catch_up, CatchUp::None);
    assert_eq!(set.schedule.overlap, Overlap::Allow);
}
