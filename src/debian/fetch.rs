//! Downloads from the mirror and the content-addressed cache. Every download is checked
//! against the sha256 the signed index chain promised before it is cached or used; cache
//! writes go to a temp file in the same directory and are renamed into place.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tracing::{debug, warn};

use super::DebianError;

const TRIES: u32 = 3;

/// An HTTP client with retries plus the cache directory.
pub struct Fetcher {
    agent: ureq::Agent,
    cache_dir: PathBuf,
}

/// What a download is expected to be, for checking and for error messages.
pub struct Expected<'a> {
    /// What the user would recognise: a package name or an index path.
    pub what: &'a str,
    pub sha256: &'a str,
    pub size: u64,
}

impl Fetcher {
    pub fn new(cache_dir: &Path) -> Fetcher {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_body(Some(Duration::from_secs(120)))
            .build();
        Fetcher {
            agent: config.into(),
            cache_dir: cache_dir.to_path_buf(),
        }
    }

    /// GETs `url`, retrying connection errors and 5xx answers with backoff.
    pub fn get(&self, url: &str) -> Result<Vec<u8>, DebianError> {
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            match self.get_once(url) {
                Ok(bytes) => return Ok(bytes),
                Err((retryable, message)) if retryable && attempt < TRIES => {
                    warn!(url, attempt, "download failed, retrying: {message}");
                    std::thread::sleep(delay);
                    delay *= 4;
                    attempt += 1;
                }
                Err((_, message)) => {
                    return Err(DebianError::Http {
                        url: url.to_owned(),
                        message,
                    })
                }
            }
        }
    }

    fn get_once(&self, url: &str) -> Result<Vec<u8>, (bool, String)> {
        let response = self.agent.get(url).call().map_err(|e| {
            let retryable = match &e {
                ureq::Error::StatusCode(code) => *code >= 500,
                ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::HostNotFound
                | ureq::Error::BodyStalled
                | ureq::Error::Protocol(_) => true,
                _ => false,
            };
            let message = match e {
                ureq::Error::StatusCode(404) => {
                    "the mirror has no such file (404): the mirror may be out of date or the \
                     lock older than the archive keeps files; run `repave base lock` again"
                        .to_owned()
                }
                other => format!("{other}: check the mirror and network, then retry"),
            };
            (retryable, message)
        })?;
        let mut bytes = Vec::new();
        response
            .into_body()
            .into_reader()
            .read_to_end(&mut bytes)
            .map_err(|e| (true, format!("reading the body failed: {e}")))?;
        Ok(bytes)
    }

    /// Returns the cached bytes under `kind/name` if present and their sha256 matches.
    pub fn cached(&self, kind: &str, name: &str, sha256: &str) -> Option<Vec<u8>> {
        let path = self.cache_dir.join(kind).join(name);
        let bytes = fs_err::read(&path).ok()?;
        if sha256_hex(&bytes) == sha256 {
            debug!(path = %path.display(), "cache hit");
            Some(bytes)
        } else {
            warn!(path = %path.display(), "cached file does not match its sha256; downloading it again");
            None
        }
    }

    /// Downloads `url`, checks size and sha256 against `expected`, and returns the bytes.
    pub fn download(&self, url: &str, expected: &Expected<'_>) -> Result<Vec<u8>, DebianError> {
        let bytes = self.get(url)?;
        let actual = sha256_hex(&bytes);
        if actual != expected.sha256 || bytes.len() as u64 != expected.size {
            return Err(DebianError::Checksum {
                what: expected.what.to_owned(),
                url: url.to_owned(),
                expected: format!("sha256 {} ({} bytes)", expected.sha256, expected.size),
                actual: format!("sha256 {actual} ({} bytes)", bytes.len()),
            });
        }
        Ok(bytes)
    }

    /// Stores `bytes` as `kind/name` atomically: a temp file in the same directory, synced,
    /// then renamed, so a reader never sees a partial file.
    pub fn store(&self, kind: &str, name: &str, bytes: &[u8]) -> Result<(), DebianError> {
        let dir = self.cache_dir.join(kind);
        fs_err::create_dir_all(&dir)?;
        let dest = dir.join(name);
        let io_err = |source: std::io::Error| DebianError::Cache {
            path: dest.clone(),
            source,
        };
        let mut temp = tempfile::NamedTempFile::new_in(&dir).map_err(io_err)?;
        temp.write_all(bytes).map_err(io_err)?;
        temp.as_file().sync_all().map_err(io_err)?;
        temp.persist(&dest).map_err(|e| io_err(e.error))?;
        Ok(())
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
