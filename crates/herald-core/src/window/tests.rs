use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn hours(days: &str, intervals: &[&str]) -> (Days, Vec<LocalInterval>) {
    (
        Days::parse(days).unwrap(),
        intervals
            .iter()
            .map(|i| LocalInterval::parse(i).unwrap())
            .collect(),
    )
}

fn zone(name: &str) -> Place {
    Place::in_zone(TimeZone::parse(name).unwrap(), None)
}

#[test]
fn law_presets_cannot_be_widened_by_explicit_hours() {
    let window = SendWindow::new(WindowSpec {
        presets: vec![Preset::UsTcpa],
        hours: vec![hours("daily", &["07:00-23:00"])],
        ..WindowSpec::default()
    })
    .unwrap();
    assert_eq!(
        window.weekly_hours().of(Weekday::Wed),
        &[LocalInterval::parse("08:00-21:00").unwrap()]
    );
    let ny = zone("America/New_York");
    assert!(
        !window.is_open_at(at("2026-12-02T12:30:00Z"), &ny),
        "07:30 local"
    );
    assert!(
        window.is_open_at(at("2026-12-02T13:00:00Z"), &ny),
        "08:00 local"
    );
    assert!(
        !window.is_open_at(at("2026-12-03T02:00:00Z"), &ny),
        "21:00 local"
    );
}

#[test]
fn a_law_preset_alone_means_its_hours_every_day_and_florida_narrows_further() {
    let tcpa = SendWindow::new(WindowSpec {
        presets: vec![Preset::UsTcpa],
        ..WindowSpec::default()
    })
    .unwrap();
    assert_eq!(
        tcpa.weekly_hours().of(Weekday::Sun),
        &[LocalInterval::parse("08:00-21:00").unwrap()]
    );
    let florida = SendWindow::new(WindowSpec {
        presets: vec![Preset::UsTcpa, Preset::UsFl],
        ..WindowSpec::default()
    })
    .unwrap();
    assert_eq!(
        florida.weekly_hours().of(Weekday::Sun),
        &[LocalInterval::parse("08:00-20:00").unwrap()]
    );
}

#[test]
fn convention_hours_are_overridden_day_by_day() {
    let window = SendWindow::new(WindowSpec {
        presets: vec![Preset::RuBusiness],
        hours: vec![hours("sat", &["11:00-15:00"])],
        ..WindowSpec::default()
    })
    .unwrap();
    assert_eq!(
        window.weekly_hours().of(Weekday::Sat),
        &[LocalInterval::parse("11:00-15:00").unwrap()]
    );
    assert_eq!(
        window.weekly_hours().of(Weekday::Mon),
        &[LocalInterval::parse("09:00-20:00").unwrap()]
    );
    assert!(window.weekly_hours().of(Weekday::Sun).is_empty());
}

#[test]
fn rejects_two_conventions_and_windows_that_never_open() {
    let two = SendWindow::new(WindowSpec {
        presets: vec![Preset::RuBusiness, Preset::EuBusiness],
        ..WindowSpec::default()
    });
    assert!(matches!(two, Err(SendWindowError::TwoConventions { .. })));
    let never = SendWindow::new(WindowSpec {
        presets: vec![Preset::UsTcpa],
        hours: vec![hours("daily", &["22:00-23:00"])],
        ..WindowSpec::default()
    });
    assert_eq!(never, Err(SendWindowError::NeverOpen));
}

/// Issue 10 item 14: a window with neither hours nor a preset (only holidays, say) was open
/// around the clock. It is an error now; "any time" is only ever asked for explicitly.
#[test]
fn a_window_without_hours_or_presets_fails_closed() {
    let holidays_only = SendWindow::new(WindowSpec {
        calendars: vec!["ru".parse().unwrap()],
        closed_dates: vec![NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()],
        ..WindowSpec::default()
    });
    assert_eq!(holidays_only, Err(SendWindowError::NoOpenHours));
    assert_eq!(
        SendWindow::new(WindowSpec::default()),
        Err(SendWindowError::NoOpenHours)
    );
    let always = SendWindow::always();
    let sunday_night = zone("Europe/Moscow");
    assert!(always.is_open_at(at("2026-12-06T00:30:00Z"), &sunday_night));
}

