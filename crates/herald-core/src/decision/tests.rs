use chrono::TimeDelta;

use super::*;
use crate::cap::{CapPeriod, CapScope};
use crate::consent::{ConsentKind, Scope};
use crate::tz::TimeZone;
use crate::window::{Days, LocalInterval, WindowSpec};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

struct Fixture {
    campaign: CampaignId,
    run: RunId,
    window: SendWindow,
    place: Place,
    consent: ConsentState,
}

impl Fixture {
    fn new() -> Self {
        let campaign = CampaignId::parse("promo").unwrap();
        let run = RunId::new(&campaign, "2026-11-30T10:00");
        let window = SendWindow::new(WindowSpec {
            hours: vec![(
                Days::parse("mon-fri").unwrap(),
                vec![LocalInterval::parse("09:00-20:00").unwrap()],
            )],
            ..WindowSpec::default()
        })
        .unwrap();
        let place = Place::in_zone(TimeZone::parse("Europe/Moscow").unwrap(), None);
        let mut consent = ConsentState::default();
        consent.apply(
            ConsentKind::OptIn,
            Scope::Marketing,
            at("2026-01-01T00:00:00Z"),
        );
        Self {
            campaign,
            run,
            window,
            place,
            consent,
        }
    }

    fn decide(
        &self,
        now: &str,
        recipient: &str,
        scheduled: &str,
        expires: Option<&str>,
        caps: &[FrequencyCap],
        history: &[PastSend],
    ) -> Decision {
        let policy = Policy {
            campaign: &self.campaign,
            purpose: Purpose::Marketing,
            window: &self.window,
            caps,
            spread: spread::DEFAULT_SPREAD,
        };
        let recipient = RecipientId::parse(recipient).unwrap();
        let delivery = Delivery {
            run: &self.run,
            recipient: &recipient,
            scheduled_at: at(scheduled),
            expires_at: expires.map(at),
        };
        let facts = Facts {
            place: &self.place,
            consent: &self.consent,
            history,
        };
        decide(at(now), &policy, &delivery, &facts)
    }
}

#[test]
fn consent_is_checked_before_anything_else() {
    let mut f = Fixture::new();
    f.consent
        .apply(ConsentKind::OptOut, Scope::All, at("2026-11-01T00:00:00Z"));
    // Even on a Sunday night, outside the window, the answer is the real reason.
    let d = f.decide(
        "2026-11-29T22:00:00Z",
        "r1",
        "2026-11-30T07:00:00Z",
        None,
        &[],
        &[],
    );
    assert_eq!(d, Decision::Skip(SkipReason::OptedOut));
    assert_eq!(d.outcome(), Some(Outcome::Skipped(SkipReason::OptedOut)));
}

#[test]
fn releases_are_spread_inside_the_open_interval() {
    let f = Fixture::new();
    // Planned Monday 10:00 MSK; before then each recipient is deferred to 10:00 + its offset.
    let mut releases = Vec::new();
    for i in 0..200 {
        let d = f.decide(
            "2026-11-30T06:00:00Z",
            &format!("r{i}"),
            "2026-11-30T07:00:00Z",
            None,
            &[],
            &[],
        );
        let Decision::Defer { until, .. } = d else {
            panic!("{d:?}")
        };
        assert!(
            until >= at("2026-11-30T07:00:00Z") && until < at("2026-11-30T07:10:00Z"),
            "{until}"
        );
        releases.push(until);
        // At the release instant it goes.
        let now = until.to_rfc3339();
        assert_eq!(
            f.decide(
                &now,
                &format!("r{i}"),
                "2026-11-30T07:00:00Z",
                None,
                &[],
                &[]
            ),
            Decision::Send
        );
    }
    releases.sort();
    releases.dedup();
    assert!(
        releases.len() > 150,
        "offsets collapse: {} distinct",
        releases.len()
    );
}

#[test]
fn the_spread_never_passes_the_end_of_the_interval_or_the_expiry() {
    let f = Fixture::new();
    // Planned at 19:58 MSK: two minutes of window left, so the offset is under two minutes.
    for i in 0..100 {
        let d = f.decide(
            "2026-11-30T16:00:00Z",
            &format!("r{i}"),
            "2026-11-30T16:58:00Z",
            None,
            &[],
            &[],
        );
        let Decision::Defer { until, .. } = d else {
            panic!("{d:?}")
        };
        assert!(until < at("2026-11-30T17:00:00Z"), "{until}");
    }
    for i in 0..100 {
        let d = f.decide(
            "2026-11-30T06:00:00Z",
            &format!("r{i}"),
            "2026-11-30T07:00:00Z",
            Some("2026-11-30T07:01:00Z"),
            &[],
            &[],
        );
        let Decision::Defer { until, .. } = d else {
            panic!("{d:?}")
        };
        assert!(until < at("2026-11-30T07:01:00Z"), "{until}");
    }
}

