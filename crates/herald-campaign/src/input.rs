//! Bounded input: every file Herald reads from a user is read with a size limit, and only when
//! it is a regular file.
//!
//! The admin API will put the campaign parser and the consent import on the network, so no
//! input may make Herald grow without end or wait forever: `/dev/zero` as a campaign would fill
//! memory, a FIFO would block the open, a directory or a socket reads as nonsense. So:
//! - whole documents (campaign YAML, `herald.toml`) go through [`read_document`]: a regular file
//!   of at most [`MAX_DOCUMENT_BYTES`], valid UTF-8;
//! - streams (audiences, consent imports) are opened with [`open_stream`] (a regular file) and
//!   read one record at a time, each at most [`MAX_RECORD_BYTES`]: CSV with [`CsvRecords`],
//!   line-based formats with [`read_line`]. A record over the limit is that record's error and
//!   reading goes on after it; nothing buffers more than the limit.
//!
//! The file type is checked on the path's metadata *before* opening, because opening a FIFO for
//! reading blocks until a writer appears; it is checked again on the opened file, so a path
//! swapped for `/dev/zero` in between is still refused (a path swapped for a FIFO in that instant
//! would block the open: closing that gap needs `O_NONBLOCK`, which std does not offer).

mod csv_records;

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

pub use csv_records::{CsvRecords, RecordError};

/// The largest campaign or config file: far above any hand-written campaign (the examples are
/// about 1 KiB) and small enough to parse in a blink.
pub const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;

/// The largest audience or consent-import record (a CSV record or a JSONL line, as written):
/// a real row is a few hundred bytes; a record this long is a broken file (a quote left open, a
/// missing newline), not a recipient.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// A file that could not be read within the rules above, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct InputError {
    /// The file as given.
    pub path: PathBuf,
    /// What is wrong with it.
    pub kind: InputErrorKind,
}

/// Why a file was refused.
#[derive(Debug, thiserror::Error)]
pub enum InputErrorKind {
    /// A directory, FIFO, socket or device.
    #[error("not a regular file ({0})")]
    NotRegular(FileKind),
    /// Longer than the limit.
    #[error("larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Not UTF-8 text.
    #[error("not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Missing, unreadable, or failed while reading.
    #[error("cannot read: {0}")]
    Io(#[source] io::Error),
}

impl InputError {
    fn new(path: &Path, kind: InputErrorKind) -> Self {
        Self {
            path: path.to_path_buf(),
            kind,
        }
    }

    /// Whether the file does not exist (callers with a default file treat that as "none").
    pub fn is_not_found(&self) -> bool {
        matches!(&self.kind, InputErrorKind::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

/// What a path that is not a regular file is, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A directory.
    Directory,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A character device such as `/dev/zero`.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// Anything else.
    Other,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a named pipe",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Other => "a special file",
        })
    }
}

/// What `metadata` describes when it is not a regular file; `None` for a regular file.
pub fn file_kind(metadata: &Metadata) -> Option<FileKind> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some(FileKind::Directory);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some(FileKind::Fifo);
        }
        if kind.is_socket() {
            return Some(FileKind::Socket);
        }
        if kind.is_char_device() {
            return Some(FileKind::CharDevice);
        }
        if kind.is_block_device() {
            return Some(FileKind::BlockDevice);
        }
    }
    Some(FileKind::Other)
}

/// Opens `path` for reading if it is a regular file (symlinks followed). For streams read
/// record by record; see the module docs for why the type is checked twice.
pub fn open_stream(path: &Path) -> Result<File, InputError> {
    let error = |kind| InputError::new(path, kind);
    let before = std::fs::metadata(path).map_err(|e| error(InputErrorKind::Io(e)))?;
    if let Some(kind) = file_kind(&before) {
        return Err(error(InputErrorKind::NotRegular(kind)));
    }
    let file = File::open(path).map_err(|e| error(InputErrorKind::Io(e)))?;
    let after = file.metadata().map_err(|e| error(InputErrorKind::Io(e)))?;
    if let Some(kind) = file_kind(&after) {
        return Err(error(InputErrorKind::NotRegular(kind)));
    }
    Ok(file)
}

