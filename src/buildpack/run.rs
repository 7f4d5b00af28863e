//! The build phase: each buildpack of the detected group runs `bin/build` under bubblewrap
//! with the app at `/workspace` (a scratch copy when a buildpack writes into it, else the
//! app itself, read-only) and its layers directory at `/layers/<id>`, exactly the paths of
//! the run image. Afterwards the layer metadata,
//! env files and `launch.toml` are read back into a [`BuildOutput`] for the exporter.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::env::{apply_env, read_env_dir, EnvOp};
use super::launch::{parse_launch, Process};
use super::order::Detection;
use super::sandbox::{OutputSink, Sandbox};
use super::{Buildpack, BuildpackError};
use crate::layer::source::{self, Rules};
use crate::layer::{Content, EntryKind};

/// What the build phase needs besides the app and the group.
pub struct BuildContext {
    /// The base's packages as (name, version), given to buildpacks as the file named by
    /// `REPAVE_BASE_PACKAGES` with one `name version` line each.
    pub base_packages: Vec<(String, String)>,
    /// Whether the base has `/bin/sh` (`REPAVE_BASE_HAS_SH`).
    pub base_has_sh: bool,
    pub target_os: String,
    pub target_arch: String,
    pub target_distro_name: String,
    pub target_distro_version: String,
    /// Holds cache layers between builds and the working directory of this one.
    pub cache_dir: PathBuf,
    /// Which files of the app are copied for the build (project.toml include/exclude).
    pub rules: Rules,
    /// Where buildpack stdout and stderr go while they run; `None` keeps them quiet (they
    /// are still part of the error when a build fails).
    pub output: Option<OutputSink>,
}

/// A layer directory that goes into the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchLayer {
    pub buildpack_id: String,
    pub name: String,
    pub dir: PathBuf,
    /// Its path in the image, without the leading `/`: `layers/repave_python/packages`.
    pub image_path: String,
}

/// What the build produced. The directories live until this value is dropped.
#[derive(Debug)]
pub struct BuildOutput {
    /// The app as buildpacks left it: the scratch copy, or the app itself when no buildpack
    /// of the group writes into it.
    pub app_dir: PathBuf,
    pub layers: Vec<LaunchLayer>,
    /// The launch environment, in the order the operations apply.
    pub env: Vec<EnvOp>,
    /// One per process type, in the order they first appeared; a later buildpack's process
    /// replaces an earlier one of the same type.
    pub processes: Vec<Process>,
    pub default_process: Option<String>,
    /// (id, version) of each buildpack that ran.
    pub buildpacks: Vec<(String, String)>,
    /// Paths of the app left out of the scratch copy by the rules (empty when no copy was
    /// made: the exporter's own walk of the app then reports them).
    pub excluded: Vec<String>,
    /// Sockets in the app, which an image cannot hold.
    pub skipped: Vec<String>,
    _work: tempfile::TempDir,
}

impl BuildOutput {
    /// The image's environment: `base` with the launch env operations applied.
    pub fn launch_env(&self, base: &[(String, String)]) -> Vec<(String, String)> {
        apply_env(base, &self.env)
    }

