//! A base's layers from its lock alone: every .deb fetched (cache first) and checked,
//! its files merged into one packages layer, and a second, small layer of the files
//! maintainer scripts would have made: users and groups, dpkg status entries, the CA
//! bundle, `/tmp` and the non-root home. Two layers so that what Debian shipped and what
//! repave generated stay apart, and a reader of the image can tell which is which.

use std::collections::BTreeMap;

use rayon::prelude::*;
use tracing::{debug, info, warn};

use super::deb::{read_deb, DebContents};
use super::fetch::{Expected, Fetcher};
use super::{DebianError, Lock, LockedPackage, Options};
use crate::layer::{Content, Entry, EntryKind};

/// Parallel downloads at once: enough to hide latency, few enough to be polite.
const DOWNLOADS: usize = 4;

/// Uid and gid of the runtime user.
pub const NONROOT_ID: u64 = 65532;

/// What `repave base build` turns into image layers.
#[derive(Clone, Debug)]
pub struct BaseContent {
    /// Packages layer, then generated layer.
    pub layers: Vec<Vec<Entry>>,
    pub labels: BTreeMap<String, String>,
    /// Name and version of every package, sorted by name.
    pub packages: Vec<(String, String)>,
}

/// Builds a base's content from `lock`, downloading only what the cache lacks.
pub fn base_content(lock: &Lock, opts: &Options) -> Result<BaseContent, DebianError> {
    let fetcher = Fetcher::new(&opts.cache_dir);
    let mirrors: BTreeMap<_, _> = lock
        .locked
        .iter()
        .map(|p| p.archive)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|archive| Ok((archive, opts.sources.mirror(archive, &lock.suite)?)))
        .collect::<Result<_, DebianError>>()?;

    let missing: Vec<&LockedPackage> = lock
        .locked
        .iter()
        .filter(|p| !opts.cache_dir.join("debs").join(deb_name(p)).is_file())
        .collect();
    let missing_bytes: u64 = missing.iter().map(|p| p.size).sum();
    info!(
        "downloading {} .debs ({:.1} MiB), {} cached",
        missing.len(),
        missing_bytes as f64 / 1048576.0,
        lock.locked.len() - missing.len()
    );

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(DOWNLOADS)
        .build()
        .map_err(|e| DebianError::Io(std::io::Error::other(e)))?;
    let contents: Vec<DebContents> = pool.install(|| {
        lock.locked
            .par_iter()
            .map(|package| {
                let bytes = fetch_deb(&fetcher, &mirrors[&package.archive], package)?;
                read_deb(&bytes).map_err(|message| DebianError::Deb {
                    package: package.name.clone(),
                    message,
                })
            })
            .collect::<Result<_, _>>()
    })?;

    let mut merged = BTreeMap::new();
    for (package, deb) in lock.locked.iter().zip(&contents) {
        merge(&mut merged, package, &deb.entries);
    }
    let packages_layer = relink(merged)?;
    let generated = generated_layer(lock, &contents, &packages_layer);

    let mut labels = BTreeMap::new();
    labels.insert(
        "io.buildpacks.base.distro.name".to_owned(),
        "debian".to_owned(),
    );
    if let Some(major) = lock.distro_major() {
        labels.insert(
            "io.buildpacks.base.distro.version".to_owned(),
            major.to_owned(),
        );
    }
    Ok(BaseContent {
        layers: vec![packages_layer, generated],
        labels,
        packages: lock
            .locked
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect(),
    })
}

fn deb_name(package: &LockedPackage) -> String {
    format!("{}.deb", package.sha256)
}

fn fetch_deb(
    fetcher: &Fetcher,
    mirror: &str,
    package: &LockedPackage,
) -> Result<Vec<u8>, DebianError> {
    let name = deb_name(package);
    if let Some(bytes) = fetcher.cached("debs", &name, &package.sha256) {
        return Ok(bytes);
    }
    let what = format!("package `{}` {}", package.name, package.version);
    let expected = Expected {
        what: &what,
        sha256: &package.sha256,
        size: package.size,
    };
    let bytes = fetcher.download(&format!("{mirror}/{}", package.path), &expected)?;
    fetcher.store("debs", &name, &bytes)?;
    Ok(bytes)
}

/// Adds a package's entries; the first package (in name order) to ship a path keeps it.
/// Identical directories are merged silently; other clashes are reported.
fn merge(
    merged: &mut BTreeMap<Vec<u8>, (Entry, String)>,
    package: &LockedPackage,
    entries: &[Entry],
) {
    for entry in entries {
        match merged.get(&entry.path) {
            None => {
                merged.insert(entry.path.clone(), (entry.clone(), package.name.clone()));
            }
            Some((existing, _)) if existing == entry => {}
            Some((existing, owner)) => {
                let path = String::from_utf8_lossy(&entry.path);
                if existing.kind == EntryKind::Directory && entry.kind == EntryKind::Directory {
                    debug!(%path, first = %owner, other = %package.name, "directory metadata differs; keeping the first");
                } else {
                    // Limitation: clashing files are not resolved by Replaces/diversions;
                    // the package first by name wins.
                    warn!(%path, kept = %owner, dropped = %package.name, "two packages ship this path");
                }
            }
        }
    }
}

