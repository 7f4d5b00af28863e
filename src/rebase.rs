//! Rebase: swaps the base layers under an image for a new base's, by manifest surgery.
//! The old base is found from the image's own record (`io.repave.base`, cross-checked with
//! the CNB `runImage.topLayer` and the `org.opencontainers.image.base.digest` annotation)
//! and must be a prefix of the image's layers by diff_id. The new base must be the same
//! base, patched. App layers keep their bytes; base-owned config comes from the new base.

use std::collections::BTreeMap;

use crate::bases::{Base, LABEL_PACKAGES};
use crate::digest::Digest;
use crate::export::base_record;
use crate::image::assemble::{base_history, Assembled};
use crate::image::metadata::{
    BaseRecord, LifecycleMetadata, LABEL_BASE, LABEL_DISTRO_NAME, LABEL_DISTRO_VERSION,
    LABEL_LIFECYCLE,
};
use crate::image::spec::{
    Descriptor, ImageConfig, Manifest, ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME,
    MEDIA_TYPE_CONFIG,
};
use crate::json;
use crate::store::output::{BlobSource, SourceImage};

#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    #[error("the image has no base record (label `{LABEL_BASE}`): only images built by repave can be rebased; rebuild it with `repave build`")]
    NoRecord,
    #[error("the image's base record is unreadable: {0}; rebuild the image")]
    BadRecord(String),
    #[error("the image's records disagree about its base ({0}): rebuild the image")]
    RecordMismatch(String),
    #[error("the recorded base is not a prefix of the image's layers: layer {index} has diff_id {found}, the base's top layer is {expected}; the image was changed after it was built, rebuild it")]
    NotPrefix {
        index: usize,
        found: String,
        expected: Digest,
    },
    #[error("{what} differs: the image has `{old}`, the new base `{new}` (pass --force to rebase anyway)")]
    Platform {
        what: &'static str,
        old: String,
        new: String,
    },
    #[error("the new base lacks packages the old base had ({0}): it is not the same base patched (pass --force to rebase anyway)")]
    MissingPackages(String),
    #[error("the new base `{new}` is not the old base `{old}` (pass --force to rebase anyway)")]
    OtherBase { old: String, new: String },
    #[error("cannot serialize the rebased image: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A rebased image, ready to be written.
pub struct Rebased {
    pub image: Assembled,
    pub blobs: Vec<BlobSource>,
    pub old_base: BaseRecord,
    pub new_base: BaseRecord,
    /// How many of the image's layers were kept (the app's).
    pub layers_reused: usize,
}

/// Rebases `source` onto `new_base`; `force` skips the checks that the new base is the
/// same base, patched (never the checks that find the old base).
pub fn rebase(source: &SourceImage, new_base: &Base, force: bool) -> Result<Rebased, RebaseError> {
    let image = &source.image;
    let labels = image.config.labels();
    let old: BaseRecord =
        serde_json::from_str(labels.get(LABEL_BASE).ok_or(RebaseError::NoRecord)?)
            .map_err(|e| RebaseError::BadRecord(e.to_string()))?;
    check_record(
        &old,
        image.config.rootfs.diff_ids.as_slice(),
        &labels,
        &image.manifest,
    )?;
    let new = base_record(new_base)?;
    let new_config = &new_base.image.image.config;
    if !force {
        check_same_base(&old, &image.config, &new, new_config)?;
    }

    let mut config = image.config.clone();
    config.architecture = new_config.architecture.clone();
    config.os = new_config.os.clone();
    config.variant = new_config.variant.clone();
    config.os_version = new_config.os_version.clone();
    config.rootfs.diff_ids = new_config.rootfs.diff_ids.clone();
    config
        .rootfs
        .diff_ids
        .extend(image.config.rootfs.diff_ids[old.layers..].iter().cloned());
    let mut history = base_history(new_config, new.layers);
    history.extend(image.config.history.iter().skip(old.history).cloned());
    config.history = history;
    config.config.env = Some(rebase_env(
        image.config.config.env.as_deref().unwrap_or_default(),
        &old.env,
        &new.env,
    ));
    config.config.labels = Some(rebase_labels(&labels, &old, &new, new_config)?);
    let config_bytes = json::to_canonical_vec(&config)?;
    let config_digest = Digest::of(&config_bytes);

    let app_layers = &image.manifest.layers[old.layers..];
    let mut layers = new_base.image.image.manifest.layers.clone();
    layers.extend(app_layers.iter().cloned());
    let mut annotations = image.manifest.annotations.clone();
    annotations.insert(ANNOTATION_BASE_NAME.to_owned(), new.name.clone());
    annotations.insert(ANNOTATION_BASE_DIGEST.to_owned(), new.digest.to_string());
    let manifest = Manifest {
        schema_version: 2,
        media_type: image.manifest.media_type.clone(),
        config: Descriptor::new(
            MEDIA_TYPE_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        ),
        layers,
        annotations,
    };
    let manifest_bytes = json::to_canonical_vec(&manifest)?;
    let manifest_digest = Digest::of(&manifest_bytes);

    let mut blobs = new_base.image.layer_files();
    blobs.extend(source.layer_files().into_iter().skip(old.layers));
    Ok(Rebased {
        image: Assembled {
            config,
            config_bytes,
            config_digest,
            manifest,
            manifest_bytes,
            manifest_digest,
        },
        blobs,
        layers_reused: app_layers.len(),
        old_base: old,
        new_base: new,
    })
}

