//! A store written at layout 1 (before provider feedback) is upgraded through layout 2 to layout 3
//! when a handle opens it to work: the provider ids of its `sent` deliveries are indexed, so
//! statuses and replies for messages sent before the upgrade find their delivery; counts then
//! follow the ladder. A store written at layout 2 (before recurring campaigns) is upgraded to
//! layout 3 keeping its runs and deliveries, and campaign versions and fire records work on it.
//! A newer layout is refused. A real `redis-server`, the store's time driven by hand.

mod common;

use chrono::TimeDelta;
use herald_core::{Outcome, RunId};
use herald_store::conformance::{ManualClock, new_run, phone, queued, t, worker};
use herald_store::{
    CampaignVersion, ClaimAnswer, Deliveries, Feedback, FireOutcome, FireRecord, FireSkip, Fires,
    Progress, ReportedStatus, Runs, StatusReport, StatusVerdict, StoreError, StoreTime, Stores,
    Terminal, VersionChange,
};
use herald_store_redis::{RedisConfig, RedisStores};
use herald_testkit::redis::RedisServer;

use common::{blocking_client, claims_at, key, open};

/// A text reply of the server, `None` for nil.
fn text(server: &RedisServer, args: &[&str]) -> Option<String> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut blocking_client(server)).unwrap()
}

/// Recipients of the bulk run, written raw as layout 1 stored `sent` deliveries: more than one
/// chunk of the upgrade (`src/upgrade.rs`, 1,000 fields per call).
const BULK: usize = 2_500;

fn reached(wamid: &str, progress: Progress) -> StatusReport {
    StatusReport {
        provider_id: wamid.to_owned(),
        callback: None,
        status: ReportedStatus::Reached(progress),
        at: t(40),
    }
}

/// A run of three deliveries: `r0` and `r1` sent as `wamid.0` and `wamid.1`, `r2` queued.
async fn written_by_this_version(stores: &RedisStores) -> RunId {
    let run = new_run("before");
    assert!(stores.runs().create_run(&run, t(0)).await.unwrap());
    let run = run.run;
    let d = stores.deliveries();
    let rows: Vec<_> = (0..3u32)
        .map(|i| queued(&run, &format!("r{i}"), i, 0))
        .collect();
    assert_eq!(d.insert_batch(&rows).await.unwrap(), 3);
    let answers = d
        .claim(&claims_at(&run, &["r0", "r1"], t(10)))
        .await
        .unwrap();
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, ClaimAnswer::Claimed { .. }))
    );
    for r in ["r0", "r1"] {
        let sent = Terminal {
            outcome: Outcome::Sent,
            detail: Some(format!("wamid.{}", &r[1..])),
        };
        d.finish(&key(&run, r), &sent, Some(&worker(1)), t(11))
            .await
            .unwrap();
    }
    run
}

/// Turns the store back into what layout 1 wrote: no index, no `i` in a state, layout `1`; and
/// adds a run of [`BULK`] `sent` deliveries in layout 1's state format.
fn as_layout_1(server: &RedisServer, run: &RunId) {
    let mut redis = blocking_client(server);
    let dl = format!("h:dl:{run}");
    for r in ["r0", "r1"] {
        let state: String = redis::cmd("HGET")
            .arg(&dl)
            .arg(r)
            .query(&mut redis)
            .unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&state).unwrap();
        assert!(json.as_object_mut().unwrap().remove("i").is_some());
        let _: i64 = redis::cmd("HSET")
            .arg(&dl)
            .arg(r)
            .arg(json.to_string())
            .query(&mut redis)
            .unwrap();
    }
    assert_eq!(server.command(&["DEL", "h:mid"]), ":1");
    assert_eq!(server.command(&["SET", "h:layout", "1"]), "+OK");
    let bulk = new_run("bulk").run;
    let created = t(0).timestamp_millis().to_string();
    let mut cmd = redis::cmd("HSET");
    cmd.arg(format!("h:run:{bulk}"))
        .arg("campaign")
        .arg("bulk")
        .arg("purpose")
        .arg("marketing")
        .arg("source")
        .arg("campaigns/bulk.yaml")
        .arg("created")
        .arg(&created)
        .arg("state")
        .arg("active")
        .arg("c:sent")
        .arg(BULK);
    let _: i64 = cmd.query(&mut redis).unwrap();
    let _: i64 = redis::cmd("ZADD")
        .arg("h:runs")
        .arg(&created)
        .arg(bulk.as_str())
        .query(&mut redis)
        .unwrap();
    let mut states = redis::cmd("HSET");
    states.arg(format!("h:dl:{bulk}"));
    for n in 0..BULK {
        states.arg(format!("b{n}")).arg(format!(
            r#"{{"s":"sent","a":1,"m":"wamid.bulk.{n}","f":{created},"o":"w","t":1}}"#
        ));
    }
    let _: i64 = states.query(&mut redis).unwrap();
}

