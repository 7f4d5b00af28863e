//! End to end, one test per bundled fixture app: two differently made copies (with secrets
//! planted in them) are built by the real CLI into one digest; skopeo, umoci and the OCI
//! schemas accept the image; its process answers HTTP under bubblewrap as the image's user;
//! the written layers follow the determinism rules, hold no secret and no shell, package
//! manager or compiler; and the app directories are left exactly as they were.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use repave::epoch::DEFAULT_EPOCH;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The tag every test image is written under.
const TAG: &str = "app";

/// Files planted in each copy before building: none may reach the image, and the build
/// output lists each as excluded (by its path relative to the app directory).
const SECRETS: &[(&str, &str, u32)] = &[
    (".git/config", "[core]\n\tbare = false\n", 0o644),
    (".git/HEAD", "ref: refs/heads/main\n", 0o644),
    (".env", "SECRET_KEY=do-not-ship\n", 0o600),
    ("id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n", 0o600),
    (
        "deploy/id_ed25519",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        0o600,
    ),
];

/// What `excluded` must list for [`SECRETS`]: a directory is listed once, not its files.
const EXCLUDED: &[&str] = &[".env", ".git", "deploy/id_ed25519", "id_rsa"];

/// Names that must not be programs in a run image: shells, package managers, compilers.
const FORBIDDEN_PROGRAMS: &[&str] = &[
    "sh", "bash", "dash", "busybox", "pip", "pip3", "npm", "npx", "apt", "apt-get", "dpkg", "perl",
    "gcc", "cc", "g++", "go",
];

/// One bundled fixture and what it answers.
struct Fixture {
    name: &'static str,
    /// The body of `GET /`.
    body: &'static str,
    /// A file of the app that must be in the app layer, relative to the app directory.
    app_file: &'static str,
}

/// Everything a test looks at after building one fixture.
struct Built {
    /// Kept alive until the test ends.
    _temp: tempfile::TempDir,
    layout: PathBuf,
    /// What `repave build --json` printed.
    report: Value,
    bundle: Bundle,
    /// Every path in the unpacked rootfs, relative to it.
    rootfs_paths: BTreeSet<String>,
    /// The directories among them.
    rootfs_dirs: BTreeSet<String>,
}

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// `repave build APP --output oci:LAYOUT:TAG --json`, with the default build epoch.
fn build_command(app: &Path, layout: &Path) -> Command {
    let mut command = repave();
    command
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("build")
        .arg(app)
        .arg("--output")
        .arg(format!("oci:{}:{TAG}", layout.display()))
        .arg("--json");
    command
}

/// Runs a build and returns its stdout, which must be exactly one JSON object.
fn run_build(command: &mut Command) -> Value {
    let output = run_ok(command);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout of {command:?} is not one JSON object ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert!(report.is_object(), "stdout is JSON but no object: {report}");
    report
}

/// Asserts the report has the fields the issue names, each of the right kind.
fn assert_report_shape(report: &Value) {
    for key in ["digest", "config_digest"] {
        let value = report[key].as_str().unwrap_or_default();
        assert!(is_digest(value), "`{key}` is no sha256 digest: {report:#}");
    }
    let layers = report["layers"].as_array().expect("`layers` is an array");
    assert!(!layers.is_empty(), "no layers reported: {report:#}");
    for layer in layers {
        assert!(is_digest(layer["digest"].as_str().unwrap_or_default()));
        assert!(is_digest(layer["diff_id"].as_str().unwrap_or_default()));
        assert!(layer["size"].as_u64().is_some_and(|s| s > 0), "{layer}");
        assert!(
            layer["holds"].as_str().is_some_and(|h| !h.is_empty()),
            "{layer}"
        );
    }
    assert!(report["base"].is_object(), "`base` missing: {report:#}");
    assert!(
        is_digest(report["base"]["digest"].as_str().unwrap_or_default()),
        "base has no digest: {report:#}"
    );
}

fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The raw bytes `skopeo inspect --raw [--config]` prints for `oci:LAYOUT:TAG`.
fn skopeo_raw(layout: &Path, config: bool) -> Vec<u8> {
    let skopeo = require_tool("skopeo", "skopeo");
    let mut command = Command::new(skopeo);
    command.arg("inspect").arg("--raw");
    if config {
        command.arg("--config");
    }
    command.arg(format!("oci:{}:{TAG}", layout.display()));
    run_ok(&mut command).stdout
}

/// Every file, directory and symlink under `dir` with its kind, mode, mtime, size and
/// content hash, to tell whether anything was written there.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .map(|item| {
            let item = item.expect("walk app dir");
            let meta = item.metadata().expect("lstat");
            let content = if meta.is_file() {
                sha256(&fs::read(item.path()).expect("read"))
            } else if meta.file_type().is_symlink() {
                fs::read_link(item.path())
                    .expect("readlink")
                    .display()
                    .to_string()
            } else {
                String::new()
            };
            let state = format!(
                "{:?} mode={:o} mtime={}.{:09} size={} {content}",
                meta.file_type(),
                meta.mode(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.len()
            );
            (
                item.path().strip_prefix(dir).expect("under dir").into(),
                state,
            )
        })
        .collect()
}

fn assert_untouched(dir: &Path, before: &BTreeMap<PathBuf, String>) {
    let after = snapshot(dir);
    for (path, state) in before {
        assert_eq!(
            after.get(path),
            Some(state),
            "the build changed or removed `{}` in the app directory {}",
            path.display(),
            dir.display()
        );
    }
    let added: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert!(
        added.is_empty(),
        "the build wrote into the app directory {}: {added:?}",
        dir.display()
    );
}

/// Copies the fixture with secrets planted, twice (plain and twisted), builds both, checks
/// they give one digest and that the builds left the copies alone; then checks the plain
/// image with skopeo, the schemas, umoci and bubblewrap.
fn build_fixture(fixture: &Fixture) -> Built {
    let temp = tempfile::tempdir().expect("temp dir");
    let source = temp.path().join("source");
    copy_variant(&fixture_dir(fixture.name), &source, &Variant::plain());
    for (path, content, mode) in SECRETS {
        write_file(&source.join(path), content, *mode);
    }
    let plain_app = temp.path().join("plain");
    let twisted_app = temp.path().join("elsewhere/twisted app");
    fs::create_dir(temp.path().join("elsewhere")).expect("mkdir");
    copy_variant(&source, &plain_app, &Variant::plain());
    copy_variant(&source, &twisted_app, &Variant::twisted());
    let plain_before = snapshot(&plain_app);
    let twisted_before = snapshot(&twisted_app);

    let layout = temp.path().join("plain-image");
    let twisted_layout = temp.path().join("elsewhere/twisted-image");
    let report = run_build(&mut build_command(&plain_app, &layout));
    let twisted = Variant::twisted();
    let mut twisted_command = build_command(&twisted_app, &twisted_layout);
    twisted_command.arg("--no-cache");
    let twisted_report = run_build(&mut twisted.wrap(&twisted_command));

    assert_report_shape(&report);
    assert_report_shape(&twisted_report);
    assert_eq!(
        report["digest"], twisted_report["digest"],
        "{}: two differently made copies give two images\nplain: {:#}\ntwisted: {:#}",
        fixture.name, report["layers"], twisted_report["layers"]
    );
    assert_eq!(report["layers"], twisted_report["layers"]);
    assert_untouched(&plain_app, &plain_before);
    assert_untouched(&twisted_app, &twisted_before);

    check_with_skopeo(&layout, &report);
    let bundle = umoci_unpack(&layout, TAG, &temp.path().join("bundle"));
    assert_eq!((bundle.uid(), bundle.gid()), (65532, 65532));
    assert_eq!(bundle.cwd(), "/workspace");
    let mut rootfs_paths = BTreeSet::new();
    let mut rootfs_dirs = BTreeSet::new();
    for item in walkdir::WalkDir::new(&bundle.rootfs).follow_links(false) {
        let item = item.expect("walk rootfs");
        let rel = item
            .path()
            .strip_prefix(&bundle.rootfs)
            .expect("under rootfs");
        let rel = rel.to_string_lossy().into_owned();
        if item.file_type().is_dir() {
            rootfs_dirs.insert(rel.clone());
        }
        rootfs_paths.insert(rel);
    }
    let built = Built {
        _temp: temp,
        layout,
        report,
        bundle,
        rootfs_paths,
        rootfs_dirs,
    };

    check_layers(&built, fixture);
    check_no_secrets_or_tools(&built);
    let mut app = run_image(&built.bundle);
    let (status, body) = app.get("/");
    assert_eq!(
        (status, body.as_str()),
        (200, fixture.body),
        "{}: unexpected answer; app output:\n{}",
        fixture.name,
        app.log()
    );
    built
}

