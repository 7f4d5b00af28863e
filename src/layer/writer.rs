//! The deterministic tar writer. It takes entries and returns a gzip-compressed layer
//! with its digest (of the compressed bytes) and diff_id (of the tar), both computed in
//! the same pass. It sorts, adds missing parents and stamps the build epoch; it does not
//! decide modes or owners, and knows nothing of files on disk beyond reading content.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::entry::{Content, Entry, EntryKind};
use super::gzip::ParallelGzip;
use crate::digest::{Digest, DigestWriter};

/// Gzip level for every layer. Part of the determinism contract together with the pinned
/// flate2 backend: changing either changes every digest, and the golden test says so.
pub const GZIP_LEVEL: u32 = 6;

/// Names the byte encoding of layers (tar rules, gzip block layout, level and backend).
/// Caches of compressed layers are keyed by it together with the tool version, so a change
/// to any of those never serves a blob of the old encoding. Change it with the encoding.
pub const LAYER_FORMAT: &str = "tar1-gzip6-block256k-zlibrs";

/// ustar's size field holds 11 octal digits; anything larger needs a PAX `size` record.
const USTAR_MAX_SIZE: u64 = 0o77_777_777_777;

pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("two entries of one layer have the path `{}`", String::from_utf8_lossy(.0))]
    Duplicate(Vec<u8>),
    #[error("`{}` is both a directory and a file in one layer", String::from_utf8_lossy(.0))]
    ParentNotDirectory(Vec<u8>),
    #[error("hard link `{}` points at `{}`, which is not an earlier file of the same layer", String::from_utf8_lossy(.path), String::from_utf8_lossy(.target))]
    DanglingHardLink { path: Vec<u8>, target: Vec<u8> },
    #[error("cannot read `{}`: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("`{}` changed size while the layer was written (expected {expected} bytes): rerun the build when nothing writes to the app directory", .path.display())]
    Changed { path: PathBuf, expected: u64 },
    #[error("cannot write layer to `{}`: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// A written layer blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    /// Digest of the compressed bytes: the blob's name and descriptor digest.
    pub digest: Digest,
    /// Digest of the uncompressed tar: what the config's `rootfs.diff_ids` lists.
    pub diff_id: Digest,
    /// Size of the compressed bytes.
    pub size: u64,
}

/// Sorts entries by path (byte order), adds missing parent directories (root-owned, 0755)
/// and checks for duplicates and hard links that point nowhere.
pub fn plan(entries: Vec<Entry>) -> Result<Vec<Entry>, LayerError> {
    let mut by_path: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
    for entry in entries {
        if by_path.contains_key(&entry.path) {
            return Err(LayerError::Duplicate(entry.path));
        }
        by_path.insert(entry.path.clone(), entry);
    }

    let mut parents = Vec::new();
    for path in by_path.keys() {
        let mut end = path.len();
        while let Some(slash) = path[..end].iter().rposition(|&b| b == b'/') {
            let parent = &path[..slash];
            match by_path.get(parent) {
                Some(entry) if entry.kind != EntryKind::Directory => {
                    return Err(LayerError::ParentNotDirectory(parent.to_vec()))
                }
                Some(_) => break,
                None => parents.push(parent.to_vec()),
            }
            end = slash;
        }
    }
    for parent in parents {
        by_path
            .entry(parent.clone())
            .or_insert_with(|| Entry::dir(parent));
    }

    let mut seen_files = std::collections::BTreeSet::new();
    for entry in by_path.values() {
        match &entry.kind {
            EntryKind::File(_) => {
                seen_files.insert(entry.path.as_slice());
            }
            EntryKind::HardLink(target) if !seen_files.contains(target.as_slice()) => {
                return Err(LayerError::DanglingHardLink {
                    path: entry.path.clone(),
                    target: target.clone(),
                })
            }
            _ => {}
        }
    }
    Ok(by_path.into_values().collect())
}