#[tokio::test]
async fn a_layout_1_store_is_upgraded_at_open() {
    let server = RedisServer::start();
    let clock = ManualClock::new(t(10));
    let time = StoreTime::Clock(clock.clone());
    let run = written_by_this_version(&open(&server, time.clone()).await).await;
    as_layout_1(&server, &run);
    let config = RedisConfig::new(server.url());

    // Reading never upgrades.
    let inspect = RedisStores::open_to_inspect(&config, time.clone())
        .await
        .unwrap();
    assert_eq!(inspect.layout_version(), 1);
    assert_eq!(text(&server, &["GET", "h:layout"]).as_deref(), Some("1"));

    let stores = RedisStores::open(&config, time.clone()).await.unwrap();
    assert_eq!(stores.layout_version(), 3);
    assert_eq!(text(&server, &["GET", "h:layout"]).as_deref(), Some("3"));
    let hlen = |server: &RedisServer| server.command(&["HLEN", "h:mid"]);
    assert_eq!(hlen(&server), format!(":{}", BULK + 2));
    let bulk = new_run("bulk").run;
    for n in [0, BULK / 2, BULK - 1] {
        assert_eq!(
            text(&server, &["HGET", "h:mid", &format!("wamid.bulk.{n}")]),
            Some(format!("{bulk}\u{1f}b{n}"))
        );
    }
    // A second open finds layout 3 and changes nothing.
    let again = RedisStores::open(&config, time).await.unwrap();
    assert_eq!(again.layout_version(), 3);
    assert_eq!(hlen(&server), format!(":{}", BULK + 2));

    let feedback = stores.feedback();
    let found = feedback.message("wamid.0").await.unwrap().expect("indexed");
    assert_eq!(
        (found.key, found.phone, found.progress),
        (key(&run, "r0"), phone(0), Some(Progress::Sent))
    );
    for (wamid, rung) in [
        ("wamid.0", Progress::Delivered),
        ("wamid.0", Progress::Read),
        ("wamid.1", Progress::Delivered),
    ] {
        let verdict = feedback
            .record_status(&reached(wamid, rung), t(40))
            .await
            .unwrap();
        assert!(
            matches!(verdict, StatusVerdict::Applied { .. }),
            "{verdict:?}"
        );
    }
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!((counts.sent, counts.delivered, counts.read), (2, 2, 1));
    assert_eq!((counts.queued, counts.total()), (1, 3));
    let bulk_counts = stores.deliveries().counts(&bulk).await.unwrap();
    assert_eq!((bulk_counts.sent, bulk_counts.delivered), (BULK as u64, 0));

    // Compaction drops the index entry of an upgraded delivery too (its `m`, no `i`: `r1` got
    // no report). The raw bulk deliveries are not in `done`, so their entries stay.
    clock.set(t(11) + TimeDelta::days(8));
    stores.deliveries().recover_expired(10).await.unwrap();
    assert_eq!(feedback.message("wamid.1").await.unwrap(), None);
    assert_eq!(feedback.message("wamid.0").await.unwrap(), None);
    assert_eq!(hlen(&server), format!(":{BULK}"));
}

