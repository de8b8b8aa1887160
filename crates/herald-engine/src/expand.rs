//! Expansion: a run's audience into one delivery per recipient, streamed in batches.
//!
//! Idempotent by construction: every delivery is keyed by (run, recipient) and inserted with
//! "do nothing on conflict", and the run records its total only once the whole audience is in.
//! A crash half-way leaves a run without a total; running again re-reads the audience and inserts
//! only what is missing. Each row is decided once here with the same step `plan` uses, so a
//! delivery starts queued at its exact release instant (not polled) or already ended (duplicate,
//! broken row, no common window, …).
//!
//! Re-reading is only sound if the file is the same, so a run records the SHA-256 of its
//! audience when it is created (taken in the row-count pre-pass), and the file must still have
//! it when an unfinished expansion resumes and again before the run is sealed; otherwise the
//! expansion stops with [`ExpandError::Changed`] and the run stays unfinished. A run whose
//! expansion finished never reads its file again, so editing it then is harmless.

mod rows;

use chrono::{DateTime, Utc};
use herald_campaign::Campaign;
use herald_campaign::audience::{AudienceReader, survey};
use herald_core::RunId;
use herald_store::{AudienceHash, Deliveries, NewRun, RunRecord, Runs, StoreError, Stores};

use rows::{Candidate, Dedupe, candidate};

mod tags;

/// Rows per insert transaction: large enough to amortise the commit, small enough that a crash
/// loses little work and memory stays flat.
const BATCH: usize = 5_000;

/// Why expansion failed.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    /// The audience file as a whole is unusable.
    #[error(transparent)]
    Audience(#[from] herald_campaign::audience::AudienceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A cron campaign expanded as a one-off: its runs are its fires.
    #[error("a cron campaign has no one-off run (asked at {0}): its runs are made by its fires")]
    NoRun(DateTime<Utc>),
    /// The audience could not be read to its end (an I/O error). The rows before it are stored
    /// and the run is left unfinished, so running again reads the whole file and adds the rest.
    #[error("{0}; the rows before it are stored: run again to read the rest")]
    Unreadable(herald_campaign::audience::RowError),
    /// The audience is not the file the run was started from: its SHA-256 differs from the one
    /// recorded with the run (checked when an unfinished expansion resumes and before a run is
    /// sealed), or the threads reading it saw different files. The rows stored so far stay, the
    /// run stays unfinished, and it resumes only from the file it was started from.
    #[error(
        "{file}: the audience changed {when} (run {run} was started from a file with SHA-256 \
         {expected}); the run stays unfinished: put back the file it was started from and run \
         again, or start a new run (another `at` or campaign id) for the new file"
    )]
    Changed {
        /// The audience path as given.
        file: String,
        /// The run.
        run: RunId,
        /// The hash recorded with the run.
        expected: AudienceHash,
        /// When the change was noticed, in words.
        when: &'static str,
    },
    /// An unfinished expansion of a run created before runs recorded their audience's hash
    /// (by an older herald): nothing can tell whether the file changed since, and its duplicate
    /// and broken rows were stored under keys of an older form, so resuming could store rows
    /// twice or send twice. It is not resumed.
    #[error(
        "{file}: run {run} was started by an older herald that did not record its audience's \
         SHA-256, and its expansion did not finish; it cannot be resumed safely: finish it with \
         the herald that started it, or start a new run (another `at` or campaign id)"
    )]
    Unverifiable {
        /// The audience path as given.
        file: String,
        /// The run.
        run: RunId,
    },
}

/// What expansion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expansion {
    /// Deliveries newly stored now.
    pub inserted: u64,
    /// The run's deliveries in total.
    pub total: u64,
    /// Whether the run had been expanded before (nothing was read).
    pub already_expanded: bool,
}

/// Where a run's campaign came from, stored with the run so any worker can work it: the file
/// as given (for `status`), the sender it sends through, and the file's text (rebuilt with
/// [`herald_campaign::parse_stored`], without the audience file).
#[derive(Debug, Clone, Copy)]
pub struct RunSource<'a> {
    /// The campaign file as given.
    pub path: &'a str,
    /// The sender's name (`[senders.NAME]`).
    pub sender: &'a str,
    /// The campaign file's text.
    pub text: &'a str,
}

/// Which run of a campaign to expand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    /// A one-off campaign's one run (its `at`).
    Once,
    /// The run of a cron campaign's fire at this instant (see `herald_engine::recurring`: only
    /// a fire recorded as making a run is expanded).
    Fire(DateTime<Utc>),
}

impl Occurrence {
    /// The run id and the fire of this occurrence of `campaign`; `None` for `Once` of a cron
    /// campaign (a cron campaign's runs are its fires).
    pub fn of(self, campaign: &Campaign) -> Option<(RunId, Option<DateTime<Utc>>)> {
        match (self, &campaign.schedule.kind) {
            (Occurrence::Once, herald_campaign::campaign::ScheduleKind::At { .. }) => {
                campaign.run_at(DateTime::<Utc>::MIN_UTC)
            }
            (Occurrence::Once, herald_campaign::campaign::ScheduleKind::Cron { .. }) => None,
            (Occurrence::Fire(fire), _) => Some((campaign.run_of_fire(fire), Some(fire))),
        }
    }
}

