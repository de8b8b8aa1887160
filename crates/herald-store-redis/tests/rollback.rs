//! A store that went back in time (an older backup restored, a replica that lacked writes
//! promoted) still holds its epoch, so the epoch cannot tell; its write sequence can: a handle
//! that saw a higher one refuses every write, as for an emptied store, and sends nothing again.

use chrono::{DateTime, Utc};
use herald_core::{CampaignId, Purpose, RunId};
use herald_store::{Deliveries, NewRun, Runs, StoreError, StoreTime};
use herald_store_redis::{RedisConfig, RedisStores};
use herald_testkit::redis::RedisServer;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
}

fn new_run(name: &str) -> NewRun {
    let campaign = CampaignId::parse(name).unwrap();
    NewRun {
        run: RunId::new(&campaign, "2026-01-01T00:00"),
        campaign,
        purpose: Purpose::Transactional,
        source: format!("{name}.yaml"),
        sender: Some("main".into()),
        campaign_text: Some("id: x".into()),
        at_least_once: false,
        audience_sha256: None,
    }
}

#[tokio::test]
async fn a_store_whose_write_sequence_went_back_is_refused_by_a_handle_that_saw_more() {
    let server = RedisServer::start();
    let config = RedisConfig::new(server.url());
    RedisStores::init(&config).await.unwrap();
    let stores = RedisStores::open(&config, StoreTime::Backend)
        .await
        .unwrap();
    let runs = <RedisStores as herald_store::Stores>::runs(&stores);
    assert!(runs.create_run(&new_run("before"), t(0)).await.unwrap());
    // A worker step reads the sequence (every `due` does).
    let deliveries = <RedisStores as herald_store::Stores>::deliveries(&stores);
    deliveries.due(t(1), 10).await.unwrap();
    // (`INCRBY 0` answers the value on the reply's first line, which the helper returns.)
    let seq = server.command(&["INCRBY", "h:seq", "0"]);
    assert!(
        seq.starts_with(':') && seq != ":0",
        "no write sequence was kept: {seq}"
    );

    // The store goes back: its sequence is below what the handle saw (an older backup).
    assert_eq!(server.command(&["SET", "h:seq", "0"]), "+OK");
    match runs.create_run(&new_run("after"), t(2)).await {
        Err(StoreError::Corrupt { key, reason }) => {
            assert_eq!(key, "epoch");
            assert!(reason.contains("went back in time"), "{reason}");
        }
        other => panic!("a write to a store that went back was not refused: {other:?}"),
    }
    assert!(
        runs.run(&new_run("after").run).await.unwrap().is_none(),
        "the refused write was stored"
    );

    // A handle opened afterwards takes the store as it is now (nothing can tell it otherwise;
    // the README says so): it works.
    let later = RedisStores::open(&config, StoreTime::Backend)
        .await
        .unwrap();
    assert!(
        <RedisStores as herald_store::Stores>::runs(&later)
            .create_run(&new_run("later"), t(3))
            .await
            .unwrap()
    );
}
