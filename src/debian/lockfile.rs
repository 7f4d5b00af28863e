//! The lock: a base's exact packages, in the manner of Cargo.lock. A header records the
//! definition and the sha256 of every InRelease used; one `[[package]]` table per package,
//! sorted by name, gives version, archive, pool path, size and sha256. No mirror host.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::sources::Archive;
use super::DebianError;

const HEADER: &str =
    "# Written by `repave lock` or `repave base lock`. Do not edit: lock again instead.\n";
const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Lock {
    /// Lock format version.
    pub version: u32,
    pub name: String,
    pub suite: String,
    pub architecture: String,
    pub components: Vec<String>,
    pub packages: Vec<String>,
    pub exclude: Vec<String>,
    #[serde(rename = "release")]
    pub releases: Vec<LockedRelease>,
    #[serde(rename = "package")]
    pub locked: Vec<LockedPackage>,
}

/// One suite's InRelease as it was when locked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedRelease {
    pub suite: String,
    pub archive: Archive,
    /// The InRelease `Version:` field (`12.15` for bookworm).
    pub version: String,
    pub inrelease_sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub archive: Archive,
    /// Pool path relative to the archive root.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

impl Lock {
    /// Reads a lock; errors name the file.
    pub fn load(path: &Path) -> Result<Lock, DebianError> {
        let text = fs_err::read_to_string(path)?;
        Lock::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Lock, DebianError> {
        let lock_err = |message: String| DebianError::Lock {
            path: PathBuf::from(path),
            message,
        };
        let lock: Lock = toml::from_str(text).map_err(|e| lock_err(e.to_string()))?;
        if lock.version != FORMAT {
            return Err(lock_err(format!(
                "lock format {} is not supported (expected {FORMAT}): lock again with this \
                 version of repave",
                lock.version
            )));
        }
        let sorted = lock.locked.windows(2).all(|w| w[0].name < w[1].name);
        let sane = lock.locked.iter().all(|p| {
            p.sha256.len() == 64
                && !p.path.starts_with('/')
                && !p
                    .path
                    .split('/')
                    .any(|part| part == ".." || part.is_empty())
        });
        if !sorted || !sane || lock.locked.is_empty() {
            return Err(lock_err(
                "packages must be non-empty, sorted by name, unique, with relative pool paths \
                 and sha256 sums: lock again"
                    .to_owned(),
            ));
        }
        if !lock.releases.iter().any(|r| r.suite == lock.suite) {
            return Err(lock_err(format!(
                "no `[[release]]` records the main suite `{}`: lock again",
                lock.suite
            )));
        }
        Ok(lock)
    }

    /// The lock as TOML: header keys, then `[[release]]`, then `[[package]]` tables, each
    /// with its keys in declaration order.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a lock of strings and numbers serializes");
        format!("{HEADER}{body}")
    }

