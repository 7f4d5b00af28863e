//! What a layer holds, before it becomes a tar stream: entries with a path, a kind, a mode
//! and an owner. The writer stores them as given; the policy of what modes and owners app
//! content gets lives in [`super::source`], and package bases keep the package's own.

use std::path::PathBuf;

/// One filesystem entry of a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the image, relative to `/`, with `/` separators, no leading `/` or `./`
    /// and no trailing `/`. Raw bytes, since file names need not be UTF-8.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits, including setuid, setgid and sticky where the source keeps them.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    File(Content),
    /// The link target, stored as written, never followed.
    Symlink(Vec<u8>),
    /// Another entry of the same layer, by its path; it must sort before this one.
    HardLink(Vec<u8>),
}

/// Where a regular file's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Bytes(Vec<u8>),
    /// Read from disk when the layer is written; `size` is what lstat reported, and a file
    /// that changed size in between fails the write rather than produce a torn layer.
    Path {
        path: PathBuf,
        size: u64,
    },
}

impl Entry {
    /// A directory owned by root, mode 0755.
    pub fn dir(path: impl Into<Vec<u8>>) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Directory,
            mode: 0o755,
            uid: 0,
            gid: 0,
        }
    }

    /// A regular file owned by root with the given bytes and mode.
    pub fn file(path: impl Into<Vec<u8>>, bytes: impl Into<Vec<u8>>, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File(Content::Bytes(bytes.into())),
            mode,
            uid: 0,
            gid: 0,
        }
    }

    /// A symlink owned by root (mode 0777, as symlinks carry).
    pub fn symlink(path: impl Into<Vec<u8>>, target: impl Into<Vec<u8>>) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Symlink(target.into()),
            mode: 0o777,
            uid: 0,
            gid: 0,
        }
    }

    /// Size of the file's content, zero for everything that is not a regular file.
    pub fn size(&self) -> u64 {
        match &self.kind {
            EntryKind::File(Content::Bytes(bytes)) => bytes.len() as u64,
            EntryKind::File(Content::Path { size, .. }) => *size,
            _ => 0,
        }
    }
}

/// Normalizes a path to the form [`Entry::path`] wants: strips leading `/` and `./`,
/// trailing `/`, and empty or `.` components. Returns `None` for a path that escapes the
/// root with `..` or is empty.
pub fn normalize_path(path: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            part => out.push(part),
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out.join(&b'/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_prefixes_and_refuses_escapes() {
        assert_eq!(normalize_path(b"./usr/bin/"), Some(b"usr/bin".to_vec()));
        assert_eq!(
            normalize_path(b"/etc//passwd"),
            Some(b"etc/passwd".to_vec())
        );
        assert_eq!(normalize_path(b"a/../b"), None);
        assert_eq!(normalize_path(b"./"), None);
    }
}
