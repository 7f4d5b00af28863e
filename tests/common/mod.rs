//! Helpers for the integration tests: the built `repave` binary with the shared cache, and
//! the foreign tools that judge what it writes (skopeo, umoci, bubblewrap, GNU tar, Python's
//! tarfile, the OCI JSON schemas). A missing tool fails the test with the package to
//! install; nothing is skipped. Each test binary uses a subset, hence `dead_code` allowed.
#![allow(dead_code)]

mod image;
mod run;
mod variant;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use image::{assemble_test_image, empty_base, oci_reference, write_test_image};
#[allow(unused_imports)]
pub use run::{run_image, run_image_with_env, RunningApp};
#[allow(unused_imports)]
pub use variant::{copy_variant, Variant};

/// Where Debian's golang-github-opencontainers-image-spec-dev installs the OCI schemas.
pub const OCI_SCHEMA_DIR: &str =
    "/usr/share/gocode/src/github.com/opencontainers/image-spec/schema";

/// Debian's own Python, which python3-jsonschema installs for.
const PYTHON: &str = "/usr/bin/python3";

/// The cache every test shares, so Debian packages are downloaded once per run:
/// `REPAVE_CACHE_DIR` when set (`.ci/run` sets it), else a directory under cargo's target.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("REPAVE_CACHE_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("repave-cache"),
    }
}

/// A command for the built `repave` binary, using the shared test cache.
pub fn repave() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_repave"));
    command.env("REPAVE_CACHE_DIR", cache_dir());
    command
}

/// The absolute path of `tool`; panics naming the Debian package when it is missing.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{tool}` is not installed: run `apt-get install -y {package}` (or `bash .ci/run`)"
            )
        })
}

/// Runs `command`, panicking with its stderr unless it succeeds.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Writes `content` to `path` with `mode`, creating missing parent directories.
pub fn write_file(path: &Path, content: &str, mode: u32) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, content).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn oci_ref(layout_dir: &Path, tag: &str) -> String {
    let dir = layout_dir.to_str().expect("test paths are UTF-8");
    assert!(
        !dir.contains(':'),
        "skopeo cannot address `{dir}`: the path has a colon"
    );
    format!("oci:{dir}:{tag}")
}

/// The manifest of `oci:DIR:TAG`, as skopeo reads it (`skopeo inspect --raw`).
pub fn skopeo_manifest(layout_dir: &Path, tag: &str) -> Value {
    skopeo_inspect(layout_dir, tag, "--raw")
}

/// The image config of `oci:DIR:TAG`, as skopeo reads it (`skopeo inspect --config`).
pub fn skopeo_config(layout_dir: &Path, tag: &str) -> Value {
    skopeo_inspect(layout_dir, tag, "--config")
}

fn skopeo_inspect(layout_dir: &Path, tag: &str, what: &str) -> Value {
    let skopeo = require_tool("skopeo", "skopeo");
    let output = run_ok(
        Command::new(skopeo)
            .args(["inspect", what])
            .arg(oci_ref(layout_dir, tag)),
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("skopeo inspect {what} printed no JSON: {e}"))
}

/// An unpacked image: an OCI runtime bundle as umoci writes it.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    /// The bundle's `config.json` (OCI runtime spec).
    pub config: Value,
}

impl Bundle {
    /// `process.args`: the entrypoint and command.
    pub fn args(&self) -> Vec<String> {
        strings(&self.config["process"]["args"])
    }

    /// `process.env` as `KEY=value` strings.
    pub fn env(&self) -> Vec<String> {
        strings(&self.config["process"]["env"])
    }

    pub fn uid(&self) -> u32 {
        self.id("uid")
    }

    pub fn gid(&self) -> u32 {
        self.id("gid")
    }

    pub fn cwd(&self) -> String {
        self.config["process"]["cwd"]
            .as_str()
            .unwrap_or("/")
            .to_owned()
    }

