//! Suite metadata: verifies an InRelease file's OpenPGP signatures against the archive
//! keyring and reads the signed Release fields (version, Valid-Until, index checksums).
//! Only the signed text is parsed, never anything around it.

use std::collections::BTreeMap;
use std::path::Path;

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::types::KeyDetails;
use tracing::debug;

use super::{control, DebianError};

/// The fields of a verified Release that a lock needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// `Version:` (e.g. `12.15` for bookworm, `12-updates`, `12` for security).
    pub version: Option<String>,
    /// `Valid-Until:` in seconds since the Unix epoch.
    pub valid_until: Option<u64>,
    pub acquire_by_hash: bool,
    /// Index path (relative to `dists/<suite>/`) to its sha256 and size.
    pub sha256: BTreeMap<String, (String, u64)>,
}

/// Reads a keyring file of concatenated public keys (binary or armored).
pub fn load_keyring(path: &Path) -> Result<Vec<SignedPublicKey>, DebianError> {
    let bytes = fs_err::read(path)?;
    let keyring_err = |message: String| DebianError::Keyring {
        path: path.to_path_buf(),
        message,
    };
    let (keys, _) = SignedPublicKey::from_reader_many(bytes.as_slice())
        .map_err(|e| keyring_err(e.to_string()))?;
    let keys: Vec<SignedPublicKey> = keys
        .collect::<Result<_, _>>()
        .map_err(|e| keyring_err(e.to_string()))?;
    if keys.is_empty() {
        return Err(keyring_err("it holds no public key".to_owned()));
    }
    Ok(keys)
}

/// Verifies `inrelease` (a cleartext-signed message) and returns its signed text with
/// `\n` line ends. At least one signature must verify with a key of `keyring`, by its
/// primary key or by a subkey whose binding the primary key signed.
pub fn verify(
    inrelease: &[u8],
    keyring: &[SignedPublicKey],
    suite: &str,
) -> Result<String, DebianError> {
    let sig_err = |message: String| DebianError::Signature {
        suite: suite.to_owned(),
        message,
    };
    let text = std::str::from_utf8(inrelease)
        .map_err(|_| sig_err("the InRelease file is not UTF-8 text".to_owned()))?;
    let (message, _) = CleartextSignedMessage::from_string(text)
        .map_err(|e| sig_err(format!("not a cleartext-signed message: {e}")))?;

    for key in keyring {
        if message.verify(key).is_ok() {
            debug!(suite, key = %key.primary_key.fingerprint(), "InRelease signed by primary key");
            return Ok(message.signed_text().replace("\r\n", "\n"));
        }
        for subkey in &key.public_subkeys {
            if subkey.verify_bindings(&key.primary_key).is_ok() && message.verify(subkey).is_ok() {
                debug!(suite, key = %key.primary_key.fingerprint(), "InRelease signed by subkey");
                return Ok(message.signed_text().replace("\r\n", "\n"));
            }
        }
    }
    Err(sig_err(format!(
        "none of its {} signature(s) verifies with a key of the archive keyring",
        message.signatures().len()
    )))
}

/// Parses the signed Release text.
pub fn parse(text: &str, suite: &str) -> Result<Release, DebianError> {
    let release_err = |message: String| DebianError::Release {
        suite: suite.to_owned(),
        message,
    };
    let paragraphs = control::parse(text)
        .map_err(|(line, text)| release_err(format!("line {line}: `{text}`")))?;
    let [paragraph] = paragraphs.as_slice() else {
        return Err(release_err(format!(
            "expected one paragraph, found {}",
            paragraphs.len()
        )));
    };

    let valid_until = match paragraph.get("Valid-Until") {
        Some(value) => Some(
            parse_date(value)
                .ok_or_else(|| release_err(format!("unreadable Valid-Until `{value}`")))?,
        ),
        None => None,
    };
    let mut sha256 = BTreeMap::new();
    for line in paragraph.get("SHA256").unwrap_or("").lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [hash, size, path] = words.as_slice() {
            let size = size
                .parse()
                .map_err(|_| release_err(format!("bad size in SHA256 line `{line}`")))?;
            sha256.insert((*path).to_owned(), ((*hash).to_owned(), size));
        }
    }
    if sha256.is_empty() {
        return Err(release_err("it lists no SHA256 checksums".to_owned()));
    }
    Ok(Release {
        version: paragraph.get("Version").map(str::to_owned),
        valid_until,
        acquire_by_hash: paragraph
            .get("Acquire-By-Hash")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        sha256,
    })
}

