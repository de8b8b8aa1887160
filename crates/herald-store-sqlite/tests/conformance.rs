//! The shared conformance suite against a fresh SQLite file per test.

use herald_store::Stores;
use herald_store_sqlite::{SqliteConsents, SqliteDeliveries, SqliteRuns, SqliteStores};
use tempfile::TempDir;

/// A store in its own temporary directory, deleted with it at the end of the test.
struct TempStores {
    stores: SqliteStores,
    _dir: TempDir,
}

impl Stores for TempStores {
    type Runs = SqliteRuns;
    type Deliveries = SqliteDeliveries;
    type Consents = SqliteConsents;

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

async fn fresh() -> TempStores {
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = SqliteStores::open(&dir.path().join("herald.db")).expect("open");
    TempStores { stores, _dir: dir }
}

herald_store::conformance_tests!(fresh);