/// Creates the one run of a one-off `campaign` and expands it (see [`expand_occurrence`]).
pub async fn expand<S: Stores>(
    stores: &S,
    campaign: &Campaign,
    source: RunSource<'_>,
    now: DateTime<Utc>,
) -> Result<(RunId, Expansion), ExpandError> {
    expand_occurrence(stores, campaign, source, Occurrence::Once, now).await
}

/// Creates the run of `campaign` for `occurrence` and expands it, reading the audience on
/// every core but one (at least one, at most four).
pub async fn expand_occurrence<S: Stores>(
    stores: &S,
    campaign: &Campaign,
    source: RunSource<'_>,
    occurrence: Occurrence,
    now: DateTime<Utc>,
) -> Result<(RunId, Expansion), ExpandError> {
    // One core is left to the writer and the duplicate check: on two cores a second reader
    // only competes with them (measured: 1 reader 143-157k rows/s, 2 readers 127-147k).
    let readers = std::thread::available_parallelism().map_or(1, |n| (n.get() - 1).clamp(1, 4));
    expand_occurrence_with_readers(stores, campaign, source, occurrence, now, readers).await
}

/// As [`expand`], with the number of threads reading the audience given (at least one): for
/// tuning, and for tests that must exercise the reordering whatever the machine.
pub async fn expand_with_readers<S: Stores>(
    stores: &S,
    campaign: &Campaign,
    source: RunSource<'_>,
    now: DateTime<Utc>,
    readers: usize,
) -> Result<(RunId, Expansion), ExpandError> {
    expand_occurrence_with_readers(stores, campaign, source, Occurrence::Once, now, readers).await
}

/// As [`expand_occurrence`], with the number of reading threads given.
pub async fn expand_occurrence_with_readers<S: Stores>(
    stores: &S,
    campaign: &Campaign,
    source: RunSource<'_>,
    occurrence: Occurrence,
    now: DateTime<Utc>,
    readers: usize,
) -> Result<(RunId, Expansion), ExpandError> {
    let (run, fire) = occurrence.of(campaign).ok_or(ExpandError::NoRun(now))?;
    // A run whose expansion finished never needs its file again: not even to hash it.
    if let Some(expanded) = stores.runs().run(&run).await?.as_ref().and_then(expanded) {
        return Ok((run, expanded));
    }
    let audience = &campaign.audience.source;
    let file = || audience.display().to_string();
    let surveyed = survey(audience)?;
    let hash = AudienceHash::from_bytes(surveyed.sha256);
    let new_run = NewRun {
        run: run.clone(),
        campaign: campaign.id.clone(),
        purpose: campaign.purpose,
        source: source.path.to_owned(),
        sender: Some(source.sender.to_owned()),
        campaign_text: Some(source.text.to_owned()),
        at_least_once: campaign.delivery == herald_campaign::campaign::DeliveryMode::AtLeastOnce,
        audience_sha256: Some(hash),
    };
    let created = stores.runs().create_run(&new_run, now).await?;
    let record = stores
        .runs()
        .run(&run)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("run {run}, just created")))?;
    if let Some(expanded) = expanded(&record) {
        // Finished by another process since the first look.
        return Ok((run, expanded));
    }
    if !created {
        match record.run.audience_sha256 {
            None => return Err(ExpandError::Unverifiable { file: file(), run }),
            Some(expected) if expected != hash => {
                return Err(ExpandError::Changed {
                    file: file(),
                    run,
                    expected,
                    when: "since the run started expanding it",
                });
            }
            Some(_) => {}
        }
    }
    let changed = |when| ExpandError::Changed {
        file: file(),
        run: run.clone(),
        expected: hash,
        when,
    };
    // Validating phones is most of the cost of a row, so rows are read and decided on several
    // blocking threads (each reader takes every n-th row of the file) while this task puts them
    // back in file order, drops duplicates and writes the batches. Each thread has at most
    // `AHEAD` chunks waiting, so memory stays flat whatever the audience size.
    let mut dedupe = Dedupe::new(run.clone(), surveyed.rows);
    let threads = readers.max(1);
    let mut streams = Vec::with_capacity(threads);
    for index in 0..threads {
        let reader = AudienceReader::open(audience, campaign.audience.default_country)?
            .share(index, threads);
        let (chunks, received) = tokio::sync::mpsc::channel(AHEAD);
        let (campaign, run) = (campaign.clone(), run.clone());
        let thread = tokio::task::spawn_blocking(move || {
            read_candidates(&campaign, &run, fire, now, reader, &chunks);
        });
        streams.push(Stream::new(received, thread));
    }
    let mut inserted = 0;
    let mut pending = Vec::with_capacity(BATCH);
    // One row from each reader in turn is file order. When the reader whose turn it is has no
    // more rows the file is done, and the others must have none left either: a row there means
    // the readers saw different files, and nothing more is written in an order that is not the
    // file's. A reader that ended by panicking is re-raised before anything more is written.
    let (mut stream, mut draining) = (0, false);
    while stream < threads {
        match streams[stream].next().await {
            Some(Err(error)) => return Err(error),
            Some(Ok(_)) if draining => return Err(changed("while it was being read")),
            Some(Ok(candidate)) => {
                pending.push(candidate);
                if pending.len() == BATCH {
                    inserted += write(stores, &mut dedupe, &mut pending).await?;
                }
                stream = (stream + 1) % threads;
            }
            None => {
                if draining {
                    stream += 1;
                } else {
                    (stream, draining) = (0, true);
                }
            }
        }
    }
    if !pending.is_empty() {
        inserted += write(stores, &mut dedupe, &mut pending).await?;
    }
    // The rows read must be the file hashed: a file rewritten (in place or by a rename) while
    // it was read has another hash now, and the run is not sealed with rows of two versions.
    if AudienceHash::from_bytes(survey(audience)?.sha256) != hash {
        return Err(changed("while it was being read"));
    }
    let total = stores.deliveries().counts(&run).await?.total();
    stores.runs().finish_expansion(&run, total).await?;
    Ok((
        run,
        Expansion {
            inserted,
            total,
            already_expanded: false,
        },
    ))
}

