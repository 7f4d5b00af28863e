//! Tests against the Debian mirror of the machine's apt configuration, with data fetched
//! at test time (nothing committed that could go stale). They assert properties that hold
//! for any package version the suite serves.

use std::path::{Path, PathBuf};

use pgp::composed::{CleartextSignedMessage, SignedPublicKey};
use pgp::ser::Serialize;
use pgp::types::KeyDetails;

use super::fetch::Fetcher;
use super::*;
use crate::layer::{Content, EntryKind};

const SUITE: &str = "bookworm";

fn options(cache: &Path) -> Options {
    Options {
        keyring: PathBuf::from(DEFAULT_KEYRING),
        sources: SourcesConfig::from_apt_dir(Path::new(DEFAULT_APT_DIR)).unwrap(),
        cache_dir: cache.to_path_buf(),
    }
}

fn fetch_inrelease(cache: &Path) -> Vec<u8> {
    let mirror = options(cache).sources.mirror(Archive::Main, SUITE).unwrap();
    Fetcher::new(cache)
        .get(&format!("{mirror}/dists/{SUITE}/InRelease"))
        .unwrap()
}

#[test]
fn real_inrelease_verifies_and_tampering_or_wrong_keys_fail() {
    let cache = tempfile::tempdir().unwrap();
    let inrelease = fetch_inrelease(cache.path());
    let keyring = release::load_keyring(Path::new(DEFAULT_KEYRING)).unwrap();

    let signed = release::verify(&inrelease, &keyring, SUITE).unwrap();
    let parsed = release::parse(&signed, SUITE).unwrap();
    assert!(parsed
        .sha256
        .keys()
        .any(|p| p.ends_with("binary-amd64/Packages")));

    // One changed byte inside the signed text: a checksum digit of the index list.
    let text = String::from_utf8(inrelease.clone()).unwrap();
    let at = text.find("SHA256:\n ").unwrap() + "SHA256:\n ".len();
    let mut tampered = inrelease.clone();
    tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
    let err = release::verify(&tampered, &keyring, SUITE).unwrap_err();
    assert!(err.to_string().contains("not trusted"), "{err}");

    // A keyring of every archive key except the ones that made the signatures.
    let (message, _) = CleartextSignedMessage::from_string(&text).unwrap();
    let issuers: Vec<_> = message
        .signatures()
        .iter()
        .flat_map(|s| s.issuer_key_id().into_iter().cloned())
        .collect();
    assert!(!issuers.is_empty());
    let signs = |key: &SignedPublicKey| {
        issuers.contains(&key.primary_key.legacy_key_id())
            || key
                .public_subkeys
                .iter()
                .any(|s| issuers.contains(&s.key.legacy_key_id()))
    };
    let others: Vec<&SignedPublicKey> = keyring.iter().filter(|k| !signs(k)).collect();
    assert!(others.len() < keyring.len() && !others.is_empty());
    let path = cache.path().join("others.gpg");
    let mut bytes = Vec::new();
    for key in &others {
        key.to_writer(&mut bytes).unwrap();
    }
    fs_err::write(&path, bytes).unwrap();
    let without = release::load_keyring(&path).unwrap();
    assert_eq!(without.len(), others.len());
    let err = release::verify(&inrelease, &without, SUITE).unwrap_err();
    assert!(err.to_string().contains("none of its"), "{err}");
}

fn static_definition() -> Definition {
    Definition {
        name: "static-test".into(),
        suite: SUITE.into(),
        components: vec!["main".into()],
        architecture: "amd64".into(),
        packages: vec![
            "tzdata".into(),
            "ca-certificates".into(),
            "base-files".into(),
        ],
        exclude: vec!["openssl".into(), "debconf".into(), "awk".into()],
    }
}

fn file_bytes<'a>(layer: &'a [crate::layer::Entry], path: &str) -> &'a [u8] {
    let entry = layer
        .iter()
        .find(|e| e.path == path.as_bytes())
        .unwrap_or_else(|| panic!("{path} missing"));
    match &entry.kind {
        EntryKind::File(Content::Bytes(bytes)) => bytes,
        other => panic!("{path} is {other:?}"),
    }
}

#[test]
fn lock_and_build_a_small_base_with_a_warm_cache() {
    let cache = tempfile::tempdir().unwrap();
    let opts = options(cache.path());
    let lock = lock(&static_definition(), &opts).unwrap();
    let names: Vec<&str> = lock.locked.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["base-files", "ca-certificates", "tzdata"]);
    assert_eq!(lock.releases.len(), 3);
    assert_eq!(lock.distro_major(), Some("12"));
    let text = lock.to_toml();
    for source in &opts.sources.sources {
        assert!(!text.contains(&source.uri), "the lock names a mirror");
    }

    // A repeat lock reads the indexes from the cache and resolves the same.
    let indexes = cache.path().join("indexes");
    let before: Vec<_> = fs_err::read_dir(&indexes)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let again = super::lock(&static_definition(), &opts).unwrap();
    assert_eq!(again.locked, lock.locked);
    let after: Vec<_> = fs_err::read_dir(&indexes)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before.len(), after.len());

    let content = base_content(&lock, &opts).unwrap();
    assert_eq!(content.labels["io.buildpacks.base.distro.version"], "12");
    let [packages, generated] = content.layers.as_slice() else {
        panic!("expected two layers");
    };
    let tmp = generated.iter().find(|e| e.path == b"tmp").unwrap();
    assert_eq!(tmp.mode, 0o1777);
    let bundle = file_bytes(generated, "etc/ssl/certs/ca-certificates.crt");
    assert!(bundle.starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert!(
        bundle
            .windows(27)
            .filter(|w| w == b"-----BEGIN CERTIFICATE-----")
            .count()
            > 50
    );
    let status = file_bytes(generated, "var/lib/dpkg/status.d/tzdata");
    assert!(status.starts_with(b"Package: tzdata\nStatus: install ok installed\n"));
    assert!(String::from_utf8_lossy(file_bytes(generated, "etc/passwd")).contains(":65532:"));
    let os_release = packages
        .iter()
        .find(|e| e.path == b"etc/os-release")
        .unwrap();
    assert!(matches!(os_release.kind, EntryKind::Symlink(_)));
    assert!(file_bytes(packages, "usr/share/zoneinfo/Etc/UTC").starts_with(b"TZif"));
    // base-files ships /var/local setgid and group staff: kept as shipped.
    let local = packages.iter().find(|e| e.path == b"var/local").unwrap();
    assert_eq!((local.mode, local.uid, local.gid), (0o2775, 0, 50));
    crate::layer::writer::plan(packages.clone()).unwrap();

    // Tampering with a sum is caught, names the package and caches nothing for it.
    let mut bad = lock.clone();
    let tz = bad.locked.iter_mut().find(|p| p.name == "tzdata").unwrap();
    tz.sha256 = "0".repeat(64);
    let tz = tz.clone();
    let err = base_content(&bad, &opts).unwrap_err().to_string();
    assert!(
        err.contains("package `tzdata`") && err.contains(&tz.path),
        "{err}"
    );
    assert!(!cache
        .path()
        .join("debs")
        .join(format!("{}.deb", tz.sha256))
        .exists());
}

#[test]
fn listing_a_package_the_suite_lacks_is_an_error() {
    let cache = tempfile::tempdir().unwrap();
    let mut def = static_definition();
    def.packages.push("no-such-package-here".into());
    let err = lock(&def, &options(cache.path())).unwrap_err().to_string();
    assert!(err.contains("no-such-package-here"), "{err}");
}
