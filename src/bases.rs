//! Vetted bases as images. A package base is built from its lock alone into an image and
//! kept in the cache under a key of the lock, the tool version and the epoch, so a second
//! build on the same lock costs nothing; an image base is read from any reference and
//! pinned by the manifest digest it resolves to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tracing::{debug, info};

use crate::debian::{self, Lock};
use crate::digest::Digest;
use crate::image::assemble::{assemble, Assembled, NewLayer, Settings};
use crate::image::metadata::LABEL_BASE_NAME;
use crate::image::spec::{ImageConfig, RootFs, ANNOTATION_REF_NAME};
use crate::layer::batch::{write_layers, LayerInput};
use crate::reference::Reference;
use crate::store::output::{read_image, write_image, BlobSource, SourceImage};

/// `PATH` of every package base, as Debian's login shells set it.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The label listing a package base's packages as `name=version`, comma separated.
pub const LABEL_PACKAGES: &str = "io.repave.base.packages";

/// A base ready to build on.
#[derive(Clone, Debug)]
pub struct Base {
    /// Its definition's name or its repository, never a file path.
    pub name: String,
    pub image: SourceImage,
    /// Packages as `(name, version)`, from the lock or the base's label.
    pub packages: Vec<(String, String)>,
}

impl Base {
    pub fn digest(&self) -> &Digest {
        &self.image.image.descriptor.digest
    }

    /// How the image metadata names the base: `name@sha256:…`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.name, self.digest())
    }

    /// Whether the base holds `/bin/sh`, judged from its packages (a package base) or
    /// assumed for an image base that lists none.
    pub fn has_shell(&self) -> bool {
        if self.packages.is_empty() {
            return true;
        }
        self.packages
            .iter()
            .any(|(name, _)| matches!(name.as_str(), "dash" | "bash" | "busybox"))
    }
}

/// A package base image, assembled but not yet stored.
pub struct BuiltBase {
    pub image: Assembled,
    pub blobs: Vec<BlobSource>,
    pub work: tempfile::TempDir,
}

/// Builds the image of a package base from its lock.
pub fn build_package_base(
    lock: &Lock,
    opts: &debian::Options,
    epoch: u64,
) -> anyhow::Result<BuiltBase> {
    let content = debian::base_content(lock, opts)?;
    let work_root = opts.cache_dir.join("tmp");
    fs_err::create_dir_all(&work_root)?;
    let work = tempfile::Builder::new()
        .prefix("base-")
        .tempdir_in(&work_root)
        .with_context(|| format!("cannot create a work directory in {}", work_root.display()))?;
    let inputs = content
        .layers
        .into_iter()
        .map(LayerInput::Entries)
        .collect();
    let written = write_layers(inputs, epoch, work.path(), None)?;

    let mut labels: BTreeMap<String, String> = content.labels;
    labels.insert(LABEL_BASE_NAME.to_owned(), lock.name.clone());
    let packages: Vec<String> = content
        .packages
        .iter()
        .map(|(name, version)| format!("{name}={version}"))
        .collect();
    labels.insert(LABEL_PACKAGES.to_owned(), packages.join(","));

    let empty = ImageConfig {
        architecture: lock.architecture.clone(),
        os: "linux".to_owned(),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: Vec::new(),
        },
        ..ImageConfig::default()
    };
    let layers: Vec<NewLayer> = written
        .into_iter()
        .enumerate()
        .map(|(i, w)| NewLayer {
            blob: w.blob,
            file: w.file,
            holds: format!("base {} layer {}", lock.name, i + 1),
        })
        .collect();
    let settings = Settings {
        epoch,
        env: vec![
            DEFAULT_PATH.to_owned(),
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt".to_owned(),
        ],
        labels,
        ..Settings::default()
    };
    let image = assemble(&empty, &[], &layers, &settings)?;
    let blobs = layers
        .iter()
        .map(|l| BlobSource {
            digest: l.blob.digest.clone(),
            file: l.file.clone(),
        })
        .collect();
    Ok(BuiltBase { image, blobs, work })
}

