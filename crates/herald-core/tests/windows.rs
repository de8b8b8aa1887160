//! Window searches against instants computed outside herald-core: `fixtures/windows.json` was
//! written by `fixtures/gen_windows.py`, which brute-forces every UTC minute through Python's
//! zoneinfo (tzdata 2025b). Regenerate with `python3 tests/fixtures/gen_windows.py`.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use herald_core::holiday::{Calendar, DayKind};
use herald_core::window::{Days, LocalInterval};
use herald_core::{PhoneNumber, Place, SendWindow, TimeZone, UnknownZone, WindowSpec};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixtures {
    tzdata: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    zones: Vec<String>,
    hours: BTreeMap<String, Vec<[String; 2]>>,
    closed_dates: Vec<NaiveDate>,
    working_dates: Vec<NaiveDate>,
    transfer_hours: Vec<[String; 2]>,
    calendar: Option<String>,
    at: DateTime<Utc>,
    open: bool,
    next_open: Option<DateTime<Utc>>,
    open_until: Option<DateTime<Utc>>,
}

fn fixtures() -> Fixtures {
    let text = include_str!("fixtures/windows.json");
    serde_json::from_str(text).expect("windows.json parses")
}

fn intervals(pairs: &[[String; 2]]) -> Vec<LocalInterval> {
    pairs
        .iter()
        .map(|[a, b]| LocalInterval::parse(&format!("{a}-{b}")).expect("fixture interval"))
        .collect()
}

fn window_of(case: &Case) -> SendWindow {
    let hours = case
        .hours
        .iter()
        .map(|(day, pairs)| (Days::parse(day).expect("fixture day"), intervals(pairs)))
        .collect();
    let mut spec = WindowSpec {
        hours,
        transfer_hours: Some(intervals(&case.transfer_hours)),
        ..WindowSpec::default()
    };
    match &case.calendar {
        // Herald's own calendar must produce what the fixture's explicit dates say.
        Some(name) => spec.calendars.push(name.parse().expect("fixture calendar")),
        None => {
            spec.closed_dates = case.closed_dates.clone();
            spec.working_dates = case.working_dates.clone();
        }
    }
    SendWindow::new(spec).unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

fn place_of(case: &Case) -> Place {
    let zones: Vec<TimeZone> = case
        .zones
        .iter()
        .map(|z| TimeZone::parse(z).expect("fixture zone"))
        .collect();
    match zones.as_slice() {
        [zone] => Place::in_zone(*zone, None),
        _ => {
            // A multi-zone case stands for an unknown-zone recipient of one country: rebuild it
            // from a phone number of that country, so the region → zones path is exercised too.
            let phone = match zones[0].name() {
                "Europe/Kaliningrad" => "+7 916 123 45 67",
                "America/New_York" => "+1 347 555 0134",
                _ => return pairs_place(&zones),
            };
            let place = Place::of_recipient(
                &PhoneNumber::parse(phone, None).unwrap(),
                None,
                UnknownZone::Conservative,
            )
            .unwrap();
            assert_eq!(
                place.zones(),
                zones.as_slice(),
                "{}: zone list differs from zone.tab's",
                case.name
            );
            place
        }
    }
}

/// Zones of no single country (the never-overlapping pair).
fn pairs_place(zones: &[TimeZone]) -> Place {
    Place::in_zones(zones.to_vec(), None).expect("non-empty zone list")
}

#[test]
fn fixtures_match_the_bundled_tzdata() {
    assert_eq!(fixtures().tzdata, herald_core::tz::TZDATA_VERSION);
}

#[test]
fn is_open_next_open_and_open_until_match_the_zoneinfo_fixtures() {
    let fixtures = fixtures();
    assert!(fixtures.cases.len() >= 100);
    let mut failures = Vec::new();
    for case in &fixtures.cases {
        let window = window_of(case);
        let place = place_of(case);
        let open = window.is_open_at(case.at, &place);
        let next = window.next_open(case.at, &place);
        let until = window.open_until(case.at, &place);
        if (open, next, until) != (case.open, case.next_open, case.open_until) {
            failures.push(format!(
                "{}: got open={open} next={next:?} until={until:?}, want open={} next={:?} until={:?}",
                case.name, case.open, case.next_open, case.open_until
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        fixtures.cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_required_cases_are_present() {
    let names: Vec<String> = fixtures().cases.into_iter().map(|c| c.name).collect();
    for prefix in [
        "ny-spring",
        "ny-fall",
        "london",
        "lordhowe",
        "kathmandu",
        "stjohns",
        "kiritimati",
        "ru-msk-dec31",
        "ru-all-zones",
        "us-all-zones",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(prefix)),
            "no {prefix} case"
        );
    }
}

#[test]
fn moscow_send_on_new_years_eve_waits_for_the_eleventh_of_january() {
    let spec = WindowSpec {
        hours: vec![(
            Days::parse("mon-fri").unwrap(),
            vec![LocalInterval::parse("09:00-20:00").unwrap()],
        )],
        calendars: vec![Calendar::Ru],
        ..WindowSpec::default()
    };
    let window = SendWindow::new(spec).unwrap();
    let moscow = Place::in_zone(TimeZone::parse("Europe/Moscow").unwrap(), None);
    let planned: DateTime<Utc> = "2026-12-31T07:00:00Z".parse().unwrap(); // 10:00 MSK
    assert!(!window.is_open_at(planned, &moscow));
    assert_eq!(
        window.next_open(planned, &moscow),
        Some("2027-01-11T06:00:00Z".parse().unwrap())
    );
}

#[test]
fn the_ru_calendar_agrees_with_the_fixture_generators_independent_list() {
    let fixtures = fixtures();
    let case = fixtures
        .cases
        .iter()
        .find(|c| c.calendar.as_deref() == Some("ru"))
        .expect("an ru case");
    let mut date = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    while date.year() <= 2027 {
        let weekday = !matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        let herald = Calendar::Ru.lookup(date).map(|e| e.kind);
        if weekday {
            assert_eq!(
                herald == Some(DayKind::Holiday),
                case.closed_dates.contains(&date),
                "{date}"
            );
        }
        assert_eq!(
            herald == Some(DayKind::TransferredWorkday),
            case.working_dates.contains(&date),
            "{date}"
        );
        date = date.succ_opt().unwrap();
    }
}
