//! Defers, outcomes and requeues of deliveries, one at a time or a worker's batch (`apply`): all
//! through `change.lua`, one script call for the whole batch, each change succeeding or not on
//! its own exactly as the single method would.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use herald_store::{Change, DeliveryKey, StoreError, StoreResult, Terminal, WaitReason, WorkerId};
use redis::Script;

use crate::codec::{StateJson, corrupt, ms, ms_ceil, proves_no_send, script_with_state};
use crate::conn::Conn;
use crate::scripts::{invocation, run as run_script};

/// `change.lua` with the ladder and kept reports of `feedback.lua` in front: a finish `sent`
/// indexes its provider id and applies the reports kept for it in the same call.
static CHANGE: LazyLock<Script> = LazyLock::new(|| {
    script_with_state(&format!(
        "{}\n{}",
        include_str!("../scripts/feedback.lua"),
        include_str!("../scripts/change.lua")
    ))
});

/// How one change ended, as the script says.
enum Answer {
    Ok,
    NotFound,
    Conflict(String),
}

/// Pushes one change's 8 arguments.
fn push(call: &mut redis::ScriptInvocation<'_>, change: &Change) {
    match change {
        Change::Defer { key, until, reason } => {
            call.arg("defer");
            key_args(call, key, None);
            call.arg(ms_ceil(*until))
                .arg(reason.as_str())
                .arg("")
                .arg("0");
        }
        Change::Finish {
            key,
            terminal,
            owner,
        } => {
            call.arg("finish");
            key_args(call, key, owner.as_ref());
            let mut state = StateJson::ended(terminal, 0);
            state.f = None;
            call.arg("")
                .arg("")
                .arg(state.encode())
                .arg(if proves_no_send(&terminal.outcome) {
                    "1"
                } else {
                    "0"
                });
        }
        Change::Requeue {
            key,
            until,
            reason,
            owner,
        } => {
            call.arg("requeue");
            key_args(call, key, Some(owner));
            call.arg(ms_ceil(*until))
                .arg(reason.map(WaitReason::as_str).unwrap_or_default())
                .arg("")
                .arg("0");
        }
    }
}

fn key_args(call: &mut redis::ScriptInvocation<'_>, key: &DeliveryKey, owner: Option<&WorkerId>) {
    call.arg(key.run.as_str())
        .arg(key.recipient.to_string())
        .arg(owner.map(WorkerId::as_str).unwrap_or_default());
}

/// Runs `changes` in one script call.
async fn run_changes(
    conn: &Conn,
    changes: &[Change],
    now: DateTime<Utc>,
) -> StoreResult<Vec<Answer>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut call = invocation(conn, &CHANGE);
    call.arg(ms(now));
    for change in changes {
        push(&mut call, change);
    }
    let answers: Vec<String> = run_script(conn, &call).await?;
    if answers.len() != changes.len() {
        return Err(corrupt("change".into(), "one answer per change expected"));
    }
    answers
        .into_iter()
        .map(|a| match a.as_str() {
            "ok" => Ok(Answer::Ok),
            "nf" => Ok(Answer::NotFound),
            other => match other.strip_prefix("c:") {
                Some(state) => Ok(Answer::Conflict(state.to_owned())),
                None => Err(corrupt(
                    "change".into(),
                    format!("unknown answer {other:?}"),
                )),
            },
        })
        .collect()
}

/// The error a single change's method returns for `answer`.
fn single(key: &DeliveryKey, expected: &str, answer: Answer) -> StoreResult<()> {
    match answer {
        Answer::Ok => Ok(()),
        Answer::NotFound => Err(StoreError::NotFound(format!(
            "delivery {}/{}",
            key.run, key.recipient
        ))),
        Answer::Conflict(state) => {
            let state = match state.as_str() {
                "q" => "queued",
                "s" => "sending",
                other => other,
            };
            Err(StoreError::Conflict(format!(
                "delivery {}/{} is {state}, not {expected}",
                key.run, key.recipient
            )))
        }
    }
}

async fn one(conn: &Conn, change: Change, expected: &str, now: DateTime<Utc>) -> StoreResult<()> {
    let key = match &change {
        Change::Defer { key, .. } | Change::Finish { key, .. } | Change::Requeue { key, .. } => {
            key.clone()
        }
    };
    let mut answers = run_changes(conn, std::slice::from_ref(&change), now).await?;
    let answer = answers
        .pop()
        .ok_or_else(|| corrupt("change".into(), "no answer"))?;
    single(&key, expected, answer)
}

pub(crate) async fn defer(
    conn: &Conn,
    key: &DeliveryKey,
    until: DateTime<Utc>,
    reason: WaitReason,
) -> StoreResult<()> {
    let change = Change::Defer {
        key: key.clone(),
        until,
        reason,
    };
    one(conn, change, "queued", until).await
}

pub(crate) async fn finish(
    conn: &Conn,
    key: &DeliveryKey,
    outcome: &Terminal,
    owner: Option<&WorkerId>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let expected = match owner {
        Some(owner) => format!("sending under {owner}'s claim"),
        None => "queued".to_owned(),
    };
    let change = Change::Finish {
        key: key.clone(),
        terminal: outcome.clone(),
        owner: owner.cloned(),
    };
    one(conn, change, &expected, now).await
}

pub(crate) async fn requeue(
    conn: &Conn,
    key: &DeliveryKey,
    until: DateTime<Utc>,
    reason: Option<WaitReason>,
    owner: &WorkerId,
) -> StoreResult<()> {
    let change = Change::Requeue {
        key: key.clone(),
        until,
        reason,
        owner: owner.clone(),
    };
    one(
        conn,
        change,
        &format!("sending under {owner}'s claim"),
        until,
    )
    .await
}

/// The worker's batch in one script call: `false` where the single method would have
/// returned `NotFound` or `Conflict`.
pub(crate) async fn apply(
    conn: &Conn,
    changes: &[Change],
    now: DateTime<Utc>,
) -> StoreResult<Vec<bool>> {
    Ok(run_changes(conn, changes, now)
        .await?
        .into_iter()
        .map(|a| matches!(a, Answer::Ok))
        .collect())
}