/// The package base of `lock`, from the cache or built now and cached.
pub fn package_base(lock: &Lock, opts: &debian::Options, epoch: u64) -> anyhow::Result<Base> {
    let key = Digest::of(
        format!(
            "{}\n{}\n{}\n{}",
            env!("CARGO_PKG_VERSION"),
            crate::layer::writer::LAYER_FORMAT,
            epoch,
            lock.to_toml()
        )
        .as_bytes(),
    );
    let dir = opts.cache_dir.join("bases").join(key.hex());
    let reference = Reference::Oci {
        dir: dir.clone(),
        tag: Some(lock.name.clone()),
        digest: None,
    };
    if !dir.join("index.json").is_file() {
        info!(base = %lock.name, packages = lock.locked.len(), "building package base");
        let built = build_package_base(lock, opts, epoch)?;
        write_image(&reference, &built.image, &built.blobs, &[])?;
    } else {
        debug!(base = %lock.name, dir = %dir.display(), "package base found in cache");
    }
    let image = read_image(&reference)?;
    let packages = lock
        .locked
        .iter()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    Ok(Base {
        name: lock.name.clone(),
        image,
        packages,
    })
}

/// Set to `1` to build on a registry base named by tag alone.
pub const ALLOW_BASE_TAG_ENV: &str = "REPAVE_ALLOW_BASE_TAG";

/// An image base named by `reference`. A registry base named by tag alone is refused
/// unless [`ALLOW_BASE_TAG_ENV`] opts in, since the tag may move between builds.
pub fn image_base(reference: &Reference, allow_tag: bool) -> anyhow::Result<Base> {
    image_base_read(reference, true, allow_tag)
}

/// Like [`image_base`]; without `layers`, a registry base's layers stay in the registry
/// (for a rebase whose result goes back to the same registry, where they are mounted).
pub fn image_base_read(
    reference: &Reference,
    layers: bool,
    allow_tag: bool,
) -> anyhow::Result<Base> {
    if let Reference::Registry { digest: None, .. } = reference {
        if !allow_tag && std::env::var(ALLOW_BASE_TAG_ENV).as_deref() != Ok("1") {
            anyhow::bail!(
                "base `{reference}` is named by tag alone, which can move: pin it by digest (`docker://HOST/REPO@sha256:…`, `skopeo inspect` prints it) or pass --allow-base-tag (or set {ALLOW_BASE_TAG_ENV}=1) to use what the tag names now"
            );
        }
    }
    let image = if layers {
        read_image(reference)
    } else {
        crate::store::output::read_image_metadata(reference)
    }
    .with_context(|| format!("cannot read base {reference}"))?;
    let labels = image.image.config.labels();
    let name = labels
        .get(LABEL_BASE_NAME)
        .cloned()
        .or_else(|| match reference {
            Reference::Registry {
                host, repository, ..
            } => Some(format!("{host}/{repository}")),
            _ => None,
        })
        .or_else(|| {
            image
                .image
                .descriptor
                .annotations
                .get(ANNOTATION_REF_NAME)
                .cloned()
        })
        .unwrap_or_else(|| "base".to_owned());
    let packages = match labels.get(LABEL_PACKAGES) {
        Some(list) => list
            .split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect(),
        // A base not built by repave: its dpkg status entries say what it holds.
        None if layers => crate::store::archive::dpkg_packages(&image)
            .with_context(|| format!("cannot read the dpkg status of base {reference}"))?,
        None => Vec::new(),
    };
    Ok(Base {
        name,
        image,
        packages,
    })
}

/// Options for package bases, from the usual flags.
pub fn debian_options(
    keyring: Option<PathBuf>,
    mirrors: &[String],
    cache_dir: &Path,
) -> anyhow::Result<debian::Options> {
    let mut sources = debian::SourcesConfig::from_apt_dir(Path::new("/etc/apt"))?;
    for mirror in mirrors {
        sources.add_override(mirror)?;
    }
    Ok(debian::Options {
        keyring: keyring.unwrap_or_else(|| PathBuf::from(debian::DEFAULT_KEYRING)),
        sources,
        cache_dir: cache_dir.to_path_buf(),
    })
}
