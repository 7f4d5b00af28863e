//! Stacks new layers on a base image and produces the config and manifest, serialized
//! canonically. Base layers are passed through untouched (same descriptors, same bytes);
//! nothing here reads files or knows where the image will be written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::epoch;
use crate::image::spec::{
    Descriptor, History, ImageConfig, Manifest, RootFs, RuntimeConfig, MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_MANIFEST,
};
use crate::json;
use crate::layer::{LayerBlob, MEDIA_TYPE_LAYER_GZIP};

/// A layer written by this build, waiting in a file to be stored with the image.
#[derive(Clone, Debug)]
pub struct NewLayer {
    pub blob: LayerBlob,
    pub file: PathBuf,
    /// What the layer holds, for history and for `--json` output.
    pub holds: String,
}

/// What the new image's runtime config says, beyond what the base gives.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub epoch: u64,
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub exposed_ports: Vec<String>,
    /// Labels added on top of the base's (a later value for the same key wins).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// A finished image: the serialized config and manifest, and where each blob comes from.
#[derive(Clone, Debug)]
pub struct Assembled {
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
    pub config_digest: Digest,
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
    pub manifest_digest: Digest,
}

/// Builds config and manifest for `base` plus `layers`. `base_layers` are the base
/// manifest's layer descriptors, kept as they are.
pub fn assemble(
    base_config: &ImageConfig,
    base_layers: &[Descriptor],
    layers: &[NewLayer],
    settings: &Settings,
) -> serde_json::Result<Assembled> {
    let created = epoch::rfc3339(settings.epoch);
    let mut config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: base_config.architecture.clone(),
        os: base_config.os.clone(),
        variant: base_config.variant.clone(),
        os_version: base_config.os_version.clone(),
        config: runtime_config(&base_config.config, settings),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: base_config.rootfs.diff_ids.clone(),
        },
        history: base_history(base_config, base_layers.len()),
        extra: BTreeMap::new(),
    };
    for layer in layers {
        config.rootfs.diff_ids.push(layer.blob.diff_id.clone());
        config.history.push(History {
            created: Some(created.clone()),
            created_by: Some(format!("repave: {}", layer.holds)),
            comment: None,
            empty_layer: None,
        });
    }
    let config_bytes = json::to_canonical_vec(&config)?;
    let config_digest = Digest::of(&config_bytes);

    let mut descriptors = base_layers.to_vec();
    descriptors.extend(layers.iter().map(|layer| {
        Descriptor::new(
            MEDIA_TYPE_LAYER_GZIP,
            layer.blob.digest.clone(),
            layer.blob.size,
        )
    }));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.to_owned()),
        config: Descriptor::new(
            MEDIA_TYPE_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        ),
        layers: descriptors,
        annotations: settings.annotations.clone(),
    };
    let manifest_bytes = json::to_canonical_vec(&manifest)?;
    let manifest_digest = Digest::of(&manifest_bytes);
    Ok(Assembled {
        config,
        config_bytes,
        config_digest,
        manifest,
        manifest_bytes,
        manifest_digest,
    })
}

fn runtime_config(base: &RuntimeConfig, settings: &Settings) -> RuntimeConfig {
    let mut labels = base.labels.clone().unwrap_or_default();
    labels.extend(settings.labels.clone());
    let mut ports = base.exposed_ports.clone().unwrap_or_default();
    for port in &settings.exposed_ports {
        ports.insert(port.clone(), serde_json::json!({}));
    }
    RuntimeConfig {
        user: settings.user.clone().or_else(|| base.user.clone()),
        exposed_ports: (!ports.is_empty()).then_some(ports),
        env: (!settings.env.is_empty())
            .then(|| settings.env.clone())
            .or_else(|| base.env.clone()),
        entrypoint: settings
            .entrypoint
            .clone()
            .or_else(|| base.entrypoint.clone()),
        // A new entrypoint makes the base's Cmd meaningless, so it is dropped with it.
        cmd: match &settings.entrypoint {
            Some(_) => settings.cmd.clone(),
            None => settings.cmd.clone().or_else(|| base.cmd.clone()),
        },
        working_dir: settings
            .working_dir
            .clone()
            .or_else(|| base.working_dir.clone()),
        labels: (!labels.is_empty()).then_some(labels),
        stop_signal: base.stop_signal.clone(),
        extra: base.extra.clone(),
    }
}

/// The base's history, or one entry per base layer when the base has none, so that the
/// new image's history always matches its layers.
pub fn base_history(base: &ImageConfig, layer_count: usize) -> Vec<History> {
    let non_empty = base
        .history
        .iter()
        .filter(|h| h.empty_layer != Some(true))
        .count();
    if non_empty == layer_count {
        return base.history.clone();
    }
    (0..layer_count)
        .map(|_| History {
            created: base.created.clone(),
            created_by: Some("base layer".to_owned()),
            comment: None,
            empty_layer: None,
        })
        .collect()
}
