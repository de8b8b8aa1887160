//! Checks of recurring campaigns in the store ([`crate::Fires`]): campaign versions replaced by
//! hash, fire records stored once per (campaign, fire) whoever races for them, read back newest
//! first, and bounded to the newest [`FIRES_KEPT`] per campaign.
//!
//! Verdicts the port's docs leave to judgement, fixed here so every backend answers alike:
//! - input the port's types describe but cannot enforce is refused with `Conflict`, never
//!   stored: a campaign id outside `[a-z0-9-]+` (as [`herald_core::CampaignId`] parses it), a hash
//!   that is not 64 lowercase hex digits, a fire instant with a fraction of a second;
//! - a record of a fire older than the newest [`FIRES_KEPT`] of its campaign is dropped by the
//!   very call that stores it, so recording it again stores it again (`true`): schedulers never
//!   look at such fires (see the port's docs), and this is how the checks see that old records
//!   are gone.

use chrono::TimeDelta;

use super::*;
use crate::{
    CampaignVersion, FIRES_KEPT, FireOutcome, FireRecord, FireSkip, Fires, MAX_CAMPAIGN_TEXT_BYTES,
    VersionChange,
};

/// A hash in the stored form: 64 lowercase hex digits (`n` in hex, zero-padded).
fn hash(n: u32) -> String {
    format!("{n:064x}")
}

/// Version `n` of campaign `id`, read from `source`, current since `t(at)`.
fn version(id: &str, n: u32, source: &str, at: i64) -> CampaignVersion {
    CampaignVersion {
        campaign: id.to_owned(),
        hash: hash(n),
        text: format!("id: {id}\nversion: {n}\nschedule: {{ cron: \"0 9 * * *\" }}\n"),
        source: source.to_owned(),
        stored_at: t(at),
    }
}

/// The run of campaign `id` fired at `t(fire)`.
fn run_of(id: &str, fire: i64) -> RunId {
    let campaign = CampaignId::parse(id).expect("campaign id");
    RunId::new(&campaign, &t(fire).to_rfc3339())
}

/// A record of campaign `id` fired at `t(fire)` with `outcome`, version `hash(1)`, recorded
/// one second after the fire.
fn fired(id: &str, fire: i64, outcome: FireOutcome) -> FireRecord {
    FireRecord {
        campaign: id.to_owned(),
        fire: t(fire),
        outcome,
        hash: hash(1),
        recorded_at: t(fire + 1),
    }
}

/// A record of campaign `id` fired at `t(fire)` that made its run.
fn ran(id: &str, fire: i64) -> FireRecord {
    fired(id, fire, FireOutcome::Run(run_of(id, fire)))
}

/// Records `record` through `stores`.
async fn record<S: Stores>(stores: &S, record: &FireRecord) -> (bool, FireRecord) {
    stores
        .fires()
        .record_fire(record)
        .await
        .expect("record_fire")
}

/// The newest `limit` records of campaign `id` through `stores`.
async fn fires_of<S: Stores>(stores: &S, id: &str, limit: usize) -> Vec<FireRecord> {
    stores.fires().fires(id, limit).await.expect("fires")
}

/// `put_campaign` says what it did: `Added` for a new id, `Unchanged` for the stored hash (the
/// stored version kept as it was, `stored_at` and `source` included), `Replaced` with the hash it
/// replaced otherwise; `campaign` and `campaigns` (sorted by id) read the current versions
/// through either handle.
#[doc(hidden)]
pub async fn campaign_versions_are_added_kept_and_replaced_by_hash<S: Stores>(stores: &Suite<S>) {
    let (mine, theirs) = (stores.fires(), stores.other.fires());
    assert_eq!(theirs.campaign("weekly").await.unwrap(), None);
    assert_eq!(theirs.campaigns().await.unwrap(), []);
    let first = version("weekly", 1, "campaigns/weekly.yaml", 10);
    assert_eq!(
        mine.put_campaign(&first).await.unwrap(),
        VersionChange::Added
    );
    assert_eq!(
        theirs.campaign("weekly").await.unwrap(),
        Some(first.clone())
    );
    let moved = CampaignVersion {
        source: "elsewhere/weekly.yaml".into(),
        stored_at: t(20),
        ..first.clone()
    };
    assert_eq!(
        theirs.put_campaign(&moved).await.unwrap(),
        VersionChange::Unchanged
    );
    assert_eq!(
        mine.campaign("weekly").await.unwrap(),
        Some(first.clone()),
        "an unchanged version keeps its stored_at and source"
    );
    let second = version("weekly", 2, "campaigns/weekly.yaml", 30);
    assert_eq!(
        theirs.put_campaign(&second).await.unwrap(),
        VersionChange::Replaced {
            previous_hash: hash(1)
        }
    );
    assert_eq!(mine.campaign("weekly").await.unwrap(), Some(second.clone()));
    let back = version("weekly", 1, "campaigns/weekly.yaml", 40);
    assert_eq!(
        mine.put_campaign(&back).await.unwrap(),
        VersionChange::Replaced {
            previous_hash: hash(2)
        },
        "going back to an older version is a replacement too"
    );
    let (daily, alpha) = (
        version("daily", 7, "campaigns/daily.yaml", 50),
        version("alpha-2", 9, "campaigns/alpha.yaml", 60),
    );
    for v in [&daily, &alpha] {
        assert_eq!(mine.put_campaign(v).await.unwrap(), VersionChange::Added);
    }
    assert_eq!(
        theirs.campaigns().await.unwrap(),
        [alpha.clone(), daily.clone(), back.clone()],
        "sorted by id"
    );
    assert_eq!(theirs.campaign("daily").await.unwrap(), Some(daily));
    assert_eq!(theirs.campaign("monthly").await.unwrap(), None);
}