    /// The default process, if there is one.
    pub fn default(&self) -> Option<&Process> {
        let wanted = self.default_process.as_deref()?;
        self.processes.iter().find(|p| p.r#type == wanted)
    }
}

#[derive(Deserialize, Default)]
struct LayerToml {
    #[serde(default)]
    types: LayerTypes,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct LayerTypes {
    #[serde(default)]
    launch: bool,
    #[serde(default)]
    build: bool,
    #[serde(default)]
    cache: bool,
}

/// Runs the build step of every buildpack in `detection.group`, in order.
pub fn build(
    app: &Path,
    detection: &Detection,
    ctx: &BuildContext,
) -> Result<BuildOutput, BuildpackError> {
    let app = fs_err::canonicalize(app)?;
    let work_parent = ctx.cache_dir.join("work");
    fs_err::create_dir_all(&work_parent)?;
    let work = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&work_parent)
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("{e} in `{}`", work_parent.display()))
        })?;

    // The app is copied only when a buildpack of the group writes into it; otherwise the
    // buildpacks see it read-only and the app layer is read straight from the source.
    let writes_app = detection.group.iter().any(|bp| bp.writes_app);
    let (workspace, excluded, skipped) = if writes_app {
        let scratch = work.path().join("app");
        let (excluded, skipped) = copy_app(&app, &scratch, &ctx.rules)?;
        (scratch, excluded, skipped)
    } else {
        (app.clone(), Vec::new(), Vec::new())
    };
    let layers_root = work.path().join("layers");
    let platform = work.path().join("platform");
    let plan = work.path().join("plan");
    let base = work.path().join("base");
    for dir in [&layers_root, &platform.join("env"), &plan, &base] {
        fs_err::create_dir_all(dir)?;
    }
    fs_err::write(plan.join("plan.toml"), "")?;
    let mut packages = String::new();
    for (name, version) in &ctx.base_packages {
        packages.push_str(&format!("{name} {version}\n"));
    }
    fs_err::write(base.join("packages"), packages)?;

    let mut output = BuildOutput {
        app_dir: workspace.clone(),
        layers: Vec::new(),
        env: Vec::new(),
        processes: Vec::new(),
        default_process: None,
        buildpacks: Vec::new(),
        excluded,
        skipped,
        _work: work,
    };
    let mut build_env: Vec<EnvOp> = Vec::new();
    let host_env: Vec<(String, String)> = std::env::vars().collect();

    for bp in &detection.group {
        let name = bp.layers_name();
        let layers = layers_root.join(&name);
        fs_err::create_dir_all(&layers)?;
        let cache = ctx.cache_dir.join("layers").join(&name);
        // Held until this buildpack's cache is saved again: builds that share a cache
        // directory take turns with it instead of moving it from under each other.
        let _cache_lock = lock_cache(&cache)?;
        restore_cache(&cache, &layers)?;

        let bp_dir = format!("/cnb/buildpacks/{name}/{}", bp.version);
        let mut env = apply_env(&host_env, &build_env);
        env.extend([
            ("CNB_BUILDPACK_DIR".to_owned(), bp_dir.clone()),
            ("CNB_LAYERS_DIR".to_owned(), format!("/layers/{name}")),
            ("CNB_PLATFORM_DIR".to_owned(), "/platform".to_owned()),
            (
                "CNB_BP_PLAN_PATH".to_owned(),
                "/cnb/plan/plan.toml".to_owned(),
            ),
            ("CNB_TARGET_OS".to_owned(), ctx.target_os.clone()),
            ("CNB_TARGET_ARCH".to_owned(), ctx.target_arch.clone()),
            (
                "CNB_TARGET_DISTRO_NAME".to_owned(),
                ctx.target_distro_name.clone(),
            ),
            (
                "CNB_TARGET_DISTRO_VERSION".to_owned(),
                ctx.target_distro_version.clone(),
            ),
            (
                "REPAVE_BASE_PACKAGES".to_owned(),
                "/cnb/base/packages".to_owned(),
            ),
            ("REPAVE_BASE_HAS_SH".to_owned(), ctx.base_has_sh.to_string()),
        ]);
        let mut sandbox = Sandbox::new(env)?;
        sandbox
            .bind(&workspace, "/workspace", writes_app)
            .bind(&layers_root, "/layers", true)
            .bind(&bp.dir, &bp_dir, false)
            .bind(&platform, "/platform", false)
            .bind(&plan, "/cnb/plan", false)
            .bind(&base, "/cnb/base", false);

        tracing::info!(id = %bp.id, version = %bp.version, "building");
        let (status, text) = sandbox.run(
            "/workspace",
            &format!("{bp_dir}/bin/build"),
            ctx.output.as_ref(),
        )?;
        if !status.success() {
            // Output already shown as it ran is not repeated; the last line says why.
            let output = match &ctx.output {
                Some(_) => "(its output is above)".to_owned(),
                None => text,
            };
            return Err(BuildpackError::Build {
                id: bp.id.clone(),
                status: status.to_string(),
                output,
            });
        }

        collect_layers(bp, &layers, &mut output, &mut build_env)?;
        collect_processes(bp, &layers, &mut output)?;
        save_cache(&layers, &cache)?;
        output.buildpacks.push((bp.id.clone(), bp.version.clone()));
    }

    if output.default_process.is_none() && output.processes.iter().any(|p| p.r#type == "web") {
        output.default_process = Some("web".to_owned());
    }
    for process in &mut output.processes {
        process.default = output.default_process.as_deref() == Some(process.r#type.as_str());
    }
    Ok(output)
}

