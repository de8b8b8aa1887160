//! Whose fault a failure to open the store is: the configured location's (a directory where the
//! file should be, a file that is not a database, no permission, a read-only file system), which
//! the user fixes in their config, or the system's. Decided by the error's type and code, never
//! by its text, and every error names the path: "unable to open database file" alone does not
//! say which.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use herald_store::StoreError;
use rusqlite::ErrorCode;

/// `error`, met while opening or locking `path`, as [`StoreError::Unusable`] when the location is
/// at fault, else with the path added.
pub(crate) fn at(path: &Path, error: StoreError) -> StoreError {
    match error {
        StoreError::Backend(source) if location_at_fault(&*source) => StoreError::Unusable {
            location: path.display().to_string(),
            source,
        },
        StoreError::Backend(source) => StoreError::Backend(Box::new(Opening {
            path: path.to_owned(),
            source,
        })),
        other => other,
    }
}

fn location_at_fault(error: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(error) = error.downcast_ref::<rusqlite::Error>() {
        return matches!(
            error.sqlite_error_code(),
            Some(
                ErrorCode::CannotOpen
                    | ErrorCode::ReadOnly
                    | ErrorCode::PermissionDenied
                    | ErrorCode::NotADatabase
            )
        );
    }
    if let Some(error) = error.downcast_ref::<io::Error>() {
        return matches!(
            error.kind(),
            io::ErrorKind::NotFound
                | io::ErrorKind::PermissionDenied
                | io::ErrorKind::ReadOnlyFilesystem
                | io::ErrorKind::IsADirectory
                | io::ErrorKind::NotADirectory
        );
    }
    false
}

/// A failure of ours while opening `path`, naming it.
#[derive(Debug)]
struct Opening {
    path: PathBuf,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for Opening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "opening {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for Opening {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_is_at_fault_by_error_code_and_kind_not_by_text() {
        let sqlite = |code: i32| {
            StoreError::Backend(Box::new(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                Some("unable to open database file".into()),
            )))
        };
        let path = Path::new("/x/h.db");
        for code in [
            rusqlite::ffi::SQLITE_CANTOPEN,
            rusqlite::ffi::SQLITE_READONLY,
            rusqlite::ffi::SQLITE_PERM,
            rusqlite::ffi::SQLITE_NOTADB,
        ] {
            let error = at(path, sqlite(code));
            assert!(
                matches!(&error, StoreError::Unusable { location, .. } if location == "/x/h.db"),
                "{code}: {error:?}"
            );
        }
        // The same words under a code that is not the location's: ours, with the path added.
        let error = at(path, sqlite(rusqlite::ffi::SQLITE_IOERR));
        assert!(matches!(&error, StoreError::Backend(_)), "{error:?}");
        assert!(error.to_string().contains("opening /x/h.db: "), "{error}");
        let denied =
            StoreError::Backend(Box::new(io::Error::from(io::ErrorKind::PermissionDenied)));
        assert!(matches!(at(path, denied), StoreError::Unusable { .. }));
        let conflict = at(path, StoreError::Conflict("busy".into()));
        assert!(matches!(conflict, StoreError::Conflict(_)));
    }
}
