//! The export stage: turns what the buildpacks left (launch layers, the app, processes,
//! env) on a base into layers and the image settings: env, entrypoint, user and the
//! labels that record buildpacks and base. It writes layer blobs to a work directory and
//! knows nothing of targets or the command line.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use tracing::warn;

use crate::bases::Base;
use crate::buildpack::BuildOutput;
use crate::image::assemble::{base_history, NewLayer, Settings};
use crate::image::metadata::{
    BaseRecord, BuildMetadata, BuildpackLayers, BuildpackRef, LayerMetadata, LayerSha,
    LifecycleMetadata, ProcessMetadata, RunImage, LABEL_BASE, LABEL_BUILD, LABEL_LIFECYCLE,
};
use crate::image::spec::{ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME};
use crate::json::to_canonical_string;
use crate::layer::batch::{write_layers, LayerInput};
use crate::layer::source::Rules;
use crate::store::output::BlobSource;

/// The runtime user of every image: `nonroot` in the bases' /etc/passwd.
pub const RUN_USER: &str = "65532:65532";
/// The port apps listen on unless the image's env says otherwise.
pub const DEFAULT_PORT: &str = "8080";

/// A layer written for the image, and which buildpack layer it is (`None` for the app).
pub struct ExportedLayer {
    pub layer: NewLayer,
    pub buildpack: Option<(String, String)>,
}

impl ExportedLayer {
    pub fn blob_source(&self) -> BlobSource {
        BlobSource {
            digest: self.layer.blob.digest.clone(),
            file: self.layer.file.clone(),
        }
    }
}

/// What the user asked of the image beyond what buildpacks and base give.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub env: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub default_process: Option<String>,
}

/// The layers of an export, and what the app layer left out.
pub struct Export {
    pub layers: Vec<ExportedLayer>,
    /// Paths of the app left out by the default and project.toml rules.
    pub excluded: Vec<String>,
    /// Sockets in the app, which an image cannot hold.
    pub skipped: Vec<String>,
}

/// Writes one layer per launch layer and one for the app, in parallel, into `work`.
pub fn export_layers(
    output: &BuildOutput,
    rules: &Rules,
    epoch: u64,
    work: &Path,
    cache: Option<&Path>,
) -> anyhow::Result<Export> {
    let mut inputs = Vec::new();
    let mut names = Vec::new();
    for layer in &output.layers {
        inputs.push(LayerInput::Dir {
            dir: layer.dir.clone(),
            prefix: layer.image_path.clone(),
            rules: Rules::default(),
        });
        names.push((
            Some((layer.buildpack_id.clone(), layer.name.clone())),
            format!("{} layer {}", layer.buildpack_id, layer.name),
        ));
    }
    inputs.push(LayerInput::Dir {
        dir: output.app_dir.clone(),
        prefix: "workspace".to_owned(),
        rules: rules.clone(),
    });
    names.push((None, "app".to_owned()));

    let written = write_layers(inputs, epoch, work, cache)?;
    // The scratch copy, when there was one, already left these out.
    let mut excluded = output.excluded.clone();
    let mut skipped = output.skipped.clone();
    let mut layers = Vec::new();
    for (w, (buildpack, holds)) in written.into_iter().zip(names) {
        excluded.extend(w.collected.excluded);
        skipped.extend(w.collected.skipped);
        layers.push(ExportedLayer {
            layer: NewLayer {
                blob: w.blob,
                file: w.file,
                holds,
            },
            buildpack,
        });
    }
    excluded.sort();
    excluded.dedup();
    Ok(Export {
        layers,
        excluded,
        skipped,
    })
}