/// Builds and checks the fixture (see [`build_fixture`]), runs the fixture's own checks,
/// and last checks that the build output lists the planted secrets as excluded.
fn check_fixture(fixture: &Fixture, specifics: impl FnOnce(&Built)) {
    let built = build_fixture(fixture);
    specifics(&built);
    let excluded: BTreeSet<&str> = built.report["excluded"]
        .as_array()
        .expect("`excluded` is an array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for path in EXCLUDED {
        assert!(
            excluded.contains(path),
            "{}: `{path}` was left out of the image but is not listed as excluded: {excluded:?}",
            fixture.name
        );
    }
}

/// skopeo reads the manifest and config repave reported; both validate against the OCI
/// schemas; the image's last layers are the ones reported, on top of the base's.
fn check_with_skopeo(layout: &Path, report: &Value) {
    let raw_manifest = skopeo_raw(layout, false);
    assert_eq!(
        sha256(&raw_manifest),
        report["digest"].as_str().expect("digest"),
        "the manifest skopeo reads is not the one repave reported"
    );
    let raw_config = skopeo_raw(layout, true);
    assert_eq!(
        sha256(&raw_config),
        report["config_digest"].as_str().expect("config_digest")
    );
    let manifest = skopeo_manifest(layout, TAG);
    let config = skopeo_config(layout, TAG);
    assert_eq!(
        serde_json::from_slice::<Value>(&raw_manifest).expect("manifest JSON"),
        manifest
    );
    assert_eq!(manifest["config"]["digest"], report["config_digest"]);
    validate_schema(Schema::Manifest, &manifest);
    validate_schema(Schema::Config, &config);

    let reported = report["layers"].as_array().expect("layers");
    let manifest_layers = manifest["layers"].as_array().expect("manifest layers");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    assert_eq!(manifest_layers.len(), diff_ids.len());
    assert!(manifest_layers.len() > reported.len(), "no base layers");
    let base_count = manifest_layers.len() - reported.len();
    assert_eq!(report["base"]["layers"].as_u64(), Some(base_count as u64));
    for (i, layer) in reported.iter().enumerate() {
        let descriptor = &manifest_layers[base_count + i];
        assert_eq!(descriptor["digest"], layer["digest"]);
        assert_eq!(descriptor["size"], layer["size"]);
        assert_eq!(diff_ids[base_count + i], layer["diff_id"]);
    }
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        report["base"]["digest"]
    );
    assert_eq!(
        config["created"].as_str(),
        Some("1980-01-01T00:00:01Z"),
        "config `created` is not the build epoch"
    );
}

fn blob_path(layout: &Path, digest: &Value) -> PathBuf {
    let digest = digest.as_str().expect("digest");
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").expect("sha256 digest"))
}