/// Reads a whole regular file of at most `max` bytes as UTF-8 text. The size is enforced by
/// reading at most `max + 1` bytes, not by trusting the metadata (which a growing file or a
/// special file would get wrong).
pub fn read_document(path: &Path, max: u64) -> Result<String, InputError> {
    let error = |kind| InputError::new(path, kind);
    let file = open_stream(path)?;
    let expected = file.metadata().map_or(0, |m| m.len()).min(max);
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0).saturating_add(1));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| error(InputErrorKind::Io(e)))?;
    if bytes.len() as u64 > max {
        return Err(error(InputErrorKind::TooLarge { limit: max }));
    }
    String::from_utf8(bytes).map_err(|e| {
        error(InputErrorKind::NotUtf8 {
            offset: e.utf8_error().valid_up_to(),
        })
    })
}

/// What [`read_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A line is in the buffer, without its `\n`.
    Read,
    /// A line longer than the limit was read past; the buffer holds its first `limit` bytes.
    TooLong,
    /// The end of the input: no line.
    End,
}

/// Reads one `\n`-terminated line into `buffer` (cleared first), keeping at most `limit` bytes
/// of it: the rest of a longer line is read and dropped, so one huge line costs no memory and
/// the next call starts on the next line. The last line may lack its `\n`.
pub fn read_line(
    reader: &mut impl BufRead,
    buffer: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Line> {
    buffer.clear();
    let (mut any, mut too_long) = (false, false);
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let (content, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], end + 1, true),
            None => (available, available.len(), false),
        };
        let room = limit.saturating_sub(buffer.len());
        too_long |= content.len() > room;
        buffer.extend_from_slice(&content[..content.len().min(room)]);
        reader.consume(used);
        if done {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => Line::End,
        (true, false) => Line::Read,
        (true, true) => Line::TooLong,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_limited_regular_utf8_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "id: x\n").unwrap();
        assert_eq!(read_document(&path, 6).unwrap(), "id: x\n");
        let error = read_document(&path, 5).unwrap_err();
        assert!(matches!(error.kind, InputErrorKind::TooLarge { limit: 5 }));
        assert_eq!(
            error.to_string(),
            format!("{}: larger than the limit of 5 bytes", path.display())
        );
        std::fs::write(&path, b"id: \xff\n").unwrap();
        let error = read_document(&path, 100).unwrap_err();
        assert!(matches!(error.kind, InputErrorKind::NotUtf8 { offset: 4 }));
        let error = read_document(dir.path(), 100).unwrap_err();
        assert!(matches!(
            error.kind,
            InputErrorKind::NotRegular(FileKind::Directory)
        ));
        let missing = read_document(&dir.path().join("none.yaml"), 100).unwrap_err();
        assert!(missing.is_not_found());
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_refused_without_reading() {
        let error = read_document(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(matches!(
            error.kind,
            InputErrorKind::NotRegular(FileKind::CharDevice)
        ));
        assert!(open_stream(Path::new("/dev/null")).is_err());
    }

    fn lines(data: &[u8], limit: usize) -> Vec<(Line, String)> {
        let mut reader = io::BufReader::with_capacity(4, data);
        let mut buffer = Vec::new();
        let mut out = Vec::new();
        loop {
            let line = read_line(&mut reader, &mut buffer, limit).unwrap();
            if line == Line::End {
                return out;
            }
            out.push((line, String::from_utf8(buffer.clone()).unwrap()));
        }
    }

    #[test]
    fn long_lines_are_cut_and_skipped_not_buffered() {
        let got = lines(b"short\na very long line\n\nlast", 6);
        assert_eq!(
            got,
            [
                (Line::Read, "short".to_owned()),
                (Line::TooLong, "a very".to_owned()),
                (Line::Read, String::new()),
                (Line::Read, "last".to_owned()),
            ]
        );
        assert_eq!(lines(b"", 6), []);
        assert_eq!(lines(b"exact!\n", 6), [(Line::Read, "exact!".to_owned())]);
    }
}