/// Rewrites hard links so that each group's content sits on its smallest path, which the
/// layer writer needs (a link must follow its target in path order).
fn relink(merged: BTreeMap<Vec<u8>, (Entry, String)>) -> Result<Vec<Entry>, DebianError> {
    let mut entries: BTreeMap<Vec<u8>, Entry> = merged
        .into_iter()
        .map(|(path, (entry, _))| (path, entry))
        .collect();
    let mut groups: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    for (path, entry) in &entries {
        if let EntryKind::HardLink(target) = &entry.kind {
            groups.entry(target.clone()).or_default().push(path.clone());
        }
    }
    for (target, links) in groups {
        let Some(file) = entries
            .get(&target)
            .filter(|e| matches!(e.kind, EntryKind::File(_)))
        else {
            return Err(DebianError::Deb {
                package: String::from_utf8_lossy(&links[0]).into_owned(),
                message: format!(
                    "hard link to `{}`, which is not a file of the base",
                    String::from_utf8_lossy(&target)
                ),
            });
        };
        let first = links.iter().min().expect("a group has a link");
        if *first > target {
            continue;
        }
        let mut holder = file.clone();
        holder.path = first.clone();
        let first = first.clone();
        for path in links.iter().chain(std::iter::once(&target)) {
            if let Some(entry) = entries.get_mut(path) {
                entry.kind = EntryKind::HardLink(first.clone());
            }
        }
        entries.insert(first, holder);
    }
    Ok(entries.into_values().collect())
}

/// The files maintainer scripts would have written, made deterministically.
fn generated_layer(lock: &Lock, contents: &[DebContents], packages: &[Entry]) -> Vec<Entry> {
    let mut out = vec![
        Entry::file(
            "etc/passwd",
            format!(
                "root:x:0:0:root:/root:/sbin/nologin\n\
                 nonroot:x:{NONROOT_ID}:{NONROOT_ID}:nonroot:/home/nonroot:/sbin/nologin\n"
            ),
            0o644,
        ),
        Entry::file(
            "etc/group",
            format!("root:x:0:\nnonroot:x:{NONROOT_ID}:\n"),
            0o644,
        ),
        Entry {
            mode: 0o700,
            uid: NONROOT_ID,
            gid: NONROOT_ID,
            ..Entry::dir("home/nonroot")
        },
        Entry {
            mode: 0o1777,
            ..Entry::dir("tmp")
        },
    ];

    for (package, deb) in lock.locked.iter().zip(contents) {
        out.push(Entry::file(
            format!("var/lib/dpkg/status.d/{}", package.name),
            status_stanza(&deb.control),
            0o644,
        ));
    }

    if lock.locked.iter().any(|p| p.name == "ca-certificates") {
        // Limitation: only the bundle is made; the per-certificate hash symlinks that
        // update-ca-certificates puts in /etc/ssl/certs are not.
        let mut bundle = Vec::new();
        for entry in packages {
            let under_store = entry.path.starts_with(b"usr/share/ca-certificates/");
            if under_store && entry.path.ends_with(b".crt") {
                if let EntryKind::File(Content::Bytes(bytes)) = &entry.kind {
                    bundle.extend_from_slice(bytes);
                    if !bytes.ends_with(b"\n") {
                        bundle.push(b'\n');
                    }
                }
            }
        }
        out.push(Entry::file(
            "etc/ssl/certs/ca-certificates.crt",
            bundle,
            0o644,
        ));
    }
    out
}

/// A package's control paragraph as dpkg's status database holds it: with
/// `Status: install ok installed` after the `Package:` line.
fn status_stanza(control: &str) -> String {
    let mut out = String::new();
    for line in control.trim_end().lines() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("Package:") {
            out.push_str("Status: install ok installed\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_gets_installed_after_package() {
        assert_eq!(
            status_stanza("Package: tzdata\nVersion: 1\n\n"),
            "Package: tzdata\nStatus: install ok installed\nVersion: 1\n"
        );
    }

    #[test]
    fn hard_links_move_content_to_the_smallest_path() {
        let mut merged = BTreeMap::new();
        let file = Entry::file("usr/bin/perl5.36", "elf", 0o755);
        let link = Entry {
            kind: EntryKind::HardLink(b"usr/bin/perl5.36".to_vec()),
            ..Entry::file("usr/bin/perl", "", 0o755)
        };
        merged.insert(file.path.clone(), (file, "perl".to_owned()));
        merged.insert(link.path.clone(), (link, "perl".to_owned()));
        let entries = relink(merged).unwrap();
        assert_eq!(entries[0].path, b"usr/bin/perl");
        assert_eq!(
            entries[0].kind,
            EntryKind::File(Content::Bytes(b"elf".to_vec()))
        );
        assert_eq!(entries[0].mode, 0o755);
        assert_eq!(
            entries[1].kind,
            EntryKind::HardLink(b"usr/bin/perl".to_vec())
        );
        crate::layer::writer::plan(entries).unwrap();
    }

    #[test]
    fn identical_directories_merge_and_first_file_wins() {
        let lp = |name: &str| LockedPackage {
            name: name.into(),
            version: "1".into(),
            architecture: "all".into(),
            archive: super::super::Archive::Main,
            path: "pool/x.deb".into(),
            size: 1,
            sha256: "0".repeat(64),
        };
        let mut merged = BTreeMap::new();
        merge(
            &mut merged,
            &lp("a"),
            &[Entry::dir("usr"), Entry::file("usr/x", "a", 0o644)],
        );
        merge(
            &mut merged,
            &lp("b"),
            &[Entry::dir("usr"), Entry::file("usr/x", "b", 0o644)],
        );
        let entries = relink(merged).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1].kind,
            EntryKind::File(Content::Bytes(b"a".to_vec()))
        );
    }
}