/// The record must agree with the CNB label and the annotation, and its layers must be a
/// prefix of the image's by diff_id (compressed digests change with recompression).
fn check_record(
    old: &BaseRecord,
    diff_ids: &[Digest],
    labels: &BTreeMap<String, String>,
    manifest: &Manifest,
) -> Result<(), RebaseError> {
    if let Some(annotated) = manifest.annotations.get(ANNOTATION_BASE_DIGEST) {
        if *annotated != old.digest.to_string() {
            return Err(RebaseError::RecordMismatch(format!(
                "annotation {ANNOTATION_BASE_DIGEST} says {annotated}, the record {}",
                old.digest
            )));
        }
    }
    if let Some(lifecycle) = labels.get(LABEL_LIFECYCLE) {
        let lifecycle: LifecycleMetadata =
            serde_json::from_str(lifecycle).map_err(|e| RebaseError::BadRecord(e.to_string()))?;
        if lifecycle.run_image.top_layer != old.top_layer {
            return Err(RebaseError::RecordMismatch(format!(
                "runImage.topLayer is {}, the record's top layer {}",
                lifecycle.run_image.top_layer, old.top_layer
            )));
        }
    }
    let index = old
        .layers
        .checked_sub(1)
        .ok_or_else(|| RebaseError::BadRecord("a base of no layers".into()))?;
    match diff_ids.get(index) {
        Some(found) if *found == old.top_layer && diff_ids.len() >= old.layers => Ok(()),
        found => Err(RebaseError::NotPrefix {
            index,
            found: found.map_or_else(|| "none".to_owned(), Digest::to_string),
            expected: old.top_layer.clone(),
        }),
    }
}

/// The new base must run where the image ran and be the same base, patched: the same
/// distro release, and every package the old one had (a package base) or the same
/// repository (any other image base).
fn check_same_base(
    old: &BaseRecord,
    image: &ImageConfig,
    new: &BaseRecord,
    new_config: &ImageConfig,
) -> Result<(), RebaseError> {
    let platform = |what, old: &str, new: &str| {
        (old != new).then(|| RebaseError::Platform {
            what,
            old: old.to_owned(),
            new: new.to_owned(),
        })
    };
    if let Some(err) = platform("os", &image.os, &new_config.os).or_else(|| {
        platform(
            "architecture",
            &image.architecture,
            &new_config.architecture,
        )
    }) {
        return Err(err);
    }
    if let (Some(a), Some(b)) = (&image.variant, &new_config.variant) {
        if let Some(err) = platform("variant", a, b) {
            return Err(err);
        }
    }
    let image_labels = image.labels();
    let new_labels = new_config.labels();
    for key in [LABEL_DISTRO_NAME, LABEL_DISTRO_VERSION] {
        let a = image_labels.get(key).map(String::as_str).unwrap_or("");
        let b = new_labels.get(key).map(String::as_str).unwrap_or("");
        if let Some(err) = platform(
            if key == LABEL_DISTRO_NAME {
                "distro name"
            } else {
                "distro version"
            },
            a,
            b,
        ) {
            return Err(err);
        }
    }
    // A package base (built by repave from a lock) is the same base when it holds every
    // package the old one held; any other image base when it comes from the same repository.
    let package_base =
        old.labels.iter().any(|key| key == LABEL_PACKAGES) && !old.packages.is_empty();
    if !package_base {
        if old.name != new.name {
            return Err(RebaseError::OtherBase {
                old: old.name.clone(),
                new: new.name.clone(),
            });
        }
        return Ok(());
    }
    let names = |packages: &[String]| -> std::collections::BTreeSet<String> {
        packages
            .iter()
            .map(|p| p.split_once('=').map_or(p.as_str(), |(n, _)| n).to_owned())
            .collect()
    };
    let missing: Vec<String> = names(&old.packages)
        .difference(&names(&new.packages))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RebaseError::MissingPackages(missing.join(", ")))
    }
}

