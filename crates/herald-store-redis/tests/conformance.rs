//! The shared conformance suite against a fresh `redis-server` per test (its own port and
//! directory, AOF on), timed by the suite's clock; the second handle is a second client of the
//! same server, as a second worker process would open it.

mod common;

use std::sync::Arc;

use herald_store::{StoreResult, StoreTime, Stores};
use herald_store_redis::{
    RedisConsents, RedisDeliveries, RedisFeedback, RedisRuns, RedisSenders, RedisStores,
};
use herald_testkit::redis::RedisServer;

use common::open;

/// A store on its own server, killed with the last handle at the end of the test.
struct TempStores {
    stores: RedisStores,
    server: Arc<RedisServer>,
}

impl Stores for TempStores {
    type Runs = RedisRuns;
    type Deliveries = RedisDeliveries;
    type Consents = RedisConsents;
    type Senders = RedisSenders;

    fn senders(&self) -> &RedisSenders {
        self.stores.senders()
    }

    type Feedback = RedisFeedback;
    type Fires = herald_store_redis::RedisFires;

    fn fires(&self) -> &herald_store_redis::RedisFires {
        self.stores.fires()
    }

    fn feedback(&self) -> &RedisFeedback {
        self.stores.feedback()
    }

    async fn now(&self) -> StoreResult<chrono::DateTime<chrono::Utc>> {
        self.stores.now().await
    }

    fn runs(&self) -> &RedisRuns {
        self.stores.runs()
    }

    fn deliveries(&self) -> &RedisDeliveries {
        self.stores.deliveries()
    }

    fn consents(&self) -> &RedisConsents {
        self.stores.consents()
    }
}

async fn fresh(time: StoreTime) -> TempStores {
    let server = Arc::new(RedisServer::start());
    let stores = open(&server, time).await;
    TempStores { stores, server }
}

async fn second_handle(first: &TempStores, time: StoreTime) -> TempStores {
    let stores = open(&first.server, time).await;
    TempStores {
        stores,
        server: Arc::clone(&first.server),
    }
}

herald_store::conformance_tests!(fresh, second_handle);