/// The processes as `io.buildpacks.build.metadata` lists them.
pub fn processes(output: &BuildOutput) -> Vec<ProcessMetadata> {
    output
        .processes
        .iter()
        .map(|p| ProcessMetadata {
            kind: p.r#type.clone(),
            command: p.command.iter().take(1).cloned().collect(),
            args: p.command.iter().skip(1).cloned().collect(),
            direct: true,
            buildpack_id: p.buildpack_id.clone(),
            default: output.default_process.as_deref() == Some(p.r#type.as_str()),
        })
        .collect()
}

/// The new image's settings: env, entrypoint, user, working directory, labels and the
/// base annotations.
pub fn image_settings(
    base: &Base,
    output: &BuildOutput,
    layers: &[ExportedLayer],
    overrides: &Overrides,
    epoch: u64,
) -> anyhow::Result<Settings> {
    let base_config = &base.image.image.config;
    let base_env: Vec<(String, String)> = base_config
        .config
        .env
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let mut image_env = output.launch_env(&base_env);
    if !image_env.iter().any(|(k, _)| k == "PORT") {
        image_env.push(("PORT".to_owned(), DEFAULT_PORT.to_owned()));
    }
    for (key, value) in &overrides.env {
        image_env.retain(|(k, _)| k != key);
        image_env.push((key.clone(), value.clone()));
    }

    let wanted = overrides
        .default_process
        .clone()
        .or_else(|| output.default_process.clone());
    let entrypoint = match &wanted {
        Some(kind) => {
            let process = output
                .processes
                .iter()
                .find(|p| &p.r#type == kind)
                .with_context(|| {
                    let known: Vec<&str> =
                        output.processes.iter().map(|p| p.r#type.as_str()).collect();
                    format!(
                        "no process of type `{kind}`: the buildpacks made {}",
                        known.join(", ")
                    )
                })?;
            Some(process.command.clone())
        }
        None => {
            warn!("no default process: the image has no entrypoint; add a Procfile with a `web` process");
            None
        }
    };

    let top_layer = top_layer(base)?;
    let mut app_sha = Vec::new();
    let mut by_buildpack: BTreeMap<String, BuildpackLayers> = BTreeMap::new();
    for layer in layers {
        match &layer.buildpack {
            None => app_sha.push(LayerSha {
                sha: layer.layer.blob.diff_id.clone(),
            }),
            Some((id, name)) => {
                let version = output
                    .buildpacks
                    .iter()
                    .find(|(bp, _)| bp == id)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                by_buildpack
                    .entry(id.clone())
                    .or_insert_with(|| BuildpackLayers {
                        key: id.clone(),
                        version,
                        layers: BTreeMap::new(),
                    })
                    .layers
                    .insert(
                        name.clone(),
                        LayerMetadata {
                            sha: layer.layer.blob.diff_id.clone(),
                            launch: true,
                        },
                    );
            }
        }
    }
    let lifecycle = LifecycleMetadata {
        app: app_sha,
        buildpacks: output
            .buildpacks
            .iter()
            .filter_map(|(id, _)| by_buildpack.remove(id))
            .collect(),
        run_image: RunImage {
            top_layer: top_layer.clone(),
            reference: base.reference(),
        },
    };
    let build = BuildMetadata {
        buildpacks: output
            .buildpacks
            .iter()
            .map(|(id, version)| BuildpackRef {
                id: id.clone(),
                version: version.clone(),
            })
            .collect(),
        processes: processes(output),
    };
    let record = base_record(base)?;

    let mut all_labels = BTreeMap::new();
    all_labels.insert(LABEL_LIFECYCLE.to_owned(), to_canonical_string(&lifecycle)?);
    all_labels.insert(LABEL_BUILD.to_owned(), to_canonical_string(&build)?);
    all_labels.insert(LABEL_BASE.to_owned(), to_canonical_string(&record)?);
    all_labels.extend(overrides.labels.iter().cloned());
    let mut annotations = BTreeMap::new();
    annotations.insert(ANNOTATION_BASE_NAME.to_owned(), base.name.clone());
    annotations.insert(ANNOTATION_BASE_DIGEST.to_owned(), base.digest().to_string());

    Ok(Settings {
        epoch,
        env: image_env
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        entrypoint,
        cmd: None,
        user: Some(RUN_USER.to_owned()),
        working_dir: Some("/workspace".to_owned()),
        exposed_ports: vec![format!("{DEFAULT_PORT}/tcp")],
        labels: all_labels,
        annotations,
    })
}

/// The base's top layer diff_id, which the CNB metadata records as `runImage.topLayer`.
pub fn top_layer(base: &Base) -> anyhow::Result<crate::digest::Digest> {
    base.image
        .image
        .config
        .rootfs
        .diff_ids
        .last()
        .cloned()
        .context("the base has no layers: pick a base image with a filesystem")
}

/// repave's record of `base`, as an image built on it carries it (`io.repave.base`).
pub fn base_record(base: &Base) -> anyhow::Result<BaseRecord> {
    let config = &base.image.image.config;
    let layers = base.image.image.manifest.layers.len();
    Ok(BaseRecord {
        name: base.name.clone(),
        digest: base.digest().clone(),
        layers,
        top_layer: top_layer(base)?,
        history: base_history(config, layers).len(),
        env: config.config.env.clone().unwrap_or_default(),
        labels: config.labels().into_keys().collect(),
        packages: base
            .packages
            .iter()
            .map(|(name, version)| format!("{name}={version}"))
            .collect(),
    })
}
