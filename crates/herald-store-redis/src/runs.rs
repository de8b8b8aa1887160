//! The runs port.

use chrono::{DateTime, Utc};
use herald_core::RunId;
use herald_store::{NewRun, RunRecord, RunState, Runs, StoreResult};

use crate::conn::Conn;

/// Runs in Redis (`runs`, `run:<run>`, `sruns:<sender>`).
#[derive(Clone)]
pub struct RedisRuns {
    conn: Conn,
}

impl RedisRuns {
    pub(crate) fn new(conn: Conn) -> Self {
        Self { conn }
    }
}

#[allow(clippy::todo, unused_variables)]
impl Runs for RedisRuns {
    async fn create_run(&self, run: &NewRun, now: DateTime<Utc>) -> StoreResult<bool> {
        let _ = &self.conn;
        todo!("A1")
    }

    async fn run(&self, run: &RunId) -> StoreResult<Option<RunRecord>> {
        todo!("A1")
    }

    async fn runs(&self) -> StoreResult<Vec<RunRecord>> {
        todo!("A1")
    }

    async fn finish_expansion(&self, run: &RunId, total: u64) -> StoreResult<()> {
        todo!("A1")
    }

    async fn pause(&self, run: &RunId, reason: &str) -> StoreResult<()> {
        todo!("A1")
    }

    async fn set_run_state(&self, run: &RunId, state: RunState) -> StoreResult<()> {
        todo!("A1")
    }
}
