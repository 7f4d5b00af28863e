//! OCI distribution registries (`docker://HOST/REPO[:TAG][@DIGEST]`): pulling an image
//! into a scratch OCI layout, every manifest and blob checked against its digest, and
//! pushing one, blobs first (skipped when present, mounted from another repository of the
//! same registry when this process pulled them from there) and the manifest last.

mod auth;
mod client;
mod push;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Mutex;

use tracing::{debug, info};
use ureq::http::{Method, StatusCode};

use crate::digest::{Digest, DigestWriter};
use crate::image::spec::{
    Descriptor, Index, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
};
use crate::store::layout::{Layout, LayoutError};
use crate::store::output::SourceImage;
use client::{Client, Payload};

pub use client::INSECURE_ENV;

/// What the command line says about registries, for the whole process: set once by the
/// CLI before any registry is spoken to.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `--creds USER:PASSWORD`: used for every registry, before the auth files.
    pub creds: Option<(String, String)>,
    /// `--insecure-registry HOST`: hosts spoken to over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
}

static SETTINGS: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();

/// Sets the process's registry settings; a second call is ignored.
pub fn configure(settings: Settings) {
    let _ = SETTINGS.set(settings);
}

fn settings() -> Settings {
    SETTINGS.get().cloned().unwrap_or_default()
}
pub use push::push;

/// Manifests above this size are refused rather than read into memory.
const MANIFEST_LIMIT: u64 = 4 << 20;

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach {url}: {error}; check the host and port (plain HTTP is used only for loopback hosts and those in {INSECURE_ENV})")]
    Http {
        url: String,
        error: Box<ureq::Error>,
    },
    #[error("{method} {url}: the registry answered {status}: {detail}")]
    Status {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("`{0}`: no such image in the registry; check the repository, tag and digest")]
    NotFound(String),
    #[error("{host} wants credentials that were refused or not found: log in with `podman login {host}` or `docker login {host}`, or point REGISTRY_AUTH_FILE at an auth file")]
    Unauthorized { host: String },
    #[error(
        "the token server {realm} answered {status} without a token: check the credentials for it"
    )]
    TokenRefused { realm: String, status: u16 },
    #[error(
        "the token server {realm} is plain HTTP: add {host} to {INSECURE_ENV} if it is trusted"
    )]
    InsecureRealm { realm: String, host: String },
    #[error("auth file `{}`: {reason}; fix or remove the entry", .path.display())]
    AuthFile { path: PathBuf, reason: String },
    #[error("{what} {expected} from the registry hashes to {actual}: it was altered on the way or in the registry; pull again or tell the registry's operator")]
    DigestMismatch {
        what: &'static str,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "`{reference}` is a multi-platform index without a linux/amd64 image (it has: {available})"
    )]
    NoPlatform {
        reference: String,
        available: String,
    },
    #[error("`{reference}`: manifest media type `{media_type}` is not an OCI or Docker v2 image manifest or index")]
    MediaType {
        reference: String,
        media_type: String,
    },
    #[error("`{reference}`: the manifest is not valid JSON of the expected shape: {error}")]
    Json {
        reference: String,
        error: serde_json::Error,
    },
    #[error("layer {digest} is neither in {repository} nor in a repository of that registry it could be mounted from, and was not downloaded: read the image with its layers")]
    NoFile { digest: Digest, repository: String },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Repositories each blob was pulled from, per host, in this process: a push to another
/// repository of the same host mounts these blobs instead of uploading them.
// Limitation: this record lives only as long as the process; a push in a later run uploads
// blobs that a mount could have supplied, unless the target repository has them already.
static KNOWN: Mutex<BTreeMap<Digest, BTreeSet<(String, String)>>> = Mutex::new(BTreeMap::new());

fn remember(digest: &Digest, host: &str, repository: &str) {
    if let Ok(mut known) = KNOWN.lock() {
        known
            .entry(digest.clone())
            .or_default()
            .insert((host.to_owned(), repository.to_owned()));
    }
}

/// Other repositories of `host` known to hold `digest`.
pub(crate) fn mount_sources(digest: &Digest, host: &str, repository: &str) -> Vec<String> {
    let Ok(known) = KNOWN.lock() else {
        return Vec::new();
    };
    known
        .get(digest)
        .into_iter()
        .flatten()
        .filter(|(h, r)| h == host && r != repository)
        .map(|(_, r)| r.clone())
        .collect()
}

