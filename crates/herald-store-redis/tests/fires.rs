//! What the shared suite cannot see of the Redis fires port: the keys it writes (`src/keys.rs`,
//! "Recurring campaigns"), pruning from both the index and the data, damaged values read back as
//! `Corrupt` naming the key (never a fallback), and the bound on campaign ids. A real
//! `redis-server` per test.

mod common;

use herald_core::RunId;
use herald_store::conformance::t;
use herald_store::{
    CampaignVersion, FIRES_KEPT, FireOutcome, FireRecord, FireSkip, Fires, StoreError, StoreTime,
    Stores, VersionChange,
};
use herald_store_redis::{MAX_CAMPAIGNS, RedisStores};
use herald_testkit::redis::RedisServer;

use common::{blocking_client, open};

fn hash(n: u32) -> String {
    format!("{n:064x}")
}

fn version(id: &str, n: u32) -> CampaignVersion {
    CampaignVersion {
        campaign: id.to_owned(),
        hash: hash(n),
        text: format!("id: {id}\nversion: {n}\n"),
        source: format!("campaigns/{id}.yaml"),
        stored_at: t(i64::from(n)),
    }
}

fn ran(id: &str, fire: i64) -> FireRecord {
    FireRecord {
        campaign: id.to_owned(),
        fire: t(fire),
        outcome: FireOutcome::Run(RunId::parse(&format!("{id}@{}", t(fire).to_rfc3339())).unwrap()),
        hash: hash(1),
        recorded_at: t(fire + 1),
    }
}

async fn store(server: &RedisServer) -> RedisStores {
    open(server, StoreTime::Backend).await
}

/// The `Corrupt` error's key, failing the test on anything else.
fn corrupt_key<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Corrupt { key, .. }) => key,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// A text reply, `None` for nil.
fn text(server: &RedisServer, args: &[&str]) -> Option<String> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut blocking_client(server)).unwrap()
}

fn hset(server: &RedisServer, key: &str, field: &str, value: &str) {
    let _: i64 = redis::cmd("HSET")
        .arg(key)
        .arg(field)
        .arg(value)
        .query(&mut blocking_client(server))
        .unwrap();
}

