//! Cargo build script (named in Cargo.toml's `build`, kept in src/ so the top level holds
//! only what the project layout allows): embeds `buildpacks/`, base definitions included,
//! into the binary as a sorted list of (path, mode, bytes), so an installed repave carries
//! the exact buildpacks and bases of its version.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("buildpacks");
    println!("cargo:rerun-if-changed={}", root.display());

    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();

    let mut out = String::from("pub(crate) static FILES: &[(&str, u32, &[u8])] = &[\n");
    for (rel, mode, path) in &files {
        writeln!(
            out,
            "    ({rel:?}, {mode:#o}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    out.push_str("];\n");

    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(dest.join("buildpacks.rs"), out).expect("cannot write buildpacks.rs");
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, u32, PathBuf)>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("walked paths are under the root")
            .to_str()
            .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
            .to_owned();
        let meta = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
        println!("cargo:rerun-if-changed={}", path.display());
        if meta.is_dir() {
            walk(root, &path, files);
        } else {
            let mode = if meta.permissions().mode() & 0o100 != 0 {
                0o755
            } else {
                0o644
            };
            files.push((rel, mode, path));
        }
    }
}