/// A run written raw as layout 2 stored it, with its keys: `r0` sent as `wamid.legacy.0` and
/// raised to `delivered` by a report (its `g` and `i`, its `mid` entry), `r1` queued due at
/// `t(20)`; the marker `2`. Layout 2 wrote no key of recurring campaigns.
fn write_layout_2(server: &RedisServer) -> RunId {
    let run = RunId::parse("legacy@2026-11-30T09:00:00Z").unwrap();
    let (created, sent, due) = (
        t(0).timestamp_millis().to_string(),
        t(5).timestamp_millis().to_string(),
        t(20).timestamp_millis().to_string(),
    );
    let mut redis = blocking_client(server);
    let mut cmd = redis::cmd("HSET");
    cmd.arg(format!("h:run:{run}"));
    for (field, value) in [
        ("campaign", "legacy"),
        ("purpose", "marketing"),
        ("source", "campaigns/legacy.yaml"),
        ("alo", "0"),
        ("created", created.as_str()),
        ("total", "2"),
        ("state", "active"),
        ("c:queued", "1"),
        ("c:sending", "0"),
        ("c:sent", "1"),
        ("c:delivered", "1"),
    ] {
        cmd.arg(field).arg(value);
    }
    let _: i64 = cmd.query(&mut redis).unwrap();
    let id = run.as_str();
    let member = format!("{run}\u{1f}r0");
    let due_key = format!("h:due:{run}");
    for args in [
        vec!["ZADD", "h:runs", created.as_str(), id],
        vec!["SADD", "h:sruns:", id],
        vec!["SADD", "h:qruns", id],
        vec!["ZADD", due_key.as_str(), due.as_str(), "r1"],
        vec!["HSET", "h:mid", "wamid.legacy.0", member.as_str()],
        vec!["ZADD", "h:done", sent.as_str(), member.as_str()],
    ] {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let _: i64 = cmd.query(&mut redis).unwrap();
    }
    let snap = |n: u32| format!(r#"{{"p":"{}","n":{n}}}"#, phone(n).expose_e164());
    let _: i64 = redis::cmd("HSET")
        .arg(format!("h:snap:{run}"))
        .arg("r0")
        .arg(snap(0))
        .arg("r1")
        .arg(snap(1))
        .query(&mut redis)
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(format!("h:dl:{run}"))
        .arg("r0")
        .arg(format!(
            r#"{{"s":"sent","a":1,"o":"w","t":1,"m":"wamid.legacy.0","f":{sent},"g":"delivered","i":"wamid.legacy.0"}}"#
        ))
        .arg("r1")
        .arg(format!(r#"{{"s":"q","d":{due},"a":0}}"#))
        .query(&mut redis)
        .unwrap();
    assert_eq!(server.command(&["SET", "h:layout", "2"]), "+OK");
    run
}

#[tokio::test]
async fn a_layout_2_store_is_upgraded_to_3_keeping_its_runs_and_deliveries() {
    let server = RedisServer::start();
    let clock = ManualClock::new(t(30));
    let time = StoreTime::Clock(clock.clone());
    let config = RedisConfig::new(server.url());
    assert!(RedisStores::init(&config).await.unwrap());
    let run = write_layout_2(&server);

    let inspect = RedisStores::open_to_inspect(&config, time.clone())
        .await
        .unwrap();
    assert_eq!(inspect.layout_version(), 2, "reading never upgrades");
    assert_eq!(text(&server, &["GET", "h:layout"]).as_deref(), Some("2"));

    let stores = RedisStores::open(&config, time.clone()).await.unwrap();
    assert_eq!(stores.layout_version(), 3);
    assert_eq!(text(&server, &["GET", "h:layout"]).as_deref(), Some("3"));
    // Nothing to backfill: the upgrade wrote no key of recurring campaigns.
    assert_eq!(server.command(&["EXISTS", "h:campaigns"]), ":0");

    let record = stores.runs().run(&run).await.unwrap().expect("the run");
    assert_eq!(
        (record.run.source.as_str(), record.total),
        ("campaigns/legacy.yaml", Some(2))
    );
    let counts = stores.deliveries().counts(&run).await.unwrap();
    assert_eq!(
        (counts.sent, counts.delivered, counts.queued, counts.total()),
        (1, 1, 1, 2)
    );
    let found = stores
        .feedback()
        .message("wamid.legacy.0")
        .await
        .unwrap()
        .expect("indexed at layout 2");
    assert_eq!(
        (found.key, found.phone, found.progress),
        (key(&run, "r0"), phone(0), Some(Progress::Delivered))
    );
    let due = stores.deliveries().due(t(30), 10).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.key.clone(), d.recipient.phone.clone(), d.due_at))
            .collect::<Vec<_>>(),
        [(key(&run, "r1"), phone(1), t(20))]
    );

    let fires = stores.fires();
    let version = CampaignVersion {
        campaign: "legacy".into(),
        hash: format!("{:064x}", 7),
        text: "id: legacy\n".into(),
        source: "campaigns/legacy.yaml".into(),
        stored_at: t(30),
    };
    assert_eq!(
        fires.put_campaign(&version).await.unwrap(),
        VersionChange::Added
    );
    let fire = FireRecord {
        campaign: "legacy".into(),
        fire: t(60),
        outcome: FireOutcome::Skipped(FireSkip::Overlap {
            previous: run.clone(),
        }),
        hash: version.hash.clone(),
        recorded_at: t(61),
    };
    assert_eq!(
        fires.record_fire(&fire).await.unwrap(),
        (true, fire.clone())
    );
    let again = RedisStores::open(&config, time).await.unwrap();
    assert_eq!(again.layout_version(), 3);
    assert_eq!(again.fires().campaigns().await.unwrap(), [version]);
    assert_eq!(again.fires().fires("legacy", 10).await.unwrap(), [fire]);
}

#[tokio::test]
async fn a_newer_layout_is_refused() {
    let server = RedisServer::start();
    let config = RedisConfig::new(server.url());
    assert!(RedisStores::init(&config).await.unwrap());
    assert_eq!(server.command(&["SET", "h:layout", "4"]), "+OK");
    let Err(error) = RedisStores::open(&config, StoreTime::Backend).await else {
        panic!("a layout 4 store opened");
    };
    let message = format!("{error} {:?}", std::error::Error::source(&error));
    assert!(
        matches!(error, StoreError::Unusable { .. })
            && message.contains("\"4\"")
            && message.contains("\"3\""),
        "{message}"
    );
    assert_eq!(text(&server, &["GET", "h:layout"]).as_deref(), Some("4"));
}
