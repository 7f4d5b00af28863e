//! `repave base lock`, `repave base outdated` and `repave base build`: pin a package base
//! from a definition (or relock it to the newest versions), tell whether a lock is behind
//! the suite's current index, and build its image from the lock alone.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use tracing::info;

use super::CacheArgs;
use crate::bases::{build_package_base, debian_options};
use crate::debian::{self, Definition, Lock, LockChanges};
use crate::digest::Digest;
use crate::epoch::build_epoch;
use crate::reference::Reference;
use crate::store::output::write_image;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Lock(LockArgs),
    Outdated(OutdatedArgs),
    Build(BuildArgs),
}

/// The exit code of `base outdated` when updates are available.
const EXIT_OUTDATED: u8 = 10;

/// Flags that say where Debian packages come from and how their index is checked.
#[derive(Debug, Clone, clap::Args)]
pub struct PackageArgs {
    /// OpenPGP keyring that must have signed the suite's InRelease.
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    #[command(flatten)]
    pub mirrors: MirrorArgs,
}

/// Flags that say where Debian packages come from, for commands that read only a lock
/// (whose indexes were verified when it was written).
#[derive(Debug, Clone, clap::Args)]
pub struct MirrorArgs {
    /// Mirror for an archive, as `ARCHIVE=URL` (`main=…`, `security=…`); default: the
    /// machine's apt sources.
    #[arg(long, value_name = "ARCHIVE=URL")]
    pub mirror: Vec<String>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

impl PackageArgs {
    pub fn options(&self) -> anyhow::Result<debian::Options> {
        debian_options(
            self.keyring.clone(),
            &self.mirrors.mirror,
            &self.mirrors.cache.dir()?,
        )
    }
}

impl MirrorArgs {
    pub fn options(&self) -> anyhow::Result<debian::Options> {
        debian_options(None, &self.mirror, &self.cache.dir()?)
    }
}

/// Resolve a base definition against the suite's signed index and write a lock.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["output", "update"])))]
pub struct LockArgs {
    /// The base definition (TOML: suite, components, architecture, packages, exclude).
    definition: PathBuf,
    /// Where to write the lock.
    #[arg(long, value_name = "LOCK")]
    output: Option<PathBuf>,
    /// Relock an existing lock to the newest versions, printing what changed; the file is
    /// left untouched when nothing did.
    #[arg(long, value_name = "LOCK")]
    update: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    packages: PackageArgs,
}

/// Compare a lock with the suite's current signed index: exit 0 when current, 10 when
/// updates are available (security updates are marked).
#[derive(Debug, clap::Args)]
pub struct OutdatedArgs {
    /// The lock written by `repave base lock`.
    lock: PathBuf,
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
    /// Where the image goes: `oci:DIR[:TAG]`, `docker-archive:FILE[:REPO:TAG]` or
    /// `docker://HOST/REPO[:TAG]`.
    #[arg(long, value_name = "TARGET", required = true)]
    output: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    packages: MirrorArgs,
}

#[derive(Serialize)]
struct LockReport<'a> {
    lock: String,
    name: &'a str,
    packages: Vec<String>,
    /// With `--update`: whether the lock was rewritten, and what changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<&'a LockChanges>,
}

#[derive(Serialize)]
struct OutdatedReport<'a> {
    lock: String,
    current: bool,
    packages: &'a [debian::Update],
    vanished: &'a [debian::PackageVersion],
    relock_needed: bool,
    added: &'a [debian::PackageVersion],
    removed: &'a [debian::PackageVersion],
    relock_error: Option<&'a str>,
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
        Command::Outdated(args) => outdated(args),
        Command::Build(args) => build(args),
    }
}

fn lock(args: LockArgs) -> anyhow::Result<ExitCode> {
    let definition = Definition::load(&args.definition)?;
    let options = args.packages.options()?;
    let (path, previous) = match (&args.output, &args.update) {
        (_, Some(update)) => (update, Some(Lock::load(update)?)),
        (Some(output), None) => (output, None),
        (None, None) => anyhow::bail!("pass --output LOCK or --update LOCK"),
    };
    let lock = debian::lock(&definition, &options)?;
    let changes = previous
        .as_ref()
        .map(|old| LockChanges::between(old, &lock));

    // An unchanged relock keeps the file byte for byte, re-signed InRelease or not.
    let write = previous.as_ref().is_none_or(|old| !old.same_content(&lock));
    if write {
        lock.save(path)?;
        info!(lock = %path.display(), packages = lock.locked.len(), "wrote lock");
    } else {
        info!(lock = %path.display(), "lock is current; left unchanged");
    }

    let packages: Vec<String> = lock
        .locked
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect();
    if args.json {
        super::print_json(&LockReport {
            lock: path.display().to_string(),
            name: &lock.name,
            packages,
            changed: previous.as_ref().map(|_| write),
            changes: changes.as_ref(),
        })?;
    } else if let Some(changes) = &changes {
        for change in &changes.updated {
            println!("{}: {} → {}", change.name, change.old, change.new);
        }
        for added in &changes.added {
            println!("{}: added {}", added.name, added.version);
        }
        for removed in &changes.removed {
            println!("{}: removed {}", removed.name, removed.version);
        }
        eprintln!(
            "{}: {} updated, {} added, {} removed",
            path.display(),
            changes.updated.len(),
            changes.added.len(),
            changes.removed.len()
        );
    } else {
        for package in packages {
            eprintln!("  {package}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn outdated(args: OutdatedArgs) -> anyhow::Result<ExitCode> {
    let lock = Lock::load(&args.lock)?;
    let options = args.packages.options()?;
    let outdated = debian::outdated(&lock, &options)?;
    let current = outdated.is_current();

    if args.json {
        super::print_json(&OutdatedReport {
            lock: args.lock.display().to_string(),
            current,
            packages: &outdated.packages,
            vanished: &outdated.vanished,
            relock_needed: outdated.relock_needed(),
            added: &outdated.added,
            removed: &outdated.removed,
            relock_error: outdated.relock_error.as_deref(),
        })?;
    } else {
        for update in &outdated.packages {
            let mark = if update.security { " [security]" } else { "" };
            println!(
                "{} {} → {} ({}){mark}",
                update.name, update.locked, update.available, update.archive
            );
        }
        for gone in &outdated.vanished {
            println!("{} {} → vanished from the index", gone.name, gone.version);
        }
        for added in &outdated.added {
            println!(
                "{} → {} (relock needed: new dependency)",
                added.name, added.version
            );
        }
        for removed in &outdated.removed {
            println!(
                "{} {} → (relock needed: no longer needed)",
                removed.name, removed.version
            );
        }
        let security = outdated.packages.iter().filter(|u| u.security).count();
        if current {
            eprintln!(
                "{}: all {} packages are current",
                args.lock.display(),
                lock.locked.len()
            );
        } else {
            eprintln!(
                "{}: {} of {} packages outdated ({security} security), {} vanished{}: run \
                 `repave base lock DEF.toml --update {}`",
                args.lock.display(),
                outdated.packages.len(),
                lock.locked.len(),
                outdated.vanished.len(),
                if outdated.relock_needed() {
                    ", relock needed"
                } else {
                    ""
                },
                args.lock.display()
            );
        }
    }
    Ok(if current {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_OUTDATED)
    })
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let target = Reference::parse(&args.output)?;
    crate::store::output::check_writable(&target)?;
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
