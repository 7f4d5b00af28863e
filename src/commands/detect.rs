//! `repave detect`: which buildpacks apply to an app, and why.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::CacheArgs;
use crate::buildpack::{self, Detection};

/// Show which buildpacks apply to an app directory and why.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// An extra buildpack directory, tried before the built-in ones (repeatable).
    #[arg(long, value_name = "DIR")]
    buildpack: Vec<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Serialize)]
struct Report {
    group: Vec<String>,
    base: Option<String>,
    steps: Vec<Step>,
}

#[derive(Serialize)]
struct Step {
    group: usize,
    id: String,
    optional: bool,
    passed: bool,
    output: String,
}

/// An app directory with the buildpacks that apply to it.
pub struct Detected {
    pub app: PathBuf,
    pub detection: Detection,
    /// Where the built-in buildpacks (and base definitions) were written out.
    pub builtin: PathBuf,
}

/// Runs detection for `dir` with the built-in buildpacks plus `extra`.
pub fn detect_app(dir: &Path, extra: &[PathBuf], cache: &Path) -> anyhow::Result<Detected> {
    if !dir.is_dir() {
        anyhow::bail!(
            "`{}` is not a directory: pass the app's source directory",
            dir.display()
        );
    }
    let app = fs_err::canonicalize(dir)?;
    let builtin = buildpack::builtin_dir_in(cache)?;
    let mut dirs = extra.to_vec();
    dirs.push(builtin.clone());
    let buildpacks = buildpack::load(&dirs)?;
    let mut order = buildpack::load_order(&builtin.join("order.toml"), &buildpacks)?;
    if !extra.is_empty() {
        let external = buildpack::load(extra)?;
        order.groups.insert(
            0,
            buildpack::Order::single_group(&external).groups.remove(0),
        );
    }
    let detection = buildpack::detect(&app, &order, &buildpacks)?;
    Ok(Detected {
        app,
        detection,
        builtin,
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let detected = detect_app(&args.dir, &args.buildpack, &args.cache.dir()?)?;
    let detection = &detected.detection;
    let report = Report {
        group: detection
            .group
            .iter()
            .map(|bp| format!("{}@{}", bp.id, bp.version))
            .collect(),
        base: detection.base.clone(),
        steps: detection
            .trace
            .iter()
            .map(|s| Step {
                group: s.group,
                id: s.id.clone(),
                optional: s.optional,
                passed: s.passed,
                output: s.output.clone(),
            })
            .collect(),
    };
    if args.json {
        super::print_json(&report)?;
    } else {
        print!("{}", buildpack::format_trace(&detection.trace));
        println!("group: {}", report.group.join(", "));
        println!(
            "base:  {}",
            report.base.as_deref().unwrap_or("(none named)")
        );
    }
    Ok(ExitCode::SUCCESS)
}
