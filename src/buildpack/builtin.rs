//! The built-in buildpacks, embedded into the binary at compile time (see `build.rs`) and
//! written out once per content hash, so an installed repave needs no source tree and its
//! buildpacks change exactly when the tool does.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::BuildpackError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/buildpacks.rs"));
}

/// The built-in buildpacks written under `cache/buildpacks/<content hash>`; an existing
/// directory for the same hash is reused, a new one appears atomically.
pub fn builtin_dir_in(cache: &Path) -> Result<PathBuf, BuildpackError> {
    let mut hasher = Sha256::new();
    for (path, mode, bytes) in embedded::FILES {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(mode.to_be_bytes());
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    let hash = hex::encode(hasher.finalize());
    let parent = cache.join("buildpacks");
    let dir = parent.join(&hash[..16]);
    if dir.is_dir() {
        return Ok(dir);
    }

    fs_err::create_dir_all(&parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&parent)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{e} in `{}`", parent.display())))?;
    for (path, mode, bytes) in embedded::FILES {
        let target = staging.path().join(path);
        if let Some(dir) = target.parent() {
            fs_err::create_dir_all(dir)?;
        }
        fs_err::write(&target, bytes)?;
        fs_err::set_permissions(&target, std::fs::Permissions::from_mode(*mode))?;
    }
    fs_err::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))?;

    // Another repave may have written the same directory meanwhile; its copy is as good.
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, &dir) {
        let _ = std::fs::remove_dir_all(&staged);
        if !dir.is_dir() {
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot move buildpacks into `{}`: {e}", dir.display()),
            )
            .into());
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn materializes_executable_buildpacks_once() {
        let cache = tempfile::tempdir().unwrap();
        let dir = builtin_dir_in(cache.path()).unwrap();
        let build = dir.join("python/bin/build");
        let mode = fs_err::metadata(&build).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "bin/build must be executable");
        assert!(dir.join("order.toml").is_file());
        assert!(
            dir.join("bases/python.toml").is_file(),
            "base definitions ship with the buildpacks"
        );

        // A second call reuses the directory instead of writing another.
        assert_eq!(builtin_dir_in(cache.path()).unwrap(), dir);
        assert_eq!(fs_err::read_dir(dir.parent().unwrap()).unwrap().count(), 1);
    }
}
