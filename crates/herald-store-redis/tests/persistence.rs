//! The persistence check at open and the epoch of a half-emptied store, against real servers.

use herald_store::{Durability, StoreError, StoreTime};
use herald_store_redis::{PersistenceCheck, RedisConfig, RedisStores};
use herald_testkit::redis::{Persistence, RedisServer};

async fn open(
    server: &RedisServer,
    config: impl FnOnce(&mut RedisConfig),
) -> Result<(), StoreError> {
    let mut redis = RedisConfig::new(server.url());
    config(&mut redis);
    // `init` checks the persistence exactly as `open` does, and creates the store to open.
    RedisStores::init(&redis).await?;
    RedisStores::open(&redis, StoreTime::Backend)
        .await
        .map(drop)
}

fn refusal(result: Result<(), StoreError>) -> String {
    match result {
        Err(error @ StoreError::Unusable { .. }) => error.to_string(),
        other => panic!("expected the store to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_redis_without_aof_is_refused_naming_the_setting_and_the_fix() {
    let server = RedisServer::with(Persistence::RdbOnly);
    let message = refusal(open(&server, |_| {}).await);
    assert!(message.contains(&server.url()), "{message}");
    assert!(message.contains("`appendonly no`"), "{message}");
    assert!(message.contains("Set `appendonly yes`"), "{message}");
    assert!(message.contains("RDB snapshot"), "{message}");
    // Trusting is for settings that cannot be read, not for ones that say no.
    let trusted = open(&server, |c| c.persistence = PersistenceCheck::Trust).await;
    assert!(refusal(trusted).contains("`appendonly no`"));
    // Nothing was written on the refused server: no epoch, no layout.
    assert_eq!(server.command(&["DBSIZE"]), ":0");
    // `herald status` still looks at it.
    let inspect =
        RedisStores::open_to_inspect(&RedisConfig::new(server.url()), StoreTime::Backend).await;
    assert!(inspect.is_ok(), "{:?}", inspect.err());
}

#[tokio::test]
async fn everysec_is_refused_at_either_durability_and_always_is_accepted_at_both() {
    let everysec = RedisServer::with(Persistence::AofEverysec);
    for durability in [Durability::ProcessCrash, Durability::PowerLoss] {
        let message = refusal(open(&everysec, |c| c.durability = durability).await);
        assert!(message.contains("`appendfsync always`"), "{message}");
        assert!(message.contains("`appendfsync everysec`"), "{message}");
        assert!(message.contains("postpones"), "{message}");
    }
    assert_eq!(everysec.command(&["DBSIZE"]), ":0");

    let always = RedisServer::with(Persistence::Aof);
    open(&always, |_| {}).await.unwrap();
    open(&always, |c| c.durability = Durability::PowerLoss)
        .await
        .unwrap();
    // Power loss also needs the fsync kept during an AOF rewrite.
    always.command(&["CONFIG", "SET", "no-appendfsync-on-rewrite", "yes"]);
    open(&always, |_| {}).await.unwrap();
    let message = refusal(open(&always, |c| c.durability = Durability::PowerLoss).await);
    assert!(
        message.contains("no-appendfsync-on-rewrite no"),
        "{message}"
    );
}

#[tokio::test]
async fn a_redis_whose_config_command_is_disabled_is_refused_unless_trusted() {
    let server = RedisServer::with_args(Persistence::Aof, &["--rename-command", "CONFIG", ""]);
    let message = refusal(open(&server, |_| {}).await);
    assert!(message.contains("could not check"), "{message}");
    assert!(message.contains("CONFIG GET appendonly"), "{message}");
    assert!(
        message.contains("redis_persistence = \"trust\""),
        "{message}"
    );
    open(&server, |c| c.persistence = PersistenceCheck::Trust)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_redis_that_evicts_keys_is_refused() {
    let server = RedisServer::start();
    server.command(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let message = refusal(open(&server, |_| {}).await);
    assert!(
        message.contains("`maxmemory-policy allkeys-lru`"),
        "{message}"
    );
    assert!(message.contains("noeviction"), "{message}");
    server.command(&["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]);
    open(&server, |_| {}).await.unwrap();
}

#[tokio::test]
async fn a_replica_is_refused() {
    let primary = RedisServer::start();
    let replica = RedisServer::start();
    let port = primary.port().to_string();
    assert_eq!(replica.command(&["REPLICAOF", "127.0.0.1", &port]), "+OK");
    let message = refusal(open(&replica, |_| {}).await);
    assert!(message.contains("replica"), "{message}");
    assert!(message.contains("failover"), "{message}");
}

/// A store that holds runs but lost its epoch (half emptied) is not taken for a new one: open
/// fails as the write scripts do, and writes no new epoch.
#[tokio::test]
async fn a_store_with_runs_but_no_epoch_is_corrupt_not_new() {
    let server = RedisServer::start();
    let config = RedisConfig::new(server.url());
    assert!(
        RedisStores::init(&config).await.unwrap(),
        "init creates the store"
    );
    let first = RedisStores::open(&config, StoreTime::Backend)
        .await
        .unwrap();
    let epoch = first.epoch().to_owned();
    drop(first);
    let again = RedisStores::open(&config, StoreTime::Backend)
        .await
        .unwrap();
    assert_eq!(again.epoch(), epoch, "an existing store keeps its epoch");
    assert_eq!(again.layout_version(), 3);

    assert!(
        !RedisStores::init(&config).await.unwrap(),
        "init of an existing store changes nothing"
    );

    assert_eq!(server.command(&["ZADD", "h:runs", "1", "c@1"]), ":1");
    assert_eq!(server.command(&["DEL", "h:epoch"]), ":1");
    match RedisStores::open(&config, StoreTime::Backend).await {
        Err(StoreError::Corrupt { key, reason }) => {
            assert_eq!(key, "epoch");
            assert!(reason.contains("no epoch"), "{reason}");
        }
        Err(other) => panic!("expected Corrupt at epoch, got {other}"),
        Ok(_) => panic!("a half-emptied store was opened as a new one"),
    }
    // Nor is it initialised over.
    assert!(matches!(
        RedisStores::init(&config).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(server.command(&["EXISTS", "h:epoch"]), ":0");
}

/// Only `init` creates a store: an empty Redis (a new one, or one that lost its data: nothing
/// tells them apart) is refused by `open`, naming `herald init`, and nothing is written.
#[tokio::test]
async fn an_empty_redis_is_refused_until_initialised() {
    let server = RedisServer::start();
    let config = RedisConfig::new(server.url());
    match RedisStores::open(&config, StoreTime::Backend).await {
        Err(error @ StoreError::Unusable { .. }) => {
            let message = error.to_string();
            assert!(message.contains("herald init"), "{message}");
            assert!(message.contains("lost its data"), "{message}");
        }
        Err(other) => panic!("expected Unusable, got {other}"),
        Ok(_) => panic!("an empty Redis was opened as a store"),
    }
    assert_eq!(server.command(&["DBSIZE"]), ":0");
    assert!(RedisStores::init(&config).await.unwrap());
    RedisStores::open(&config, StoreTime::Backend)
        .await
        .expect("the initialised store opens");
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable() {
    let server = RedisServer::start();
    let url = server.url();
    drop(server);
    match RedisStores::open(&RedisConfig::new(url), StoreTime::Backend).await {
        Err(StoreError::Unavailable(_)) => {}
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("opened a store on a stopped server"),
    }
}
