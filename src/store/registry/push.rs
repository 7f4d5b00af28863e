//! Pushing an image: each blob is skipped when the repository has it, mounted from another
//! repository of the same registry when this process pulled it from there, or uploaded in
//! one streamed PUT; the manifest goes last, so no tag ever names a partial image.

use std::collections::BTreeSet;

use tracing::{debug, info};
use ureq::http::{Method, StatusCode};

use super::client::{Client, Payload};
use super::{check_status, mount_sources, RegistryError};
use crate::digest::Digest;
use crate::image::assemble::Assembled;
use crate::image::spec::MEDIA_TYPE_MANIFEST;
use crate::store::output::BlobSource;

/// Pushes `image` to `repository` on `host` under every one of `tags`; returns how many
/// bytes were uploaded (blobs sent, not found or mounted, plus the manifests).
pub fn push(
    host: &str,
    repository: &str,
    tags: &[String],
    image: &Assembled,
    blobs: &[BlobSource],
) -> Result<u64, RegistryError> {
    let mut scopes = vec![format!("repository:{repository}:pull,push")];
    let sources: BTreeSet<String> = image
        .manifest
        .layers
        .iter()
        .chain(std::iter::once(&image.manifest.config))
        .flat_map(|d| mount_sources(&d.digest, host, repository))
        .collect();
    scopes.extend(sources.iter().map(|r| format!("repository:{r}:pull")));
    let mut client = Client::new(host, scopes)?;
    let name = format!("{host}/{repository}");
    info!(image = %name, tags = %tags.join(", "), "pushing");

    let mut uploaded = 0;
    let mut bytes = 0;
    for layer in &image.manifest.layers {
        // A layer of an image pulled without its layers has no file; it must be present
        // or mountable.
        let payload = match blobs.iter().find(|b| b.digest == layer.digest) {
            Some(blob) if blob.file.is_file() => Payload::File(&blob.file, layer.size),
            _ => Payload::Missing,
        };
        if push_blob(&mut client, repository, &layer.digest, &payload)? {
            uploaded += 1;
            bytes += layer.size;
        }
    }
    let config = Payload::Bytes(&image.config_bytes);
    if push_blob(&mut client, repository, &image.config_digest, &config)? {
        uploaded += 1;
        bytes += image.config_bytes.len() as u64;
    }

    // The manifest goes last, so a tag never names an image whose blobs are not all there.
    let media_type = image
        .manifest
        .media_type
        .clone()
        .unwrap_or_else(|| MEDIA_TYPE_MANIFEST.to_owned());
    for tag in tags {
        let url = client.url(&format!("/v2/{repository}/manifests/{tag}"));
        let mut response = client.send(
            Method::PUT,
            &url,
            &[("content-type", media_type.as_str())],
            &Payload::Bytes(&image.manifest_bytes),
            true,
        )?;
        check_status(&mut response, "PUT", &url)?;
        bytes += image.manifest_bytes.len() as u64;
        let named = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        if let Some(named) = named.filter(|d| d != &image.manifest_digest) {
            return Err(RegistryError::DigestMismatch {
                what: "manifest",
                expected: image.manifest_digest.clone(),
                actual: named,
            });
        }
    }
    info!(image = %name, digest = %image.manifest_digest, blobs_uploaded = uploaded, bytes, "pushed");
    Ok(bytes)
}

/// Makes `digest` present in `repository`; true when its bytes were uploaded.
fn push_blob(
    client: &mut Client,
    repository: &str,
    digest: &Digest,
    payload: &Payload<'_>,
) -> Result<bool, RegistryError> {
    let url = client.url(&format!("/v2/{repository}/blobs/{digest}"));
    let response = client.send(Method::HEAD, &url, &[], &Payload::Empty, true)?;
    if response.status().is_success() {
        debug!(%digest, "blob already in the repository");
        return Ok(false);
    }

    for from in mount_sources(digest, client.host(), repository) {
        let url = client.url(&format!(
            "/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"
        ));
        let response = client.send(Method::POST, &url, &[], &Payload::Empty, true)?;
        if response.status() == StatusCode::CREATED {
            debug!(%digest, from, "blob mounted");
            return Ok(false);
        }
        // A registry that cannot mount answers 202 with an upload session, which is left
        // to expire, or refuses (no pull access to `from`): the blob is uploaded instead.
        debug!(%digest, from, status = %response.status(), "mount refused");
    }

    if let Payload::Missing = payload {
        return Err(RegistryError::NoFile {
            digest: digest.clone(),
            repository: format!("{}/{repository}", client.host()),
        });
    }

    // A dropped connection or a server error mid-upload leaves the session unusable: each
    // try starts a new one.
    // Limitation: uploads are one monolithic PUT, so a cut upload is sent again from its
    // first byte rather than resumed.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match upload(client, repository, digest, payload) {
            Err(error) if attempt < 3 && retryable(&error) => {
                debug!(%digest, %error, attempt, "upload failed: starting it again");
                std::thread::sleep(std::time::Duration::from_millis(250 << attempt));
            }
            other => return other.map(|()| true),
        }
    }
}

fn retryable(error: &RegistryError) -> bool {
    match error {
        RegistryError::Http { .. } => true,
        RegistryError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

/// One monolithic upload: POST opens a session, PUT streams the bytes and closes it.
fn upload(
    client: &mut Client,
    repository: &str,
    digest: &Digest,
    payload: &Payload<'_>,
) -> Result<(), RegistryError> {
    let url = client.url(&format!("/v2/{repository}/blobs/uploads/"));
    let mut response = client.send(Method::POST, &url, &[], &Payload::Empty, true)?;
    check_status(&mut response, "POST", &url)?;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Status {
            method: "POST".into(),
            url: url.clone(),
            status: response.status().as_u16(),
            detail: "no Location header for the upload".into(),
        })?;
    let separator = if location.contains('?') { '&' } else { '?' };
    let put_url = client.url(&format!("{location}{separator}digest={digest}"));
    debug!(%digest, "uploading blob");
    let mut response = client.send(
        Method::PUT,
        &put_url,
        &[("content-type", "application/octet-stream")],
        payload,
        false,
    )?;
    check_status(&mut response, "PUT", &put_url)
}
