//! The outbox channel: one JSON object per message, one message per line, appended to a file.
//!
//! It is the dry-run and demo channel, and a stand-in provider for tests of the engine, so it
//! keeps the same promise a real provider must: a send that returns `Ok` is in the file, a
//! send that fails says whether anything reached the file (design §1.3).
//!
//! # The file
//! Each line is `{"at": "<RFC 3339 UTC>", …}` followed by the fields of the `record` module
//! (`idempotency_key`, `run`, `recipient`, `to`, `template`, `language`, `header`, `params`,
//! `buttons`) and a `\n`. A reader should skip a line that does not parse: a crash or a full disk
//! can leave a torn last line, and the outbox then starts its next line on a fresh line (it
//! checks the file's last byte when it opens it and remembers a failed write), so one torn line
//! never swallows the next message.
//!
//! # Durability
//! Lines are written with one `write_all` straight to the file (no user-space buffer) but not
//! `fsync`ed. A process crash loses nothing that was acknowledged, because the bytes are in the
//! kernel; a power loss may lose the last acknowledged lines. Losing a line can only turn a
//! `sent` into a message nobody received, never into a second message, so at-most-once holds
//! without paying an `fsync` per message (which would cap a demo run at the disk's sync rate).
//!
//! One process should own an outbox file. Another appender is not a correctness problem (its
//! bytes can only make a failed write look partial, i.e. `Unknown`), but its lines may interleave
//! with ours at write boundaries.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use chrono::Utc;
use serde::Serialize;

use crate::record::{MessageFields, rfc3339};
use crate::{Accepted, Channel, OutgoingMessage, SendError};

/// Appends messages to a JSONL file; see the module docs for the format and durability.
#[derive(Debug)]
pub struct Outbox {
    /// Where the file is, for error messages.
    path: PathBuf,
    /// The file, opened in append mode, and whether its last line is torn. A `std` mutex: it is
    /// held for one `write` system call and never across an `.await`, and holding it for the
    /// whole line is what keeps lines from concurrent sends from interleaving.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: File,
    /// The file does not end with `\n` (a crash or a failed write tore its last line): the next
    /// line must start with one.
    torn: bool,
}

/// One outbox line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    at: String,
    #[serde(flatten)]
    message: MessageFields<'a>,
}

impl Outbox {
    /// Opens `path` for appending, creating it if needed; existing lines are kept.
    ///
    /// # Errors
    /// The file cannot be opened or its last byte cannot be read.
    pub fn open(path: &Path) -> Result<Outbox, io::Error> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let torn = ends_without_newline(&mut file)?;
        Ok(Outbox {
            path: path.to_owned(),
            state: Mutex::new(State { file, torn }),
        })
    }

    /// The file this outbox appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` (which ends with `\n`) as one write, and says what a failure left behind.
    fn append(&self, line: &[u8]) -> Result<(), SendError> {
        // Poisoning cannot leave `State` inconsistent: `torn` is set only after the write returns.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let before = match state.file.metadata() {
            Ok(metadata) => metadata.len(),
            Err(error) => {
                return Err(SendError::Retryable {
                    retry_after: None,
                    reason: self.describe("cannot stat", &error),
                });
            }
        };
        let mut bytes = Vec::with_capacity(line.len() + 1);
        if state.torn {
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(line);
        // `File` has no user-space buffer, so `flush` is a no-op today; it stays so that wrapping
        // the file in a buffer later cannot silently acknowledge lines still in memory.
        let result = state
            .file
            .write_all(&bytes)
            .and_then(|()| state.file.flush());
        match result {
            Ok(()) => {
                state.torn = false;
                Ok(())
            }
            Err(error) => {
                let after = state.file.metadata().ok().map(|metadata| metadata.len());
                let (failure, torn) =
                    failure(before, after, &self.describe("cannot append to", &error));
                state.torn |= torn;
                Err(failure)
            }
        }
    }

    fn describe(&self, what: &str, error: &io::Error) -> String {
        format!("{what} outbox {}: {error}", self.path.display())
    }
}

impl Channel for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }

    /// Writes inline, without `spawn_blocking`: an append to the page cache takes microseconds,
    /// and a send with no `.await` cannot be cancelled halfway, so a dropped future never leaves a
    /// write running in the background that nobody will hear about.
    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, SendError> {
        let record = Line {
            at: rfc3339(Utc::now()),
            message: MessageFields::of(message),
        };
        let mut line = serde_json::to_vec(&record).map_err(|error| SendError::Rejected {
            code: "invalid_message".into(),
            detail: format!("cannot serialise the message: {error}"),
            action: None,
        })?;
        line.push(b'\n');
        self.append(&line)?;
        Ok(Accepted { provider_id: None })
    }
}

/// Classifies a failed append from the file length before it and after it (`None`: unknown).
/// Returns the error and whether the file may now end in a torn line.
///
/// Only an unchanged length proves the message is not in the file, so only that is
/// `Retryable`; anything else may have left part or all of the line, which a reader might take
/// for a message, so it is `Unknown`.
fn failure(before: u64, after: Option<u64>, reason: &str) -> (SendError, bool) {
    if after == Some(before) {
        (
            SendError::Retryable {
                retry_after: None,
                reason: format!("{reason} (nothing written)"),
            },
            false,
        )
    } else {
        (
            SendError::Unknown(format!("{reason} (part of the line may have been written)")),
            true,
        )
    }
}

/// Whether a regular, non-empty file's last byte is not `\n`.
fn ends_without_newline(file: &mut File) -> io::Result<bool> {
    let metadata = file.metadata()?;
    if !metadata.is_file() || metadata.len() == 0 {
        return Ok(false);
    }
    // Reading moves the cursor, not the append position: every write still goes to the end.
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0_u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_append_is_retryable_only_when_the_file_did_not_grow() {
        let rows: [(u64, Option<u64>, bool); 4] = [
            (100, Some(100), true),  // nothing written: proven not in the file
            (100, Some(150), false), // part or all of the line is there
            (100, None, false),      // the length cannot be read: cannot prove anything
            (100, Some(90), false),  // someone truncated it: cannot prove anything
        ];
        for (before, after, retryable) in rows {
            let (error, torn) = failure(before, after, "boom");
            assert_eq!(
                matches!(error, SendError::Retryable { .. }),
                retryable,
                "{before} -> {after:?}: {error:?}"
            );
            assert_eq!(
                matches!(error, SendError::Unknown(_)),
                !retryable,
                "{before} -> {after:?}: {error:?}"
            );
            assert_eq!(torn, !retryable, "{before} -> {after:?}");
        }
    }

    #[test]
    fn a_file_ending_mid_line_is_noticed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        for (content, torn) in [("", false), ("{}\n", false), ("{}\n{\"at\":", true)] {
            std::fs::write(&path, content).unwrap();
            let outbox = Outbox::open(&path).unwrap();
            assert_eq!(outbox.state.lock().unwrap().torn, torn, "{content:?}");
        }
    }
}