/// Writes `entries` as a gzip-compressed tar layer to `dest`, every entry stamped with
/// `epoch`, and returns its digests and size.
pub fn write_layer(entries: Vec<Entry>, epoch: u64, dest: &Path) -> Result<LayerBlob, LayerError> {
    let entries = plan(entries)?;
    let written = write_gzip(&entries, epoch, dest);
    if written.is_err() {
        // A torn layer must not be mistaken for a finished one.
        let _ = std::fs::remove_file(dest);
    }
    written
}

fn write_gzip(entries: &[Entry], epoch: u64, dest: &Path) -> Result<LayerBlob, LayerError> {
    let write_err = |source| LayerError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let file = fs_err::File::create(dest).map_err(write_err)?;
    // Blobs are shared (layouts are served and copied), so readable whatever the umask.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .map_err(write_err)?;
    let compressed = DigestWriter::new(io::BufWriter::with_capacity(1 << 20, file));
    let gzip = ParallelGzip::new(compressed, GZIP_LEVEL);
    let mut tar = DigestWriter::new(gzip);

    for entry in entries {
        write_entry(&mut tar, entry, epoch)?;
    }
    // End of archive: two zero blocks.
    tar.write_all(&[0u8; 1024]).map_err(write_err)?;

    let (gzip, diff_id, _) = tar.finish();
    let compressed = gzip.finish().map_err(write_err)?;
    let (buffered, digest, size) = compressed.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
    })
}

/// Writes a layer's tar stream, uncompressed, to `out`. Used by tests and by callers that
/// need the tar itself.
pub fn write_tar(entries: Vec<Entry>, epoch: u64, out: &mut impl Write) -> Result<(), LayerError> {
    let entries = plan(entries)?;
    for entry in &entries {
        write_entry(out, entry, epoch)?;
    }
    out.write_all(&[0u8; 1024])
        .map_err(|source| LayerError::Write {
            path: PathBuf::from("<stream>"),
            source,
        })
}

fn write_entry(out: &mut impl Write, entry: &Entry, epoch: u64) -> Result<(), LayerError> {
    let io_err = |source| LayerError::Write {
        path: PathBuf::from(String::from_utf8_lossy(&entry.path).into_owned()),
        source,
    };
    let is_dir = entry.kind == EntryKind::Directory;
    let mut name = entry.path.clone();
    if is_dir {
        name.push(b'/');
    }

    let mut header = Header::new_ustar();
    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    if !set_ustar_path(&mut header, &name) {
        pax.push(("path", name.clone()));
        // Whatever fits, so tools that ignore PAX still see something recognisable.
        let tail = &name[name.len().saturating_sub(99)..];
        header.as_ustar_mut().expect("ustar header").name[..tail.len()].copy_from_slice(tail);
    }
    let size = entry.size();
    let (kind, link) = match &entry.kind {
        EntryKind::Directory => (EntryType::Directory, None),
        EntryKind::File(_) => (EntryType::Regular, None),
        EntryKind::Symlink(target) => (EntryType::Symlink, Some(target)),
        EntryKind::HardLink(target) => (EntryType::Link, Some(target)),
    };
    if let Some(target) = link {
        if target.len() <= 100 && std::str::from_utf8(target).is_ok() {
            header.as_old_mut().linkname[..target.len()].copy_from_slice(target);
        } else {
            pax.push(("linkpath", target.clone()));
        }
    }
    if size > USTAR_MAX_SIZE {
        pax.push(("size", size.to_string().into_bytes()));
    }
    if pax
        .iter()
        .any(|(key, value)| *key != "size" && std::str::from_utf8(value).is_err())
    {
        pax.insert(0, ("hdrcharset", b"BINARY".to_vec()));
    }

    header.set_entry_type(kind);
    header.set_mode(entry.mode & 0o7777);
    header.set_uid(entry.uid);
    header.set_gid(entry.gid);
    header.set_mtime(epoch);
    header.set_size(if size > USTAR_MAX_SIZE { 0 } else { size });
    header.set_cksum();

    if !pax.is_empty() {
        write_pax(out, &pax, epoch).map_err(io_err)?;
    }
    out.write_all(header.as_bytes()).map_err(io_err)?;

    if let EntryKind::File(content) = &entry.kind {
        match content {
            Content::Bytes(bytes) => out.write_all(bytes).map_err(io_err)?,
            Content::Path { path, size } => copy_exact(out, path, *size)?,
        }
        pad(out, size).map_err(io_err)?;
    }
    Ok(())
}

