//! A run is made of the rows of one version of its audience: an expansion interrupted half-way
//! resumes only from the same file, an audience replaced while it is read does not get its run
//! sealed, and a run whose expansion finished never reads its file again.
//!
//! Expansion is interrupted in-process, by a store whose batch insert fails (or replaces the
//! file) at a chosen batch: the state it leaves is a crash's (some batches stored, no total).

mod common;
use common::registered;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use herald_engine::expand::{ExpandError, Expansion, expand_with_readers};
use herald_store::{
    Change, ClaimAnswer, ClaimGroup, ClaimRecord, Deliveries, Delivery, DeliveryKey, NewDelivery,
    NewRun, Recovered, RunCounts, Runs, StoreError, StoreResult, Stores, Terminal, WorkScope,
    WorkerId,
};
use herald_store_sqlite::{
    SqliteConsents, SqliteFeedback, SqliteRuns, SqliteSenders, SqliteStores,
};

/// More than one batch of 5,000, so an expansion can stop between batches.
const ROWS: usize = 6_000;

/// What happens before a batch is inserted: `Err` stops the insert (a crash, as far as the
/// expansion can tell).
type Hook = Box<dyn FnMut(usize) -> StoreResult<()> + Send>;

/// The SQLite store, with a hook before each batch insert.
struct Hooked {
    inner: Arc<SqliteStores>,
    deliveries: HookedDeliveries,
}

struct HookedDeliveries {
    inner: Arc<SqliteStores>,
    hook: Mutex<(usize, Hook)>,
}

impl Stores for Hooked {
    type Runs = SqliteRuns;
    type Deliveries = HookedDeliveries;
    type Consents = SqliteConsents;
    type Senders = SqliteSenders;

    fn senders(&self) -> &SqliteSenders {
        self.inner.senders()
    }

    type Feedback = SqliteFeedback;
    type Fires = herald_store_sqlite::SqliteFires;

    fn fires(&self) -> &herald_store_sqlite::SqliteFires {
        self.inner.fires()
    }

    fn feedback(&self) -> &SqliteFeedback {
        self.inner.feedback()
    }

    async fn now(&self) -> StoreResult<DateTime<Utc>> {
        self.inner.now().await
    }

    fn runs(&self) -> &SqliteRuns {
        self.inner.runs()
    }

    fn deliveries(&self) -> &HookedDeliveries {
        &self.deliveries
    }

    fn consents(&self) -> &SqliteConsents {
        self.inner.consents()
    }
}

impl Deliveries for HookedDeliveries {
    async fn insert_batch(&self, batch: &[NewDelivery]) -> StoreResult<u64> {
        {
            let mut hook = self.hook.lock().unwrap();
            let (calls, hook) = &mut *hook;
            hook(*calls)?;
            *calls += 1;
        }
        self.inner.deliveries().insert_batch(batch).await
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.inner.deliveries().due(now, limit).await
    }

    async fn defer(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: herald_store::WaitReason,
    ) -> StoreResult<()> {
        self.inner.deliveries().defer(key, until, reason).await
    }

    async fn finish(
        &self,
        key: &DeliveryKey,
        outcome: &Terminal,
        owner: Option<&WorkerId>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner
            .deliveries()
            .finish(key, outcome, owner, now)
            .await
    }

    async fn requeue(
        &self,
        key: &DeliveryKey,
        until: DateTime<Utc>,
        reason: Option<herald_store::WaitReason>,
        owner: &WorkerId,
    ) -> StoreResult<()> {
        self.inner
            .deliveries()
            .requeue(key, until, reason, owner)
            .await
    }

    async fn claim(&self, group: &ClaimGroup) -> StoreResult<Vec<ClaimAnswer>> {
        self.inner.deliveries().claim(group).await
    }

    async fn renew(
        &self,
        owner: &WorkerId,
        keys: &[DeliveryKey],
        lease: std::time::Duration,
    ) -> StoreResult<u64> {
        self.inner.deliveries().renew(owner, keys, lease).await
    }

    async fn recover_expired(&self, limit: usize) -> StoreResult<Vec<Recovered>> {
        self.inner.deliveries().recover_expired(limit).await
    }

    async fn claims(&self, run: &herald_core::RunId) -> StoreResult<Vec<ClaimRecord>> {
        self.inner.deliveries().claims(run).await
    }

    async fn waits(
        &self,
        run: &herald_core::RunId,
        now: DateTime<Utc>,
        before: Option<DateTime<Utc>>,
    ) -> StoreResult<herald_store::QueueWaits> {
        self.inner.deliveries().waits(run, now, before).await
    }

    async fn in_flight(&self) -> StoreResult<Vec<DeliveryKey>> {
        self.inner.deliveries().in_flight().await
    }

    async fn counts(&self, run: &herald_core::RunId) -> StoreResult<RunCounts> {
        self.inner.deliveries().counts(run).await
    }

