//! Which files of the directory are campaign files, and reading one within the input bounds.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{DirError, MAX_FILES};
use crate::input::{MAX_DOCUMENT_BYTES, read_document};

/// Whether a file name is a campaign file's: `*.yaml` or `*.yml`, not a dotfile. The suffix
/// rule alone leaves out editor backups and swap files (`x.yaml~`, `x.yaml.swp`,
/// `#x.yaml#`); the leading-dot rule leaves out hidden ones (`.x.yaml`, Emacs' `.#x.yaml`
/// lock links, Kubernetes' `..data`). Case matters: `X.YAML` is not read, as `herald
/// validate`'s users never write it and an odd-cased name is more likely a stray copy.
pub(super) fn is_campaign_name(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// The campaign files directly in `root`, sorted by name. Subdirectories are skipped even when
/// named like a campaign (symlinks are followed, as a Kubernetes ConfigMap volume is made of
/// them); any other non-regular file named like one is listed, so reading it reports it.
/// Names that are not UTF-8 are skipped: the suffix rule cannot be applied to them.
///
/// More than [`MAX_FILES`] campaign files is an error, found without listing past the limit.
pub(super) fn list(root: &Path) -> Result<Vec<PathBuf>, DirError> {
    let unreadable = |source| DirError::Unreadable {
        path: root.to_path_buf(),
        source,
    };
    let metadata = fs::metadata(root).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            DirError::Missing {
                path: root.to_path_buf(),
            }
        } else {
            unreadable(e)
        }
    })?;
    if !metadata.is_dir() {
        return Err(DirError::NotDirectory {
            path: root.to_path_buf(),
        });
    }
    let mut paths = Vec::new();
    for entry in fs::read_dir(root).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| is_campaign_name(n)) else {
            continue;
        };
        let path = root.join(name);
        if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        if paths.len() == MAX_FILES {
            return Err(DirError::TooManyFiles {
                path: root.to_path_buf(),
            });
        }
        paths.push(path);
    }
    paths.sort();
    Ok(paths)
}

/// What reading one listed file gave.
pub(super) enum Read {
    /// Its text.
    Text(String),
    /// It was removed between the listing and the read: treated as not listed.
    Gone,
    /// It cannot be read within the rules of [`crate::input`] (not a regular file, over
    /// [`MAX_DOCUMENT_BYTES`], not UTF-8, no permission, a dangling symlink): the reason.
    Failed(String),
}

/// Reads a listed file as [`crate::validate::load`] does.
pub(super) fn read(path: &Path) -> Read {
    match read_document(path, MAX_DOCUMENT_BYTES) {
        Ok(text) => Read::Text(text),
        // A dangling symlink is a broken file the user should hear about; a name that no longer
        // exists at all was removed during the scan.
        Err(e)
            if e.is_not_found()
                && fs::symlink_metadata(path)
                    .is_err_and(|m| m.kind() == io::ErrorKind::NotFound) =>
        {
            Read::Gone
        }
        Err(e) => Read::Failed(e.kind.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_yaml_names_are_campaigns() {
        for name in ["a.yaml", "b.yml", "x.y.yaml"] {
            assert!(is_campaign_name(name), "{name}");
        }
        for name in [
            ".a.yaml",
            ".a.yaml.swp",
            "a.yaml~",
            "#a.yaml#",
            ".#a.yaml",
            "a.yaml.bak",
            "a.json",
            "A.YAML",
            "..data",
            "yaml",
        ] {
            assert!(!is_campaign_name(name), "{name}");
        }
    }
}
