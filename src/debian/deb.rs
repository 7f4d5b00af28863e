//! Reading a .deb: the `ar` container, its control member (for the dpkg status entry)
//! and its data member as layer entries that keep the package's own modes, owners,
//! symlinks and hard links.

use std::io::Read;

use tracing::warn;

use super::suite::decompress;
use crate::layer::entry::normalize_path;
use crate::layer::{Content, Entry, EntryKind};

/// What a package contributes: its control paragraph and its files.
pub struct DebContents {
    pub control: String,
    pub entries: Vec<Entry>,
}

/// Reads `bytes` as a binary package. Errors are plain messages; the caller names the
/// package.
pub fn read_deb(bytes: &[u8]) -> Result<DebContents, String> {
    let mut archive = ar::Archive::new(bytes);
    let mut control = None;
    let mut entries = None;
    while let Some(member) = archive.next_entry() {
        let mut member = member.map_err(|e| format!("not an ar archive: {e}"))?;
        let name = String::from_utf8_lossy(member.header().identifier())
            .trim_end_matches('/')
            .to_owned();
        let Some((stem, suffix)) = split_member(&name) else {
            continue;
        };
        let mut raw = Vec::new();
        member
            .read_to_end(&mut raw)
            .map_err(|e| format!("cannot read member {name}: {e}"))?;
        let tar = decompress(suffix, &raw).map_err(|e| format!("cannot unpack {name}: {e}"))?;
        match stem {
            "control.tar" => control = Some(control_file(&tar, &name)?),
            _ => entries = Some(data_entries(&tar, &name)?),
        }
    }
    match (control, entries) {
        (Some(control), Some(entries)) => Ok(DebContents { control, entries }),
        _ => Err("the package lacks a control or data member".to_owned()),
    }
}

/// `control.tar.xz` → (`control.tar`, `xz`); `data.tar` → (`data.tar`, ``).
fn split_member(name: &str) -> Option<(&str, &str)> {
    for stem in ["control.tar", "data.tar"] {
        if let Some(rest) = name.strip_prefix(stem) {
            return Some((stem, rest.strip_prefix('.').unwrap_or(rest)));
        }
    }
    None
}

fn control_file(tar: &[u8], member: &str) -> Result<String, String> {
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(|e| format!("{member}: {e}"))? {
        let mut entry = entry.map_err(|e| format!("{member}: {e}"))?;
        if normalize_path(&entry.path_bytes()).as_deref() == Some(b"control") {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| format!("{member}: control is not text: {e}"))?;
            return Ok(text);
        }
    }
    Err(format!("{member} has no control file"))
}

fn data_entries(tar: &[u8], member: &str) -> Result<Vec<Entry>, String> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(|e| format!("{member}: {e}"))? {
        let mut entry = entry.map_err(|e| format!("{member}: {e}"))?;
        let raw_path = entry.path_bytes().into_owned();
        let Some(path) = normalize_path(&raw_path) else {
            continue;
        };
        let header = entry.header();
        let bad = |what: &str| format!("{member}: {}: {what}", String::from_utf8_lossy(&path));
        let mode = header.mode().map_err(|_| bad("bad mode"))?;
        let uid = header.uid().map_err(|_| bad("bad uid"))?;
        let gid = header.gid().map_err(|_| bad("bad gid"))?;
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let kind = match header.entry_type() {
            tar::EntryType::Directory => EntryKind::Directory,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| bad(&e.to_string()))?;
                EntryKind::File(Content::Bytes(bytes))
            }
            tar::EntryType::Symlink => EntryKind::Symlink(link.ok_or_else(|| bad("no target"))?),
            tar::EntryType::Link => {
                let target = link
                    .as_deref()
                    .and_then(normalize_path)
                    .ok_or_else(|| bad("hard link without a target"))?;
                EntryKind::HardLink(target)
            }
            other => {
                // Limitation: device nodes and FIFOs in packages are skipped (none of the
                // bases here ship any).
                warn!(path = %String::from_utf8_lossy(&path), kind = ?other, "skipping special file of a package");
                continue;
            }
        };
        out.push(Entry {
            path,
            kind,
            mode: mode & 0o7777,
            uid,
            gid,
        });
    }
    Ok(out)
}