#[tokio::test]
async fn versions_and_records_are_stored_under_the_documented_keys() {
    let server = RedisServer::start();
    let stores = store(&server).await;
    let fires = stores.fires();
    assert_eq!(
        fires.put_campaign(&version("weekly", 1)).await.unwrap(),
        VersionChange::Added
    );
    assert_eq!(
        server.command(&["SISMEMBER", "h:campaigns", "weekly"]),
        ":1"
    );
    let field = |f: &str| text(&server, &["HGET", "h:campaign:weekly", f]);
    assert_eq!(field("hash"), Some(hash(1)));
    assert_eq!(field("source").as_deref(), Some("campaigns/weekly.yaml"));
    assert_eq!(
        field("at"),
        Some(t(1).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    );

    let overlap = FireRecord {
        outcome: FireOutcome::Skipped(FireSkip::Overlap {
            previous: RunId::parse("weekly@earlier").unwrap(),
        }),
        ..ran("weekly", 60)
    };
    assert!(fires.record_fire(&overlap).await.unwrap().0);
    let secs = t(60).timestamp().to_string();
    assert_eq!(
        text(&server, &["ZSCORE", "h:fires:weekly", &secs]),
        Some(secs.clone())
    );
    let stored = text(&server, &["HGET", "h:fire:weekly", &secs]).expect("the record");
    assert!(
        stored.contains(r#""k":"overlap","r":"weekly@earlier""#),
        "{stored}"
    );
}

#[tokio::test]
async fn pruning_drops_the_oldest_from_the_index_and_the_data() {
    let server = RedisServer::start();
    let stores = store(&server).await;
    let kept = i64::try_from(FIRES_KEPT).unwrap();
    for n in 0..kept + 3 {
        assert!(stores.fires().record_fire(&ran("busy", n)).await.unwrap().0);
    }
    let size = format!(":{FIRES_KEPT}");
    assert_eq!(server.command(&["ZCARD", "h:fires:busy"]), size);
    assert_eq!(server.command(&["HLEN", "h:fire:busy"]), size);
    for n in 0..3 {
        let secs = t(n).timestamp().to_string();
        assert_eq!(server.command(&["HEXISTS", "h:fire:busy", &secs]), ":0");
        assert_eq!(server.command(&["ZSCORE", "h:fires:busy", &secs]), "$-1");
    }
    let oldest = stores.fires().fires("busy", FIRES_KEPT).await.unwrap();
    assert_eq!(oldest.last(), Some(&ran("busy", 3)));
}

#[tokio::test]
async fn damaged_fire_records_are_corrupt_naming_their_key() {
    let server = RedisServer::start();
    let stores = store(&server).await;
    let fires = stores.fires();
    let record = ran("weekly", 60);
    assert!(fires.record_fire(&record).await.unwrap().0);
    let secs = t(60).timestamp().to_string();
    let name = format!("fire:weekly/{secs}");
    let a = t(61).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let h = hash(1);
    for damaged in [
        format!(r#"{{"k":"postponed","h":"{h}","a":"{a}"}}"#),
        format!(r#"{{"k":"run","r":"no run id","h":"{h}","a":"{a}"}}"#),
        format!(r#"{{"k":"run","h":"{h}","a":"{a}"}}"#),
        format!(r#"{{"k":"overlap","h":"{h}","a":"{a}"}}"#),
        format!(r#"{{"k":"missed","r":"weekly@x","h":"{h}","a":"{a}"}}"#),
        format!(r#"{{"k":"missed","h":"{h}","a":"yesterday"}}"#),
        format!(r#"{{"k":"missed","h":"{h}","a":"{a}","extra":1}}"#),
        "not json".to_owned(),
    ] {
        hset(&server, "h:fire:weekly", &secs, &damaged);
        assert_eq!(
            corrupt_key(fires.fires("weekly", 10).await),
            name,
            "{damaged}"
        );
        assert_eq!(
            corrupt_key(fires.record_fire(&record).await),
            name,
            "the record read back by a second record: {damaged}"
        );
    }
    // An indexed fire whose record is gone.
    assert_eq!(server.command(&["HDEL", "h:fire:weekly", &secs]), ":1");
    assert_eq!(corrupt_key(fires.fires("weekly", 10).await), name);
}

#[tokio::test]
async fn damaged_campaign_versions_are_corrupt_naming_their_key() {
    let server = RedisServer::start();
    let stores = store(&server).await;
    let fires = stores.fires();
    assert_eq!(
        fires.put_campaign(&version("weekly", 1)).await.unwrap(),
        VersionChange::Added
    );
    hset(&server, "h:campaign:weekly", "at", "last week");
    assert_eq!(
        corrupt_key(fires.campaign("weekly").await),
        "campaign:weekly"
    );
    assert_eq!(corrupt_key(fires.campaigns().await), "campaign:weekly");
    assert_eq!(server.command(&["HDEL", "h:campaign:weekly", "hash"]), ":1");
    assert_eq!(
        corrupt_key(fires.campaign("weekly").await),
        "campaign:weekly"
    );
    assert_eq!(
        corrupt_key(fires.put_campaign(&version("weekly", 2)).await),
        "campaign:weekly",
        "a version without its hash is not replaced blindly"
    );
    assert_eq!(server.command(&["DEL", "h:campaign:weekly"]), ":1");
    assert_eq!(
        corrupt_key(fires.campaigns().await),
        "campaign:weekly",
        "an indexed id without its version"
    );
}

#[tokio::test]
async fn a_new_campaign_beyond_the_bound_is_refused() {
    let server = RedisServer::start();
    let stores = store(&server).await;
    let fires = stores.fires();
    assert_eq!(
        fires.put_campaign(&version("kept", 1)).await.unwrap(),
        VersionChange::Added
    );
    let mut fill = redis::cmd("SADD");
    fill.arg("h:campaigns");
    for n in 1..MAX_CAMPAIGNS {
        fill.arg(format!("c{n}"));
    }
    let added: usize = fill.query(&mut blocking_client(&server)).unwrap();
    assert_eq!(added, MAX_CAMPAIGNS - 1);
    match fires.put_campaign(&version("one-more", 1)).await {
        Err(StoreError::Conflict(why)) => assert!(why.contains("10000"), "{why}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(server.command(&["EXISTS", "h:campaign:one-more"]), ":0");
    assert_eq!(
        fires.put_campaign(&version("kept", 2)).await.unwrap(),
        VersionChange::Replaced {
            previous_hash: hash(1)
        },
        "a stored id is still replaced"
    );
}
