//! Writing a finished image to a target and reading an image from a reference. Output to
//! an OCI layout is all-or-nothing: a new layout is assembled in a sibling directory and
//! renamed into place; an existing one gets its blobs first and `index.json` last.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::image::assemble::Assembled;
use crate::reference::Reference;
use crate::store::layout::{Layout, LayoutError, StoredImage};
use crate::store::registry::{self, Fetch, RegistryError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One blob of an image and the file it is in now.
#[derive(Clone, Debug)]
pub struct BlobSource {
    pub digest: Digest,
    pub file: PathBuf,
}

/// Refuses, before any work is done, a target that no image can be written to.
pub fn check_writable(target: &Reference) -> Result<(), StoreError> {
    match target {
        Reference::Oci {
            digest: Some(_), ..
        }
        | Reference::Registry {
            digest: Some(_), ..
        } => Err(StoreError::Io(std::io::Error::other(format!(
            "`{target}`: an image cannot be written to a digest (the digest is what the image turns out to be); name a tag, as in `oci:DIR:TAG` or `docker://HOST/REPO:TAG`"
        )))),
        _ => Ok(()),
    }
}

/// Writes `image` to `target` under its tag and every one of `extra_tags`; returns the
/// bytes uploaded to a registry (0 for local targets).
pub fn write_image(
    target: &Reference,
    image: &Assembled,
    blobs: &[BlobSource],
    extra_tags: &[String],
) -> Result<u64, StoreError> {
    check_writable(target)?;
    match target {
        Reference::Oci {
            dir,
            tag,
            digest: _,
        } => {
            let tag = tag.clone().unwrap_or_else(|| "latest".to_owned());
            let mut tags = vec![tag];
            tags.extend(extra_tags.iter().cloned());
            write_layout(dir, image, blobs, &tags).map(|()| 0)
        }
        Reference::DockerArchive { file, name } => {
            let mut names = Vec::new();
            if let Some(name) = name {
                let repo = name
                    .rsplit_once(':')
                    .map_or(name.as_str(), |(repo, _)| repo);
                names.push(name.clone());
                names.extend(extra_tags.iter().map(|tag| format!("{repo}:{tag}")));
            }
            super::archive::write_archive(file, &names, image, blobs).map(|()| 0)
        }
        Reference::Registry {
            host,
            repository,
            tag,
            digest: _,
        } => {
            let mut tags = vec![tag.clone().unwrap_or_else(|| "latest".to_owned())];
            tags.extend(extra_tags.iter().cloned());
            Ok(registry::push(host, repository, &tags, image, blobs)?)
        }
    }
}

fn write_layout(
    dir: &Path,
    image: &Assembled,
    blobs: &[BlobSource],
    tags: &[String],
) -> Result<(), StoreError> {
    let existing = dir.join("oci-layout").is_file();
    if existing {
        let layout = Layout::open(dir)?;
        fill(&layout, image, blobs, tags)?;
        return Ok(());
    }
    if dir.exists() && fs_err::read_dir(dir)?.next().is_some() {
        return Err(LayoutError::NotEmpty(dir.to_path_buf()).into());
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Parents that do not exist yet are made, and removed again if the write fails.
    let created = first_missing_ancestor(&parent);
    fs_err::create_dir_all(&parent)?;
    let result = stage_and_rename(dir, &parent, image, blobs, tags);
    if result.is_err() {
        if let Some(created) = created {
            let _ = std::fs::remove_dir_all(created);
        }
    }
    result
}

fn stage_and_rename(
    dir: &Path,
    parent: &Path,
    image: &Assembled,
    blobs: &[BlobSource],
    tags: &[String],
) -> Result<(), StoreError> {
    let staging = tempfile::Builder::new()
        .prefix(".repave-staging-")
        .tempdir_in(parent)?;
    fs_err::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))?;
    let layout = Layout::create(staging.path())?;
    fill(&layout, image, blobs, tags)?;
    if dir.exists() {
        // An empty directory the user made for the output: replace it.
        fs_err::remove_dir(dir)?;
    }
    fs_err::rename(staging.keep(), dir)?;
    Ok(())
}

fn first_missing_ancestor(path: &Path) -> Option<PathBuf> {
    let mut missing = None;
    for ancestor in path.ancestors() {
        if ancestor.as_os_str().is_empty() || ancestor.exists() {
            break;
        }
        missing = Some(ancestor.to_path_buf());
    }
    missing
}

fn fill(
    layout: &Layout,
    image: &Assembled,
    blobs: &[BlobSource],
    tags: &[String],
) -> Result<(), StoreError> {
    for blob in blobs {
        layout.import_blob(&blob.file, &blob.digest)?;
    }
    layout.write_blob(&image.config_bytes)?;
    layout.write_blob(&image.manifest_bytes)?;
    let descriptor = crate::image::spec::Descriptor::new(
        crate::image::spec::MEDIA_TYPE_MANIFEST,
        image.manifest_digest.clone(),
        image.manifest_bytes.len() as u64,
    );
    for tag in tags {
        layout.set_tag(tag, &descriptor)?;
    }
    Ok(())
}

/// An image read from a reference, with the layout its blobs are in.
#[derive(Clone, Debug)]
pub struct SourceImage {
    pub layout: Layout,
    pub image: StoredImage,
    /// A layout made for the read (from a docker-archive or a registry), removed when the
    /// last clone of this value is dropped.
    pub scratch: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl SourceImage {
    /// Where each of the image's layer blobs is.
    pub fn layer_files(&self) -> Vec<BlobSource> {
        self.image
            .manifest
            .layers
            .iter()
            .map(|d| BlobSource {
                digest: d.digest.clone(),
                file: self.layout.blob_path(&d.digest),
            })
            .collect()
    }
}

/// Reads the image `reference` names, with every layer.
pub fn read_image(reference: &Reference) -> Result<SourceImage, StoreError> {
    read(reference, Fetch::Everything)
}

/// Reads the manifest and config `reference` names. The layers of a registry image are
/// left in the registry, so their [`SourceImage::layer_files`] do not exist; such an image
/// can be written back to the same registry (layers present or mounted), not elsewhere.
pub fn read_image_metadata(reference: &Reference) -> Result<SourceImage, StoreError> {
    read(reference, Fetch::Metadata)
}

fn read(reference: &Reference, fetch: Fetch) -> Result<SourceImage, StoreError> {
    match reference {
        Reference::Oci { dir, tag, digest } => {
            let layout = Layout::open(dir)?;
            let descriptor = layout.resolve(tag.as_deref(), digest.as_ref())?;
            let image = layout.image(&descriptor)?;
            for layer in &image.manifest.layers {
                if !layout.has_blob(&layer.digest) {
                    return Err(LayoutError::MissingBlob {
                        layout: dir.clone(),
                        digest: layer.digest.clone(),
                    }
                    .into());
                }
            }
            Ok(SourceImage {
                layout,
                image,
                scratch: None,
            })
        }
        Reference::DockerArchive { file, name } => {
            super::archive::read_archive(file, name.as_deref())
        }
        Reference::Registry {
            host,
            repository,
            tag,
            digest,
        } => Ok(registry::pull(
            host,
            repository,
            tag.as_deref(),
            digest.as_ref(),
            fetch,
        )?),
    }
}
