//! Expansion: a run's audience into one delivery per recipient, streamed in batches.
//!
//! Idempotent by construction: every delivery is keyed by (run, recipient) and inserted with
//! "do nothing on conflict", and the run records its total only once the whole audience is in.
//! A crash half-way leaves a run without a total; running again re-reads the audience and inserts
//! only what is missing. Each row is decided once here with the same step `plan` uses, so a
//! delivery starts queued at its exact release instant (not polled) or already ended (duplicate,
//! broken row, no common window, …).

mod rows;

use chrono::{DateTime, Utc};
use herald_campaign::Campaign;
use herald_campaign::audience::{AudienceReader, count_rows};
use herald_core::RunId;
use herald_store::{Deliveries, NewRun, Runs, StoreError, Stores};

use rows::{Candidate, Dedupe, candidate};

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
    /// A cron campaign with no fire ahead.
    #[error("the campaign has no run to expand at {0}")]
    NoRun(DateTime<Utc>),
    /// The audience could not be read to its end (an I/O error). The rows before it are stored
    /// and the run is left unfinished, so running again reads the whole file and adds the rest.
    #[error("{0}; the rows before it are stored: run again to read the rest")]
    Unreadable(herald_campaign::audience::RowError),
    /// The threads reading the audience saw different files: it was changed while being read.
    /// The run is left unfinished, as for [`ExpandError::Unreadable`].
    #[error("{file}: the audience changed while it was being read; run again")]
    Changed {
        /// The audience path as given.
        file: String,
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

/// Creates the run of `campaign` at `now` (its `at`, or the next cron fire) and expands it,
/// reading the audience on every core but one (at least one, at most four).
pub async fn expand<S: Stores>(
    stores: &S,
    campaign: &Campaign,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(RunId, Expansion), ExpandError> {
    // One core is left to the writer and the duplicate check: on two cores a second reader
    // only competes with them (measured: 1 reader 143-157k rows/s, 2 readers 127-147k).
    let readers = std::thread::available_parallelism().map_or(1, |n| (n.get() - 1).clamp(1, 4));
    expand_with_readers(stores, campaign, source, now, readers).await
}

/// As [`expand`], with the number of threads reading the audience given (at least one): for
/// tuning, and for tests that must exercise the reordering whatever the machine.
pub async fn expand_with_readers<S: Stores>(
    stores: &S,
    campaign: &Campaign,
    source: &str,
    now: DateTime<Utc>,
    readers: usize,
) -> Result<(RunId, Expansion), ExpandError> {
    let (run, fire) = campaign.run_at(now).ok_or(ExpandError::NoRun(now))?;
    let new_run = NewRun {
        run: run.clone(),
        campaign: campaign.id.clone(),
        purpose: campaign.purpose,
        source: source.to_owned(),
        at_least_once: campaign.delivery == herald_campaign::campaign::DeliveryMode::AtLeastOnce,
    };
    stores.runs().create_run(&new_run, now).await?;
    if let Some(record) = stores.runs().run(&run).await?
        && let Some(total) = record.total
    {
        return Ok((
            run,
            Expansion {
                inserted: 0,
                total,
                already_expanded: true,
            },
        ));
    }
    // Validating phones is most of the cost of a row, so rows are read and decided on several
    // blocking threads (each reader takes every n-th row of the file) while this task puts them
    // back in file order, drops duplicates and writes the batches. Each thread has at most
    // `AHEAD` chunks waiting, so memory stays flat whatever the audience size.
    let audience = &campaign.audience.source;
    let mut dedupe = Dedupe::new(run.clone(), count_rows(audience)?);
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
    let mut batch = Vec::with_capacity(BATCH);
    // One row from each reader in turn is file order. When the reader whose turn it is has no
    // more rows the file is done, and the others must have none left either: a row there means
    // the readers saw different files, and nothing more is written in an order that is not the
    // file's. A reader that ended by panicking is re-raised before anything more is written.
    let (mut stream, mut draining) = (0, false);
    while stream < threads {
        match streams[stream].next().await {
            Some(Err(error)) => return Err(error),
            Some(Ok(_)) if draining => {
                return Err(ExpandError::Changed {
                    file: audience.display().to_string(),
                });
            }
            Some(Ok(candidate)) => {
                if let Some(delivery) = dedupe.settle(candidate) {
                    batch.push(delivery);
                }
                if batch.len() == BATCH {
                    inserted += stores.deliveries().insert_batch(&batch).await?;
                    batch.clear();
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
    if !batch.is_empty() {
        inserted += stores.deliveries().insert_batch(&batch).await?;
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