/// Copies exactly `size` bytes of `path`, failing if the file is shorter or longer.
fn copy_exact(out: &mut impl Write, path: &Path, size: u64) -> Result<(), LayerError> {
    let read_err = |source| LayerError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs_err::File::open(path).map_err(read_err)?;
    let mut limited = file.take(size + 1);
    let copied = io::copy(&mut limited, out).map_err(read_err)?;
    if copied != size {
        return Err(LayerError::Changed {
            path: path.to_path_buf(),
            expected: size,
        });
    }
    Ok(())
}

fn pad(out: &mut impl Write, size: u64) -> io::Result<()> {
    let rem = (size % 512) as usize;
    if rem != 0 {
        out.write_all(&[0u8; 512][..512 - rem])?;
    }
    Ok(())
}

/// Puts `name` into the ustar name (and prefix) fields; false when it does not fit or is
/// not UTF-8, in which case a PAX `path` record carries it.
fn set_ustar_path(header: &mut Header, name: &[u8]) -> bool {
    if std::str::from_utf8(name).is_err() {
        return false;
    }
    let ustar = header.as_ustar_mut().expect("ustar header");
    if name.len() <= 100 {
        ustar.name[..name.len()].copy_from_slice(name);
        return true;
    }
    // Split at a slash so that the prefix fits 155 bytes and the rest fits 100.
    let split = name
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'/' && i <= 155 && name.len() - i - 1 <= 100 && i > 0)
        .map(|(i, _)| i)
        .next_back();
    match split {
        Some(i) if i < name.len() - 1 => {
            ustar.prefix[..i].copy_from_slice(&name[..i]);
            ustar.name[..name.len() - i - 1].copy_from_slice(&name[i + 1..]);
            true
        }
        _ => false,
    }
}

/// Writes a PAX extended header (`x`) with the given records.
fn write_pax(out: &mut impl Write, records: &[(&str, Vec<u8>)], epoch: u64) -> io::Result<()> {
    let mut body = Vec::new();
    for (key, value) in records {
        // Each record is "<len> <key>=<value>\n", where len counts its own digits.
        let rest = key.len() + value.len() + 3;
        let mut len = rest + rest.to_string().len();
        if len.to_string().len() != rest.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(len.to_string().as_bytes());
        body.push(b' ');
        body.extend_from_slice(key.as_bytes());
        body.push(b'=');
        body.extend_from_slice(value);
        body.push(b'\n');
    }
    let mut header = Header::new_ustar();
    let name = b"././@PaxHeader";
    header.as_ustar_mut().expect("ustar header").name[..name.len()].copy_from_slice(name);
    header.set_entry_type(EntryType::XHeader);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(epoch);
    header.set_size(body.len() as u64);
    header.set_cksum();
    out.write_all(header.as_bytes())?;
    out.write_all(&body)?;
    pad(out, body.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (Vec<u8>, EntryType, u32, u64, Vec<u8>);

    fn entries_of(tar_bytes: &[u8]) -> Vec<Row> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let link = e.link_name_bytes().map(|l| l.to_vec()).unwrap_or_default();
                (
                    e.path_bytes().to_vec(),
                    h.entry_type(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    link,
                )
            })
            .collect()
    }

    #[test]
    fn parents_are_added_and_entries_sorted() {
        let mut tar = Vec::new();
        let entries = vec![
            Entry::file("b/z", "z", 0o644),
            Entry::file("a-b", "x", 0o644),
            Entry::file("a/c", "c", 0o755),
        ];
        write_tar(entries, 42, &mut tar).unwrap();
        let names: Vec<_> = entries_of(&tar)
            .into_iter()
            .map(|(p, _, _, t, _)| {
                assert_eq!(t, 42);
                String::from_utf8(p).unwrap()
            })
            .collect();
        assert_eq!(names, ["a/", "a-b", "a/c", "b/", "b/z"]);
    }
}
