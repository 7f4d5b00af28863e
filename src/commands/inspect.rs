//! `repave inspect`: what an image holds, from its config and labels alone.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::digest::Digest;
use crate::image::metadata::{BaseRecord, BuildMetadata, LABEL_BASE, LABEL_BUILD};
use crate::image::spec::{ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME};
use crate::reference::Reference;
use crate::store::output::read_image;

/// Show an image's layers, base, buildpacks, processes, user and labels.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: `oci:DIR[:TAG|@sha256:…]`, `docker-archive:FILE[:REPO:TAG]` or
    /// `docker://HOST/REPO[:TAG|@sha256:…]`.
    image: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    reference: String,
    digest: Digest,
    config_digest: Digest,
    os: String,
    architecture: String,
    user: Option<String>,
    entrypoint: Option<Vec<String>>,
    working_dir: Option<String>,
    env: Vec<String>,
    layers: Vec<LayerReport>,
    base: Option<BaseReport>,
    buildpacks: Vec<String>,
    processes: Vec<ProcessReport>,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct LayerReport {
    digest: Digest,
    diff_id: Option<Digest>,
    size: u64,
    holds: String,
}

#[derive(Serialize)]
struct BaseReport {
    name: String,
    digest: String,
    layers: Option<usize>,
}

#[derive(Serialize)]
struct ProcessReport {
    #[serde(rename = "type")]
    kind: String,
    command: Vec<String>,
    default: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.image)?;
    let source = read_image(&reference).with_context(|| format!("cannot read {reference}"))?;
    let image = &source.image;
    let labels = image.config.labels();
    let record: Option<BaseRecord> = labels
        .get(LABEL_BASE)
        .and_then(|value| serde_json::from_str(value).ok());
    let build: BuildMetadata = labels
        .get(LABEL_BUILD)
        .and_then(|value| serde_json::from_str(value).ok())
        .unwrap_or_default();

    let base_layers = record.as_ref().map(|r| r.layers).unwrap_or(0);
    let history: Vec<_> = image
        .config
        .history
        .iter()
        .filter(|h| h.empty_layer != Some(true))
        .collect();
    let layers = image
        .manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, d)| LayerReport {
            digest: d.digest.clone(),
            diff_id: image.config.rootfs.diff_ids.get(i).cloned(),
            size: d.size,
            holds: if i < base_layers {
                "base".to_owned()
            } else {
                history
                    .get(i)
                    .and_then(|h| h.created_by.clone())
                    .map(|c| c.trim_start_matches("repave: ").to_owned())
                    .unwrap_or_default()
            },
        })
        .collect();
    let annotations = &image.manifest.annotations;
    let base = match (&record, annotations.get(ANNOTATION_BASE_NAME)) {
        (Some(record), _) => Some(BaseReport {
            name: record.name.clone(),
            digest: record.digest.to_string(),
            layers: Some(record.layers),
        }),
        (None, Some(name)) => Some(BaseReport {
            name: name.clone(),
            digest: annotations
                .get(ANNOTATION_BASE_DIGEST)
                .cloned()
                .unwrap_or_default(),
            layers: None,
        }),
        (None, None) => None,
    };
    let report = Report {
        reference: reference.to_string(),
        digest: image.descriptor.digest.clone(),
        config_digest: image.manifest.config.digest.clone(),
        os: image.config.os.clone(),
        architecture: image.config.architecture.clone(),
        user: image.config.config.user.clone(),
        entrypoint: image.config.config.entrypoint.clone(),
        working_dir: image.config.config.working_dir.clone(),
        env: image.config.config.env.clone().unwrap_or_default(),
        layers,
        base,
        buildpacks: build
            .buildpacks
            .iter()
            .map(|b| format!("{}@{}", b.id, b.version))
            .collect(),
        processes: build
            .processes
            .iter()
            .map(|p| ProcessReport {
                kind: p.kind.clone(),
                command: p.command.iter().chain(&p.args).cloned().collect(),
                default: p.default,
            })
            .collect(),
        labels,
    };

    if args.json {
        super::print_json(&report)?;
    } else {
        print_human(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_human(report: &Report) {
    println!("image      {}", report.reference);
    println!("digest     {}", report.digest);
    println!("platform   {}/{}", report.os, report.architecture);
    println!("user       {}", report.user.as_deref().unwrap_or("(root)"));
    if let Some(entrypoint) = &report.entrypoint {
        println!("entrypoint {}", entrypoint.join(" "));
    }
    if let Some(base) = &report.base {
        println!("base       {}@{}", base.name, base.digest);
    }
    if !report.buildpacks.is_empty() {
        println!("buildpacks {}", report.buildpacks.join(", "));
    }
    for process in &report.processes {
        let mark = if process.default { " (default)" } else { "" };
        println!(
            "process    {}{mark}: {}",
            process.kind,
            process.command.join(" ")
        );
    }
    println!("layers");
    for layer in &report.layers {
        println!("  {} {:>10}  {}", layer.digest, layer.size, layer.holds);
    }
    if !report.env.is_empty() {
        println!("env");
        for kv in &report.env {
            println!("  {kv}");
        }
    }
    if !report.labels.is_empty() {
        println!("labels");
        for key in report.labels.keys() {
            println!("  {key}");
        }
    }
}
