//! Package bases: `lock` resolves a base definition against a Debian suite's signed
//! indexes into a lock of exact packages; `base_content` turns a lock into layer entries
//! from the packages' own files plus the few files a runtime needs (users, dpkg status,
//! CA bundle). Maintainer scripts are never run. Image assembly lives elsewhere.

mod content;
mod control;
mod deb;
mod definition;
mod fetch;
mod index;
mod lockfile;
#[cfg(test)]
mod network_tests;
mod outdated;
mod release;
mod resolve;
mod sources;
mod suite;

use std::io;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::info;

pub use content::{base_content, BaseContent};
pub use definition::Definition;
pub use lockfile::{Lock, LockedPackage, LockedRelease};
pub use outdated::{outdated, Change, LockChanges, Outdated, PackageVersion, Update};
pub use sources::{Archive, Source, SourcesConfig};

/// The Debian archive keyring as the `debian-archive-keyring` package installs it.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The apt configuration directory mirrors are read from.
pub const DEFAULT_APT_DIR: &str = "/etc/apt";

#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("base definition `{}`: {message}", .path.display())]
    Definition { path: PathBuf, message: String },
    #[error("lock `{}`: {message}", .path.display())]
    Lock { path: PathBuf, message: String },
    #[error("apt sources `{}`: {message}", .path.display())]
    Sources { path: PathBuf, message: String },
    #[error("{0}")]
    Mirror(String),
    #[error("keyring `{}`: {message}: pass the Debian archive keyring (package debian-archive-keyring)", .path.display())]
    Keyring { path: PathBuf, message: String },
    #[error("InRelease of `{suite}` is not trusted: {message}; check the mirror and the keyring")]
    Signature { suite: String, message: String },
    #[error("InRelease of `{suite}` expired at {valid_until}: the mirror serves stale metadata; use an up-to-date mirror")]
    Expired { suite: String, valid_until: String },
    #[error("Release of `{suite}`: {message}")]
    Release { suite: String, message: String },
    #[error("index {what}: {message}")]
    Index { what: String, message: String },
    #[error("{what}: download from {url} has {actual}, expected {expected}; nothing was cached: retry, or lock again if the archive changed")]
    Checksum {
        what: String,
        url: String,
        expected: String,
        actual: String,
    },
    #[error("GET {url}: {message}")]
    Http { url: String, message: String },
    #[error("cannot write `{}`: {source}", .path.display())]
    Cache { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Resolve(String),
    #[error("package `{package}`: {message}")]
    Deb { package: String, message: String },
}

/// Where keys, mirrors and the cache are.
#[derive(Clone, Debug)]
pub struct Options {
    pub keyring: PathBuf,
    pub sources: SourcesConfig,
    pub cache_dir: PathBuf,
}

/// Resolves `def` against the current signed indexes of its suite, `-updates` and
/// `-security`, and returns the lock.
pub fn lock(def: &Definition, opts: &Options) -> Result<Lock, DebianError> {
    let (releases, packages) = read_suites(&def.suite, &def.components, &def.architecture, opts)?;
    let universe = resolve::Universe::new(&def.architecture, packages);
    let resolved = resolve::resolve(&universe, &def.packages, &def.exclude)?;
    let total: u64 = resolved.iter().map(|p| p.size).sum();
    info!(
        "resolved {} packages ({:.1} MiB of .debs) for base `{}`",
        resolved.len(),
        total as f64 / 1048576.0,
        def.name
    );

    Ok(Lock {
        version: 1,
        name: def.name.clone(),
        suite: def.suite.clone(),
        architecture: def.architecture.clone(),
        components: def.components.clone(),
        packages: def.packages.clone(),
        exclude: def.exclude.clone(),
        releases,
        locked: resolved
            .into_iter()
            .map(|p| LockedPackage {
                name: p.name,
                version: p.version_text,
                architecture: p.architecture,
                archive: p.archive,
                path: p.filename,
                size: p.size,
                sha256: p.sha256,
            })
            .collect(),
    })
}

/// Reads the current signed InRelease and Packages indexes of `suite`, `-updates` and
/// `-security`: what a lock records of each release, and every package they list.
fn read_suites(
    suite: &str,
    components: &[String],
    architecture: &str,
    opts: &Options,
) -> Result<(Vec<LockedRelease>, Vec<index::Package>), DebianError> {
    let keyring = release::load_keyring(&opts.keyring)?;
    let fetcher = fetch::Fetcher::new(&opts.cache_dir);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);

    // Limitation: bookworm and bookworm-updates publish no Valid-Until, so only the
    // security suite is required to carry one; a Valid-Until in the past is always refused.
    let suites = [
        (suite.to_owned(), Archive::Main, false),
        (format!("{suite}-updates"), Archive::Main, false),
        (format!("{suite}-security"), Archive::Security, true),
    ];
    let mut releases = Vec::new();
    let mut packages = Vec::new();
    for (name, archive, require_valid_until) in &suites {
        let base_url = opts.sources.mirror(*archive, suite)?;
        let request = suite::SuiteRequest {
            base_url: &base_url,
            suite: name,
            archive: *archive,
            components,
            architecture,
            require_valid_until: *require_valid_until,
            now,
        };
        let (release, found) = suite::read_suite(&fetcher, &keyring, &request)?;
        releases.push(release);
        packages.extend(found);
    }
    Ok((releases, packages))
}
