//! OCI image layout directories: reading images out of them and writing images into them
//! atomically. Blobs land under their digest by rename and `index.json` is replaced last,
//! so a reader never sees a manifest whose blobs are missing, and an interrupted write
//! leaves the previous layout valid.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::{digest_reader, Digest};
use crate::image::spec::{
    Descriptor, ImageConfig, Index, Manifest, ANNOTATION_REF_NAME, MEDIA_TYPE_DOCKER_LIST,
    MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
};
use crate::json;

const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("`{}` is not an OCI image layout (no oci-layout file): pass a directory written by repave, skopeo or umoci", .0.display())]
    NotALayout(PathBuf),
    #[error("`{}` exists and is not an OCI image layout: choose another output directory or remove it", .0.display())]
    NotEmpty(PathBuf),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("`{}` is not valid JSON of the expected shape: {source}", .path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("blob {digest} in `{}` does not match its digest: the layout is corrupt, rebuild or re-pull it", .layout.display())]
    Corrupt { layout: PathBuf, digest: Digest },
    #[error("blob {digest} is missing from `{}`", .layout.display())]
    MissingBlob { layout: PathBuf, digest: Digest },
    #[error("no image tagged `{tag}` in `{}` (tags there: {available})", .layout.display())]
    NoSuchTag {
        layout: PathBuf,
        tag: String,
        available: String,
    },
    #[error("no manifest {digest} in `{}`", .layout.display())]
    NoSuchDigest { layout: PathBuf, digest: Digest },
    #[error("`{}` holds {count} images: name one with `oci:DIR:TAG` or `oci:DIR@sha256:…`", .layout.display())]
    Ambiguous { layout: PathBuf, count: usize },
    #[error("`{}` holds no image", .0.display())]
    Empty(PathBuf),
    #[error("manifest {digest} in `{}` has media type `{media_type}`, which repave cannot read", .layout.display())]
    UnsupportedMediaType {
        layout: PathBuf,
        digest: Digest,
        media_type: String,
    },
}

/// An OCI image layout directory.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

/// An image found in a layout: its manifest descriptor, manifest and config.
#[derive(Clone, Debug)]
pub struct StoredImage {
    pub descriptor: Descriptor,
    pub manifest: Manifest,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
}

impl Layout {
    /// Opens an existing layout.
    pub fn open(root: &Path) -> Result<Layout, LayoutError> {
        if !root.join("oci-layout").is_file() {
            return Err(LayoutError::NotALayout(root.to_path_buf()));
        }
        Ok(Layout {
            root: root.to_path_buf(),
        })
    }

    /// Creates an empty layout at `root`, which must not exist or be an empty directory.
    pub fn create(root: &Path) -> Result<Layout, LayoutError> {
        if root.exists() && fs_err::read_dir(root)?.next().is_some() {
            return Err(LayoutError::NotEmpty(root.to_path_buf()));
        }
        fs_err::create_dir_all(root.join("blobs").join("sha256"))?;
        fs_err::write(root.join("oci-layout"), OCI_LAYOUT)?;
        let layout = Layout {
            root: root.to_path_buf(),
        };
        layout.write_index(&Index::empty())?;
        Ok(layout)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a blob and checks it against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(digest);
        if !path.is_file() {
            return Err(LayoutError::MissingBlob {
                layout: self.root.clone(),
                digest: digest.clone(),
            });
        }
        let bytes = fs_err::read(&path)?;
        if &Digest::of(&bytes) != digest {
            return Err(LayoutError::Corrupt {
                layout: self.root.clone(),
                digest: digest.clone(),
            });
        }
        Ok(bytes)
    }

    /// Checks a (possibly large) blob against its digest without loading it.
    pub fn verify_blob(&self, digest: &Digest) -> Result<u64, LayoutError> {
        let path = self.blob_path(digest);
        let file = fs_err::File::open(&path).map_err(|_| LayoutError::MissingBlob {
            layout: self.root.clone(),
            digest: digest.clone(),
        })?;
        let (actual, size) = digest_reader(std::io::BufReader::new(file))?;
        if &actual != digest {
            return Err(LayoutError::Corrupt {
                layout: self.root.clone(),
                digest: digest.clone(),
            });
        }
        Ok(size)
    }

    /// Stores `bytes` as a blob (atomically) and returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, LayoutError> {
        let digest = Digest::of(bytes);
        if !self.has_blob(&digest) {
            let dir = self.root.join("blobs").join("sha256");
            let mut tmp = readable_tempfile(&dir)?;
            tmp.write_all(bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(self.blob_path(&digest))
                .map_err(|e| LayoutError::Io(e.error))?;
        }
        Ok(digest)
    }

