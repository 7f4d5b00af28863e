//! `repave base lock` and `repave base build`: pin a package base from a definition, and
//! build its image from the lock alone.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use tracing::info;

use super::CacheArgs;
use crate::bases::{build_package_base, debian_options};
use crate::debian::{self, Definition, Lock};
use crate::digest::Digest;
use crate::epoch::build_epoch;
use crate::reference::Reference;
use crate::store::output::write_image;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Lock(LockArgs),
    Build(BuildArgs),
}

/// Flags that say where Debian packages come from and how their index is checked.
#[derive(Debug, Clone, clap::Args)]
pub struct PackageArgs {
    /// OpenPGP keyring that must have signed the suite's InRelease.
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// Mirror for an archive, as `ARCHIVE=URL` (`main=…`, `security=…`); default: the
    /// machine's apt sources.
    #[arg(long, value_name = "ARCHIVE=URL")]
    pub mirror: Vec<String>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

impl PackageArgs {
    pub fn options(&self) -> anyhow::Result<debian::Options> {
        debian_options(self.keyring.clone(), &self.mirror, &self.cache.dir()?)
    }
}

/// Resolve a base definition against the suite's signed index and write a lock.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// The base definition (TOML: suite, components, architecture, packages, exclude).
    definition: PathBuf,
    /// Where to write the lock.
    #[arg(long, value_name = "LOCK", required = true)]
    output: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    packages: PackageArgs,
}

/// Build a package base image from a lock.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The lock written by `repave base lock`.
    lock: PathBuf,
    /// Where the image goes: `oci:DIR[:TAG]` or `docker-archive:FILE[:REPO:TAG]`.
    #[arg(long, value_name = "TARGET", required = true)]
    output: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    packages: PackageArgs,
}

#[derive(Serialize)]
struct LockReport<'a> {
    lock: String,
    name: &'a str,
    packages: Vec<String>,
}

#[derive(Serialize)]
struct BuildReport {
    reference: String,
    digest: Digest,
    config_digest: Digest,
    layers: Vec<Digest>,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Lock(args) => lock(args),
        Command::Build(args) => build(args),
    }
}

fn lock(args: LockArgs) -> anyhow::Result<ExitCode> {
    let definition = Definition::load(&args.definition)?;
    let options = args.packages.options()?;
    let lock = debian::lock(&definition, &options)?;
    lock.save(&args.output)?;
    info!(
        lock = %args.output.display(),
        packages = lock.locked.len(),
        "wrote lock"
    );
    let packages: Vec<String> = lock
        .locked
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect();
    if args.json {
        super::print_json(&LockReport {
            lock: args.output.display().to_string(),
            name: &lock.name,
            packages,
        })?;
    } else {
        for package in packages {
            eprintln!("  {package}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let target = Reference::parse(&args.output)?;
    let lock = Lock::load(&args.lock)?;
    let options = args.packages.options()?;
    let epoch = build_epoch()?;
    let built = build_package_base(&lock, &options, epoch)?;
    write_image(&target, &built.image, &built.blobs, &[])
        .with_context(|| format!("cannot write {target}"))?;
    info!(image = %target, digest = %built.image.manifest_digest, "wrote base");
    let report = BuildReport {
        reference: target.to_string(),
        digest: built.image.manifest_digest.clone(),
        config_digest: built.image.config_digest.clone(),
        layers: built
            .image
            .manifest
            .layers
            .iter()
            .map(|d| d.digest.clone())
            .collect(),
    };
    if args.json {
        super::print_json(&report)?;
    } else {
        println!("{} {}", report.reference, report.digest);
    }
    Ok(ExitCode::SUCCESS)
}
