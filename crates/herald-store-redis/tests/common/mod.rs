//! The helpers the Redis store's tests share, kept once so a change to how a store is opened
//! or a claim is built reaches every test alike. Each test binary uses a subset.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::{CampaignId, PastSend, Purpose, RecipientId, RecipientKey, RunId};
use herald_store::conformance::{ManualClock, generous, worker};
use herald_store::{
    Claim, ClaimGroup, ConsentSeen, DeliveryKey, HistorySeen, SenderLimits, StoreTime, WorkerId,
};
use herald_store_redis::{RedisConfig, RedisStores};
use herald_testkit::redis::RedisServer;

/// The lease every test claims with.
pub(crate) const LEASE: Duration = Duration::from_secs(60);

/// A store on `server` as `herald init` then a worker would open it, timed by `time`.
pub(crate) async fn open(server: &RedisServer, time: StoreTime) -> RedisStores {
    RedisStores::init(&RedisConfig::new(server.url()))
        .await
        .expect("init");
    RedisStores::open(&RedisConfig::new(server.url()), time)
        .await
        .expect("open")
}

/// A fresh server (AOF on) and a store on it whose time starts at `at` and is driven by hand.
pub(crate) async fn started_at(at: DateTime<Utc>) -> (RedisServer, Arc<ManualClock>, RedisStores) {
    let server = RedisServer::start();
    let clock = ManualClock::new(at);
    let stores = open(&server, StoreTime::Clock(clock.clone())).await;
    (server, clock, stores)
}

/// The delivery of `recipient` in `run`.
pub(crate) fn key(run: &RunId, recipient: &str) -> DeliveryKey {
    DeliveryKey {
        run: run.clone(),
        recipient: RecipientKey::recipient(RecipientId::parse(recipient).expect("id")),
    }
}

/// A claim decided at `at` that saw no consent event and no send; its campaign is the one
/// `run` was fired from (`new_run` names the run `<campaign>@<fire>`).
pub(crate) fn fresh_claim(run: &RunId, recipient: &str, at: DateTime<Utc>) -> Claim {
    let campaign = run.as_str().split('@').next().expect("campaign part");
    Claim {
        key: key(run, recipient),
        send: PastSend {
            at,
            campaign: CampaignId::parse(campaign).expect("campaign"),
            purpose: Purpose::Marketing,
        },
        consent: ConsentSeen {
            channel: "whatsapp".into(),
            events: 0,
        },
        history: HistorySeen {
            since: at - TimeDelta::days(1),
            sends: 0,
        },
    }
}

/// The claims of `owner` through `sender`, leased for [`LEASE`].
pub(crate) fn group(owner: WorkerId, sender: SenderLimits, claims: Vec<Claim>) -> ClaimGroup {
    ClaimGroup {
        owner,
        lease: LEASE,
        sender,
        claims,
    }
}

/// `worker(1)`'s group of claims through a generous sender, one per recipient, all decided at
/// `at` and seeing no consent event and no send.
pub(crate) fn claims_at(run: &RunId, recipients: &[&str], at: DateTime<Utc>) -> ClaimGroup {
    let claims = recipients.iter().map(|r| fresh_claim(run, r, at)).collect();
    group(worker(1), generous("main"), claims)
}

/// Another client of the server, for what the store's ports do not show.
pub(crate) async fn client(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// A blocking client of the server, for reads inside synchronous closures.
pub(crate) fn blocking_client(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// Calls of `command` the server has run (commands a script calls included).
pub(crate) fn calls(server: &RedisServer, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut blocking_client(server))
        .unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.split(',').next()?.parse().ok())
        .unwrap_or(0)
}
