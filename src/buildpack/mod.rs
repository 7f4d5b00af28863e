//! Buildpacks following the Cloud Native Buildpacks Buildpack API: loading them
//! ([`load`]), choosing a group for an app ([`detect`]) and running the group's build steps
//! under bubblewrap ([`build`]). Turning the resulting layer directories into image layers
//! and config is the exporter's job, not this module's.

mod builtin;
mod env;
mod launch;
mod order;
mod run;
mod sandbox;

#[cfg(test)]
mod fixtures_test;
#[cfg(test)]
mod procfile_test;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use builtin::builtin_dir_in;
pub use env::{apply_env, read_env_dir, EnvAction, EnvOp};
pub use launch::{parse_launch, Process};
pub use order::{
    detect, format_trace, load_order, DetectStep, Detection, Group, GroupMember, Order,
};
pub use run::{build, BuildContext, BuildOutput, LaunchLayer};
pub use sandbox::OutputSink;

/// Buildpack API versions whose buildpacks repave runs.
pub const SUPPORTED_APIS: &[&str] = &["0.9", "0.10"];

#[derive(Debug, thiserror::Error)]
pub enum BuildpackError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("cannot parse `{}`: {message}", .path.display())]
    Toml { path: PathBuf, message: String },
    #[error("`{}` is not a buildpack: it has no {missing}", .dir.display())]
    NotABuildpack { dir: PathBuf, missing: &'static str },
    #[error("buildpack `{id}` in `{}` uses Buildpack API {api}, which repave does not run: use API 0.9 or 0.10", .dir.display())]
    UnsupportedApi {
        id: String,
        api: String,
        dir: PathBuf,
    },
    #[error("buildpack `{id}` is in both `{}` and `{}`: remove one", .first.display(), .second.display())]
    Duplicate {
        id: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("`{}` names buildpack `{id}`, which is not loaded: add it with --buildpack DIR", .order.display())]
    UnknownBuildpack { id: String, order: PathBuf },
    #[error("no buildpack group applies to `{}`:\n{trace}\nadd a Procfile or the file a buildpack looks for, or pass --buildpack DIR", .app.display())]
    NoGroup { app: PathBuf, trace: String },
    #[error(
        "bubblewrap (`bwrap`) is needed to run buildpacks and was not found: install bubblewrap"
    )]
    BwrapMissing,
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error(
        "detect of buildpack `{id}` failed with {status} (0 passes, 100 does not apply):\n{output}"
    )]
    Detect {
        id: String,
        status: String,
        output: String,
    },
    #[error("build of buildpack `{id}` failed with {status}:\n{output}")]
    Build {
        id: String,
        status: String,
        output: String,
    },
    #[error("buildpack `{id}` wrote `{}`, which is not valid: {message}", .path.display())]
    BadOutput {
        id: String,
        path: PathBuf,
        message: String,
    },
    #[error(transparent)]
    Source(#[from] crate::layer::source::SourceError),
}

/// A buildpack on disk, as its `buildpack.toml` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buildpack {
    pub id: String,
    pub version: String,
    pub name: String,
    pub dir: PathBuf,
    /// The package base the app needs (`[metadata.repave] base`), if the buildpack names one.
    pub base: Option<String>,
    pub api: String,
    /// Whether `bin/build` writes into `/workspace` (`[metadata.repave] writes-app`). Unless
    /// a buildpack says it does not, as the Buildpack API lets it, it gets a scratch copy.
    pub writes_app: bool,
}

impl Buildpack {
    /// The directory name lifecycle gives the buildpack's layers: the id with `/` → `_`.
    pub fn layers_name(&self) -> String {
        self.id.replace('/', "_")
    }
}

#[derive(Deserialize)]
struct Descriptor {
    api: String,
    buildpack: DescriptorInfo,
    #[serde(default)]
    metadata: DescriptorMetadata,
}

#[derive(Deserialize)]
struct DescriptorInfo {
    id: String,
    version: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Default, Deserialize)]
struct DescriptorMetadata {
    #[serde(default)]
    repave: Option<RepaveMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RepaveMetadata {
    base: Option<String>,
    writes_app: Option<bool>,
}

/// Loads buildpacks from `dirs`: each is a buildpack (it has a `buildpack.toml`) or a
/// directory whose subdirectories are buildpacks. Sorted by id; an id found twice is an error.
pub fn load(dirs: &[PathBuf]) -> Result<Vec<Buildpack>, BuildpackError> {
    let mut found: Vec<Buildpack> = Vec::new();
    for dir in dirs {
        if dir.join("buildpack.toml").is_file() {
            found.push(load_one(dir)?);
            continue;
        }
        let mut subdirs = Vec::new();
        for entry in fs_err::read_dir(dir)? {
            let path = entry?.path();
            if path.join("buildpack.toml").is_file() {
                subdirs.push(path);
            }
        }
        if subdirs.is_empty() {
            return Err(BuildpackError::NotABuildpack {
                dir: dir.clone(),
                missing: "buildpack.toml, nor subdirectories with one",
            });
        }
        subdirs.sort();
        for sub in subdirs {
            found.push(load_one(&sub)?);
        }
    }

    found.sort_by(|a, b| a.id.cmp(&b.id));
    for pair in found.windows(2) {
        if pair[0].id == pair[1].id {
            return Err(BuildpackError::Duplicate {
                id: pair[0].id.clone(),
                first: pair[0].dir.clone(),
                second: pair[1].dir.clone(),
            });
        }
    }
    Ok(found)
}

fn load_one(dir: &Path) -> Result<Buildpack, BuildpackError> {
    let dir = &fs_err::canonicalize(dir)?;
    let path = dir.join("buildpack.toml");
    let text = fs_err::read_to_string(&path)?;
    let descriptor: Descriptor = toml::from_str(&text).map_err(|e| BuildpackError::Toml {
        path: path.clone(),
        message: e.message().to_owned(),
    })?;
    let id = descriptor.buildpack.id;
    if !SUPPORTED_APIS.contains(&descriptor.api.as_str()) {
        return Err(BuildpackError::UnsupportedApi {
            id,
            api: descriptor.api,
            dir: dir.to_path_buf(),
        });
    }
    for (script, missing) in [("bin/detect", "bin/detect"), ("bin/build", "bin/build")] {
        if !dir.join(script).is_file() {
            return Err(BuildpackError::NotABuildpack {
                dir: dir.to_path_buf(),
                missing,
            });
        }
    }
    Ok(Buildpack {
        name: descriptor.buildpack.name.unwrap_or_else(|| id.clone()),
        id,
        version: descriptor.buildpack.version,
        dir: dir.to_path_buf(),
        writes_app: descriptor
            .metadata
            .repave
            .as_ref()
            .and_then(|r| r.writes_app)
            .unwrap_or(true),
        base: descriptor.metadata.repave.and_then(|r| r.base),
        api: descriptor.api,
    })
}