/// Settles a batch of candidates in file order (stored tags first, then duplicates) and writes
/// the deliveries; empties `pending`.
async fn write<S: Stores>(
    stores: &S,
    dedupe: &mut Dedupe,
    pending: &mut Vec<Candidate>,
) -> Result<u64, StoreError> {
    tags::resolve(stores, pending).await?;
    let batch: Vec<_> = pending
        .drain(..)
        .filter_map(|candidate| dedupe.settle(candidate))
        .collect();
    if batch.is_empty() {
        return Ok(0);
    }
    stores.deliveries().insert_batch(&batch).await
}

/// What a run whose expansion finished reports, without reading anything.
fn expanded(record: &RunRecord) -> Option<Expansion> {
    record.total.map(|total| Expansion {
        inserted: 0,
        total,
        already_expanded: true,
    })
}

/// Rows per message from a reading thread.
const CHUNK: usize = 1_024;

/// Chunks a reading thread may have waiting: a batch's worth and one more, so that the readers
/// keep going while a batch is written rather than stopping two chunks in.
const AHEAD: usize = BATCH / CHUNK + 2;

/// What a reading thread sends: a chunk of rows, or why it stopped before the end.
type Chunk = Result<Vec<Candidate>, ExpandError>;

/// One reading thread: decides each of its rows on its own and sends them on in chunks; stops
/// at an I/O error (sent as its last message) or when the receiver is gone (the writer failed).
fn read_candidates(
    campaign: &Campaign,
    run: &RunId,
    fire: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    reader: AudienceReader,
    chunks: &tokio::sync::mpsc::Sender<Chunk>,
) {
    let consent = crate::prepare::assumed_consent();
    let policy = crate::prepare::timing_policy(campaign);
    let mut chunk = Vec::with_capacity(CHUNK);
    for row in reader {
        if let Err(error) = &row
            && error.unreadable
        {
            let _ = chunks.blocking_send(Err(ExpandError::Unreadable(error.clone())));
            return;
        }
        chunk.push(candidate(
            campaign,
            run,
            fire,
            now,
            (&consent, &policy),
            row,
        ));
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if chunks.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = chunks.blocking_send(Ok(chunk));
    }
}

/// The candidates of one reading thread, one at a time.
struct Stream {
    received: tokio::sync::mpsc::Receiver<Chunk>,
    current: std::vec::IntoIter<Candidate>,
    thread: Option<tokio::task::JoinHandle<()>>,
}

impl Stream {
    fn new(
        received: tokio::sync::mpsc::Receiver<Chunk>,
        thread: tokio::task::JoinHandle<()>,
    ) -> Self {
        Self {
            received,
            current: Vec::new().into_iter(),
            thread: Some(thread),
        }
    }

    /// The next row, the reader's error, or `None` once it has ended. A reader that ended by
    /// panicking is re-raised here, before its end could pass for the end of the file.
    async fn next(&mut self) -> Option<Result<Candidate, ExpandError>> {
        loop {
            if let Some(candidate) = self.current.next() {
                return Some(Ok(candidate));
            }
            match self.received.recv().await {
                Some(Ok(chunk)) => self.current = chunk.into_iter(),
                Some(Err(error)) => return Some(Err(error)),
                None => {
                    if let Some(thread) = self.thread.take()
                        && let Err(join) = thread.await
                        && join.is_panic()
                    {
                        std::panic::resume_unwind(join.into_panic());
                    }
                    return None;
                }
            }
        }
    }
}
