//! `repave build`: detect, build, export, write. The steps follow DESIGN.md's pipeline;
//! each one is a library call, and this file only wires them and reports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use tracing::{info, warn};

use super::base::PackageArgs;
use super::detect::detect_app;
use super::lock::{group_definition, resolve_now, APP_LOCK};
use crate::bases;
use crate::buildpack::{self, BuildContext, OutputSink};
use crate::debian::Lock;
use crate::digest::Digest;
use crate::epoch::build_epoch;
use crate::export::{
    export_layers, image_settings, processes, ExportedLayer, Overrides, DEFAULT_PORT,
};
use crate::image::assemble::{assemble, NewLayer, Settings};
use crate::image::metadata::{ProcessMetadata, LABEL_DISTRO_NAME, LABEL_DISTRO_VERSION};
use crate::project::app_rules;
use crate::reference::Reference;
use crate::store::output::write_image;

/// Build an app directory into an image.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where the image goes: `oci:DIR[:TAG]`, `docker-archive:FILE[:REPO:TAG]` or
    /// `docker://HOST/REPO[:TAG]`.
    #[arg(
        long,
        default_value = "oci:./repave-image:latest",
        value_name = "TARGET"
    )]
    output: String,
    /// Build on this image instead of the buildpack's package base: `oci:DIR[:TAG|@sha256:…]`,
    /// `docker-archive:FILE[:REPO:TAG]` or `docker://HOST/REPO@sha256:…` (a registry base by
    /// tag alone needs REPAVE_ALLOW_BASE_TAG=1).
    #[arg(long, value_name = "BASE")]
    base: Option<String>,
    /// Pin the package base with this lock instead of DIR/repave.lock.
    #[arg(long, value_name = "LOCK", conflicts_with = "base")]
    base_lock: Option<PathBuf>,
    /// Another tag for the image in the same target (repeatable).
    #[arg(long, value_name = "NAME")]
    tag: Vec<String>,
    /// Set an environment variable in the image (repeatable).
    #[arg(long, value_name = "K=V")]
    env: Vec<String>,
    /// Set a label on the image (repeatable).
    #[arg(long, value_name = "K=V")]
    label: Vec<String>,
    /// Use this process type as the entrypoint instead of the detected default.
    #[arg(long, value_name = "NAME")]
    default_process: Option<String>,
    /// An extra buildpack directory, tried before the built-in ones (repeatable).
    #[arg(long, value_name = "DIR")]
    buildpack: Vec<PathBuf>,
    /// Accept a registry base named by tag alone (it is resolved to a digest now and that
    /// digest is recorded); without it such a base is refused, since a tag can move.
    #[arg(long)]
    allow_base_tag: bool,
    /// Print one JSON object on stdout; buildpack output goes to stderr.
    #[arg(long)]
    json: bool,
    /// Compress every layer again instead of reusing layers cached by earlier builds.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    packages: PackageArgs,
}

#[derive(Serialize)]
struct Report {
    reference: String,
    digest: Digest,
    config_digest: Digest,
    layers: Vec<LayerReport>,
    base: BaseReport,
    buildpacks: Vec<String>,
    processes: Vec<ProcessMetadata>,
    excluded: Vec<String>,
}

#[derive(Serialize)]
struct LayerReport {
    digest: Digest,
    diff_id: Digest,
    size: u64,
    holds: String,
}

#[derive(Serialize)]
struct BaseReport {
    name: String,
    digest: Digest,
    reference: String,
    layers: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let target = Reference::parse(&args.output)?;
    crate::store::output::check_writable(&target)?;
    let epoch = build_epoch()?;
    let options = args.packages.options()?;
    let cache = options.cache_dir.clone();
    super::sweep_stale_work(&cache);

    let detected = detect_app(&args.dir, &args.buildpack, &cache)?;
    let app = detected.app.clone();
    info!(
        group = %detected.detection.group.iter().map(|b| b.id.as_str()).collect::<Vec<_>>().join(", "),
        "detected"
    );

    let base = match &args.base {
        Some(reference) => bases::image_base(&Reference::parse(reference)?, args.allow_base_tag)?,
        None => {
            let lock = match &args.base_lock {
                Some(path) => Lock::load(path)?,
                None if app.join(APP_LOCK).is_file() => Lock::load(&app.join(APP_LOCK))?,
                None => resolve_now(&group_definition(&detected)?, &options, &app)?,
            };
            bases::package_base(&lock, &options, epoch)?
        }
    };
    info!(base = %base.reference(), "base");

    let mut rules = app_rules(&app)?;
    if let Some(inside) = output_inside(&target, &app) {
        // `repave build` run in the app directory writes its default output there; that
        // output must never become part of the next image.
        info!(path = %inside, "the output is inside the app directory: left out of the image");
        rules.exclude.push(format!("/{inside}"));
    }
    let base_config = &base.image.image.config;
    let base_labels = base_config.labels();
    let ctx = BuildContext {
        base_packages: base.packages.clone(),
        base_has_sh: base.has_shell(),
        target_os: base_config.os.clone(),
        target_arch: base_config.architecture.clone(),
        target_distro_name: base_labels
            .get(LABEL_DISTRO_NAME)
            .cloned()
            .unwrap_or_default(),
        target_distro_version: base_labels
            .get(LABEL_DISTRO_VERSION)
            .cloned()
            .unwrap_or_default(),
        cache_dir: cache.clone(),
        rules: rules.clone(),
        output: Some(OutputSink::Stderr),
    };
    let output = buildpack::build(&app, &detected.detection, &ctx)?;

