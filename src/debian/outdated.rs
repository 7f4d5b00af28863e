//! Whether a lock is still current: each locked package against the version the resolver
//! would take now (the newest across the suite, `-updates` and `-security`), and whether
//! resolving the lock's own definition again gives the same package set. Also the changes
//! between two locks that `base lock --update` reports. Exit codes and printing belong to
//! the command.

use std::collections::BTreeMap;

use debversion::Version;
use serde::Serialize;
use tracing::{debug, warn};

use super::index::Package;
use super::lockfile::{Lock, LockedPackage};
use super::resolve::{self, Universe};
use super::sources::Archive;
use super::{read_suites, DebianError, Options};

/// A locked package with a different version available now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Update {
    pub name: String,
    pub locked: String,
    pub available: String,
    /// The archive the available version comes from.
    pub archive: Archive,
    /// Whether the available version comes from the security archive.
    pub security: bool,
}

/// A package and one version of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageVersion {
    pub name: String,
    pub version: String,
}

/// How a lock compares with the suite's current indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outdated {
    /// Locked packages whose available version differs, sorted by name.
    pub packages: Vec<Update>,
    /// Locked packages no index lists any more, with their locked version.
    pub vanished: Vec<PackageVersion>,
    /// Packages a relock would add to the closure, with their available version.
    pub added: Vec<PackageVersion>,
    /// Packages a relock would drop from the closure, with their locked version.
    pub removed: Vec<PackageVersion>,
    /// Why the lock's definition no longer resolves, when it does not.
    pub relock_error: Option<String>,
}

impl Outdated {
    /// True when nothing changed: same versions, same closure.
    pub fn is_current(&self) -> bool {
        self.packages.is_empty() && self.vanished.is_empty() && !self.relock_needed()
    }

    /// True when the closure itself changed, so a relock (not only new versions) is due.
    pub fn relock_needed(&self) -> bool {
        !self.added.is_empty() || !self.removed.is_empty() || self.relock_error.is_some()
    }
}

/// Compares `lock` with the current signed indexes of its suites, read and verified
/// exactly as `lock` reads them.
pub fn outdated(lock: &Lock, opts: &Options) -> Result<Outdated, DebianError> {
    let (_, packages) = read_suites(&lock.suite, &lock.components, &lock.architecture, opts)?;
    let universe = Universe::new(&lock.architecture, packages);
    Ok(compare(lock, &universe))
}

// Limitation: only the version is compared, so the same version moving from the security
// archive into a point release is not reported (`--update` still rewrites its pool path);
// a mirror older than the lock reports its older version as the available one.
fn compare(lock: &Lock, universe: &Universe) -> Outdated {
    let mut outdated = Outdated::default();
    for locked in &lock.locked {
        match universe.get(&locked.name) {
            None => outdated.vanished.push(PackageVersion {
                name: locked.name.clone(),
                version: locked.version.clone(),
            }),
            Some(candidate) if !same_version(locked, candidate) => {
                outdated.packages.push(Update {
                    name: locked.name.clone(),
                    locked: locked.version.clone(),
                    available: candidate.version_text.clone(),
                    archive: candidate.archive,
                    security: candidate.archive == Archive::Security,
                });
            }
            Some(_) => {}
        }
    }

    // The same resolution `lock` does, so a changed closure shows as added and removed.
    match resolve::resolve(universe, &lock.packages, &lock.exclude) {
        Ok(resolved) => {
            let now: BTreeMap<&str, &Package> =
                resolved.iter().map(|p| (p.name.as_str(), p)).collect();
            let locked: BTreeMap<&str, &LockedPackage> =
                lock.locked.iter().map(|p| (p.name.as_str(), p)).collect();
            outdated.added = now
                .iter()
                .filter(|(name, _)| !locked.contains_key(*name))
                .map(|(name, p)| PackageVersion {
                    name: (*name).to_owned(),
                    version: p.version_text.clone(),
                })
                .collect();
            outdated.removed = locked
                .iter()
                .filter(|(name, _)| !now.contains_key(*name))
                .map(|(name, p)| PackageVersion {
                    name: (*name).to_owned(),
                    version: p.version.clone(),
                })
                .collect();
        }
        Err(err) => {
            warn!("base `{}` no longer resolves: {err}", lock.name);
            outdated.relock_error = Some(err.to_string());
        }
    }
    debug!(
        updates = outdated.packages.len(),
        vanished = outdated.vanished.len(),
        added = outdated.added.len(),
        removed = outdated.removed.len(),
        "compared lock with the current indexes"
    );
    outdated
}

/// Equal in Debian version order; a locked version that does not parse only matches its
/// exact text.
fn same_version(locked: &LockedPackage, candidate: &Package) -> bool {
    match locked.version.parse::<Version>() {
        Ok(version) => version == candidate.version,
        Err(_) => locked.version == candidate.version_text,
    }
}

/// One package whose locked record changed between two locks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub name: String,
    pub old: String,
    pub new: String,
}

/// What a relock changed, each list sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LockChanges {
    /// Packages in both locks with a different version, archive or file.
    pub updated: Vec<Change>,
    pub added: Vec<PackageVersion>,
    pub removed: Vec<PackageVersion>,
}