/// The app's environment with the base-owned parts swapped: a variable whose value came
/// from the old base takes the new base's value, and where a buildpack extended the old
/// base's value (a PATH prefix), the old part is replaced by the new.
fn rebase_env(image: &[String], old: &[String], new: &[String]) -> Vec<String> {
    let split = |kv: &String| {
        kv.split_once('=')
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
    };
    let old: BTreeMap<String, String> = old.iter().filter_map(split).collect();
    let new: BTreeMap<String, String> = new.iter().filter_map(split).collect();
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (key, value) in image.iter().filter_map(split) {
        seen.insert(key.clone());
        let value = match (old.get(&key), new.get(&key)) {
            (Some(was), Some(now)) if value == *was => now.clone(),
            (Some(was), Some(now)) if !was.is_empty() && value.contains(was.as_str()) => {
                value.replacen(was.as_str(), now, 1)
            }
            (Some(was), None) if value == *was => continue,
            _ => value,
        };
        out.push(format!("{key}={value}"));
    }
    for (key, value) in &new {
        if !seen.contains(key) && !old.contains_key(key) {
            out.push(format!("{key}={value}"));
        }
    }
    out
}

/// The app's labels with the old base's replaced by the new base's, and the CNB and
/// repave records naming the new base.
fn rebase_labels(
    labels: &BTreeMap<String, String>,
    old: &BaseRecord,
    new: &BaseRecord,
    new_config: &ImageConfig,
) -> Result<BTreeMap<String, String>, RebaseError> {
    let mut out = new_config.labels();
    for (key, value) in labels {
        if !old.labels.contains(key) {
            out.insert(key.clone(), value.clone());
        }
    }
    if let Some(lifecycle) = labels.get(LABEL_LIFECYCLE) {
        let mut lifecycle: LifecycleMetadata =
            serde_json::from_str(lifecycle).map_err(|e| RebaseError::BadRecord(e.to_string()))?;
        lifecycle.run_image.top_layer = new.top_layer.clone();
        lifecycle.run_image.reference = format!("{}@{}", new.name, new.digest);
        out.insert(
            LABEL_LIFECYCLE.to_owned(),
            json::to_canonical_string(&lifecycle)?,
        );
    }
    out.insert(LABEL_BASE.to_owned(), json::to_canonical_string(new)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn env_swaps_base_values_and_keeps_the_apps() {
        let image = strings(&[
            "PATH=/layers/x/bin:/usr/bin",
            "PORT=8080",
            "OLD=1",
            "KEEP=2",
        ]);
        let old = strings(&["PATH=/usr/bin", "OLD=1", "KEEP=base"]);
        let new = strings(&["PATH=/usr/local/bin:/usr/bin", "KEEP=base2", "ADDED=3"]);
        assert_eq!(
            rebase_env(&image, &old, &new),
            strings(&[
                "PATH=/layers/x/bin:/usr/local/bin:/usr/bin",
                "PORT=8080",
                "KEEP=2",
                "ADDED=3"
            ])
        );
    }
}