    async fn history(
        &self,
        phone: &herald_core::PhoneNumber,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<herald_core::PastSend>> {
        self.inner.deliveries().history(phone, since).await
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.inner.deliveries().next_due().await
    }

    async fn due_in(
        &self,
        scope: &WorkScope,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        self.inner.deliveries().due_in(scope, now, limit).await
    }

    async fn next_due_in(&self, scope: &WorkScope) -> StoreResult<Option<DateTime<Utc>>> {
        self.inner.deliveries().next_due_in(scope).await
    }

    async fn apply(&self, changes: &[Change], now: DateTime<Utc>) -> StoreResult<Vec<bool>> {
        self.inner.deliveries().apply(changes, now).await
    }

    async fn history_for(
        &self,
        phones: &[herald_core::PhoneNumber],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<Vec<herald_core::PastSend>>> {
        self.inner.deliveries().history_for(phones, since).await
    }

    async fn recent_recipients(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(herald_core::PhoneNumber, DateTime<Utc>)>> {
        self.inner.deliveries().recent_recipients(since).await
    }
}

/// A campaign directory with its store.
struct Setup {
    dir: tempfile::TempDir,
    sqlite: Arc<SqliteStores>,
    campaign: herald_campaign::Campaign,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("people.csv"), audience(None)).unwrap();
        std::fs::write(
            dir.path().join("c.yaml"),
            "id: promo\npurpose: marketing\naudience: { source: people.csv }\n\
             template: { name: promo, language: en }\n\
             schedule: { at: 2026-11-30T10:00, in: recipient }\n\
             send_window: { hours: { daily: \"00:00-24:00\" } }\n",
        )
        .unwrap();
        let campaign =
            herald_campaign::load(&dir.path().join("c.yaml"), reference_instant()).unwrap();
        let sqlite = Arc::new(SqliteStores::open(&dir.path().join("h.db")).unwrap());
        Self {
            dir,
            sqlite,
            campaign,
        }
    }

    fn audience_path(&self) -> PathBuf {
        self.dir.path().join("people.csv")
    }

    fn hooked(&self, hook: impl FnMut(usize) -> StoreResult<()> + Send + 'static) -> Hooked {
        Hooked {
            inner: Arc::clone(&self.sqlite),
            deliveries: HookedDeliveries {
                inner: Arc::clone(&self.sqlite),
                hook: Mutex::new((0, Box::new(hook))),
            },
        }
    }

    async fn expand<S: Stores>(&self, stores: &S) -> Result<Expansion, ExpandError> {
        expand_with_readers(stores, &self.campaign, registered("c.yaml"), now(), 1)
            .await
            .map(|(_, expansion)| expansion)
    }

    /// The run's stored total (`None` while unfinished) and its deliveries.
    async fn state(&self) -> (Option<u64>, u64) {
        let run = self.campaign.run_at(now()).unwrap().0;
        let total = self.sqlite.runs().run(&run).await.unwrap().unwrap().total;
        let stored = self.sqlite.deliveries().counts(&run).await.unwrap().total();
        (total, stored)
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-30T10:00:05Z".parse().unwrap()
}

/// `ROWS` distinct recipients; `edited` gives that row another phone.
fn audience(edited: Option<usize>) -> String {
    let mut csv = String::from("id,phone,timezone\n");
    for i in 0..ROWS {
        let phone = 2_000_000 + i + if edited == Some(i) { ROWS } else { 0 };
        csv.push_str(&format!("r{i},+7916{phone:07},Europe/Moscow\n"));
    }
    csv
}

/// Stops the expansion at its second batch, as a crash would.
fn crash_at_second_batch(batch: usize) -> StoreResult<()> {
    if batch == 1 {
        return Err(StoreError::Unavailable("interrupted by the test".into()));
    }
    Ok(())
}

/// Replaces `path` by a rename (a new file under the old name, as editors and exports do).
fn replace(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, path).unwrap();
}

fn assert_changed(result: Result<Expansion, ExpandError>, audience: &Path) {
    match result {
        Err(error @ ExpandError::Changed { .. }) => {
            let message = error.to_string();
            assert!(
                message.starts_with(&audience.display().to_string()),
                "{message}"
            );
            assert!(message.contains("the audience changed"), "{message}");
        }
        other => panic!("expected the audience to be found changed, got {other:?}"),
    }
}

#[tokio::test]
async fn an_interrupted_expansion_resumes_only_from_the_same_file() {
    let setup = Setup::new();
    let crashed = setup.expand(&setup.hooked(crash_at_second_batch)).await;
    assert!(
        matches!(crashed, Err(ExpandError::Store(StoreError::Unavailable(_)))),
        "{crashed:?}"
    );
    assert_eq!(setup.state().await, (None, 5_000));

    // Edited in place while the run was down: the resume stops, names the file, adds nothing.
    std::fs::write(setup.audience_path(), audience(Some(5_500))).unwrap();
    assert_changed(setup.expand(&*setup.sqlite).await, &setup.audience_path());
    assert_eq!(
        setup.state().await,
        (None, 5_000),
        "the run stays unfinished"
    );

    // The file it started from: the resume adds the rest and seals the run.
    std::fs::write(setup.audience_path(), audience(None)).unwrap();
    let resumed = setup.expand(&*setup.sqlite).await.unwrap();
    assert_eq!((resumed.inserted, resumed.total), (1_000, ROWS as u64));
    assert_eq!(setup.state().await, (Some(ROWS as u64), ROWS as u64));
}

#[tokio::test]
async fn an_audience_replaced_while_it_is_read_does_not_seal_the_run() {
    let setup = Setup::new();
    let path = setup.audience_path();
    let edited = audience(Some(10));
    let replacing = setup.hooked(move |batch| {
        if batch == 0 {
            replace(&path, &edited);
        }
        Ok(())
    });
    // The reader keeps the file it opened and reads it whole; the end of the expansion finds
    // another file under the name.
    assert_changed(setup.expand(&replacing).await, &setup.audience_path());
    assert_eq!(setup.state().await, (None, ROWS as u64));
    assert_changed(setup.expand(&*setup.sqlite).await, &setup.audience_path());

    replace(&setup.audience_path(), &audience(None));
    let resumed = setup.expand(&*setup.sqlite).await.unwrap();
    assert_eq!((resumed.inserted, resumed.total), (0, ROWS as u64));
}

#[tokio::test]
async fn a_finished_expansion_never_reads_its_file_again() {
    let setup = Setup::new();
    let first = setup.expand(&*setup.sqlite).await.unwrap();
    assert_eq!(first.total, ROWS as u64);
    std::fs::write(setup.audience_path(), audience(Some(3))).unwrap();
    let again = setup.expand(&*setup.sqlite).await.unwrap();
    assert!(again.already_expanded && again.total == ROWS as u64);
    std::fs::remove_file(setup.audience_path()).unwrap();
    let again = setup.expand(&*setup.sqlite).await.unwrap();
    assert!(again.already_expanded && again.total == ROWS as u64);
}

/// A run created before runs recorded their audience's hash (as a store upgraded from schema 5
/// holds it) is not resumed: nothing can tell whether its file changed.
#[tokio::test]
async fn an_unfinished_run_without_a_hash_is_not_resumed() {
    let setup = Setup::new();
    let run = setup.campaign.run_at(now()).unwrap().0;
    let older = NewRun {
        run: run.clone(),
        campaign: setup.campaign.id.clone(),
        purpose: setup.campaign.purpose,
        source: "c.yaml".into(),
        sender: None,
        campaign_text: None,
        at_least_once: false,
        audience_sha256: None,
    };
    assert!(setup.sqlite.runs().create_run(&older, now()).await.unwrap());
    match setup.expand(&*setup.sqlite).await {
        Err(error @ ExpandError::Unverifiable { .. }) => {
            let message = error.to_string();
            assert!(
                message.starts_with(&setup.audience_path().display().to_string()),
                "{message}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(setup.state().await, (None, 0));
}

/// A store written by schema 5 (`herald-store-sqlite`'s fixture: the demo run, expanded and
/// partly sent) upgrades, and its run, which has no hash, goes on: its expansion finished, so
/// the file is neither hashed nor read, even when it is gone.
#[tokio::test]
async fn an_upgraded_run_whose_expansion_finished_needs_no_hash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root.join("crates/herald-store-sqlite/tests/fixtures/schema-v5.db"),
        dir.path().join("h.db"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("audiences")).unwrap();
    std::fs::copy(
        root.join("campaigns/audiences/customers.csv"),
        dir.path().join("audiences/customers.csv"),
    )
    .unwrap();
    std::fs::copy(
        root.join("campaigns/demo-welcome.yaml"),
        dir.path().join("demo-welcome.yaml"),
    )
    .unwrap();
    let campaign =
        herald_campaign::load(&dir.path().join("demo-welcome.yaml"), reference_instant()).unwrap();
    std::fs::remove_file(dir.path().join("audiences/customers.csv")).unwrap();
    let stores = SqliteStores::open(&dir.path().join("h.db")).unwrap();
    let (run, expansion) = expand_with_readers(
        &stores,
        &campaign,
        registered("demo-welcome.yaml"),
        now(),
        1,
    )
    .await
    .unwrap();
    assert_eq!(run.as_str(), "demo-welcome@2026-11-01T08:00");
    assert!(expansion.already_expanded && expansion.total == 19);
    let record = stores.runs().run(&run).await.unwrap().unwrap();
    assert_eq!(record.run.audience_sha256, None);
}

/// The instant validation measures the cron horizon from (these campaigns have no cron).
fn reference_instant() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("a valid instant")
}