impl LockChanges {
    pub fn between(old: &Lock, new: &Lock) -> LockChanges {
        let old_packages: BTreeMap<&str, &LockedPackage> =
            old.locked.iter().map(|p| (p.name.as_str(), p)).collect();
        let new_packages: BTreeMap<&str, &LockedPackage> =
            new.locked.iter().map(|p| (p.name.as_str(), p)).collect();
        let mut changes = LockChanges::default();
        for (name, new_package) in &new_packages {
            match old_packages.get(name) {
                None => changes.added.push(PackageVersion {
                    name: (*name).to_owned(),
                    version: new_package.version.clone(),
                }),
                Some(old_package) if old_package != new_package => changes.updated.push(Change {
                    name: (*name).to_owned(),
                    old: old_package.version.clone(),
                    new: new_package.version.clone(),
                }),
                Some(_) => {}
            }
        }
        changes.removed = old_packages
            .iter()
            .filter(|(name, _)| !new_packages.contains_key(*name))
            .map(|(name, p)| PackageVersion {
                name: (*name).to_owned(),
                version: p.version.clone(),
            })
            .collect();
        changes
    }

    pub fn is_empty(&self) -> bool {
        self.updated.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::super::lockfile::LockedRelease;
    use super::*;

    const INDEX: &str = "\
Package: app\nVersion: 1.0\nDepends: libc6\n\n\
Package: libc6\nVersion: 2.36-9\n\n\
Package: libc6\nVersion: 2.36-9+deb12u10\nSecurity: yes\n\n\
Package: tzdata\nVersion: 2025b-0+deb12u1\n\n\
Package: tzdata\nVersion: 2025b-0+deb12u2\n";

    use crate::debian::resolve::tests::universe;

    fn locked(name: &str, version: &str) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            archive: Archive::Main,
            path: "pool/x.deb".into(),
            size: 1,
            sha256: "0".repeat(64),
        }
    }

    fn lock(roots: &[&str], packages: Vec<LockedPackage>) -> Lock {
        Lock {
            version: 1,
            name: "test".into(),
            suite: "bookworm".into(),
            architecture: "amd64".into(),
            components: vec!["main".into()],
            packages: roots.iter().map(|s| s.to_string()).collect(),
            exclude: vec![],
            releases: vec![LockedRelease {
                suite: "bookworm".into(),
                archive: Archive::Main,
                version: "12.0".into(),
                inrelease_sha256: "a".repeat(64),
            }],
            locked: packages,
        }
    }

    #[test]
    fn a_lock_of_the_newest_versions_is_current() {
        let lock = lock(
            &["app", "tzdata"],
            vec![
                locked("app", "1.0"),
                locked("libc6", "2.36-9+deb12u10"),
                // Equal in Debian order even though the text differs.
                locked("tzdata", "0:2025b-0+deb12u2"),
            ],
        );
        let outdated = compare(&lock, &universe(INDEX));
        assert_eq!(outdated, Outdated::default());
        assert!(outdated.is_current());
    }

    #[test]
    fn older_versions_vanished_packages_and_a_changed_closure_are_reported() {
        let lock = lock(
            &["app", "tzdata", "gone"],
            vec![
                locked("app", "1.0"),
                locked("gone", "1"),
                locked("libc6", "2.36-9"),
                locked("tzdata", "2020a-0+deb12u1"),
            ],
        );
        let outdated = compare(&lock, &universe(INDEX));
        assert_eq!(
            outdated.packages,
            [
                Update {
                    name: "libc6".into(),
                    locked: "2.36-9".into(),
                    available: "2.36-9+deb12u10".into(),
                    archive: Archive::Security,
                    security: true,
                },
                Update {
                    name: "tzdata".into(),
                    locked: "2020a-0+deb12u1".into(),
                    available: "2025b-0+deb12u2".into(),
                    archive: Archive::Main,
                    security: false,
                },
            ]
        );
        assert_eq!(outdated.vanished[0].name, "gone");
        // `gone` is a root that no longer exists, so the definition does not resolve.
        assert!(outdated.relock_error.as_deref().unwrap().contains("gone"));
        assert!(!outdated.is_current());

        let lock = super::tests::lock(&["app"], vec![locked("app", "1.0")]);
        let outdated = compare(&lock, &universe(INDEX));
        assert!(outdated.packages.is_empty());
        assert_eq!(
            outdated.added,
            [PackageVersion {
                name: "libc6".into(),
                version: "2.36-9+deb12u10".into()
            }]
        );
        assert!(outdated.relock_needed());
    }

    #[test]
    fn changes_between_locks() {
        let old = lock(
            &["a"],
            vec![locked("a", "1"), locked("b", "1"), locked("c", "1")],
        );
        let new = lock(
            &["a"],
            vec![locked("a", "1"), locked("c", "2"), locked("d", "1")],
        );
        let changes = LockChanges::between(&old, &new);
        assert_eq!(
            changes.updated,
            [Change {
                name: "c".into(),
                old: "1".into(),
                new: "2".into()
            }]
        );
        assert_eq!(changes.added[0].name, "d");
        assert_eq!(changes.removed[0].name, "b");
        assert!(LockChanges::between(&old, &old).is_empty());
    }
}
