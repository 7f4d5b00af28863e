//! Reading one suite from a mirror: its InRelease (always fetched, verified, checked for
//! freshness) and the Packages index of each component, fetched by the checksum the
//! signed InRelease lists and cached under that checksum.

use std::io::Read;

use pgp::composed::SignedPublicKey;
use tracing::{debug, info};

use super::control;
use super::fetch::{sha256_hex, Expected, Fetcher};
use super::index::{package_from, Package};
use super::lockfile::LockedRelease;
use super::release;
use super::sources::Archive;
use super::DebianError;

/// Where and what to read.
pub struct SuiteRequest<'a> {
    pub base_url: &'a str,
    pub suite: &'a str,
    pub archive: Archive,
    pub components: &'a [String],
    pub architecture: &'a str,
    /// Refuse an InRelease without Valid-Until.
    pub require_valid_until: bool,
    /// Seconds since the Unix epoch.
    pub now: u64,
}

/// Fetches and verifies the suite's InRelease and returns what the lock records with every
/// package of the requested components.
pub fn read_suite(
    fetcher: &Fetcher,
    keyring: &[SignedPublicKey],
    request: &SuiteRequest<'_>,
) -> Result<(LockedRelease, Vec<Package>), DebianError> {
    let suite = request.suite;
    let dists = format!("{}/dists/{suite}", request.base_url);
    info!("fetching InRelease for {suite}");
    let inrelease = fetcher.get(&format!("{dists}/InRelease"))?;
    let signed = release::verify(&inrelease, keyring, suite)?;
    let release = release::parse(&signed, suite)?;
    release::check_fresh(&release, suite, request.now, request.require_valid_until)?;

    let mut packages = Vec::new();
    for component in request.components {
        let dir = format!("{component}/binary-{}", request.architecture);
        let text = packages_index(fetcher, &release, &dists, &dir, suite)?;
        let paragraphs = control::parse(&text).map_err(|(line, text)| DebianError::Index {
            what: format!("{suite} {dir}/Packages"),
            message: format!("line {line}: `{text}`"),
        })?;
        for paragraph in &paragraphs {
            let package =
                package_from(paragraph, request.archive).map_err(|message| DebianError::Index {
                    what: format!("{suite} {dir}/Packages"),
                    message,
                })?;
            packages.push(package);
        }
        debug!(
            suite,
            component,
            count = paragraphs.len(),
            "read Packages index"
        );
    }

    let locked = LockedRelease {
        suite: suite.to_owned(),
        archive: request.archive,
        version: release.version.clone().unwrap_or_default(),
        inrelease_sha256: sha256_hex(&inrelease),
    };
    Ok((locked, packages))
}

/// The uncompressed Packages index of `dir`, from the cache (keyed by the sha256 the
/// Release lists for it) or downloaded compressed and checked before and after unpacking.
fn packages_index(
    fetcher: &Fetcher,
    release: &release::Release,
    dists: &str,
    dir: &str,
    suite: &str,
) -> Result<String, DebianError> {
    let plain = format!("{dir}/Packages");
    let (plain_sha, plain_size) = release
        .sha256
        .get(&plain)
        .ok_or_else(|| DebianError::Index {
            what: format!("{suite} {plain}"),
            message: "the suite's InRelease does not list it: check `components` and \
                  `architecture` in the definition"
                .to_owned(),
        })?;

    let bytes = match fetcher.cached("indexes", plain_sha, plain_sha) {
        Some(bytes) => bytes,
        None => {
            let what = format!("{suite} {plain}");
            let (suffix, compressed) = ["xz", "gz", ""]
                .iter()
                .find_map(|suffix| {
                    let path = if suffix.is_empty() {
                        plain.clone()
                    } else {
                        format!("{plain}.{suffix}")
                    };
                    release
                        .sha256
                        .get(&path)
                        .map(|entry| (*suffix, (path, entry)))
                })
                .expect("the plain index is listed, so the search finds at least it");
            let (path, (sha, size)) = compressed;
            // By-hash names never change meaning while a mirror syncs.
            let url = if release.acquire_by_hash {
                format!("{dists}/{dir}/by-hash/SHA256/{sha}")
            } else {
                format!("{dists}/{path}")
            };
            info!(
                "fetching {suite} {path} ({:.1} MiB)",
                *size as f64 / 1048576.0
            );
            let expected = Expected {
                what: &what,
                sha256: sha,
                size: *size,
            };
            let downloaded = fetcher.download(&url, &expected)?;
            let unpacked = decompress(suffix, &downloaded).map_err(|e| DebianError::Index {
                what: what.clone(),
                message: format!("cannot decompress {path}: {e}"),
            })?;
            let actual = sha256_hex(&unpacked);
            if actual != *plain_sha || unpacked.len() as u64 != *plain_size {
                return Err(DebianError::Checksum {
                    what,
                    url,
                    expected: format!("sha256 {plain_sha} once decompressed"),
                    actual: format!("sha256 {actual}"),
                });
            }
            fetcher.store("indexes", plain_sha, &unpacked)?;
            unpacked
        }
    };
    String::from_utf8(bytes).map_err(|_| DebianError::Index {
        what: format!("{suite} {plain}"),
        message: "it is not UTF-8 text".to_owned(),
    })
}

/// Decompresses by file suffix: `xz`, `gz`, `zst`, or none.
pub fn decompress(suffix: &str, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match suffix {
        "xz" => {
            liblzma::read::XzDecoder::new_multi_decoder(bytes).read_to_end(&mut out)?;
        }
        "gz" => {
            flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out)?;
        }
        "zst" => {
            ruzstd::decoding::StreamingDecoder::new(bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
                .read_to_end(&mut out)?;
        }
        "" => out.extend_from_slice(bytes),
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!("unsupported compression `{other}`"),
            ))
        }
    }
    Ok(out)
}