/// A text up to [`MAX_CAMPAIGN_TEXT_BYTES`] is stored and read back whole; one byte more is
/// refused (`Conflict`) and stores nothing, not even over an existing version. Ids, hashes and
/// fire instants the port describes but cannot type are refused alike.
#[doc(hidden)]
pub async fn malformed_campaigns_and_fires_are_refused<S: Stores>(stores: &Suite<S>) {
    let fires = stores.fires();
    let widest = CampaignVersion {
        text: "é".repeat(MAX_CAMPAIGN_TEXT_BYTES / 2),
        ..version("big", 1, "campaigns/big.yaml", 0)
    };
    assert_eq!(
        fires.put_campaign(&widest).await.unwrap(),
        VersionChange::Added,
        "exactly the bound"
    );
    assert_eq!(
        stores.other.fires().campaign("big").await.unwrap(),
        Some(widest.clone())
    );
    let over = CampaignVersion {
        text: format!("{}x", widest.text),
        ..version("big", 2, "campaigns/big.yaml", 10)
    };
    assert_err(fires.put_campaign(&over).await, "Conflict");
    let new_over = CampaignVersion {
        campaign: "other".into(),
        ..over.clone()
    };
    assert_err(fires.put_campaign(&new_over).await, "Conflict");
    for bad in [
        CampaignVersion {
            campaign: "Big".into(),
            ..version("big", 3, "x", 0)
        },
        CampaignVersion {
            campaign: String::new(),
            ..version("big", 3, "x", 0)
        },
        CampaignVersion {
            hash: "ABCDEF".into(),
            ..version("big", 3, "x", 0)
        },
        CampaignVersion {
            hash: hash(0xabc).to_uppercase(),
            ..version("big", 3, "x", 0)
        },
    ] {
        assert_err(fires.put_campaign(&bad).await, "Conflict");
    }
    assert_eq!(fires.campaign("big").await.unwrap(), Some(widest.clone()));
    assert_eq!(fires.campaigns().await.unwrap(), [widest]);
    let fraction = FireRecord {
        fire: t(100) + TimeDelta::milliseconds(500),
        ..ran("big", 100)
    };
    let bad_id = FireRecord {
        campaign: "big weekly".into(),
        ..ran("big", 100)
    };
    let bad_hash = FireRecord {
        hash: "not a hash".into(),
        ..ran("big", 100)
    };
    for bad in [fraction, bad_id, bad_hash] {
        assert_err(fires.record_fire(&bad).await, "Conflict");
    }
    assert_eq!(fires_of(stores, "big", 10).await, []);
}

