//! Property tests of the window search and the send decision against brute force.
//! Case counts are capped so the suite stays quick on two cores.

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use herald_core::window::{Days, LocalInterval};
use herald_core::{
    CampaignId, ConsentState, Decision, DeferReason, Delivery, Facts, Place, Policy, Purpose,
    RecipientId, Region, RunId, SendWindow, TimeZone, WindowSpec, decide,
};
use proptest::prelude::*;

const ZONES: &[&str] = &[
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Pacific/Kiritimati",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Tehran",
    "Europe/Moscow",
];

/// 2026-01-01T00:00:00Z .. 2027-12-01, where DST changes of every zone above happen.
const FROM: i64 = 1_767_225_600;
const SPAN: i64 = 700 * 86_400;

fn arb_instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0..SPAN).prop_map(|s| DateTime::from_timestamp(FROM + s, 0).unwrap())
}

fn arb_interval() -> impl Strategy<Value = LocalInterval> {
    // Minute-precise bounds, biased toward the DST hours (00:00-04:00) where the edge cases live.
    prop_oneof![(0u16..1439, 1u16..600), (0u16..240, 1u16..120)].prop_map(|(start, len)| {
        LocalInterval::from_minutes(start, (start + len).min(1440)).unwrap()
    })
}

fn arb_window() -> impl Strategy<Value = SendWindow> {
    proptest::collection::vec(
        (0usize..7, proptest::collection::vec(arb_interval(), 1..3)),
        1..5,
    )
    .prop_map(|days| {
        const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let hours = days
            .into_iter()
            .map(|(d, intervals)| (Days::parse(NAMES[d]).unwrap(), intervals))
            .collect();
        SendWindow::new(WindowSpec {
            hours,
            ..WindowSpec::default()
        })
        .unwrap()
    })
}

fn arb_place() -> impl Strategy<Value = Place> {
    prop_oneof![
        4 => (0..ZONES.len()).prop_map(|i| Place::in_zone(TimeZone::parse(ZONES[i]).unwrap(), None)),
        1 => (0..ZONES.len(), 0..ZONES.len()).prop_map(|(a, b)| {
            let zones = vec![TimeZone::parse(ZONES[a]).unwrap(), TimeZone::parse(ZONES[b]).unwrap()];
            Place::in_zones(zones, None).unwrap()
        }),
    ]
}

