//! A Redis that comes back empty under a running deployment halts the app's loops with a clear
//! error: scheduling again neither re-expands the campaign nor starts a new epoch.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::Utc;
use herald_app::schedule::{CampaignFile, schedule};
use herald_app::{AppError, AppStores, Settings, open_store};
use herald_testkit::redis::RedisServer;

#[tokio::test]
async fn scheduling_on_a_redis_that_came_back_empty_halts_instead_of_expanding_again() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..3 {
        writeln!(csv, "p{i},+7 916 {:07},Etc/UTC", 6_000_000 + i).unwrap();
    }
    std::fs::write(dir.path().join("people.csv"), csv).unwrap();
    std::fs::write(
        dir.path().join("c.yaml"),
        "id: halt\npurpose: transactional\naudience: { source: people.csv }\n\
         template: { name: notice, language: en }\n\
         schedule: { at: 2026-01-01T00:00, in: Etc/UTC }\n",
    )
    .unwrap();
    let config = format!(
        "[store]\nredis = \"{}\"\n[senders.main]\nchannel = \"outbox\"\npath = \"{}\"\n",
        server.url(),
        dir.path().join("outbox.jsonl").display()
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let env = BTreeMap::new();
    let settings = Settings::load(Some(&dir.path().join("herald.toml")), &env).unwrap();

    // Nothing but `init` creates a Redis store.
    assert!(open_store(&settings, &env).await.is_err());
    assert_eq!(
        herald_app::init_store(&settings, &env).await.unwrap(),
        herald_app::Initialised::Created(server.url())
    );
    let stores = open_store(&settings, &env).await.unwrap();
    assert_eq!(stores.location(), server.url());
    // Layout 3: the fire records and campaign versions of recurring campaigns.
    assert_eq!(stores.schema_version().unwrap(), 3);
    let file = CampaignFile::load(&dir.path().join("c.yaml"), Utc::now()).unwrap();
    let first = schedule(&stores, &file, &settings, Utc::now())
        .await
        .unwrap();
    assert_eq!(first.expansion.inserted, 3);

    let mut server = server;
    server.restart_empty();
    let Err(AppError::Internal(message)) = schedule(&stores, &file, &settings, Utc::now()).await
    else {
        panic!("scheduling on an emptied Redis did not halt");
    };
    assert!(
        message.starts_with("halted, nothing more is sent"),
        "{message}"
    );
    assert!(message.contains("epoch"), "{message}");
    // Nothing was written: no new epoch, no run, no delivery.
    assert_eq!(server.command(&["DBSIZE"]), ":0");
}
