//! Checks of the senders' shared state (throttle, block, resume), of the work scope a blocked
//! sender empties, and of runs adopting a sender and campaign text.

use std::time::Duration;

use chrono::TimeDelta;

use super::*;
use crate::{Block, MAX_THROTTLE, NewRun, SenderState, Senders, WorkScope};

/// A throttle or block recorded through one handle is what the other reads; a throttle keeps
/// the later end, capped at [`MAX_THROTTLE`] from the store's now; a block keeps the first
/// recorded; resume clears both and says whether the sender was blocked.
#[doc(hidden)]
pub async fn throttle_and_block_are_shared_and_resume_clears_them<S: Stores>(stores: &Suite<S>) {
    let (mine, theirs) = (stores.senders(), stores.other.senders());
    let empty = |name: &str| SenderState {
        name: name.into(),
        throttled_until: None,
        blocked: None,
    };
    assert_eq!(theirs.sender(SENDER).await.unwrap(), empty(SENDER));
    assert_eq!(theirs.senders().await.unwrap(), []);
    stores.at(10);
    let until = mine
        .throttle(SENDER, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(until, t(70));
    stores.at(20);
    let shorter = theirs
        .throttle(SENDER, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(shorter, t(70), "the later end is kept");
    let longest = theirs
        .throttle(SENDER, Duration::from_secs(3600))
        .await
        .unwrap();
    let cap = t(20) + TimeDelta::from_std(MAX_THROTTLE).unwrap();
    assert_eq!(longest, cap, "capped");
    assert_eq!(
        theirs.sender(SENDER).await.unwrap().throttled_until,
        Some(cap)
    );
    mine.block(SENDER, "131048", "spam rate limit", t(21))
        .await
        .unwrap();
    theirs
        .block(SENDER, "368", "policy violation", t(22))
        .await
        .unwrap();
    let first = Block {
        code: "131048".into(),
        reason: "spam rate limit".into(),
        at: t(21),
    };
    let state = theirs.sender(SENDER).await.unwrap();
    assert_eq!(
        state.blocked,
        Some(first.clone()),
        "the first block is kept"
    );
    // A sender only ever claimed through (rate, tier) is not listed: nothing holds it back.
    let f = Fixture::new(stores, "listed").await;
    f.insert(&[("a", 1, 0)]).await;
    assert!(f.claim("a", 30).await);
    mine.throttle("other", Duration::from_secs(1))
        .await
        .unwrap();
    let listed: Vec<_> = mine.senders().await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["main", "other"]
    );
    assert_eq!(listed[0].blocked, Some(first));
    assert!(theirs.resume(SENDER).await.unwrap());
    assert_eq!(mine.sender(SENDER).await.unwrap(), empty(SENDER));
    assert!(!mine.resume(SENDER).await.unwrap(), "not blocked any more");
    assert!(
        !mine.resume("other").await.unwrap(),
        "throttled, never blocked"
    );
    assert_eq!(mine.sender("other").await.unwrap(), empty("other"));
}

/// `due_in` and `next_due_in` give nothing while the scope's sender is blocked, whichever
/// handle blocked it, and work again after a resume; another sender's scope is unaffected.
#[doc(hidden)]
pub async fn due_in_excludes_a_blocked_sender<S: Stores>(stores: &Suite<S>) {
    let f = Fixture::new(stores, "blocked").await;
    let elsewhere = NewRun {
        sender: Some("other".into()),
        ..new_run("elsewhere")
    };
    let g = Fixture::create(stores, elsewhere).await;
    f.insert(&[("a", 1, 10)]).await;
    g.insert(&[("b", 2, 20)]).await;
    let d = stores.deliveries();
    let scope = |sender: &str| WorkScope {
        sender: sender.into(),
        runs: None,
    };
    let keys = |due: Vec<crate::Delivery>| due.into_iter().map(|x| x.key).collect::<Vec<_>>();
    assert_eq!(
        keys(d.due_in(&scope(SENDER), t(100), 10).await.unwrap()),
        f.keys(&["a"])
    );
    stores
        .other
        .senders()
        .block(SENDER, "131048", "spam", t(1))
        .await
        .unwrap();
    assert_eq!(d.due_in(&scope(SENDER), t(100), 10).await.unwrap(), []);
    assert_eq!(d.next_due_in(&scope(SENDER)).await.unwrap(), None);
    let named = WorkScope {
        sender: SENDER.into(),
        runs: Some(vec![f.run.clone()]),
    };
    assert_eq!(d.due_in(&named, t(100), 10).await.unwrap(), []);
    assert_eq!(
        keys(d.due_in(&scope("other"), t(100), 10).await.unwrap()),
        g.keys(&["b"])
    );
    assert_eq!(d.next_due_in(&scope("other")).await.unwrap(), Some(t(20)));
    // A throttle does not empty the scope: the claim holds those deliveries back.
    stores.senders().resume(SENDER).await.unwrap();
    stores
        .senders()
        .throttle(SENDER, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        keys(d.due_in(&scope(SENDER), t(100), 10).await.unwrap()),
        f.keys(&["a"])
    );
    assert_eq!(d.next_due_in(&scope(SENDER)).await.unwrap(), Some(t(10)));
}

/// A run stored without sender and campaign text (as an older store kept runs) is nobody's
/// work; submitted again it adopts both, once, and nothing else of it changes. A run that has
/// them keeps them.
#[doc(hidden)]
pub async fn a_run_without_sender_adopts_one_when_submitted_again<S: Stores>(stores: &Suite<S>) {
    let runs = stores.runs();
    let bare = NewRun {
        sender: None,
        campaign_text: None,
        ..new_run("bare")
    };
    let f = Fixture::create(stores, bare.clone()).await;
    f.insert(&[("a", 1, 0)]).await;
    let scope = WorkScope {
        sender: SENDER.into(),
        runs: None,
    };
    let d = stores.deliveries();
    assert_eq!(d.due_in(&scope, t(10), 10).await.unwrap(), []);
    assert_eq!(d.next_due_in(&scope).await.unwrap(), None);
    let again = NewRun {
        source: "campaigns/renamed.yaml".into(),
        at_least_once: true,
        audience_sha256: None,
        ..new_run("bare")
    };
    assert!(!stores.other.runs().create_run(&again, t(5)).await.unwrap());
    let stored = runs.run(&f.run).await.unwrap().unwrap();
    let expected = NewRun {
        sender: again.sender.clone(),
        campaign_text: again.campaign_text.clone(),
        ..bare
    };
    assert_eq!((stored.run, stored.created_at), (expected.clone(), t(0)));
    let due = d.due_in(&scope, t(10), 10).await.unwrap();
    assert_eq!(
        due.into_iter().map(|x| x.key).collect::<Vec<_>>(),
        f.keys(&["a"])
    );
    // Adopted once: a later submission with other values changes nothing.
    let other = NewRun {
        sender: Some("other".into()),
        campaign_text: Some("id: bare\nsender: other\n".into()),
        ..new_run("bare")
    };
    assert!(!runs.create_run(&other, t(6)).await.unwrap());
    assert_eq!(runs.run(&f.run).await.unwrap().unwrap().run, expected);
    // A run created with both keeps them.
    let full = new_run("full");
    assert!(runs.create_run(&full, t(0)).await.unwrap());
    let changed = NewRun {
        sender: Some("other".into()),
        ..full.clone()
    };
    assert!(!runs.create_run(&changed, t(1)).await.unwrap());
    assert_eq!(runs.run(&full.run).await.unwrap().unwrap().run, full);
}