    let work_root = cache.join("tmp");
    fs_err::create_dir_all(&work_root)?;
    let work = tempfile::Builder::new()
        .prefix("export-")
        .tempdir_in(&work_root)?;
    let export = export_layers(
        &output,
        &rules,
        epoch,
        work.path(),
        (!args.no_cache).then_some(cache.as_path()),
    )?;
    for path in &export.skipped {
        warn!(path = %path, "skipped a socket: an image cannot hold sockets");
    }
    if !export.excluded.is_empty() {
        info!(
            "left out of the image: {} (project.toml include/exclude changes this)",
            export.excluded.join(", ")
        );
    }
    let layers = export.layers;
    let overrides = Overrides {
        env: parse_pairs(&args.env, "--env")?,
        labels: user_labels(&args.label)?,
        default_process: args.default_process.clone(),
    };
    let settings = image_settings(&base, &output, &layers, &overrides, epoch)?;
    let base_layers = &base.image.image.manifest.layers;
    let new_layers: Vec<NewLayer> = layers.iter().map(|l| l.layer.clone()).collect();
    let assembled = assemble(base_config, base_layers, &new_layers, &settings)?;

    let mut all_blobs = base.image.layer_files();
    all_blobs.extend(layers.iter().map(ExportedLayer::blob_source));
    write_image(&target, &assembled, &all_blobs, &args.tag)
        .with_context(|| format!("cannot write {target}"))?;

    let report = Report {
        reference: target.to_string(),
        digest: assembled.manifest_digest.clone(),
        config_digest: assembled.config_digest.clone(),
        layers: new_layers
            .iter()
            .map(|l| LayerReport {
                digest: l.blob.digest.clone(),
                diff_id: l.blob.diff_id.clone(),
                size: l.blob.size,
                holds: l.holds.clone(),
            })
            .collect(),
        base: BaseReport {
            name: base.name.clone(),
            digest: base.digest().clone(),
            reference: base.reference(),
            layers: base_layers.len(),
        },
        buildpacks: output
            .buildpacks
            .iter()
            .map(|(id, version)| format!("{id}@{version}"))
            .collect(),
        processes: processes(&output),
        excluded: export.excluded,
    };
    if args.json {
        super::print_json(&report)?;
    } else {
        print_human(&report, &target, &settings);
    }
    Ok(ExitCode::SUCCESS)
}

/// The target's path relative to `app`, when an OCI layout or archive is written inside it.
fn output_inside(target: &Reference, app: &Path) -> Option<String> {
    let path = match target {
        Reference::Oci { dir, .. } => dir,
        Reference::DockerArchive { file, .. } => file,
        Reference::Registry { .. } => return None,
    };
    let absolute = std::path::absolute(path).ok()?;
    // Resolve what exists of the path, so `./out` and symlinked parents compare equal.
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        rest.push(existing.file_name()?.to_owned());
        existing = existing.parent()?;
    }
    let mut resolved = fs_err::canonicalize(existing).ok()?;
    resolved.extend(rest.iter().rev());
    let relative = resolved.strip_prefix(app).ok()?;
    let text = relative.to_str()?;
    (!text.is_empty()).then(|| text.to_owned())
}

/// `--label` values; the keys repave and the buildpacks spec own are refused, since a
/// rebase and `pack` rely on what they hold.
fn user_labels(values: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let labels = parse_pairs(values, "--label")?;
    for (key, _) in &labels {
        if key.starts_with("io.repave.") || key.starts_with("io.buildpacks.") {
            anyhow::bail!(
                "--label `{key}`: labels under `io.repave.` and `io.buildpacks.` record the base and the buildpacks, and are written by repave; choose another key"
            );
        }
    }
    Ok(labels)
}

fn parse_pairs(values: &[String], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|value| match value.split_once('=') {
            Some((key, val)) if !key.is_empty() => Ok((key.to_owned(), val.to_owned())),
            _ => anyhow::bail!("{flag} `{value}` is not of the form KEY=VALUE"),
        })
        .collect()
}

fn print_human(report: &Report, target: &Reference, settings: &Settings) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "built {} {}", report.reference, report.digest);
    let _ = writeln!(out, "  base {}", report.base.reference);
    for layer in &report.layers {
        let _ = writeln!(
            out,
            "  layer {} {:>10}  {}",
            layer.digest, layer.size, layer.holds
        );
    }
    if !report.excluded.is_empty() {
        let _ = writeln!(out, "  left out: {}", report.excluded.join(", "));
    }
    let (Reference::Oci { dir, tag, .. }, Some(entrypoint)) = (target, &settings.entrypoint) else {
        return;
    };
    let image = shell_quote(&format!(
        "{}:{}",
        dir.display(),
        tag.as_deref().unwrap_or("latest")
    ));
    let rootless = if rustix::process::geteuid().is_root() {
        ""
    } else {
        " --rootless"
    };
    let mut run = String::from(
        "bwrap --bind repave-bundle/rootfs / --proc /proc --dev /dev --tmpfs /tmp \\\n      \
         --unshare-user --uid 65532 --gid 65532 --unshare-pid --die-with-parent \\\n      \
         --chdir /workspace --clearenv",
    );
    for kv in &settings.env {
        if let Some((key, value)) = kv.split_once('=') {
            run.push_str(&format!(" \\\n      --setenv {key} {}", shell_quote(value)));
        }
    }
    run.push_str(" \\\n      --");
    for word in entrypoint {
        run.push(' ');
        run.push_str(&shell_quote(word));
    }
    let _ = writeln!(
        out,
        "\nrun it without a daemon (then: curl localhost:{DEFAULT_PORT}/), in a directory \
         without a repave-bundle:\n  \
         umoci unpack{rootless} --image {image} repave-bundle\n  {run}\n\
         or copy it where images live: skopeo copy oci:{image} docker://HOST/REPO:TAG"
    );
}

/// Quotes `word` for a POSIX shell when it holds anything but plain characters.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