#[test]
fn a_late_worker_defers_to_the_next_opening_and_expiry_is_never_late() {
    let f = Fixture::new();
    // Reached at 21:00 MSK Monday: closed, so deferred into Tuesday's window.
    let d = f.decide(
        "2026-11-30T18:00:00Z",
        "r1",
        "2026-11-30T07:00:00Z",
        None,
        &[],
        &[],
    );
    let Decision::Defer { until, .. } = d else {
        panic!("{d:?}")
    };
    assert!(until >= at("2026-12-01T06:00:00Z") && until < at("2026-12-01T06:10:00Z"));
    // With a 12-hour expiry the next opening is too late.
    let d = f.decide(
        "2026-11-30T18:00:00Z",
        "r1",
        "2026-11-30T07:00:00Z",
        Some("2026-11-30T19:00:00Z"),
        &[],
        &[],
    );
    assert_eq!(d, Decision::Expire);
    // Scheduled on Friday evening with a 24h expiry: nothing opens before Monday.
    let d = f.decide(
        "2026-12-04T16:00:00Z",
        "r1",
        "2026-12-04T17:30:00Z",
        Some("2026-12-05T17:30:00Z"),
        &[],
        &[],
    );
    assert_eq!(d, Decision::Expire);
    let d = f.decide(
        "2026-12-05T17:30:00Z",
        "r1",
        "2026-12-04T17:30:00Z",
        Some("2026-12-05T17:30:00Z"),
        &[],
        &[],
    );
    assert_eq!(d.outcome(), Some(Outcome::Expired));
}

#[test]
fn caps_are_checked_at_the_moment_of_sending() {
    let f = Fixture::new();
    let cap =
        FrequencyCap::new(1, CapPeriod::Rolling(TimeDelta::days(7)), CapScope::Purpose).unwrap();
    let history = [PastSend {
        at: at("2026-11-28T09:00:00Z"),
        campaign: CampaignId::parse("other").unwrap(),
        purpose: Purpose::Marketing,
    }];
    let d = f.decide(
        "2026-11-30T12:00:00Z",
        "r1",
        "2026-11-30T07:00:00Z",
        None,
        &[cap],
        &history,
    );
    assert_eq!(d, Decision::Skip(SkipReason::FrequencyCapped));
    let d = f.decide(
        "2026-11-30T12:00:00Z",
        "r1",
        "2026-11-30T07:00:00Z",
        None,
        &[cap],
        &[],
    );
    assert_eq!(d, Decision::Send);
}

#[test]
fn zones_that_never_share_an_hour_are_skipped() {
    let mut f = Fixture::new();
    f.window = SendWindow::new(WindowSpec {
        hours: vec![(
            Days::ALL,
            vec![LocalInterval::parse("09:00-10:00").unwrap()],
        )],
        ..WindowSpec::default()
    })
    .unwrap();
    let zones = ["Pacific/Kiritimati", "Pacific/Pago_Pago"]
        .map(|z| TimeZone::parse(z).unwrap())
        .to_vec();
    f.place = Place::in_zones(zones, None).unwrap();
    let d = f.decide(
        "2026-11-30T00:00:00Z",
        "r1",
        "2026-11-30T00:00:00Z",
        None,
        &[],
        &[],
    );
    assert_eq!(d, Decision::Skip(SkipReason::NoCommonWindow));
}

/// A deferral says what holds it back (issue 10, item 12): `run --until-idle` waits for a
/// spread wait and stops at a window wait, so the two must never be confused.
#[test]
fn a_deferral_names_what_holds_it_back() {
    let f = Fixture::new();
    let reason = |now: &str, recipient: &str, scheduled: &str| match f.decide(
        now,
        recipient,
        scheduled,
        None,
        &[],
        &[],
    ) {
        Decision::Defer { reason, until } => {
            assert!(until > at(now), "{until}");
            Some(reason)
        }
        Decision::Send => None,
        other => panic!("{other:?}"),
    };
    // Planned 10:00 MSK Monday (window open then), looked at 09:00 MSK: the plan is ahead.
    assert_eq!(
        reason("2026-11-30T06:00:00Z", "r1", "2026-11-30T07:00:00Z"),
        Some(DeferReason::Schedule)
    );
    // Planned 08:00 MSK, before the 09:00 opening: the window holds it, before and after 08:00.
    for now in ["2026-11-30T04:00:00Z", "2026-11-30T05:30:00Z"] {
        assert_eq!(
            reason(now, "r1", "2026-11-30T05:00:00Z"),
            Some(DeferReason::Window),
            "{now}"
        );
    }
    // Reached at 21:00 MSK: closed now.
    assert_eq!(
        reason("2026-11-30T18:00:00Z", "r1", "2026-11-30T07:00:00Z"),
        Some(DeferReason::Window)
    );
    // At 10:00 MSK sharp, planned 10:00: everyone whose offset is ahead waits for the spread
    // (and the spread alone: never "for their window" while it is open).
    let mut spread = 0;
    for i in 0..50 {
        match reason(
            "2026-11-30T07:00:00Z",
            &format!("r{i}"),
            "2026-11-30T07:00:00Z",
        ) {
            Some(DeferReason::Spread) => spread += 1,
            None => {}
            other => panic!("r{i}: {other:?}"),
        }
    }
    assert!(spread > 40, "{spread} of 50 wait for the spread");
}
