use chrono::TimeDelta;
use proptest::prelude::*;

use super::*;

fn t(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn event(kind: ConsentKind, scope: Scope, minutes: i64) -> ConsentEvent {
    ConsentEvent {
        kind,
        scope,
        occurred_at: t(minutes),
        source: "test".into(),
        proof: None,
    }
}

use ConsentKind::{OptIn, OptOut};

#[test]
fn marketing_needs_an_explicit_opt_in() {
    assert_eq!(
        ConsentState::default().permits(Purpose::Marketing),
        Err(SkipReason::NoConsent)
    );
    let state = ConsentState::from_events(&[event(OptIn, Scope::Marketing, 0)]);
    assert_eq!(state.permits(Purpose::Marketing), Ok(()));
    let start = ConsentState::from_events(&[event(OptIn, Scope::All, 0)]);
    assert_eq!(start.permits(Purpose::Marketing), Ok(()));
    // An opt-in to transactional messages is not consent to marketing.
    let other = ConsentState::from_events(&[event(OptIn, Scope::Transactional, 0)]);
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
    let state = ConsentState::from_events(&events);
    assert_eq!(state.permits(Purpose::Marketing), Err(SkipReason::OptedOut));
}

#[test]
fn stop_is_everything_and_a_later_start_restores() {
    let stop = [
        event(OptIn, Scope::Marketing, 0),
        event(OptOut, Scope::All, 10),
    ];
    let state = ConsentState::from_events(&stop);
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
    let state = ConsentState::from_events(&[
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
    let out = ConsentState::from_events(&[
        event(OptIn, Scope::Transactional, 0),
        event(OptOut, Scope::Transactional, 5),
    ]);
    assert_eq!(
        out.permits(Purpose::Transactional),
        Err(SkipReason::OptedOut)
    );
    assert_eq!(out.permits(Purpose::Service), Ok(()));
    let back = ConsentState::from_events(&[
        event(OptOut, Scope::Transactional, 0),
        event(OptIn, Scope::All, 5),
    ]);
    assert_eq!(back.permits(Purpose::Transactional), Ok(()));
}

#[test]
fn ties_go_to_the_opt_out() {
    let state = ConsentState::from_events(&[
        event(OptIn, Scope::Marketing, 7),
        event(OptOut, Scope::All, 7),
    ]);
    assert_eq!(state.permits(Purpose::Marketing), Err(SkipReason::OptedOut));
    let same_scope = ConsentState::from_events(&[
        event(OptOut, Scope::Service, 7),
        event(OptIn, Scope::Service, 7),
    ]);
    assert_eq!(same_scope.of_scope(Scope::Service), Some(OptOut));
    assert_eq!(
        same_scope.permits(Purpose::Service),
        Err(SkipReason::OptedOut)
    );
}

fn arb_event() -> impl Strategy<Value = ConsentEvent> {
    (
        prop_oneof![Just(OptIn), Just(OptOut)],
        prop_oneof![
            Just(Scope::Marketing),
            Just(Scope::Transactional),
            Just(Scope::Service),
            Just(Scope::All)
        ],
        0i64..50,
    )
        .prop_map(|(kind, scope, minute)| event(kind, scope, minute))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_state_does_not_depend_on_arrival_order(
        (events, shuffled) in proptest::collection::vec(arb_event(), 0..12)
            .prop_flat_map(|events| { let copy = events.clone(); (Just(events), Just(copy).prop_shuffle()) })
    ) {
        let a = ConsentState::from_events(&events);
        let b = ConsentState::from_events(&shuffled);
        prop_assert_eq!(a, b);
        for purpose in [Purpose::Marketing, Purpose::Transactional, Purpose::Service] {
            prop_assert_eq!(a.permits(purpose), b.permits(purpose));
        }
    }

    #[test]
    fn the_state_matches_a_sort_then_replay_reference(events in proptest::collection::vec(arb_event(), 0..12)) {
        // Reference: sort by time (opt-outs after opt-ins at equal times), replay, last word wins.
        let mut sorted = events.clone();
        sorted.sort_by_key(|e| (e.occurred_at, e.kind == OptOut));
        for purpose in [Purpose::Marketing, Purpose::Transactional, Purpose::Service] {
            let relevant: Vec<_> = sorted.iter().filter(|e| e.scope == Scope::All || e.scope.as_str() == purpose.as_str()).collect();
            let expected = match (purpose, relevant.last().map(|e| e.kind)) {
                (_, Some(OptOut)) => Err(SkipReason::OptedOut),
                (_, Some(OptIn)) => Ok(()),
                (Purpose::Marketing, None) => Err(SkipReason::NoConsent),
                (_, None) => Ok(()),
            };
            prop_assert_eq!(ConsentState::from_events(&events).permits(purpose), expected);
        }
    }
}
