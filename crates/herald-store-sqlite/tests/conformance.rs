//! The shared conformance suite against a fresh SQLite file per test, timed by the suite's
//! clock; the second handle is a second connection to the same file, as a second worker process
//! would open it.

use std::sync::Arc;

use herald_store::{StoreResult, StoreTime, Stores};
use herald_store_sqlite::{
    SqliteConsents, SqliteDeliveries, SqliteFeedback, SqliteRuns, SqliteSenders, SqliteStores,
};
use tempfile::TempDir;

/// A store in a temporary directory, deleted with the last handle at the end of the test.
struct TempStores {
    stores: SqliteStores,
    dir: Arc<TempDir>,
}

impl Stores for TempStores {
    type Runs = SqliteRuns;
    type Deliveries = SqliteDeliveries;
    type Consents = SqliteConsents;
    type Senders = SqliteSenders;

    fn senders(&self) -> &SqliteSenders {
        self.stores.senders()
    }

    type Feedback = SqliteFeedback;
    type Fires = herald_store_sqlite::SqliteFires;

    fn fires(&self) -> &herald_store_sqlite::SqliteFires {
        self.stores.fires()
    }

    fn feedback(&self) -> &SqliteFeedback {
        self.stores.feedback()
    }

    async fn now(&self) -> StoreResult<chrono::DateTime<chrono::Utc>> {
        self.stores.now().await
    }

    fn runs(&self) -> &SqliteRuns {
        self.stores.runs()
    }

    fn deliveries(&self) -> &SqliteDeliveries {
        self.stores.deliveries()
    }

    fn consents(&self) -> &SqliteConsents {
        self.stores.consents()
    }
}

async fn fresh(time: StoreTime) -> TempStores {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let stores = SqliteStores::open_with(&dir.path().join("herald.db"), time).expect("open");
    TempStores { stores, dir }
}

async fn second_handle(first: &TempStores, time: StoreTime) -> TempStores {
    let stores = SqliteStores::open_with(first.stores.path(), time).expect("open again");
    TempStores {
        stores,
        dir: Arc::clone(&first.dir),
    }
}

herald_store::conformance_tests!(fresh, second_handle);
