//! Consent and frequency caps decided by one worker hold for all of them: an opt-out recorded
//! while three workers drain stops the deliveries still queued, and two campaigns of one purpose
//! worked by different workers never exceed a cap of one a day.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DurationRound, TimeDelta, Utc};
use herald_core::RecipientId;
use herald_testkit::poll::wait_for;

use super::kit::{
    ALWAYS_OPEN, Backend, Cluster, PATIENCE, SenderConf, people, per_recipient, run_id, skipped,
};

/// The recipients opted out while the others drain.
const LATE_OPT_OUTS: usize = 8;

#[test]
fn an_opt_out_recorded_while_three_workers_drain_stops_every_queued_delivery_of_it_on_sqlite() {
    late_opt_outs(Backend::Sqlite);
}

#[test]
fn an_opt_out_recorded_while_three_workers_drain_stops_every_queued_delivery_of_it_on_redis() {
    late_opt_outs(Backend::Redis);
}

fn late_opt_outs(backend: Backend) {
    let cluster = Cluster::new(
        backend,
        &[SenderConf {
            name: "main",
            per_second: 50,
        }],
    );
    // The campaign starts now, its deliveries spread over 15 s. Those released in the last
    // 6 s of the spread are the ones opted out, once the others are being sent: queued and due
    // later when the opt-out is recorded.
    let spread = TimeDelta::seconds(15);
    let at = (Utc::now() + TimeDelta::seconds(1))
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let run = run_id("late", &at);
    let audience = people(60, 2_000_000);
    let late: Vec<_> = audience
        .iter()
        .filter(|p| {
            let offset =
                herald_core::spread::offset(&run, &RecipientId::parse(&p.id).unwrap(), spread);
            offset >= TimeDelta::seconds(9)
        })
        .take(LATE_OPT_OUTS)
        .collect();
    assert_eq!(
        late.len(),
        LATE_OPT_OUTS,
        "the audience has enough late releases"
    );
    cluster.campaign(
        "late",
        "main",
        &audience,
        &format!("schedule: {{ at: {at}, in: Etc/UTC }}\nspread: 15s\n"),
    );
    cluster.schedule(&["late.yaml"], &[&run]);
    let mut workers: Vec<_> = (0..3)
        .map(|i| cluster.worker(&format!("worker-{i}"), &[]))
        .collect();
    wait_for("the workers to be draining", PATIENCE, || {
        cluster.provider.count() >= 3
    });
    for person in &late {
        cluster.project.ok(&["consent", "opt-out", &person.phone]);
    }
    // The precondition, checked rather than assumed: none of them was claimed before its
    // opt-out was recorded (otherwise the machine was too slow for this test's spread).
    let store = cluster.store();
    let late_ids: BTreeSet<String> = late.iter().map(|p| p.id.clone()).collect();
    let claimed_early: Vec<_> = store
        .claims(&run)
        .into_iter()
        .filter(|c| late_ids.contains(&c.key.recipient.to_string()))
        .collect();
    assert!(
        claimed_early.is_empty(),
        "claimed before the opt-out was recorded: {claimed_early:?}"
    );

    let status = cluster.wait_drained(&run);
    for worker in &mut workers {
        let name = worker.name().to_owned();
        assert_eq!(worker.sigterm(), Some(0), "{}", cluster.project.log(&name));
    }
    assert_eq!(
        skipped(&status, "opted_out"),
        LATE_OPT_OUTS as u64,
        "{status}"
    );
    assert_eq!(
        status["sent"].as_u64(),
        Some((audience.len() - LATE_OPT_OUTS) as u64),
        "{status}"
    );
    let reached = per_recipient(&cluster.provider, |_| true);
    for person in &late {
        assert!(
            !reached.contains_key(&person.to()),
            "{} opted out",
            person.phone
        );
    }
    assert!(reached.values().all(|n| *n == 1), "{reached:?}");
}

#[test]
fn two_campaigns_of_one_purpose_on_different_workers_never_exceed_a_cap_of_one_a_day_on_sqlite() {
    cap_across_campaigns(Backend::Sqlite);
}

#[test]
fn two_campaigns_of_one_purpose_on_different_workers_never_exceed_a_cap_of_one_a_day_on_redis() {
    cap_across_campaigns(Backend::Redis);
}

fn cap_across_campaigns(backend: Backend) {
    // Two senders so each campaign has a worker of its own; one more worker works both.
    let cluster = Cluster::new(
        backend,
        &[
            SenderConf {
                name: "alpha",
                per_second: 40,
            },
            SenderConf {
                name: "beta",
                per_second: 40,
            },
        ],
    );
    cluster.provider.set_delay(Duration::from_millis(50));
    let audience = people(40, 3_000_000);
    let extra = format!(
        "schedule: {{ at: 2026-01-01T00:00, in: Etc/UTC }}\nspread: 1s\n{ALWAYS_OPEN}\
         frequency_cap:\n  - {{ max: 1, per: 1d, scope: purpose }}\n"
    );
    cluster.campaign("first", "alpha", &audience, &extra);
    cluster.campaign("second", "beta", &audience, &extra);
    let (first_run, second_run) = (
        run_id("first", "2026-01-01T00:00"),
        run_id("second", "2026-01-01T00:00"),
    );
    cluster.schedule(&["first.yaml", "second.yaml"], &[&first_run, &second_run]);
    let mut workers = vec![
        cluster.worker("worker-alpha", &["--sender", "alpha"]),
        cluster.worker("worker-beta", &["--sender", "beta"]),
        cluster.worker("worker-both", &["--sender", "alpha", "--sender", "beta"]),
    ];
    let first = cluster.wait_drained(&first_run);
    let second = cluster.wait_drained(&second_run);
    for worker in &mut workers {
        let name = worker.name().to_owned();
        assert_eq!(worker.sigterm(), Some(0), "{}", cluster.project.log(&name));
    }

    let reached = per_recipient(&cluster.provider, |_| true);
    assert_eq!(reached.len(), audience.len(), "everyone got one of the two");
    let twice: Vec<_> = reached.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "capped at one a day, reached twice: {twice:?}"
    );
    let sent = first["sent"].as_u64().unwrap() + second["sent"].as_u64().unwrap();
    let capped = skipped(&first, "frequency_capped") + skipped(&second, "frequency_capped");
    assert_eq!(
        (sent, capped),
        (audience.len() as u64, audience.len() as u64),
        "{first}\n{second}"
    );
}
