use chrono::TimeDelta;
use proptest::prelude::*;

use super::*;

fn t(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).unwrap() + TimeDelta::minutes(minutes)
}

/// An event recorded when it happened.
fn event(kind: ConsentKind, scope: Scope, minutes: i64) -> RecordedConsent {
    recorded(kind, scope, minutes, minutes)
}

/// An event dated `minutes`, recorded at `recorded`.
fn recorded(kind: ConsentKind, scope: Scope, minutes: i64, recorded: i64) -> RecordedConsent {
    RecordedConsent {
        event: ConsentEvent {
            kind,
            scope,
            occurred_at: t(minutes),
            source: "test".into(),
            proof: None,
        },
        recorded_at: t(recorded),
    }
}

/// The state long after every event of the ordinary tests.
fn fold(records: &[RecordedConsent]) -> ConsentState {
    ConsentState::at(t(100_000), records)
}

use ConsentKind::{OptIn, OptOut};

#[test]
fn marketing_needs_an_explicit_opt_in() {
    assert_eq!(
        ConsentState::default().permits(Purpose::Marketing),
        Err(SkipReason::NoConsent)
    );
    let state = fold(&[event(OptIn, Scope::Marketing, 0)]);
    assert_eq!(state.permits(Purpose::Marketing), Ok(()));
    let start = fold(&[event(OptIn, Scope::All, 0)]);
    assert_eq!(start.permits(Purpose::Marketing), Ok(()));
    // An opt-in to transactional messages is not consent to marketing.
    let other = fold(&[event(OptIn, Scope::Transactional, 0)]);
    assert_eq!(
        other.permits(Purpose::Marketing),
        Err(SkipReason::NoConsent)
    );
}

#[test]
fn a_late_arriving_old_opt_in_never_beats_a_newer_opt_out() {
    // Arrival order: the opt-out first, then an opt-in that happened a day earlier.
    let events = [
        event(OptOut, Scope::Marketing, 1440),
        event(OptIn, Scope::Marketing, 0),
    ];
    let state = fold(&events);
    assert_eq!(state.permits(Purpose::Marketing), Err(SkipReason::OptedOut));
}

#[test]
fn stop_is_everything_and_a_later_start_restores() {
    let stop = [
        event(OptIn, Scope::Marketing, 0),
        event(OptOut, Scope::All, 10),
    ];
    let state = fold(&stop);
    assert_eq!(state.permits(Purpose::Marketing), Err(SkipReason::OptedOut));
    assert_eq!(
        state.permits(Purpose::Transactional),
        Err(SkipReason::OptedOut)
    );
    let mut restored = state;
    restored.apply(OptIn, Scope::All, t(20));
    assert_eq!(restored.permits(Purpose::Marketing), Ok(()));
    assert_eq!(restored.permits(Purpose::Service), Ok(()));
}

#[test]
fn stop_promotions_leaves_transactional_alone() {
    let state = fold(&[
        event(OptIn, Scope::All, 0),
        event(OptOut, Scope::Marketing, 5),
    ]);
    assert_eq!(state.permits(Purpose::Marketing), Err(SkipReason::OptedOut));
    assert_eq!(state.permits(Purpose::Transactional), Ok(()));
    assert_eq!(
        ConsentState::default().permits(Purpose::Transactional),
        Ok(())
    );
}

#[test]
fn transactional_opt_out_holds_until_a_newer_opt_in() {
    let out = fold(&[
        event(OptIn, Scope::Transactional, 0),
        event(OptOut, Scope::Transactional, 5),
    ]);
    assert_eq!(
        out.permits(Purpose::Transactional),
        Err(SkipReason::OptedOut)
    );
    assert_eq!(out.permits(Purpose::Service), Ok(()));
    let back = fold(&[
        event(OptOut, Scope::Transactional, 0),
        event(OptIn, Scope::All, 5),
    ]);
    assert_eq!(back.permits(Purpose::Transactional), Ok(()));
}

