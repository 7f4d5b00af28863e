//! `repave lock`: pins the detected group's package base into `DIR/repave.lock`, the one
//! command that writes into the app directory, because the user asked it to.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use tracing::info;

use super::base::PackageArgs;
use super::detect::{detect_app, Detected};
use crate::debian::{self, Definition, Lock};

/// Resolve the base an app needs and write it to `DIR/repave.lock`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    packages: PackageArgs,
}

#[derive(Serialize)]
struct Report {
    lock: String,
    base: String,
    packages: Vec<String>,
}

/// The name of the lock file in an app directory.
pub const APP_LOCK: &str = "repave.lock";

/// The base definition the detected group names, from the built-in definitions.
pub fn group_definition(detected: &Detected) -> anyhow::Result<Definition> {
    let name = detected
        .detection
        .base
        .clone()
        .unwrap_or_else(|| "static".to_owned());
    let path = detected.builtin.join("bases").join(format!("{name}.toml"));
    if !path.is_file() {
        anyhow::bail!(
            "buildpack group names base `{name}`, but there is no built-in definition `{}`: pass `--base` with an image",
            path.display()
        );
    }
    Ok(Definition::load(&path)?)
}

/// Resolves `definition` now and says how to pin the result.
pub fn resolve_now(
    definition: &Definition,
    options: &debian::Options,
    app: &Path,
) -> anyhow::Result<Lock> {
    let lock = debian::lock(definition, options)?;
    for package in &lock.locked {
        info!("  {} {}", package.name, package.version);
    }
    info!(
        "base `{}` resolved now ({} packages); pin it with `repave lock {}` so every build uses these versions",
        lock.name,
        lock.locked.len(),
        app.display()
    );
    Ok(lock)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = args.packages.options()?;
    let detected = detect_app(&args.dir, &[], &options.cache_dir)?;
    let definition = group_definition(&detected)?;
    let lock = debian::lock(&definition, &options)?;
    let path = detected.app.join(APP_LOCK);
    lock.save(&path)?;
    info!(lock = %path.display(), base = %lock.name, packages = lock.locked.len(), "wrote lock");
    let report = Report {
        lock: path.display().to_string(),
        base: lock.name.clone(),
        packages: lock
            .locked
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect(),
    };
    if args.json {
        super::print_json(&report)?;
    } else {
        println!(
            "wrote {} ({} packages of base `{}`)",
            report.lock,
            report.packages.len(),
            report.base
        );
    }
    Ok(ExitCode::SUCCESS)
}