    /// Writes the lock atomically: a temp file beside `path`, then a rename.
    pub fn save(&self, path: &Path) -> Result<(), DebianError> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let io_err = |source: std::io::Error| DebianError::Cache {
            path: path.to_path_buf(),
            source,
        };
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
        // A relocked file keeps its mode; a new one is readable by all, as a lock is shared.
        let permissions = match fs_err::metadata(path) {
            Ok(existing) => existing.permissions(),
            Err(_) => std::fs::Permissions::from_mode(0o644),
        };
        temp.as_file()
            .set_permissions(permissions)
            .map_err(io_err)?;
        temp.write_all(self.to_toml().as_bytes()).map_err(io_err)?;
        temp.as_file().sync_all().map_err(io_err)?;
        temp.persist(path).map_err(|e| io_err(e.error))?;
        Ok(())
    }

    /// Whether `other` pins the same definition and the same packages. The `[[release]]`
    /// records are left out: a suite's InRelease is re-signed daily, so comparing them would
    /// make every relock a change.
    pub fn same_content(&self, other: &Lock) -> bool {
        let Lock {
            version,
            name,
            suite,
            architecture,
            components,
            packages,
            exclude,
            releases: _,
            locked,
        } = self;
        *version == other.version
            && *name == other.name
            && *suite == other.suite
            && *architecture == other.architecture
            && *components == other.components
            && *packages == other.packages
            && *exclude == other.exclude
            && *locked == other.locked
    }

    /// The major Debian release (`12`) from the main suite's InRelease `Version:`.
    pub fn distro_major(&self) -> Option<&str> {
        let release = self.releases.iter().find(|r| r.suite == self.suite)?;
        let major = release.version.split(['.', '-']).next()?;
        (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then_some(major)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        Lock {
            version: 1,
            name: "static".into(),
            suite: "bookworm".into(),
            architecture: "amd64".into(),
            components: vec!["main".into()],
            packages: vec!["base-files".into(), "tzdata".into()],
            exclude: vec![],
            releases: vec![
                LockedRelease {
                    suite: "bookworm".into(),
                    archive: Archive::Main,
                    version: "12.15".into(),
                    inrelease_sha256: "a".repeat(64),
                },
                LockedRelease {
                    suite: "bookworm-security".into(),
                    archive: Archive::Security,
                    version: "12".into(),
                    inrelease_sha256: "b".repeat(64),
                },
            ],
            locked: vec![
                LockedPackage {
                    name: "base-files".into(),
                    version: "12.4+deb12u13".into(),
                    architecture: "amd64".into(),
                    archive: Archive::Main,
                    path: "pool/main/b/base-files/base-files_12.4+deb12u13_amd64.deb".into(),
                    size: 70_000,
                    sha256: "c".repeat(64),
                },
                LockedPackage {
                    name: "tzdata".into(),
                    version: "2025b-0+deb12u2".into(),
                    architecture: "all".into(),
                    archive: Archive::Security,
                    path: "pool/updates/main/t/tzdata/tzdata_2025b-0+deb12u2_all.deb".into(),
                    size: 260_000,
                    sha256: "d".repeat(64),
                },
            ],
        }
    }

    #[test]
    fn round_trip_with_exact_key_order() {
        let lock = sample();
        let text = lock.to_toml();
        let package = text.split("[[package]]").nth(1).unwrap();
        let keys: Vec<&str> = package
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
            .collect();
        assert_eq!(
            keys,
            [
                "name",
                "version",
                "architecture",
                "archive",
                "path",
                "size",
                "sha256"
            ]
        );
        assert!(text.starts_with(HEADER));
        assert!(text.find("[[release]]").unwrap() < text.find("[[package]]").unwrap());
        assert!(text.contains("inrelease-sha256 = "));
        assert!(!text.contains("http"));
        assert_eq!(Lock::parse(&text, Path::new("l.lock")).unwrap(), lock);
        assert_eq!(lock.distro_major(), Some("12"));

        let mut resigned = lock.clone();
        resigned.releases[1].inrelease_sha256 = "e".repeat(64);
        assert!(lock.same_content(&resigned));
        let mut updated = lock.clone();
        updated.locked[1].version = "2025c-0+deb12u1".into();
        assert!(!lock.same_content(&updated));
    }

    #[test]
    fn save_and_load_and_refuse_bad_locks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("static.lock");
        sample().save(&path).unwrap();
        assert_eq!(Lock::load(&path).unwrap(), sample());
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
        let mode = |p: &Path| fs_err::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o644);
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        sample().save(&path).unwrap();
        assert_eq!(mode(&path), 0o640);

        let mut unsorted = sample();
        unsorted.locked.reverse();
        let err = Lock::parse(&unsorted.to_toml(), &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("static.lock") && err.contains("sorted"),
            "{err}"
        );
        let mut escaping = sample();
        escaping.locked[0].path = "pool/../../etc/x.deb".into();
        assert!(Lock::parse(&escaping.to_toml(), &path).is_err());
        let text = sample().to_toml().replace("version = 1\n", "version = 2\n");
        assert!(Lock::parse(&text, &path).is_err());
    }
}