fn ceil_to_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    if t.second() == 0 && t.nanosecond() == 0 {
        t
    } else {
        t.with_second(0).unwrap().with_nanosecond(0).unwrap() + TimeDelta::minutes(1)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn next_open_is_open_and_nothing_earlier_is(window in arb_window(), place in arb_place(), from in arb_instant()) {
        let found = window.next_open(from, &place);
        let brute_limit = from + TimeDelta::days(31);
        if let Some(opening) = found {
            prop_assert!(opening >= from);
            prop_assert!(window.is_open_at(opening, &place), "next_open {opening} is closed");
        }
        // Openness only changes on whole minutes, so minute steps see every opening.
        let end = found.unwrap_or(brute_limit).min(brute_limit);
        if found != Some(from) {
            prop_assert!(!window.is_open_at(from, &place) || found.is_none_or(|f| f == from));
            let mut t = ceil_to_minute(from);
            while t < end {
                prop_assert!(!window.is_open_at(t, &place), "open at {t}, before next_open {found:?}");
                t += TimeDelta::minutes(1);
            }
        }
    }

    #[test]
    fn open_until_within_is_open_until_cut_at_the_horizon(
        window in arb_window(),
        place in arb_place(),
        at in arb_instant(),
        horizon_minutes in 0i64..(9 * 24 * 60),
    ) {
        let horizon = TimeDelta::minutes(horizon_minutes);
        let cut = horizon.min(herald_core::window::OPEN_UNTIL_HORIZON);
        prop_assert_eq!(
            window.open_until_within(at, &place, horizon),
            window.open_until(at, &place).map(|close| close.min(at + cut))
        );
    }

    #[test]
    fn open_until_is_the_first_closed_instant(window in arb_window(), place in arb_place(), at in arb_instant()) {
        if let Some(close) = window.open_until(at, &place) {
            prop_assert!(window.is_open_at(at, &place));
            prop_assert!(close > at);
            let mut t = ceil_to_minute(at);
            while t < close {
                prop_assert!(window.is_open_at(t, &place), "closed at {t} before open_until {close}");
                t += TimeDelta::minutes(1);
            }
            if close < at + herald_core::window::OPEN_UNTIL_HORIZON {
                prop_assert!(!window.is_open_at(close, &place));
            }
        } else {
            prop_assert!(!window.is_open_at(at, &place));
        }
    }

    #[test]
    fn decide_never_sends_while_the_window_is_closed(
        window in arb_window(),
        place in arb_place(),
        scheduled in arb_instant(),
        now_offset in -3_000i64..200_000,
        expires_hours in proptest::option::of(1i64..200),
        spread_minutes in 0i64..30,
        recipient in "[a-z0-9]{1,8}",
    ) {
        let campaign = CampaignId::parse("promo").unwrap();
        let run = RunId::new(&campaign, "2026-11-27T10:00");
        let recipient = RecipientId::parse(&recipient).unwrap();
        let now = scheduled + TimeDelta::seconds(now_offset * 7);
        let policy = Policy { campaign: &campaign, purpose: Purpose::Transactional, window: &window, caps: &[], spread: TimeDelta::minutes(spread_minutes) };
        let expires_at = expires_hours.map(|h| scheduled + TimeDelta::hours(h));
        let delivery = Delivery { run: &run, recipient: &recipient, scheduled_at: scheduled, expires_at };
        let consent = ConsentState::default();
        let facts = Facts { place: &place, consent: &consent, history: &[] };
        match decide(now, &policy, &delivery, &facts) {
            Decision::Send => {
                prop_assert!(window.is_open_at(now, &place), "Send at {now} while closed");
                prop_assert!(now >= scheduled);
                prop_assert!(expires_at.is_none_or(|e| now < e));
            }
            Decision::Defer { until, reason } => {
                prop_assert!(until > now);
                // The reason is the one the deferral really has: a spread wait is within the
                // spread of now while the window is open; a schedule wait is before the
                // planned instant; a window wait has the window closed now or at the plan.
                match reason {
                    DeferReason::Spread => {
                        prop_assert!(window.is_open_at(now, &place));
                        prop_assert!(until - now < policy.spread, "spread wait to {until}");
                    }
                    DeferReason::Schedule => prop_assert!(now < scheduled),
                    DeferReason::Window => prop_assert!(
                        !window.is_open_at(now, &place) || !window.is_open_at(scheduled, &place)
                    ),
                }
                prop_assert!(window.is_open_at(until, &place), "deferred to {until}, which is closed");
                prop_assert!(expires_at.is_none_or(|e| until < e));
                // Looking again at `until` sends (consent and caps unchanged).
                prop_assert_eq!(decide(until, &policy, &delivery, &facts), Decision::Send);
            }
            Decision::Expire => prop_assert!(expires_at.is_some()),
            Decision::Skip(reason) => prop_assert_eq!(reason, herald_core::SkipReason::NoCommonWindow),
        }
    }
}

#[test]
fn an_unknown_zone_russian_number_waits_for_the_common_hour() {
    let window = SendWindow::new(WindowSpec {
        hours: vec![(
            Days::parse("mon-fri").unwrap(),
            vec![LocalInterval::parse("09:00-20:00").unwrap()],
        )],
        ..WindowSpec::default()
    })
    .unwrap();
    let russia = Place::anywhere_in(Region::parse("RU").unwrap()).unwrap();
    let moscow = Place::in_zone(TimeZone::parse("Europe/Moscow").unwrap(), None);
    // Monday 10:00 in Moscow is 16:00 in Kamchatka: open in Moscow, not everywhere.
    let monday_ten_msk: DateTime<Utc> = "2026-11-30T07:00:00Z".parse().unwrap();
    assert!(window.is_open_at(monday_ten_msk, &moscow));
    assert!(window.is_open_at(monday_ten_msk, &russia));
    let monday_noon_msk: DateTime<Utc> = "2026-11-30T09:00:00Z".parse().unwrap();
    assert!(
        !window.is_open_at(monday_noon_msk, &russia),
        "Kamchatka is at 21:00"
    );
    // The only common hour is 07:00-08:00 UTC (09:00 Kaliningrad .. 20:00 Kamchatka).
    assert_eq!(
        window.next_open(monday_noon_msk, &russia),
        Some("2026-12-01T07:00:00Z".parse().unwrap())
    );
    assert_eq!(
        window.open_until(monday_ten_msk, &russia),
        Some("2026-11-30T08:00:00Z".parse().unwrap())
    );
}