/// A fire is recorded once: a second record of the same (campaign, fire), with another outcome,
/// through either handle, returns `false` and the first record unchanged; records of other
/// campaigns or other instants are independent of it.
#[doc(hidden)]
pub async fn a_fire_is_recorded_once<S: Stores>(stores: &Suite<S>) {
    let first = ran("weekly", 3600);
    assert_eq!(record(stores, &first).await, (true, first.clone()));
    let missed = FireRecord {
        hash: hash(2),
        recorded_at: t(9000),
        ..fired("weekly", 3600, FireOutcome::Skipped(FireSkip::Missed))
    };
    assert_eq!(record(stores, &missed).await, (false, first.clone()));
    assert_eq!(record(&stores.other, &missed).await, (false, first.clone()));
    assert_eq!(
        record(&stores.other, &first).await,
        (false, first.clone()),
        "the same record again"
    );
    let other_campaign = fired("daily", 3600, FireOutcome::Skipped(FireSkip::Missed));
    assert_eq!(
        record(&stores.other, &other_campaign).await,
        (true, other_campaign.clone())
    );
    let later = ran("weekly", 7200);
    assert_eq!(record(stores, &later).await, (true, later.clone()));
    assert_eq!(
        fires_of(&stores.other, "weekly", 10).await,
        [later, first],
        "newest first"
    );
    assert_eq!(fires_of(stores, "daily", 10).await, [other_campaign]);
    assert_eq!(fires_of(stores, "monthly", 10).await, []);
}

/// `fires` returns the newest `limit` records of one campaign, newest fire first whatever the
/// order they were recorded in, and every outcome reads back as it was recorded.
#[doc(hidden)]
pub async fn fires_are_read_newest_first_with_every_outcome<S: Stores>(stores: &Suite<S>) {
    let previous = run_of("weekly", 0);
    let records = [
        ran("weekly", 0),
        fired("weekly", 300, FireOutcome::Skipped(FireSkip::Missed)),
        fired("weekly", 200, FireOutcome::Skipped(FireSkip::Superseded)),
        fired(
            "weekly",
            100,
            FireOutcome::Skipped(FireSkip::Overlap { previous }),
        ),
        ran("weekly", 400),
    ];
    for r in &records {
        assert_eq!(record(stores, r).await, (true, r.clone()));
    }
    let noise = ran("weekly-2", 500);
    assert!(record(stores, &noise).await.0);
    let newest_first = [
        records[4].clone(),
        records[1].clone(),
        records[2].clone(),
        records[3].clone(),
        records[0].clone(),
    ];
    assert_eq!(fires_of(&stores.other, "weekly", 10).await, newest_first);
    assert_eq!(fires_of(stores, "weekly", 5).await, newest_first);
    assert_eq!(fires_of(stores, "weekly", 2).await, newest_first[..2]);
    assert_eq!(fires_of(stores, "weekly", 0).await, []);
    assert_eq!(
        fires_of(stores, "weekly", usize::MAX).await,
        newest_first,
        "a huge limit is fine"
    );
}

/// A campaign keeps its newest [`FIRES_KEPT`] records: after `FIRES_KEPT + 5`, the five oldest
/// are gone (recording one again stores it again) and every other is kept (recording it again
/// does not); another campaign's records are untouched.
#[doc(hidden)]
pub async fn only_the_newest_fires_are_kept<S: Stores>(stores: &Suite<S>) {
    let kept = i64::try_from(FIRES_KEPT).expect("a small bound");
    let other = ran("other", 0);
    assert!(record(stores, &other).await.0);
    for n in 0..kept + 5 {
        let r = ran("busy", n * 60);
        assert_eq!(record(stores, &r).await, (true, r));
    }
    let listed = fires_of(&stores.other, "busy", FIRES_KEPT + 5).await;
    assert_eq!(listed.len(), FIRES_KEPT, "clamped to what is kept");
    let expected: Vec<_> = (5..kept + 5).rev().map(|n| ran("busy", n * 60)).collect();
    assert_eq!(listed, expected);
    let oldest_kept = FireRecord {
        outcome: FireOutcome::Skipped(FireSkip::Missed),
        ..ran("busy", 5 * 60)
    };
    assert_eq!(
        record(stores, &oldest_kept).await,
        (false, ran("busy", 5 * 60)),
        "the oldest kept record is still there"
    );
    for n in 0..5 {
        let dropped = fired("busy", n * 60, FireOutcome::Skipped(FireSkip::Missed));
        assert_eq!(
            record(&stores.other, &dropped).await,
            (true, dropped.clone()),
            "fire {n} was dropped"
        );
    }
    assert_eq!(fires_of(stores, "busy", FIRES_KEPT).await, expected);
    assert_eq!(fires_of(stores, "other", 10).await, [other]);
}