/// Every layer repave wrote follows the determinism rules; the last is the app, in
/// `/workspace`, owned by root and read-only to the image's user.
fn check_layers(built: &Built, fixture: &Fixture) {
    let layers = built.report["layers"].as_array().expect("layers");
    for (i, layer) in layers.iter().enumerate() {
        let members = python_tar_members(&blob_path(&built.layout, &layer["digest"]));
        assert!(!members.is_empty(), "layer {layer} is empty");
        let is_app = i == layers.len() - 1;
        for member in &members {
            let name = String::from_utf8_lossy(&member.name);
            let what = format!("{}: `{name}` in layer {}", fixture.name, layer["holds"]);
            assert_eq!((member.uid, member.gid), (0, 0), "{what}");
            assert_eq!((member.uname.as_str(), member.gname.as_str()), ("", ""));
            assert_eq!(member.mtime, DEFAULT_EPOCH, "{what}: mtime");
            match member.kind.as_str() {
                "dir" => assert_eq!(member.mode, 0o755, "{what}: mode {:o}", member.mode),
                "file" => assert!(
                    [0o644, 0o755].contains(&member.mode),
                    "{what}: mode {:o}",
                    member.mode
                ),
                "symlink" | "hardlink" => {}
                other => panic!("{what}: unexpected entry type {other}"),
            }
            if is_app {
                assert!(
                    name == "workspace" || name.starts_with("workspace/"),
                    "{what}: the app layer holds something outside /workspace"
                );
            }
        }
        if is_app {
            assert_eq!(layer["holds"], "app", "the last layer is not the app");
            let workspace = members.iter().find(|m| m.name == b"workspace");
            assert!(
                workspace.is_some_and(|m| m.kind == "dir" && m.mode == 0o755 && m.uid == 0),
                "the app layer has no root-owned 0755 /workspace: {workspace:?}"
            );
            let wanted = format!("workspace/{}", fixture.app_file);
            assert!(
                members.iter().any(|m| m.name == wanted.as_bytes()),
                "{wanted} is not in the app layer"
            );
        }
    }
}

/// No planted secret is anywhere in the unpacked image (all layers), and no shell,
/// package manager or compiler is a program in it.
fn check_no_secrets_or_tools(built: &Built) {
    let paths = &built.rootfs_paths;
    assert!(
        built.rootfs_dirs.contains("workspace"),
        "no /workspace in the image: {paths:?}"
    );
    for path in paths {
        let components: Vec<&str> = path.split('/').collect();
        for secret in [".git", ".env", "id_rsa", "id_ed25519"] {
            assert!(
                !components.contains(&secret),
                "`/{path}` is in the image, but `{secret}` is excluded by default"
            );
        }
        if let [.., dir, program] = components.as_slice() {
            let program_dir = matches!(*dir, "bin" | "sbin");
            let is_dir = built.rootfs_dirs.contains(path);
            assert!(
                !(program_dir && !is_dir && FORBIDDEN_PROGRAMS.contains(program)),
                "the run image has `/{path}`: no shell, package manager or compiler belongs there"
            );
        }
    }
}

#[test]
fn node_app_is_reproducible_and_answers() {
    let node = Fixture {
        name: "node",
        body: "hello from node\n",
        app_file: "server.js",
    };
    check_fixture(&node, |built| {
        let package_json: Value = serde_json::from_slice(
            &fs::read(fixture_dir("node").join("package.json")).expect("package.json"),
        )
        .expect("package.json is JSON");
        let has_module = |name: &str| {
            let suffix = format!("node_modules/{name}/package.json");
            built.rootfs_paths.iter().any(|p| p.ends_with(&suffix))
        };
        for dependency in package_json["dependencies"]
            .as_object()
            .expect("deps")
            .keys()
        {
            assert!(has_module(dependency), "dependency {dependency} is missing");
        }
        let dev = package_json["devDependencies"]
            .as_object()
            .expect("dev deps");
        for dependency in dev.keys() {
            assert!(
                !has_module(dependency),
                "dev dependency {dependency} is in the run image"
            );
        }
    });
}

#[test]
fn python_flask_app_is_reproducible_and_answers() {
    let flask = Fixture {
        name: "python-flask",
        body: "hello from flask\n",
        app_file: "app.py",
    };
    check_fixture(&flask, |built| {
        let gunicorn: Vec<&String> = built
            .rootfs_paths
            .iter()
            .filter(|p| p.ends_with("bin/gunicorn"))
            .collect();
        assert_eq!(gunicorn.len(), 1, "one gunicorn script: {gunicorn:?}");
        let script = fs::read_to_string(built.bundle.rootfs.join(gunicorn[0])).expect("gunicorn");
        assert_eq!(
            script.lines().next(),
            Some("#!/usr/bin/python3"),
            "gunicorn must run with the image's interpreter"
        );
        assert!(
            built
                .rootfs_paths
                .iter()
                .any(|p| p.ends_with("/flask/__init__.py")),
            "flask is not installed in the image"
        );
    });
}