/// Which blobs a pull fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// Manifest, config and every layer.
    Everything,
    /// Manifest and config only: the layers stay in the registry and are absent from the
    /// scratch layout (a push to the same registry mounts or skips them).
    Metadata,
}

/// The image `repository` at `tag` or `digest` on `host`, pulled into a scratch layout.
pub fn pull(
    host: &str,
    repository: &str,
    tag: Option<&str>,
    digest: Option<&Digest>,
    fetch: Fetch,
) -> Result<SourceImage, RegistryError> {
    let name = display_name(host, repository, tag, digest);
    let mut client = Client::new(host, vec![format!("repository:{repository}:pull")])?;
    let wanted = match (digest, tag) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_owned(),
        (None, None) => "latest".to_owned(),
    };
    info!(image = %name, "pulling");
    let (mut bytes, mut media_type, mut manifest_digest) =
        get_manifest(&mut client, repository, &wanted, digest, &name)?;

    // Limitation: blobs are pulled into a scratch layout removed after use, with no cache;
    // each run that reads a registry image downloads its blobs again.
    let scratch = tempfile::Builder::new().prefix("repave-pull-").tempdir()?;
    let layout = Layout::create(&scratch.path().join("layout"))?;

    if media_type == MEDIA_TYPE_INDEX || media_type == MEDIA_TYPE_DOCKER_LIST {
        layout.write_blob(&bytes)?;
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
                reference: name.clone(),
                error: source,
            })?;
        let chosen = select_platform(&index, "linux", "amd64", None).ok_or_else(|| {
            RegistryError::NoPlatform {
                reference: name.clone(),
                available: platforms(&index),
            }
        })?;
        debug!(image = %name, manifest = %chosen.digest, "chose linux/amd64 from the index");
        let chosen_digest = chosen.digest.clone();
        (bytes, media_type, manifest_digest) = get_manifest(
            &mut client,
            repository,
            &chosen_digest.to_string(),
            Some(&chosen_digest),
            &name,
        )?;
    }
    if media_type != MEDIA_TYPE_MANIFEST && media_type != MEDIA_TYPE_DOCKER_MANIFEST {
        return Err(RegistryError::MediaType {
            reference: name,
            media_type,
        });
    }
    layout.write_blob(&bytes)?;
    let manifest: crate::image::spec::Manifest =
        serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
            reference: name.clone(),
            error: source,
        })?;

    fetch_blob(&mut client, repository, &manifest.config.digest, &layout)?;
    remember(&manifest.config.digest, host, repository);
    for layer in &manifest.layers {
        if fetch == Fetch::Everything {
            fetch_blob(&mut client, repository, &layer.digest, &layout)?;
        }
        remember(&layer.digest, host, repository);
    }
    let descriptor = Descriptor::new(&media_type, manifest_digest, bytes.len() as u64);
    layout.set_tag(tag.unwrap_or("latest"), &descriptor)?;
    let image = layout.image(&descriptor)?;
    info!(image = %name, digest = %image.descriptor.digest, "pulled");
    Ok(SourceImage {
        layout,
        image,
        scratch: Some(std::sync::Arc::new(scratch)),
    })
}

/// GETs a manifest and checks it against `expected` (or the digest the registry names).
fn get_manifest(
    client: &mut Client,
    repository: &str,
    reference: &str,
    expected: Option<&Digest>,
    name: &str,
) -> Result<(Vec<u8>, String, Digest), RegistryError> {
    let url = client.url(&format!("/v2/{repository}/manifests/{reference}"));
    let mut response = client.send(
        Method::GET,
        &url,
        &[("accept", ACCEPT)],
        &Payload::Empty,
        true,
    )?;
    if response.status() == StatusCode::NOT_FOUND {
        return Err(RegistryError::NotFound(name.to_owned()));
    }
    check_status(&mut response, "GET", &url)?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type");
    let named = header("docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MANIFEST_LIMIT)
        .read_to_vec()
        .map_err(|source| RegistryError::Http {
            url: url.clone(),
            error: Box::new(source),
        })?;
    let actual = Digest::of(&bytes);
    if let Some(expected) = expected.or(named.as_ref()) {
        if &actual != expected {
            return Err(RegistryError::DigestMismatch {
                what: "manifest",
                expected: expected.clone(),
                actual,
            });
        }
    }
    // The manifest's own mediaType wins over a generic Content-Type.
    let declared = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned));
    let media_type = declared
        .or(content_type.map(|c| c.split(';').next().unwrap_or_default().trim().to_owned()))
        .unwrap_or_else(|| MEDIA_TYPE_MANIFEST.to_owned());
    Ok((bytes, media_type, actual))
}