/// Copies what the layer rules would take from `app` to `scratch`, so the user's directory
/// is never written to; returns what the rules left out and the sockets skipped.
fn copy_app(
    app: &Path,
    scratch: &Path,
    rules: &Rules,
) -> Result<(Vec<String>, Vec<String>), BuildpackError> {
    let collected = source::collect(app, b"", rules)?;
    fs_err::create_dir_all(scratch)?;
    for entry in collected.entries {
        let path = scratch.join(std::ffi::OsStr::from_bytes(&entry.path));
        match &entry.kind {
            EntryKind::Directory => fs_err::create_dir_all(&path)?,
            EntryKind::File(Content::Path { path: from, .. }) => {
                fs_err::copy(from, &path)?;
                set_mode(&path, entry.mode)?;
            }
            EntryKind::File(Content::Bytes(bytes)) => {
                fs_err::write(&path, bytes)?;
                set_mode(&path, entry.mode)?;
            }
            EntryKind::Symlink(target) => {
                fs_err::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &path)?;
            }
            EntryKind::HardLink(target) => {
                fs_err::hard_link(scratch.join(std::ffi::OsStr::from_bytes(target)), &path)?;
            }
        }
    }
    Ok((collected.excluded, collected.skipped))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BuildpackError> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The `<layer>.toml` files of a buildpack's layers directory, by layer name.