#[test]
fn python_plain_app_is_reproducible_and_answers() {
    let plain = Fixture {
        name: "python-plain",
        body: "hello from python\n",
        app_file: "app.py",
    };
    check_fixture(&plain, |built| {
        assert!(built.rootfs_paths.contains("usr/bin/python3"));
    });
}

#[test]
fn go_app_is_reproducible_and_answers() {
    let go = Fixture {
        name: "go",
        body: "hello from go\n",
        app_file: "main.go",
    };
    check_fixture(&go, |built| {
        let program = built.bundle.args()[0].clone();
        let path = built
            .bundle
            .rootfs
            .join(program.strip_prefix('/').unwrap_or(&program));
        let binary = fs::read(path)
            .unwrap_or_else(|e| panic!("the entrypoint {program} is not in the image: {e}"));
        assert_static_elf(&binary, &program);
    });
}

/// Asserts `binary` is a 64-bit little-endian ELF executable with no program interpreter
/// (no dynamic loader), i.e. statically linked.
fn assert_static_elf(binary: &[u8], name: &str) {
    assert!(
        binary.len() > 64 && binary.starts_with(b"\x7fELF") && binary[4] == 2 && binary[5] == 1,
        "{name} is not a 64-bit little-endian ELF file"
    );
    let u16_at = |at: usize| u16::from_le_bytes([binary[at], binary[at + 1]]) as usize;
    let u64_at =
        |at: usize| u64::from_le_bytes(binary[at..at + 8].try_into().expect("8 bytes")) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    assert!(phnum > 0, "{name} has no program headers");
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let kind = u32::from_le_bytes(binary[at..at + 4].try_into().expect("4 bytes"));
        // PT_INTERP names the dynamic loader; PT_DYNAMIC lists shared libraries.
        assert!(
            kind != 3 && kind != 2,
            "{name} is dynamically linked (program header type {kind})"
        );
    }
}

#[test]
fn static_site_is_reproducible_and_served_by_lighttpd() {
    let index =
        fs::read_to_string(fixture_dir("static").join("public/index.html")).expect("index.html");
    let site = Fixture {
        name: "static",
        body: Box::leak(index.into_boxed_str()),
        app_file: "public/index.html",
    };
    check_fixture(&site, |built| {
        let args = built.bundle.args();
        assert!(
            args[0].ends_with("/lighttpd"),
            "the site is not served by lighttpd: {args:?}"
        );
    });
}

#[test]
fn procfile_app_is_reproducible_and_runs_its_web_process() {
    let procfile = Fixture {
        name: "procfile",
        // app.py's own default greeting differs: this one comes from the Procfile.
        body: "hello from the procfile\n",
        app_file: "Procfile",
    };
    check_fixture(&procfile, |built| {
        assert_eq!(
            built.bundle.args(),
            ["python3", "app.py", "--greeting", "hello from the procfile"],
            "the entrypoint is not the Procfile's `web` process, split into words"
        );
        let processes = built.report["processes"].as_array().expect("processes");
        let defaults: Vec<&Value> = processes
            .iter()
            .filter(|p| p["default"] == Value::Bool(true))
            .map(|p| &p["type"])
            .collect();
        assert_eq!(defaults, [&Value::from("web")]);
        assert!(processes.iter().any(|p| p["type"] == "once"));
    });
}

#[test]
fn building_with_the_default_output_never_writes_to_the_app_directory() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    copy_variant(&fixture_dir("node"), &app, &Variant::twisted());
    let before = snapshot(&app);
    let work = temp.path().join("work");
    fs::create_dir(&work).expect("mkdir");

    let mut command = repave();
    command
        .current_dir(&work)
        .arg("build")
        .arg(&app)
        .arg("--json");
    run_build(&mut command);

    assert_untouched(&app, &before);
    assert!(
        work.join("repave-image/index.json").is_file(),
        "the default output is not ./repave-image in the working directory"
    );
}