/// Many callers racing to record one (campaign, fire) with different outcomes, through both
/// handles: exactly one stores its record, and every caller gets that same record back.
#[doc(hidden)]
pub async fn racing_records_of_one_fire_store_one<S: Stores>(stores: &Suite<S>) {
    let outcomes = |n: u32| match n % 4 {
        0 => FireOutcome::Run(run_of("race", 600)),
        1 => FireOutcome::Skipped(FireSkip::Missed),
        2 => FireOutcome::Skipped(FireSkip::Superseded),
        _ => FireOutcome::Skipped(FireSkip::Overlap {
            previous: run_of("race", 0),
        }),
    };
    let records: Vec<FireRecord> = (0..16)
        .map(|n| FireRecord {
            hash: hash(n),
            recorded_at: t(600 + i64::from(n)),
            ..fired("race", 600, outcomes(n))
        })
        .collect();
    let calls = records
        .iter()
        .enumerate()
        .map(|(n, r)| match n % 2 {
            0 => stores.fires().record_fire(r),
            _ => stores.other.fires().record_fire(r),
        })
        .collect();
    let answers: Vec<(bool, FireRecord)> = join_all(calls)
        .await
        .into_iter()
        .map(|a| a.expect("record_fire"))
        .collect();
    let winners: Vec<usize> = (0..answers.len()).filter(|n| answers[*n].0).collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    let stored = records[winners[0]].clone();
    assert!(answers.iter().all(|(_, r)| *r == stored), "{answers:?}");
    assert_eq!(fires_of(stores, "race", 10).await, [stored]);
}

/// Problems of campaign files: recorded by source (a second one replaces the first), read by
/// source, cleared with `None` (clearing one never recorded is fine), diagnostics cut to
/// [`crate::MAX_PROBLEM_BYTES`] at a char boundary; past [`crate::MAX_PROBLEMS`] sources a new
/// one is refused with `Conflict` while replacing and clearing still work.
#[doc(hidden)]
pub async fn campaign_problems_are_kept_by_source<S: Stores>(stores: &Suite<S>) {
    use crate::{CampaignProblem, MAX_PROBLEM_BYTES, MAX_PROBLEMS};
    let problem = |source: &str, text: &str, at: i64| CampaignProblem {
        source: source.to_owned(),
        diagnostics: text.to_owned(),
        at: t(at),
    };
    let fires = stores.fires();
    assert!(fires.problems().await.unwrap().is_empty());
    let b = problem("dir/b.yaml", "dir/b.yaml:2:10: unknown purpose", 1);
    fires.set_problem(&b.source, Some(&b)).await.unwrap();
    let a = problem("dir/a.yaml", "dir/a.yaml:1:1: not valid YAML", 2);
    fires.set_problem(&a.source, Some(&a)).await.unwrap();
    assert_eq!(fires.problems().await.unwrap(), vec![a.clone(), b.clone()]);
    let b2 = problem("dir/b.yaml", "dir/b.yaml:3:1: unknown field", 3);
    fires.set_problem(&b2.source, Some(&b2)).await.unwrap();
    assert_eq!(fires.problems().await.unwrap(), vec![a.clone(), b2.clone()]);
    fires.set_problem(&a.source, None).await.unwrap();
    fires.set_problem("dir/never.yaml", None).await.unwrap();
    assert_eq!(fires.problems().await.unwrap(), vec![b2.clone()]);
    // Cut at a char boundary: 'é' is two bytes, and the bound falls inside one.
    let long = "é".repeat(MAX_PROBLEM_BYTES);
    fires
        .set_problem("dir/long.yaml", Some(&problem("dir/long.yaml", &long, 4)))
        .await
        .unwrap();
    let stored = fires.problems().await.unwrap();
    let cut = &stored
        .iter()
        .find(|p| p.source == "dir/long.yaml")
        .unwrap()
        .diagnostics;
    assert_eq!(cut.len(), MAX_PROBLEM_BYTES);
    assert!(cut.chars().all(|c| c == 'é'));
    // The bound on sources.
    for i in stored.len()..MAX_PROBLEMS {
        let source = format!("dir/f{i:04}.yaml");
        fires
            .set_problem(&source, Some(&problem(&source, "x", 5)))
            .await
            .unwrap();
    }
    let over = problem("dir/over.yaml", "x", 6);
    assert!(matches!(
        fires.set_problem(&over.source, Some(&over)).await,
        Err(crate::StoreError::Conflict(_))
    ));
    fires.set_problem(&b2.source, Some(&b)).await.unwrap();
    fires.set_problem(&b2.source, None).await.unwrap();
    fires.set_problem(&over.source, Some(&over)).await.unwrap();
    assert_eq!(fires.problems().await.unwrap().len(), MAX_PROBLEMS);
}