fn layer_tomls(bp: &Buildpack, layers: &Path) -> Result<Vec<(String, LayerTypes)>, BuildpackError> {
    let mut found = Vec::new();
    for entry in fs_err::read_dir(layers)? {
        let path = entry?.path();
        let file =
            String::from_utf8_lossy(path.file_name().unwrap_or_default().as_bytes()).into_owned();
        let Some(name) = file.strip_suffix(".toml") else {
            continue;
        };
        if matches!(name, "launch" | "build" | "store") || !path.is_file() {
            continue;
        }
        let text = fs_err::read_to_string(&path)?;
        let parsed: LayerToml = toml::from_str(&text).map_err(|e| BuildpackError::BadOutput {
            id: bp.id.clone(),
            path: path.clone(),
            message: e.message().to_owned(),
        })?;
        found.push((name.to_owned(), parsed.types));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// Records the launch layers of `bp` and the env operations its layers add, for the image
/// (launch) and for the buildpacks after it (build).
fn collect_layers(
    bp: &Buildpack,
    layers: &Path,
    output: &mut BuildOutput,
    build_env: &mut Vec<EnvOp>,
) -> Result<(), BuildpackError> {
    let name = bp.layers_name();
    for (layer, types) in layer_tomls(bp, layers)? {
        let dir = layers.join(&layer);
        if !dir.is_dir() {
            continue;
        }
        let image_dir = format!("/layers/{name}/{layer}");
        if types.launch {
            output.layers.push(LaunchLayer {
                buildpack_id: bp.id.clone(),
                name: layer.clone(),
                dir: dir.clone(),
                image_path: image_dir[1..].to_owned(),
            });
            output.env.extend(path_ops(&dir, &image_dir, false));
            output.env.extend(read_env_dir(&dir.join("env"))?);
            output.env.extend(read_env_dir(&dir.join("env.launch"))?);
        }
        if types.build {
            build_env.extend(path_ops(&dir, &image_dir, true));
            build_env.extend(read_env_dir(&dir.join("env"))?);
            build_env.extend(read_env_dir(&dir.join("env.build"))?);
        }
    }
    Ok(())
}

/// `bin/` goes on PATH and `lib/` on the library paths, as lifecycle does.
fn path_ops(dir: &Path, image_dir: &str, build: bool) -> Vec<EnvOp> {
    let mut ops = Vec::new();
    if dir.join("bin").is_dir() {
        ops.push(EnvOp::prepend_path("PATH", format!("{image_dir}/bin")));
    }
    if dir.join("lib").is_dir() {
        ops.push(EnvOp::prepend_path(
            "LD_LIBRARY_PATH",
            format!("{image_dir}/lib"),
        ));
        if build {
            ops.push(EnvOp::prepend_path(
                "LIBRARY_PATH",
                format!("{image_dir}/lib"),
            ));
        }
    }
    ops
}

fn collect_processes(
    bp: &Buildpack,
    layers: &Path,
    output: &mut BuildOutput,
) -> Result<(), BuildpackError> {
    let path = layers.join("launch.toml");
    if !path.is_file() {
        return Ok(());
    }
    let text = fs_err::read_to_string(&path)?;
    let processes = parse_launch(&text, &bp.id).map_err(|message| BuildpackError::BadOutput {
        id: bp.id.clone(),
        path: path.clone(),
        message,
    })?;
    for process in processes {
        if process.default {
            output.default_process = Some(process.r#type.clone());
        }
        match output
            .processes
            .iter_mut()
            .find(|p| p.r#type == process.r#type)
        {
            Some(existing) => {
                tracing::debug!(r#type = %process.r#type, id = %bp.id, "process replaced");
                *existing = process;
            }
            None => output.processes.push(process),
        }
    }
    Ok(())
}

/// Moves the cache-only layers kept from an earlier build into `layers`.
// Limitation: only layers that are `cache = true` and not `launch` are kept between
// builds; launch layers are rebuilt every time.
/// Takes an exclusive lock on `cache`'s lock file, waiting for another build that holds it.
fn lock_cache(cache: &Path) -> Result<std::fs::File, BuildpackError> {
    let mut name = cache.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    let path = cache.with_file_name(name);
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?
        .into_parts()
        .0;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| std::io::Error::other(format!("cannot lock `{}`: {e}", path.display())))?;
    Ok(file)
}

fn restore_cache(cache: &Path, layers: &Path) -> Result<(), BuildpackError> {
    if !cache.is_dir() {
        return Ok(());
    }
    for entry in fs_err::read_dir(cache)? {
        let from = entry?.path();
        let to = layers.join(from.file_name().unwrap_or_default());
        fs_err::rename(&from, &to)?;
    }
    Ok(())
}

/// Moves the cache-only layers of `layers` to `cache` for the next build.
fn save_cache(layers: &Path, cache: &Path) -> Result<(), BuildpackError> {
    let mut saved = false;
    for entry in fs_err::read_dir(layers)? {
        let toml_path = entry?.path();
        if toml_path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let Ok(text) = fs_err::read_to_string(&toml_path) else {
            continue;
        };
        let Ok(parsed) = toml::from_str::<LayerToml>(&text) else {
            continue;
        };
        let dir = toml_path.with_extension("");
        if !parsed.types.cache || parsed.types.launch || !dir.is_dir() {
            continue;
        }
        if !saved {
            if cache.exists() {
                fs_err::remove_dir_all(cache)?;
            }
            fs_err::create_dir_all(cache)?;
            saved = true;
        }
        let name = dir.file_name().unwrap_or_default().to_owned();
        fs_err::rename(&dir, cache.join(&name))?;
        fs_err::rename(
            &toml_path,
            cache.join(format!("{}.toml", name.to_string_lossy())),
        )?;
    }
    Ok(())
}