#[test]
fn the_country_option_applies_each_recipients_own_calendar() {
    let window = SendWindow::new(WindowSpec {
        hours: vec![hours("mon-fri", &["09:00-20:00"])],
        country_calendar: true,
        ..WindowSpec::default()
    })
    .unwrap();
    let nov4_noon_msk = at("2026-11-04T09:00:00Z");
    let russian = Place::in_zone(
        TimeZone::parse("Europe/Moscow").unwrap(),
        Some(Region::parse("RU").unwrap()),
    );
    let elsewhere = Place::in_zone(
        TimeZone::parse("Europe/Moscow").unwrap(),
        Some(Region::parse("BY").unwrap()),
    );
    assert!(
        !window.is_open_at(nov4_noon_msk, &russian),
        "National Unity Day"
    );
    assert!(
        window.is_open_at(nov4_noon_msk, &elsewhere),
        "no Belarus calendar: ordinary Wednesday"
    );
    let thanksgiving = at("2026-11-26T17:00:00Z");
    let american = Place::in_zone(
        TimeZone::parse("America/Chicago").unwrap(),
        Some(Region::parse("US").unwrap()),
    );
    assert!(!window.is_open_at(thanksgiving, &american));
    assert_eq!(
        window.next_open(thanksgiving, &american),
        Some(at("2026-11-27T15:00:00Z"))
    );
}

#[test]
fn a_decreed_working_saturday_gets_weekday_hours() {
    let window = SendWindow::new(WindowSpec {
        hours: vec![hours("mon-fri", &["09:00-20:00"])],
        calendars: vec![Calendar::Ru],
        ..WindowSpec::default()
    })
    .unwrap();
    let moscow = zone("Europe/Moscow");
    assert!(
        window.is_open_at(at("2027-02-20T10:00:00Z"), &moscow),
        "Saturday 2027-02-20 is a working day"
    );
    assert!(
        !window.is_open_at(at("2027-02-22T10:00:00Z"), &moscow),
        "Monday 2027-02-22 is off"
    );
}

#[test]
fn places_follow_the_phone() {
    let us = PhoneNumber::parse("+1 347 555 0134", None).unwrap();
    let place = Place::of_recipient(&us, None, UnknownZone::Conservative).unwrap();
    assert!(place.is_conservative());
    assert_eq!(place.zones().len(), 29);
    let chicago = TimeZone::parse("America/Chicago").unwrap();
    let assumed = Place::of_recipient(&us, None, UnknownZone::Assume(chicago)).unwrap();
    assert_eq!(assumed.zones(), &[chicago]);
    let known = Place::of_recipient(&us, Some(chicago), UnknownZone::Conservative).unwrap();
    assert_eq!(known.country(), Some(Region::parse("US").unwrap()));
    let global = PhoneNumber::parse("+800 1234 5678", None);
    if let Ok(global) = global {
        assert!(matches!(
            Place::of_recipient(&global, None, UnknownZone::Conservative),
            Err(PlaceError::NoRegion { .. })
        ));
    }
}

#[test]
fn instants_near_the_limits_of_time_are_closed_not_panics() {
    let window = SendWindow::always();
    let moscow = zone("Europe/Moscow");
    for instant in [
        DateTime::<Utc>::MAX_UTC - TimeDelta::hours(1),
        DateTime::<Utc>::MIN_UTC + TimeDelta::hours(1),
    ] {
        assert!(!window.is_open_at(instant, &moscow));
        assert_eq!(window.next_open(instant, &moscow), None);
        assert_eq!(window.open_until(instant, &moscow), None);
    }
}