    fn id(&self, key: &str) -> u32 {
        let value = &self.config["process"]["user"][key];
        value
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or_else(|| panic!("config.json has no process.user.{key}: {value}"))
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Unpacks `DIR:TAG` with umoci (as root, so owners and modes are kept) into `bundle_dir`,
/// which must not exist yet.
pub fn umoci_unpack(layout_dir: &Path, tag: &str, bundle_dir: &Path) -> Bundle {
    let umoci = require_tool("umoci", "umoci");
    let image = format!("{}:{tag}", layout_dir.display());
    run_ok(
        Command::new(umoci)
            .args(["unpack", "--image"])
            .arg(image)
            .arg(bundle_dir),
    );
    let config_path = bundle_dir.join("config.json");
    let config = std::fs::read(&config_path)
        .unwrap_or_else(|e| panic!("umoci wrote no {}: {e}", config_path.display()));
    Bundle {
        dir: bundle_dir.to_path_buf(),
        rootfs: bundle_dir.join("rootfs"),
        config: serde_json::from_slice(&config).expect("config.json is JSON"),
    }
}

/// Which OCI schema a document is checked against.
#[derive(Clone, Copy, Debug)]
pub enum Schema {
    Manifest,
    Config,
    Index,
    Layout,
}

/// The OCI schema violations of `document`, one line each (empty when valid). Python's
/// jsonschema (Debian's python3-jsonschema) checks it against the image-spec schemas that
/// Debian's golang-github-opencontainers-image-spec-dev ships, with their `id` URLs
/// resolved from that directory.
pub fn schema_errors(kind: Schema, document: &Value) -> Vec<String> {
    assert!(
        Path::new(OCI_SCHEMA_DIR).join("defs.json").is_file(),
        "the OCI schemas are missing from {OCI_SCHEMA_DIR}: run `apt-get install -y golang-github-opencontainers-image-spec-dev`"
    );
    let kind = match kind {
        Schema::Manifest => "manifest",
        Schema::Config => "config",
        Schema::Index => "index",
        Schema::Layout => "layout",
    };
    let output = python(
        &[
            tool_script("oci_schema.py").as_os_str(),
            OCI_SCHEMA_DIR.as_ref(),
            kind.as_ref(),
        ],
        &serde_json::to_vec(document).expect("json"),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    match output.status.code() {
        Some(0) => Vec::new(),
        Some(1) if !stdout.is_empty() => stdout.lines().map(str::to_owned).collect(),
        _ => panic!(
            "oci_schema.py failed ({}): {}\nis python3-jsonschema installed? (`apt-get install -y python3-jsonschema`)",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// Asserts that `document` is a valid OCI document of the given kind.
pub fn validate_schema(kind: Schema, document: &Value) {
    let errors = schema_errors(kind, document);
    assert!(
        errors.is_empty(),
        "{kind:?} violates the OCI schema:\n{}\n{document:#}",
        errors.join("\n")
    );
}

fn tool_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("tools")
        .join(name)
}

/// Runs Debian's Python with `args`, feeding `stdin`; returns the output whatever the status.
fn python(args: &[&OsStr], stdin: &[u8]) -> Output {
    assert!(
        Path::new(PYTHON).is_file(),
        "{PYTHON} is missing: run `apt-get install -y python3-jsonschema`"
    );
    let mut child = Command::new(PYTHON)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {PYTHON}: {e}"));
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin)
        .expect("write to python");
    child.wait_with_output().expect("wait for python")
}

/// One member of a tar archive as Python's tarfile module reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarMember {
    pub name: Vec<u8>,
    /// `file`, `dir`, `symlink`, `hardlink`, or the raw type flag.
    pub kind: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub mtime: u64,
    pub size: u64,
    pub linkname: Vec<u8>,
    pub content: Vec<u8>,
    /// Keys of the PAX records that applied to this member.
    pub pax: Vec<String>,
}

/// The members of a (gzip-compressed or plain) tar file, read by Python's tarfile.
pub fn python_tar_members(tar: &Path) -> Vec<TarMember> {
    let output = python(
        &[tool_script("tar_entries.py").as_os_str(), tar.as_os_str()],
        b"",
    );
    assert!(
        output.status.success(),
        "python tarfile cannot read {}: {}",
        tar.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<Value> =
        serde_json::from_slice(&output.stdout).expect("tar_entries.py prints JSON");
    let hex_field =
        |row: &Value, key: &str| hex::decode(row[key].as_str().expect("hex string")).expect("hex");
    let text = |row: &Value, key: &str| row[key].as_str().unwrap_or_default().to_owned();
    let number = |row: &Value, key: &str| row[key].as_u64().expect("number");
    rows.iter()
        .map(|row| TarMember {
            name: hex_field(row, "name"),
            kind: text(row, "type"),
            mode: number(row, "mode") as u32,
            uid: number(row, "uid"),
            gid: number(row, "gid"),
            uname: text(row, "uname"),
            gname: text(row, "gname"),
            mtime: number(row, "mtime"),
            size: number(row, "size"),
            linkname: hex_field(row, "linkname"),
            content: hex_field(row, "content"),
            pax: strings(&row["pax"]),
        })
        .collect()
}

/// GNU tar's verbose listing (`tar -tvf`) of a tar file, one line per member, names
/// printed as raw bytes and times in UTC.
pub fn gnu_tar_list(tar: &Path) -> Vec<Vec<u8>> {
    let gnu_tar = require_tool("tar", "tar");
    let output = run_ok(
        Command::new(gnu_tar)
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .args(["--quoting-style=literal", "--numeric-owner", "-tvf"])
            .arg(tar),
    );
    output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Extracts a tar file with GNU tar into `dest` (which must exist), keeping modes.
pub fn gnu_tar_extract(tar: &Path, dest: &Path) {
    let gnu_tar = require_tool("tar", "tar");
    run_ok(
        Command::new(gnu_tar)
            .args(["--same-permissions", "--numeric-owner", "-xf"])
            .arg(tar)
            .arg("-C")
            .arg(dest),
    );
}
