//! Hostile review of issue 13: each test here was a finding that failed when written, and is
//! kept as its regression test; the comment says what was wrong and why it matters.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use herald_channel::{Accepted, Channel, OutgoingMessage, ProviderAction, SendError};
use herald_engine::worker::Step;
use herald_store::{Deliveries, RunState, Runs, Stores};

use common::*;

/// A provider whose template is broken for some recipients a given number of times.
struct Flaky {
    failures_left: Mutex<BTreeMap<String, u32>>,
}

impl Channel for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        let mut left = self.failures_left.lock().unwrap();
        if let Some(n) = left.get_mut(&message.recipient).filter(|n| **n > 0) {
            *n -= 1;
            return Err(SendError::Rejected {
                code: "132001".into(),
                detail: "template does not exist in this language".into(),
                action: Some(ProviderAction::TemplateError),
            });
        }
        Ok(Accepted::default())
    }
}

/// FINDING (medium, run control): the worker's template-error count per run is never reset,
/// neither when an operator resumes the run nor when a send succeeds. Issue 13 makes resuming
/// a run while workers keep running the normal path (`POST /v1/runs/{id}/resume`, `herald
/// resume RUN`); before, a resume meant restarting `herald run`, which started from zero. Now,
/// after the operator fixes the template and resumes, the still-running worker holds 3 errors
/// for the run, so the very next single template error (the module itself says one can be a
/// race with a template edit) pauses the run again at once, with "template rejected 4 times"
/// as the reason. Expected: a resumed run gets the same three chances as a new one.
#[tokio::test(start_paused = true)]
async fn a_resumed_run_is_paused_again_by_a_single_template_error() {
    let s = setup(5, "", at("2026-11-30T07:30:00Z")).await;
    let channel = Arc::new(Flaky {
        failures_left: Mutex::new(
            (0..5)
                .map(|i| (format!("r{i}"), u32::MAX))
                .collect::<BTreeMap<_, _>>(),
        ),
    });
    let worker = worker_for(&s, Arc::clone(&channel));
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    let record = s.stores.runs().run(&s.run).await.unwrap().unwrap();
    assert_eq!(record.state, RunState::Paused, "setup: three errors pause");

    // The operator fixes the template; one recipient's message still hits one stale error.
    *channel.failures_left.lock().unwrap() = BTreeMap::from([("r0".to_owned(), 1)]);
    s.stores
        .runs()
        .set_run_state(&s.run, RunState::Active)
        .await
        .unwrap();
    while let Step::Worked(_) = worker.step().await.unwrap() {}
    let record = s.stores.runs().run(&s.run).await.unwrap().unwrap();
    let counts = s.stores.deliveries().counts(&s.run).await.unwrap();
    assert_eq!(
        record.state,
        RunState::Active,
        "paused again by one error after a resume: {:?}; {counts:?}",
        record.state_reason
    );
    // Nothing was lost to the stale error: every delivery is sent or queued for its retry.
    assert_eq!(counts.sent + counts.queued, 5, "{counts:?}");
}