/// Refuses a Release whose Valid-Until has passed, or that lacks one when `required`.
pub fn check_fresh(
    release: &Release,
    suite: &str,
    now: u64,
    required: bool,
) -> Result<(), DebianError> {
    match release.valid_until {
        Some(until) if until <= now => Err(DebianError::Expired {
            suite: suite.to_owned(),
            valid_until: crate::epoch::rfc3339(until),
        }),
        Some(_) => Ok(()),
        None if required => Err(DebianError::Release {
            suite: suite.to_owned(),
            message: "it carries no Valid-Until, so a replayed old index cannot be told \
                      apart: use a mirror that serves the archive's own InRelease"
                .to_owned(),
        }),
        None => {
            debug!(
                suite,
                "no Valid-Until in InRelease; accepted for this suite"
            );
            Ok(())
        }
    }
}

/// Parses an RFC 2822 date in UTC as Release files write it
/// (`Tue, 08 Dec 2026 19:40:00 UTC`) to seconds since the Unix epoch.
fn parse_date(value: &str) -> Option<u64> {
    let words: Vec<&str> = value.split_whitespace().collect();
    let words = match words.first() {
        Some(first) if first.ends_with(',') => &words[1..],
        _ => &words[..],
    };
    let [day, month, year, time, zone] = words else {
        return None;
    };
    if !matches!(*zone, "UTC" | "GMT" | "+0000" | "Z") {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|part| part.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    u64::try_from(seconds).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_to_epoch_seconds() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_date("Tue, 08 Dec 2026 19:40:00 UTC"),
            Some(1_796_758_800)
        );
        assert_eq!(
            crate::epoch::rfc3339(parse_date("Sat, 29 Feb 2020 12:00:01 GMT").unwrap()),
            "2020-02-29T12:00:01Z"
        );
        assert_eq!(parse_date("Tue, 08 Dec 2026 19:40:00 CET"), None);
        assert_eq!(parse_date("yesterday"), None);
    }

    const RELEASE: &str = "Origin: Debian\nVersion: 12.15\nAcquire-By-Hash: yes\n\
        Valid-Until: Tue, 08 Dec 2026 19:40:00 UTC\nMD5Sum:\n 00 1 main/x\nSHA256:\n \
        aa 120 main/binary-amd64/Release\n bb  8790396 main/binary-amd64/Packages.xz\n";

    #[test]
    fn release_fields_and_freshness() {
        let release = parse(RELEASE, "bookworm").unwrap();
        assert_eq!(release.version.as_deref(), Some("12.15"));
        assert!(release.acquire_by_hash);
        assert_eq!(
            release.sha256["main/binary-amd64/Packages.xz"],
            ("bb".to_owned(), 8_790_396)
        );
        assert!(!release.sha256.contains_key("main/x"));

        let until = release.valid_until.unwrap();
        assert!(check_fresh(&release, "s", until - 1, true).is_ok());
        let err = check_fresh(&release, "s", until, false).unwrap_err();
        assert!(err.to_string().contains("2026-12-08T19:40:00Z"), "{err}");

        let unbounded = Release {
            valid_until: None,
            ..release
        };
        assert!(check_fresh(&unbounded, "s", until, false).is_ok());
        assert!(check_fresh(&unbounded, "s", until, true).is_err());
    }
}