    /// Moves or links the file at `src`, already known to hash to `digest`, into the layout.
    /// A hard link is tried first so that cached blobs are not copied; a copy goes through
    /// a temporary file and a rename so a partial blob is never visible.
    pub fn import_blob(&self, src: &Path, digest: &Digest) -> Result<(), LayoutError> {
        let dest = self.blob_path(digest);
        if dest.is_file() {
            return Ok(());
        }
        if std::fs::hard_link(src, &dest).is_ok() {
            return Ok(());
        }
        let dir = self.root.join("blobs").join("sha256");
        let tmp = readable_tempfile(&dir)?;
        fs_err::copy(src, tmp.path())?;
        tmp.persist(&dest).map_err(|e| LayoutError::Io(e.error))?;
        Ok(())
    }

    pub fn index(&self) -> Result<Index, LayoutError> {
        let path = self.root.join("index.json");
        let bytes = fs_err::read(&path)?;
        serde_json::from_slice(&bytes).map_err(|source| LayoutError::Json { path, source })
    }

    /// Replaces `index.json` atomically.
    pub fn write_index(&self, index: &Index) -> Result<(), LayoutError> {
        let bytes = json::to_canonical_vec(index).map_err(|source| LayoutError::Json {
            path: self.root.join("index.json"),
            source,
        })?;
        let mut tmp = readable_tempfile(&self.root)?;
        tmp.write_all(&bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.root.join("index.json"))
            .map_err(|e| LayoutError::Io(e.error))?;
        Ok(())
    }

    /// Points `tag` at `manifest`, replacing whatever the tag named before and keeping
    /// every other entry of the index.
    pub fn set_tag(&self, tag: &str, manifest: &Descriptor) -> Result<(), LayoutError> {
        let mut index = self.index()?;
        index
            .manifests
            .retain(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) != Some(tag));
        let mut entry = manifest.clone();
        entry
            .annotations
            .insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
        index.manifests.push(entry);
        self.write_index(&index)
    }

    /// Finds the manifest descriptor named by a tag, a digest, or (with neither) the only
    /// image in the layout.
    pub fn resolve(
        &self,
        tag: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<Descriptor, LayoutError> {
        let index = self.index()?;
        if let Some(digest) = digest {
            return match index.manifests.iter().find(|d| &d.digest == digest) {
                Some(found) => Ok(found.clone()),
                None if self.has_blob(digest) => {
                    let size = self.verify_blob(digest)?;
                    Ok(Descriptor::new(MEDIA_TYPE_MANIFEST, digest.clone(), size))
                }
                None => Err(LayoutError::NoSuchDigest {
                    layout: self.root.clone(),
                    digest: digest.clone(),
                }),
            };
        }
        if let Some(tag) = tag {
            let found = index
                .manifests
                .iter()
                .find(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(tag));
            return found.cloned().ok_or_else(|| LayoutError::NoSuchTag {
                layout: self.root.clone(),
                tag: tag.to_owned(),
                available: tags(&index),
            });
        }
        match index.manifests.as_slice() {
            [] => Err(LayoutError::Empty(self.root.clone())),
            [only] => Ok(only.clone()),
            many => Err(LayoutError::Ambiguous {
                layout: self.root.clone(),
                count: many.len(),
            }),
        }
    }

    /// Reads the image a descriptor points at. A nested index is followed to its
    /// linux/amd64 entry (or its only entry).
    pub fn image(&self, descriptor: &Descriptor) -> Result<StoredImage, LayoutError> {
        let mut descriptor = descriptor.clone();
        if descriptor.media_type == MEDIA_TYPE_INDEX
            || descriptor.media_type == MEDIA_TYPE_DOCKER_LIST
        {
            let bytes = self.read_blob(&descriptor.digest)?;
            let index: Index = self.parse(&descriptor.digest, &bytes)?;
            let chosen = index
                .manifests
                .iter()
                .find(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                })
                .or(index.manifests.first())
                .ok_or_else(|| LayoutError::Empty(self.root.clone()))?;
            descriptor = chosen.clone();
        }
        let bytes = self.read_blob(&descriptor.digest)?;
        let manifest: Manifest = self.parse(&descriptor.digest, &bytes)?;
        if manifest.config.media_type.contains("index") {
            return Err(LayoutError::UnsupportedMediaType {
                layout: self.root.clone(),
                digest: descriptor.digest.clone(),
                media_type: manifest.config.media_type,
            });
        }
        let config_bytes = self.read_blob(&manifest.config.digest)?;
        let config: ImageConfig = self.parse(&manifest.config.digest, &config_bytes)?;
        Ok(StoredImage {
            descriptor,
            manifest,
            config,
            config_bytes,
        })
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<T, LayoutError> {
        serde_json::from_slice(bytes).map_err(|source| LayoutError::Json {
            path: self.blob_path(digest),
            source,
        })
    }
}

/// A temporary file that becomes world-readable (0644) when persisted, whatever the umask,
/// as layouts are shared and served.
fn readable_tempfile(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    Ok(tmp)
}

fn tags(index: &Index) -> String {
    let tags: Vec<&str> = index
        .manifests
        .iter()
        .filter_map(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str))
        .collect();
    if tags.is_empty() {
        "none".to_owned()
    } else {
        tags.join(", ")
    }
}