#[test]
fn ties_go_to_the_opt_out() {
    let state = fold(&[
        event(OptIn, Scope::Marketing, 7),
        event(OptOut, Scope::All, 7),
    ]);
    assert_eq!(state.permits(Purpose::Marketing), Err(SkipReason::OptedOut));
    let same_scope = fold(&[
        event(OptOut, Scope::Service, 7),
        event(OptIn, Scope::Service, 7),
    ]);
    assert_eq!(same_scope.of_scope(Scope::Service), Some(OptOut));
    assert_eq!(
        same_scope.permits(Purpose::Service),
        Err(SkipReason::OptedOut)
    );
}

#[test]
fn a_future_dated_opt_in_does_not_count_before_its_date() {
    // Recorded at minute 0, dated minute 100.
    let ahead = [recorded(OptIn, Scope::Marketing, 100, 0)];
    assert_eq!(
        ConsentState::at(t(99), &ahead).permits(Purpose::Marketing),
        Err(SkipReason::NoConsent)
    );
    assert_eq!(
        ConsentState::at(t(100), &ahead).permits(Purpose::Marketing),
        Ok(())
    );
}

#[test]
fn a_future_dated_opt_in_does_not_beat_a_real_opt_out_made_meanwhile() {
    // The case: an opt-in dated 2099, then a real opt-out now. Until 2099 the opt-in does
    // not count at all, so the opt-out is the newest event.
    let year_2099 = DateTime::parse_from_rfc3339("2099-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let future_in = RecordedConsent {
        event: ConsentEvent {
            occurred_at: year_2099,
            ..recorded(OptIn, Scope::Marketing, 0, 0).event
        },
        recorded_at: t(0),
    };
    let log = [future_in, event(OptOut, Scope::Marketing, 1)];
    let state = ConsentState::at(t(2), &log);
    assert_eq!(state.permits(Purpose::Marketing), Err(SkipReason::OptedOut));
    assert_eq!(state.of_scope(Scope::Marketing), Some(OptOut));
}

#[test]
fn an_opt_out_dated_ahead_counts_from_when_it_was_recorded() {
    // A STOP recorded at minute 10 but dated minute 14 (the source's clock runs ahead).
    let stop = recorded(OptOut, Scope::All, 14, 10);
    assert!(stop.dated_ahead());
    assert_eq!(stop.counts_from(t(10)), Some(t(10)));
    let log = [event(OptIn, Scope::Marketing, 0), stop.clone()];
    assert_eq!(
        ConsentState::at(t(10), &log).permits(Purpose::Marketing),
        Err(SkipReason::OptedOut)
    );
    // A real opt-in after the STOP was recorded (minute 12) is newer than the STOP.
    let log = [stop, event(OptIn, Scope::Marketing, 12)];
    assert_eq!(
        ConsentState::at(t(13), &log).permits(Purpose::Marketing),
        Ok(())
    );
    // An opt-out dated in the past counts from when it happened, as before.
    let late = recorded(OptOut, Scope::All, 5, 50);
    assert!(!late.dated_ahead());
    assert_eq!(late.counts_from(t(60)), Some(t(5)));
}

#[test]
fn input_dated_more_than_five_minutes_ahead_is_refused() {
    let at = |minutes, seconds| {
        recorded(OptIn, Scope::Marketing, minutes, 0)
            .event
            .clone_at(seconds)
    };
    assert_eq!(at(5, 0).check_dated(t(0)), Ok(()));
    assert_eq!(at(-600, 0).check_dated(t(0)), Ok(()));
    let error = at(5, 1).check_dated(t(0)).unwrap_err();
    assert_eq!(error.recorded_at, t(0));
    assert!(error.to_string().contains("more than 5 minutes"), "{error}");
    // The same limit holds for opt-outs: the rule is about input, not about what it does.
    let stop = recorded(OptOut, Scope::All, 6, 0).event;
    assert!(stop.check_dated(t(0)).is_err());
}

