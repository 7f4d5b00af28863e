//! Turns a directory on disk into layer entries under the determinism rules: root owner,
//! 0644/0755 modes, special bits dropped, symlinks kept, hard links kept as links, FIFOs
//! and devices refused, sockets skipped. Also applies the default exclusions (VCS data,
//! `.env` files, SSH private keys) and `project.toml` include/exclude rules.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::entry::{Content, Entry, EntryKind};

/// Names excluded wherever they appear: version control data, dotenv files and SSH
/// private keys. Public keys (`*.pub`) are not secrets and stay.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".bzr",
    "_darcs",
    ".env",
    ".env.*",
    "!.env.example",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
];

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read `{}`: {source}", .path.display())]
    Walk {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is a {kind}, which an image layer cannot hold: remove it from the app directory or exclude it in project.toml", .path.display())]
    Special { path: PathBuf, kind: &'static str },
    #[error("bad {what} pattern `{pattern}` in `{}`: {message}", .file.display())]
    Pattern {
        file: PathBuf,
        what: &'static str,
        pattern: String,
        message: String,
    },
}

/// Which paths of a directory go into a layer.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// gitignore-syntax patterns; when non-empty, only matching paths are taken.
    pub include: Vec<String>,
    /// gitignore-syntax patterns of paths to leave out, on top of [`DEFAULT_EXCLUDES`].
    pub exclude: Vec<String>,
    /// Where the patterns came from, for error messages.
    pub origin: PathBuf,
}

/// The entries of a directory and what was left out of them.
#[derive(Debug, Default)]
pub struct Collected {
    pub entries: Vec<Entry>,
    /// Paths (relative to the directory) left out by the default or the user's rules.
    pub excluded: Vec<String>,
    /// Sockets, which are skipped with a warning.
    pub skipped: Vec<String>,
}

/// Collects `dir` as entries placed under `prefix` (e.g. `workspace`), which itself is
/// included as a directory.
pub fn collect(dir: &Path, prefix: &[u8], rules: &Rules) -> Result<Collected, SourceError> {
    let defaults = matcher(dir, DEFAULT_EXCLUDES.iter().copied(), rules, "default")?;
    let exclude = matcher(
        dir,
        rules.exclude.iter().map(String::as_str),
        rules,
        "exclude",
    )?;
    let include = if rules.include.is_empty() {
        None
    } else {
        Some(matcher(
            dir,
            rules.include.iter().map(String::as_str),
            rules,
            "include",
        )?)
    };

    let mut collected = Collected::default();
    let mut found: Vec<(Vec<u8>, PathBuf, std::fs::Metadata)> = Vec::new();
    let mut walker = walkdir::WalkDir::new(dir).follow_links(false).into_iter();
    while let Some(item) = walker.next() {
        let item = item.map_err(|e| SourceError::Walk {
            path: e.path().unwrap_or(dir).to_path_buf(),
            source: e.into(),
        })?;
        let rel = item
            .path()
            .strip_prefix(dir)
            .expect("walkdir yields paths under its root");
        if rel.as_os_str().is_empty() {
            continue;
        }
        let is_dir = item.file_type().is_dir();
        let shown = rel.to_string_lossy().into_owned();
        let excluded =
            defaults.matched(rel, is_dir).is_ignore() || exclude.matched(rel, is_dir).is_ignore();
        if excluded {
            collected.excluded.push(shown);
            if is_dir {
                walker.skip_current_dir();
            }
            continue;
        }
        // A directory the include rules do not take is still walked, since paths under
        // it may match; it enters the layer only as the parent of one (the writer adds
        // parents), so no empty directory of an unincluded tree leaks in.
        if let Some(include) = &include {
            if !include.matched_path_or_any_parents(rel, is_dir).is_ignore() {
                continue;
            }
        }

        let meta = item.metadata().map_err(|e| SourceError::Walk {
            path: item.path().to_path_buf(),
            source: e.into(),
        })?;
        let file_type = meta.file_type();
        let special = if file_type.is_fifo() {
            Some("FIFO (named pipe)")
        } else if file_type.is_block_device() {
            Some("block device")
        } else if file_type.is_char_device() {
            Some("character device")
        } else {
            None
        };
        if let Some(kind) = special {
            return Err(SourceError::Special {
                path: item.path().to_path_buf(),
                kind,
            });
        }
        if file_type.is_socket() {
            collected.skipped.push(shown);
            continue;
        }
        let mut path = prefix.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(rel.as_os_str().as_bytes());
        found.push((path, item.path().to_path_buf(), meta));
    }

    // Sorted first, so that the first path of a hard-linked set holds the content
    // whatever order the directory listing had.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut first_link: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    if !prefix.is_empty() {
        collected.entries.push(Entry::dir(prefix.to_vec()));
    }
    for (path, disk_path, meta) in found {
        let file_type = meta.file_type();
        let kind = if file_type.is_dir() {
            EntryKind::Directory
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(&disk_path).map_err(|source| SourceError::Walk {
                path: disk_path.clone(),
                source,
            })?;
            EntryKind::Symlink(target.as_os_str().as_bytes().to_vec())
        } else if meta.nlink() > 1 {
            match first_link.get(&(meta.dev(), meta.ino())) {
                Some(target) => EntryKind::HardLink(target.clone()),
                None => {
                    first_link.insert((meta.dev(), meta.ino()), path.clone());
                    file_kind(disk_path, &meta)
                }
            }
        } else {
            file_kind(disk_path, &meta)
        };
        let mode = match &kind {
            EntryKind::Directory => 0o755,
            EntryKind::Symlink(_) => 0o777,
            _ if meta.mode() & 0o100 != 0 => 0o755,
            _ => 0o644,
        };
        collected.entries.push(Entry {
            path,
            kind,
            mode,
            uid: 0,
            gid: 0,
        });
    }
    collected.excluded.sort();
    collected.skipped.sort();
    Ok(collected)
}

fn file_kind(path: PathBuf, meta: &std::fs::Metadata) -> EntryKind {
    EntryKind::File(Content::Path {
        path,
        size: meta.len(),
    })
}

fn matcher<'a>(
    dir: &Path,
    patterns: impl Iterator<Item = &'a str>,
    rules: &Rules,
    what: &'static str,
) -> Result<Gitignore, SourceError> {
    let mut builder = GitignoreBuilder::new(dir);
    for pattern in patterns {
        builder
            .add_line(None, pattern)
            .map_err(|e| SourceError::Pattern {
                file: rules.origin.clone(),
                what,
                pattern: pattern.to_owned(),
                message: e.to_string(),
            })?;
    }
    builder.build().map_err(|e| SourceError::Pattern {
        file: rules.origin.clone(),
        what,
        pattern: String::new(),
        message: e.to_string(),
    })
}
