//! What every bench runs: a campaign file and its audience on disk, the opt-in events that let
//! a marketing campaign send, and channels that count what they are asked to send.
//!
//! Both modes (embedded and Redis) expand the same project through the real
//! [`herald_engine::expand::expand`], so their figures describe the same work.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use herald_channel::{Accepted, Channel, OutgoingMessage, SendError};
use herald_core::{ConsentEvent, ConsentKind, PhoneNumber, Scope};
use herald_store::{Consents, StoredConsent, Stores};

/// Which policy checks the campaign asks of the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checks {
    /// Marketing (consent needed and read), a frequency cap (history read), a send window, and
    /// (in the Redis bench) the sender's messaging tier at the claim.
    On,
    /// Transactional, no cap, no window, no consent events: what X3 divides by.
    Off,
}

impl Checks {
    /// The name used on a child's command line.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Checks::On => "on",
            Checks::Off => "off",
        }
    }

    /// The inverse of [`Checks::as_str`].
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text {
            "on" => Ok(Checks::On),
            "off" => Ok(Checks::Off),
            other => Err(format!("checks: expected on or off, got {other:?}")),
        }
    }
}

/// Recipient `i`'s phone: distinct for every `i` below ten million.
pub(crate) fn phone(i: u64) -> String {
    format!("+7916{:07}", i % 10_000_000)
}

/// Recipient `i`'s id in the audience file; [`recipient_index`] reads it back.
fn recipient_id(i: u64) -> String {
    format!("r{i}")
}

/// The audience row number a recipient id names, or `None` for an id the bench did not write.
pub(crate) fn recipient_index(id: &str) -> Option<u64> {
    id.strip_prefix('r')?.parse().ok()
}

/// Writes `people.csv` (`jobs` rows, five time zones) and `c.yaml` into `dir`; returns the
/// campaign file. With [`Checks::On`]: marketing, a cap, an always-open window, an `at` in the
/// past, so every delivery is due at once and passes every check (once its opt-in is stored).
pub(crate) fn write_project(dir: &Path, jobs: u64, checks: Checks) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut csv = String::with_capacity(jobs as usize * 48);
    csv.push_str("id,phone,timezone,first_name\n");
    let zones = [
        "Europe/Moscow",
        "Asia/Yekaterinburg",
        "Asia/Kolkata",
        "America/New_York",
        "Australia/Adelaide",
    ];
    for i in 0..jobs {
        let _ = writeln!(
            csv,
            "{},{},{},Name{i}",
            recipient_id(i),
            phone(i),
            zones[(i % 5) as usize]
        );
    }
    std::fs::write(dir.join("people.csv"), csv)?;
    let yaml = match checks {
        Checks::On => {
            "id: bench\npurpose: marketing\naudience: { source: people.csv }\n\
             template: { name: bench, language: en, params: { name: \"{{ first_name | default('friend') }}\" } }\n\
             schedule: { at: 2026-01-01T00:00, in: recipient }\n\
             send_window: { hours: { daily: \"00:00-24:00\" } }\n\
             frequency_cap: [ { max: 5, per: 7d, scope: purpose } ]\nspread: 1s\n"
        }
        Checks::Off => {
            "id: bench\npurpose: transactional\naudience: { source: people.csv }\n\
             template: { name: bench, language: en, params: { name: \"{{ first_name | default('friend') }}\" } }\n\
             schedule: { at: 2026-01-01T00:00, in: recipient }\nspread: 1s\n"
        }
    };
    std::fs::write(dir.join("c.yaml"), yaml)?;
    Ok(dir.join("c.yaml"))
}

/// Stores a marketing opt-in on WhatsApp for recipients `0..jobs`, 10,000 per append.
pub(crate) async fn import_opt_ins<S: Stores>(
    stores: &S,
    jobs: u64,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let mut start = 0;
    while start < jobs {
        let end = (start + 10_000).min(jobs);
        let mut events = Vec::with_capacity((end - start) as usize);
        for i in start..end {
            let phone = PhoneNumber::parse(&phone(i), None)
                .map_err(|e| format!("bench phone {}: {e}", phone(i)))?;
            events.push(StoredConsent {
                channel: "whatsapp".into(),
                phone,
                event: ConsentEvent {
                    kind: ConsentKind::OptIn,
                    scope: Scope::Marketing,
                    occurred_at: now,
                    source: "bench".into(),
                    proof: None,
                },
            });
        }
        stores
            .consents()
            .append(&events, now)
            .await
            .map_err(|e| format!("importing opt-ins: {e}"))?;
        start = end;
    }
    Ok(())
}

/// The provider, stubbed in-process: accepts everything at once.
pub(crate) struct Stub;

impl Channel for Stub {
    fn name(&self) -> &'static str {
        "stub"
    }

    async fn send(&self, _message: &OutgoingMessage) -> Result<Accepted, SendError> {
        Ok(Accepted::default())
    }
}

/// Wraps a channel and counts, per delivery, what it was asked to send, so a run that sent a
/// delivery twice (or not at all) is caught by the bench rather than hidden in a rate.
///
/// One bit per audience row (12.5 KB at 100k) instead of a set of keys: the worker's peak RSS
/// is one of the figures, and a set of 100k strings would add megabytes to it.
pub(crate) struct Counted<C> {
    inner: C,
    seen: Vec<AtomicU64>,
    requests: AtomicU64,
    accepted: AtomicU64,
    duplicates: AtomicU64,
    /// Requests for a recipient id the bench did not write (counted, never ignored).
    strangers: AtomicU64,
}

/// What a [`Counted`] channel saw.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally {
    /// Requests made.
    pub(crate) requests: u64,
    /// Requests the channel reported accepted (for HTTP: answered 2xx by the sink).
    pub(crate) accepted: u64,
    /// Requests for a delivery already requested before.
    pub(crate) duplicates: u64,
    /// Requests for a recipient outside the audience.
    pub(crate) strangers: u64,
}

impl<C: Channel> Counted<C> {
    /// Counts requests to `inner` for an audience of `jobs` rows.
    pub(crate) fn new(inner: C, jobs: u64) -> Self {
        Self {
            inner,
            seen: (0..jobs.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            requests: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            strangers: AtomicU64::new(0),
        }
    }

    /// The counts so far.
    pub(crate) fn tally(&self) -> Tally {
        Tally {
            requests: self.requests.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            strangers: self.strangers.load(Ordering::Relaxed),
        }
    }

    fn note(&self, message: &OutgoingMessage) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let Some(word) = recipient_index(&message.recipient).and_then(|i| {
            self.seen
                .get((i / 64) as usize)
                .map(|w| (w, 1u64 << (i % 64)))
        }) else {
            self.strangers.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (word, bit) = word;
        if word.fetch_or(bit, Ordering::Relaxed) & bit != 0 {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<C: Channel> Channel for Counted<C> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        self.note(message);
        let answer = self.inner.send(message).await;
        if answer.is_ok() {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }
}