impl ConsentEvent {
    /// The event moved `seconds` later.
    fn clone_at(&self, seconds: i64) -> Self {
        Self {
            occurred_at: self.occurred_at + TimeDelta::seconds(seconds),
            ..self.clone()
        }
    }
}

fn arb_kind() -> impl Strategy<Value = ConsentKind> {
    prop_oneof![Just(OptIn), Just(OptOut)]
}

fn arb_scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::Marketing),
        Just(Scope::Transactional),
        Just(Scope::Service),
        Just(Scope::All)
    ]
}

/// Events dated around their recording: mostly behind it, sometimes ahead (even far ahead).
fn arb_event() -> impl Strategy<Value = RecordedConsent> {
    (arb_kind(), arb_scope(), 0i64..50, -20i64..20).prop_map(|(kind, scope, recorded_at, ahead)| {
        recorded(kind, scope, recorded_at + ahead, recorded_at)
    })
}

const PURPOSES: [Purpose; 3] = [Purpose::Marketing, Purpose::Transactional, Purpose::Service];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_state_does_not_depend_on_arrival_order(
        (events, shuffled) in proptest::collection::vec(arb_event(), 0..12)
            .prop_flat_map(|events| { let copy = events.clone(); (Just(events), Just(copy).prop_shuffle()) }),
        now in 0i64..80,
    ) {
        let a = ConsentState::at(t(now), &events);
        let b = ConsentState::at(t(now), &shuffled);
        prop_assert_eq!(a, b);
        for purpose in PURPOSES {
            prop_assert_eq!(a.permits(purpose), b.permits(purpose));
        }
    }

    #[test]
    fn a_future_dated_opt_in_never_grants_before_its_date(
        log in proptest::collection::vec(arb_event(), 0..10),
        (scope, dated, recorded_at) in (arb_scope(), 0i64..100, 0i64..50),
        now in 0i64..100,
    ) {
        let opt_in = recorded(OptIn, scope, dated, recorded_at);
        let mut with = log.clone();
        with.push(opt_in);
        let (before, after) = (ConsentState::at(t(now), &log), ConsentState::at(t(now), &with));
        if dated > now {
            // Not yet its date: the log reads exactly as if the opt-in were not there.
            prop_assert_eq!(before, after);
        }
        for purpose in PURPOSES {
            if before.permits(purpose).is_err() && after.permits(purpose).is_ok() {
                prop_assert!(dated <= now, "granted at {} by an opt-in dated {}", now, dated);
            }
        }
    }

    #[test]
    fn the_state_matches_a_sort_then_replay_reference(
        events in proptest::collection::vec(arb_event(), 0..12),
        now in 0i64..80,
    ) {
        // Reference: drop opt-ins dated after now, date each opt-out at the earlier of its date and
        // its recording, sort by that (opt-outs after opt-ins at equal times), replay, last wins.
        let mut counted: Vec<(DateTime<Utc>, ConsentKind, Scope)> = events
            .iter()
            .filter(|e| e.event.kind == OptOut || e.event.occurred_at <= t(now))
            .map(|e| {
                let at = match e.event.kind {
                    OptIn => e.event.occurred_at,
                    OptOut => e.event.occurred_at.min(e.recorded_at),
                };
                (at, e.event.kind, e.event.scope)
            })
            .collect();
        counted.sort_by_key(|(at, kind, _)| (*at, *kind == OptOut));
        for purpose in PURPOSES {
            let relevant: Vec<_> = counted.iter().filter(|(_, _, scope)| *scope == Scope::All || scope.as_str() == purpose.as_str()).collect();
            let expected = match (purpose, relevant.last().map(|(_, kind, _)| *kind)) {
                (_, Some(OptOut)) => Err(SkipReason::OptedOut),
                (_, Some(OptIn)) => Ok(()),
                (Purpose::Marketing, None) => Err(SkipReason::NoConsent),
                (_, None) => Ok(()),
            };
            prop_assert_eq!(ConsentState::at(t(now), &events).permits(purpose), expected);
        }
    }
}