/// Streams a blob into `layout`, checking its digest on the way.
fn fetch_blob(
    client: &mut Client,
    repository: &str,
    digest: &Digest,
    layout: &Layout,
) -> Result<(), RegistryError> {
    if layout.has_blob(digest) {
        return Ok(());
    }
    let url = client.url(&format!("/v2/{repository}/blobs/{digest}"));
    let mut response = client.send(Method::GET, &url, &[], &Payload::Empty, true)?;
    check_status(&mut response, "GET", &url)?;
    let dir = layout.root().join("blobs").join("sha256");
    let tmp = tempfile::Builder::new()
        .prefix(".pull-")
        .tempfile_in(&dir)?;
    let mut writer = DigestWriter::new(io::BufWriter::new(tmp.as_file()));
    io::copy(&mut response.body_mut().as_reader(), &mut writer).map_err(|e| {
        RegistryError::Http {
            url: url.clone(),
            error: Box::new(ureq::Error::Io(e)),
        }
    })?;
    let (mut out, actual, _) = writer.finish();
    io::Write::flush(&mut out)?;
    drop(out);
    if &actual != digest {
        return Err(RegistryError::DigestMismatch {
            what: "blob",
            expected: digest.clone(),
            actual,
        });
    }
    layout.import_blob(tmp.path(), digest)?;
    Ok(())
}

/// The manifest of `index` for `os`/`architecture` (and `variant` when given).
// Limitation: pulls always choose linux/amd64, the one platform repave builds for.
fn select_platform<'a>(
    index: &'a Index,
    os: &str,
    architecture: &str,
    variant: Option<&str>,
) -> Option<&'a Descriptor> {
    index.manifests.iter().find(|d| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == os
                && p.architecture == architecture
                && variant.is_none_or(|v| p.variant.as_deref() == Some(v))
        })
    })
}

fn platforms(index: &Index) -> String {
    let list: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    if list.is_empty() {
        "no platforms".to_owned()
    } else {
        list.join(", ")
    }
}

/// Turns a non-2xx answer into an error carrying the registry's own message.
pub(crate) fn check_status(
    response: &mut ureq::http::Response<ureq::Body>,
    method: &str,
    url: &str,
) -> Result<(), RegistryError> {
    if response.status().is_success() {
        return Ok(());
    }
    let mut detail = String::new();
    let _ = response
        .body_mut()
        .as_reader()
        .take(2048)
        .read_to_string(&mut detail);
    Err(RegistryError::Status {
        method: method.to_owned(),
        url: url.to_owned(),
        status: response.status().as_u16(),
        detail: detail.trim().to_owned(),
    })
}

fn display_name(
    host: &str,
    repository: &str,
    tag: Option<&str>,
    digest: Option<&Digest>,
) -> String {
    let mut name = format!("{host}/{repository}");
    if let Some(tag) = tag {
        name.push(':');
        name.push_str(tag);
    }
    if let Some(digest) = digest {
        name.push('@');
        name.push_str(&digest.to_string());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::spec::Platform;

    fn entry(arch: &str, variant: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(MEDIA_TYPE_MANIFEST, Digest::of(arch.as_bytes()), 1);
        d.platform = Some(Platform {
            architecture: arch.into(),
            os: "linux".into(),
            variant: variant.map(Into::into),
            os_version: None,
        });
        d
    }

    #[test]
    fn index_selection_picks_the_platform_and_variant() {
        let mut index = Index::empty();
        index.manifests = vec![entry("arm64", Some("v8")), entry("amd64", None)];
        let chosen = select_platform(&index, "linux", "amd64", None).unwrap();
        assert_eq!(chosen.digest, Digest::of(b"amd64"));
        assert!(select_platform(&index, "linux", "arm64", Some("v7")).is_none());
        assert!(select_platform(&index, "linux", "arm64", Some("v8")).is_some());
        assert_eq!(platforms(&index), "linux/arm64/v8, linux/amd64");
    }
}
