//! `repave rebase`: puts an image on a patched base without rebuilding it.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use tracing::info;

use crate::bases;
use crate::digest::Digest;
use crate::rebase::rebase;
use crate::reference::Reference;
use crate::store::output::{read_image, read_image_metadata, write_image};

/// Replace an image's base layers with a new base's, keeping its app layers byte for byte.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: `oci:DIR[:TAG|@sha256:…]`, `docker-archive:FILE[:REPO:TAG]` or
    /// `docker://HOST/REPO[:TAG|@sha256:…]`.
    image: String,
    /// The new base, in any reference form; a package base built by `repave base build`.
    #[arg(long, value_name = "NEW_BASE", required = true)]
    base: String,
    /// Where the rebased image goes; default: where it is (the tag moves to it).
    #[arg(long, value_name = "TARGET")]
    output: Option<String>,
    /// Rebase even when the new base is not the same base patched (other distro release,
    /// other packages or repository, other platform).
    #[arg(long)]
    force: bool,
    /// Accept a registry base named by tag alone (it is resolved to a digest now and that
    /// digest is recorded); without it such a base is refused, since a tag can move.
    #[arg(long)]
    allow_base_tag: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    reference: String,
    digest: Digest,
    old_base: String,
    new_base: String,
    layers_reused: usize,
    bytes_uploaded: u64,
    seconds: f64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let reference = Reference::parse(&args.image)?;
    let target = match &args.output {
        Some(output) => Reference::parse(output)?,
        None => match &reference {
            Reference::Oci { tag: None, .. } => anyhow::bail!(
                "`{reference}` names no tag to move: pass --output TARGET or name the image by tag"
            ),
            other => other.clone(),
        },
    };
    crate::store::output::check_writable(&target)?;
    let base_reference = Reference::parse(&args.base)?;
    // In one registry nothing needs downloading: app layers stay where they are and the
    // new base's are mounted from its repository.
    let registry_host = |r: &Reference| match r {
        Reference::Registry { host, .. } => Some(host.clone()),
        _ => None,
    };
    let in_place = registry_host(&target).is_some()
        && registry_host(&target) == registry_host(&reference)
        && registry_host(&target) == registry_host(&base_reference);
    let source = if in_place {
        read_image_metadata(&reference)
    } else {
        read_image(&reference)
    }
    .with_context(|| format!("cannot read {reference}"))?;
    let new_base = bases::image_base_read(&base_reference, !in_place, args.allow_base_tag)?;
    let rebased = rebase(&source, &new_base, args.force)
        .with_context(|| format!("cannot rebase {reference} onto {}", args.base))?;
    let bytes_uploaded = write_image(&target, &rebased.image, &rebased.blobs, &[])
        .with_context(|| format!("cannot write {target}"))?;

    let old_base = format!("{}@{}", rebased.old_base.name, rebased.old_base.digest);
    let new_base = format!("{}@{}", rebased.new_base.name, rebased.new_base.digest);
    info!(from = %old_base, to = %new_base, "rebased");
    let report = Report {
        reference: target.to_string(),
        digest: rebased.image.manifest_digest.clone(),
        old_base,
        new_base,
        layers_reused: rebased.layers_reused,
        bytes_uploaded,
        seconds: start.elapsed().as_secs_f64(),
    };
    if args.json {
        super::print_json(&report)?;
    } else {
        println!("rebased {} {}", report.reference, report.digest);
        println!("  base {} -> {}", report.old_base, report.new_base);
        println!("  kept {} app layers", report.layers_reused);
    }
    Ok(ExitCode::SUCCESS)
}
