//! The command line as a user drives it: the real `repave` binary locks and builds a small
//! package base, detects, locks and builds apps, inspects images, and refuses bad input with
//! the right exit code and a message naming what was wrong. skopeo, umoci, dpkg-deb and
//! Python's tarfile judge what it writes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use repave::epoch::DEFAULT_EPOCH;
use repave::image::assemble::Settings;
use repave::layer::{Entry, EntryKind};
use serde_json::Value;

/// A small package base: two packages, and awk (which only base-files' postinst needs)
/// left out, so the closure stays tiny.
const SMALL_BASE: &str = r#"suite = "bookworm"
components = ["main"]
architecture = "amd64"
packages = ["base-files", "netbase"]
exclude = ["awk"]
"#;

const LOCK_KEYS: [&str; 7] = [
    "name",
    "version",
    "architecture",
    "archive",
    "path",
    "size",
    "sha256",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `command`, expecting it to fail with `code`; returns its stderr.
fn run_fails(command: &mut Command, code: i32) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{command:?} should exit {code}:\n{}{stderr}",
        text(&output.stdout)
    );
    stderr
}

/// The stdout of a `--json` run: exactly one JSON object and nothing else.
fn json_stdout(output: &Output) -> Value {
    let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not exactly one JSON value ({e}):\n{}",
            text(&output.stdout)
        )
    });
    assert!(
        value.is_object(),
        "stdout is JSON but not an object: {value}"
    );
    value
}

fn oci(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

/// Names directly in `dir`.
fn listing(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Every file under `dir` with its bytes, keyed by relative path.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).expect("under dir");
            (
                rel.to_string_lossy().into_owned(),
                fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

fn index_json(layout: &Path) -> Value {
    let path = layout.join("index.json");
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("no {}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("index.json is JSON")
}

/// `tag → manifest digest` from a layout's index.json.
fn tags(layout: &Path) -> BTreeMap<String, String> {
    index_json(layout)["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                m["digest"].as_str().expect("digest").to_owned(),
            )
        })
        .collect()
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    layout.join("blobs/sha256").join(hex)
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_owned())
        .collect()
}

fn labels(config: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(config["config"]["Labels"].clone()).expect("labels are strings")
}

/// Writes the small base definition into `dir` and locks it; returns the lock's path.
fn lock_small_base(dir: &Path) -> PathBuf {
    let definition = dir.join("small.toml");
    fs::write(&definition, SMALL_BASE).expect("write definition");
    let lock = dir.join("small.lock");
    run_ok(
        repave()
            .args(["base", "lock"])
            .arg(&definition)
            .arg("--output")
            .arg(&lock),
    );
    lock
}

/// `name → sha256` of every `[[package]]` in a lock.
fn locked_packages(lock: &Path) -> BTreeMap<String, (String, String)> {
    let value: toml::Value =
        toml::from_str(&fs::read_to_string(lock).expect("read lock")).expect("the lock is TOML");
    value["package"]
        .as_array()
        .expect("[[package]] tables")
        .iter()
        .map(|p| {
            let field = |k: &str| p[k].as_str().expect("string field").to_owned();
            (field("name"), (field("version"), field("sha256")))
        })
        .collect()
}

/// A copy of the go fixture (static base) with its base pinned by `repave lock`.
fn locked_go_app(dir: &Path) -> PathBuf {
    let app = dir.join("app");
    copy_variant(&fixture("go"), &app, &Variant::plain());
    run_ok(repave().arg("lock").arg(&app));
    app
}

/// Builds `app` into `oci:LAYOUT:TAG` with `--json` and `extra` flags; returns the report.
fn build_json(app: &Path, layout: &Path, tag: &str, extra: &[&str]) -> Value {
    let output = run_ok(
        repave()
            .arg("build")
            .arg(app)
            .arg("--output")
            .arg(oci(layout, tag))
            .arg("--json")
            .args(extra),
    );
    json_stdout(&output)
}

#[test]
fn base_lock_writes_a_sorted_reviewable_lock_without_hosts() {
    let temp = tempfile::tempdir().expect("temp dir");
    let lock = lock_small_base(temp.path());
    let content = fs::read_to_string(&lock).expect("read lock");

    assert!(
        !content.contains("://") && !content.contains("http"),
        "the lock names a mirror:\n{content}"
    );

    let mut tables: Vec<Vec<(String, String)>> = Vec::new();
    let mut in_package = false;
    for line in content.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[[package]]";
            if in_package {
                tables.push(Vec::new());
            }
        } else if in_package && !line.is_empty() && !line.starts_with('#') {
            let (key, value) = line.split_once('=').expect("key = value");
            let value = value.trim().trim_matches('"').to_owned();
            tables
                .last_mut()
                .expect("inside a table")
                .push((key.trim().to_owned(), value));
        }
    }
    assert!(!tables.is_empty(), "no [[package]] tables:\n{content}");
    for table in &tables {
        let keys: Vec<&str> = table.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, LOCK_KEYS, "key order of a [[package]] table");
    }
    let names: Vec<&str> = tables.iter().map(|t| t[0].1.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "packages are sorted by name");
    for wanted in ["base-files", "netbase"] {
        assert!(names.contains(&wanted), "{wanted} is locked: {names:?}");
    }
    assert!(
        !names.contains(&"mawk"),
        "excluded awk was locked: {names:?}"
    );
}

#[test]
fn base_build_lays_out_packages_users_and_tmp_reproducibly() {
    let temp = tempfile::tempdir().expect("temp dir");
    let lock = lock_small_base(temp.path());
    let packages = locked_packages(&lock);
    let layout = temp.path().join("base");
    let output = run_ok(
        repave()
            .args(["base", "build"])
            .arg(&lock)
            .arg("--output")
            .arg(oci(&layout, "base"))
            .arg("--json"),
    );
    let report = json_stdout(&output);

    let manifest = skopeo_manifest(&layout, "base");
    let config = skopeo_config(&layout, "base");
    validate_schema(Schema::Manifest, &manifest);
    validate_schema(Schema::Config, &config);
    assert_eq!(
        report["digest"].as_str(),
        Some(tags(&layout)["base"].as_str())
    );
    let labels = labels(&config);
    assert_eq!(labels["io.buildpacks.base.distro.name"], "debian");
    assert_eq!(labels["io.buildpacks.base.distro.version"], "12");

    let mut members: BTreeMap<String, TarMember> = BTreeMap::new();
    for digest in layer_digests(&manifest) {
        for member in python_tar_members(&blob_path(&layout, &digest)) {
            let name = text(&member.name).trim_end_matches('/').to_owned();
            members.insert(name, member);
        }
    }
    for name in packages.keys() {
        assert!(
            members.contains_key(&format!("var/lib/dpkg/status.d/{name}")),
            "no dpkg status entry for {name}"
        );
    }
    let passwd = &members["etc/passwd"];
    assert!(
        text(&passwd.content).contains("nonroot:x:65532:65532:"),
        "/etc/passwd: {}",
        text(&passwd.content)
    );
    assert!(text(&members["etc/group"].content).contains("nonroot:x:65532:"));
    let tmp = &members["tmp"];
    assert_eq!((tmp.kind.as_str(), tmp.mode), ("dir", 0o1777), "/tmp");

    // Every file the .debs ship keeps its mode and owner (base-files has a 2775
    // root:staff /var/local and a 0700 /root), judged by dpkg-deb's own extraction.
    let dpkg_deb = require_tool("dpkg-deb", "dpkg");
    for (name, (_, sha256)) in &packages {
        let deb = cache_dir().join("debs").join(format!("{sha256}.deb"));
        let data = temp.path().join(format!("{name}.tar"));
        let tar = run_ok(Command::new(&dpkg_deb).arg("--fsys-tarfile").arg(&deb));
        fs::write(&data, tar.stdout).expect("write data.tar");
        for shipped in python_tar_members(&data) {
            let path = text(&shipped.name);
            let path = path.trim_start_matches("./").trim_end_matches('/');
            if path.is_empty() || path == "." {
                continue;
            }
            let layered = members
                .get(path)
                .unwrap_or_else(|| panic!("{name} ships `{path}`, missing from the base"));
            assert_eq!(
                (layered.mode, layered.uid, layered.gid),
                (shipped.mode, shipped.uid, shipped.gid),
                "mode and owner of `{path}` from {name}"
            );
        }
    }
    let local = &members["var/local"];
    assert_eq!((local.mode, local.gid), (0o2775, 50), "/var/local");

    let again = temp.path().join("again");
    let second = json_stdout(&run_ok(
        repave()
            .args(["base", "build"])
            .arg(&lock)
            .arg("--output")
            .arg(oci(&again, "other"))
            .arg("--json"),
    ));
    assert_eq!(second["digest"], report["digest"], "same lock, same digest");
    assert_eq!(tags(&again)["other"], tags(&layout)["base"]);
}

#[test]
fn base_build_refuses_a_package_whose_sha256_was_edited() {
    let temp = tempfile::tempdir().expect("temp dir");
    let lock = lock_small_base(temp.path());
    let content = fs::read_to_string(&lock).expect("read lock");
    let (_, netbase_sha) = &locked_packages(&lock)["netbase"];
    let edited = content.replace(netbase_sha, &format!("{}0000", &netbase_sha[..60]));
    assert_ne!(edited, content);
    fs::write(&lock, edited).expect("write lock");

    let out_parent = temp.path().join("out");
    fs::create_dir(&out_parent).expect("mkdir");
    let target = out_parent.join("base");
    let stderr = run_fails(
        repave()
            .args(["base", "build"])
            .arg(&lock)
            .arg("--output")
            .arg(oci(&target, "base")),
        1,
    );
    assert!(
        stderr.contains("netbase"),
        "error names the package:\n{stderr}"
    );
    assert!(
        stderr.contains("sha256"),
        "error says what mismatched:\n{stderr}"
    );
    assert!(
        !target.exists(),
        "a failed base build left {}",
        target.display()
    );
    assert!(
        listing(&out_parent).is_empty(),
        "{:?}",
        listing(&out_parent)
    );
}

#[test]
fn base_lock_names_a_missing_package() {
    let temp = tempfile::tempdir().expect("temp dir");
    let definition = temp.path().join("missing.toml");
    fs::write(
        &definition,
        SMALL_BASE.replace("\"netbase\"", "\"no-such-package-repave\""),
    )
    .expect("write definition");
    let lock = temp.path().join("missing.lock");
    let stderr = run_fails(
        repave()
            .args(["base", "lock"])
            .arg(&definition)
            .arg("--output")
            .arg(&lock),
        1,
    );
    assert!(stderr.contains("no-such-package-repave"), "{stderr}");
    assert!(!lock.exists(), "a failed lock was written");
}

#[test]
fn base_lock_refuses_an_index_not_signed_by_the_keyring() {
    let removed = Path::new("/usr/share/keyrings/debian-archive-removed-keys.gpg");
    assert!(
        removed.is_file(),
        "{} is missing: run `apt-get install -y debian-archive-keyring`",
        removed.display()
    );
    let temp = tempfile::tempdir().expect("temp dir");
    let definition = temp.path().join("small.toml");
    fs::write(&definition, SMALL_BASE).expect("write definition");
    let lock = temp.path().join("small.lock");
    let stderr = run_fails(
        repave()
            .args(["base", "lock"])
            .arg(&definition)
            .arg("--output")
            .arg(&lock)
            .arg("--keyring")
            .arg(removed),
        1,
    );
    assert!(stderr.contains("signature"), "{stderr}");
    assert!(
        stderr.contains("bookworm"),
        "error names the suite: {stderr}"
    );
    assert!(!lock.exists(), "a lock was written from an untrusted index");

    let empty = temp.path().join("empty.gpg");
    fs::write(&empty, "").expect("write keyring");
    let stderr = run_fails(
        repave()
            .args(["base", "lock"])
            .arg(&definition)
            .arg("--output")
            .arg(&lock)
            .arg("--keyring")
            .arg(&empty),
        1,
    );
    assert!(
        stderr.contains("empty.gpg"),
        "error names the keyring: {stderr}"
    );
    assert!(!lock.exists());
}

#[test]
fn detect_names_the_buildpack_and_why() {
    let human = run_ok(repave().arg("detect").arg(fixture("node")));
    let stdout = text(&human.stdout);
    assert!(stdout.contains("repave/nodejs"), "{stdout}");
    assert!(stdout.contains("package.json"), "says why:\n{stdout}");

    let report = json_stdout(&run_ok(
        repave().arg("detect").arg(fixture("node")).arg("--json"),
    ));
    let group: Vec<&str> = report["group"]
        .as_array()
        .expect("group")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        group.iter().any(|id| id.starts_with("repave/nodejs@")),
        "{report}"
    );
    let passed = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == "repave/nodejs" && s["passed"] == true)
        .unwrap_or_else(|| panic!("no passing nodejs step: {report}"));
    assert!(passed["output"]
        .as_str()
        .is_some_and(|o| o.contains("package.json")));

    let empty = tempfile::tempdir().expect("temp dir");
    let stderr = run_fails(repave().arg("detect").arg(empty.path()), 1);
    assert!(
        stderr.contains(&empty.path().display().to_string()),
        "error names the directory: {stderr}"
    );
    assert!(
        stderr.contains("Procfile") && stderr.contains("--buildpack"),
        "error says what to do: {stderr}"
    );
}

#[test]
fn lock_writes_only_repave_lock_and_build_uses_it() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    copy_variant(&fixture("go"), &app, &Variant::plain());
    let before = snapshot(&app);
    run_ok(repave().arg("lock").arg(&app));
    let after = snapshot(&app);
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(added, ["repave.lock"], "lock adds exactly repave.lock");
    for (path, bytes) in &before {
        assert_eq!(&after[path], bytes, "`repave lock` changed {path}");
    }
    let packages = locked_packages(&app.join("repave.lock"));

    let layout = temp.path().join("image");
    let output = run_ok(
        repave()
            .arg("build")
            .arg(&app)
            .arg("--output")
            .arg(oci(&layout, "app")),
    );
    let stderr = text(&output.stderr);
    assert!(
        !stderr.contains("resolved now"),
        "a locked build resolved again:\n{stderr}"
    );
    assert_eq!(snapshot(&app), after, "`repave build` wrote into the app");

    let config = skopeo_config(&layout, "app");
    let record: Value =
        serde_json::from_str(&labels(&config)["io.repave.base"]).expect("io.repave.base is JSON");
    let in_image: BTreeSet<String> = record["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p.as_str().expect("string").to_owned())
        .collect();
    let in_lock: BTreeSet<String> = packages
        .iter()
        .map(|(name, (version, _))| format!("{name}={version}"))
        .collect();
    assert_eq!(in_image, in_lock);
}

#[test]
fn build_json_env_label_and_tag_flags() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let layout = temp.path().join("image");
    let output = run_ok(
        repave()
            .arg("build")
            .arg(&app)
            .arg("--output")
            .arg(oci(&layout, "app"))
            .args(["--json", "--env", "GREETING=hi there", "--label"])
            .args(["org.example.team=web", "--tag", "extra"]),
    );
    let report = json_stdout(&output);
    assert!(
        text(&output.stderr).contains("repave/go: go build"),
        "buildpack output goes to stderr:\n{}",
        text(&output.stderr)
    );
    for key in ["digest", "config_digest", "layers", "base"] {
        assert!(!report[key].is_null(), "--json has no `{key}`: {report}");
    }
    for layer in report["layers"].as_array().expect("layers") {
        for key in ["digest", "diff_id", "size", "holds"] {
            assert!(!layer[key].is_null(), "a layer has no `{key}`: {layer}");
        }
    }

    let tags = tags(&layout);
    assert_eq!(
        tags.keys().collect::<Vec<_>>(),
        ["app", "extra"],
        "index.json tags"
    );
    assert_eq!(tags["app"], tags["extra"]);
    assert_eq!(report["digest"].as_str(), Some(tags["app"].as_str()));

    let config = skopeo_config(&layout, "extra");
    validate_schema(Schema::Config, &config);
    validate_schema(Schema::Index, &index_json(&layout));
    assert_eq!(
        report["config_digest"],
        skopeo_manifest(&layout, "extra")["config"]["digest"]
    );
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(env.contains(&"GREETING=hi there"), "{env:?}");
    assert_eq!(labels(&config)["org.example.team"], "web");
}

#[test]
fn an_unknown_default_process_fails_naming_the_known_ones() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let target = temp.path().join("image");
    let stderr = run_fails(
        repave()
            .arg("build")
            .arg(&app)
            .arg("--output")
            .arg(oci(&target, "app"))
            .args(["--default-process", "worker"]),
        1,
    );
    assert!(stderr.contains("`worker`"), "{stderr}");
    assert!(
        stderr.contains("web"),
        "error names the known types: {stderr}"
    );
    assert!(!target.exists());

    let layout = temp.path().join("ok");
    build_json(&app, &layout, "app", &["--default-process", "web"]);
    let bundle_parent = tempfile::tempdir().expect("temp dir");
    let bundle = umoci_unpack(&layout, "app", &bundle_parent.path().join("bundle"));
    assert!(
        bundle.args()[0].ends_with("/hello"),
        "entrypoint: {:?}",
        bundle.args()
    );
}

#[test]
fn build_on_a_base_image_passes_its_layers_through() {
    let temp = tempfile::tempdir().expect("temp dir");
    let lock = lock_small_base(temp.path());
    let base_layout = temp.path().join("base");
    let base = json_stdout(&run_ok(
        repave()
            .args(["base", "build"])
            .arg(&lock)
            .arg("--output")
            .arg(oci(&base_layout, "base"))
            .arg("--json"),
    ));
    let base_digest = base["digest"].as_str().expect("digest");
    let app = temp.path().join("app");
    copy_variant(&fixture("go"), &app, &Variant::plain());

    let layout = temp.path().join("image");
    let base_ref = format!("oci:{}@{base_digest}", base_layout.display());
    let report = build_json(&app, &layout, "app", &["--base", &base_ref]);
    assert_eq!(report["base"]["digest"].as_str(), Some(base_digest));

    let config = skopeo_config(&layout, "app");
    let record: Value =
        serde_json::from_str(&labels(&config)["io.repave.base"]).expect("io.repave.base is JSON");
    assert_eq!(record["digest"].as_str(), Some(base_digest));
    let manifest = skopeo_manifest(&layout, "app");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"].as_str(),
        Some(base_digest)
    );

    let base_layers = layer_digests(&skopeo_manifest(&base_layout, "base"));
    let layers = layer_digests(&manifest);
    assert!(
        layers.len() > base_layers.len(),
        "no app layers: {layers:?}"
    );
    assert_eq!(layers[..base_layers.len()], base_layers[..]);
    for digest in &base_layers {
        let ours = fs::read(blob_path(&layout, digest)).expect("image blob");
        let theirs = fs::read(blob_path(&base_layout, digest)).expect("base blob");
        assert!(ours == theirs, "base layer {digest} changed bytes");
    }
}

/// A Procfile whose web command needs a shell, which the static base does not have.
fn shell_procfile_app(dir: &Path) -> PathBuf {
    let app = locked_go_app(dir);
    write_file(&app.join("Procfile"), "web: echo hi | cat\n", 0o644);
    app
}

#[test]
fn a_failed_build_writes_nothing() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = shell_procfile_app(temp.path());
    let out_parent = temp.path().join("out");
    fs::create_dir(&out_parent).expect("mkdir");
    let target = out_parent.join("image");
    let stderr = run_fails(
        repave()
            .arg("build")
            .arg(&app)
            .arg("--output")
            .arg(oci(&target, "app")),
        1,
    );
    assert!(stderr.contains("needs a shell"), "{stderr}");
    assert!(!target.exists(), "a failed build left {}", target.display());
    assert!(
        listing(&out_parent).is_empty(),
        "left behind: {:?}",
        listing(&out_parent)
    );
}

#[test]
fn building_into_an_existing_layout_keeps_its_other_tags() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let layout = temp.path().join("image");
    let first = build_json(&app, &layout, "one", &[]);
    let second = build_json(&app, &layout, "two", &["--env", "VARIANT=two"]);
    assert_ne!(first["digest"], second["digest"]);
    let tags = tags(&layout);
    assert_eq!(tags["one"].as_str(), first["digest"].as_str().unwrap_or(""));
    assert_eq!(
        tags["two"].as_str(),
        second["digest"].as_str().unwrap_or("")
    );
    validate_schema(Schema::Manifest, &skopeo_manifest(&layout, "one"));
    let bundle_parent = tempfile::tempdir().expect("temp dir");
    umoci_unpack(&layout, "one", &bundle_parent.path().join("bundle"));

    // A failed build into the same layout leaves it as it was.
    let index_before = fs::read(layout.join("index.json")).expect("index");
    let broken_dir = temp.path().join("broken");
    fs::create_dir(&broken_dir).expect("mkdir");
    let broken = shell_procfile_app(&broken_dir);
    run_fails(
        repave()
            .arg("build")
            .arg(&broken)
            .arg("--output")
            .arg(oci(&layout, "three")),
        1,
    );
    assert_eq!(
        fs::read(layout.join("index.json")).expect("index"),
        index_before
    );
    skopeo_manifest(&layout, "two");
}

#[test]
fn building_into_a_directory_that_is_not_a_layout_fails_and_keeps_its_files() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let target = temp.path().join("notes");
    write_file(&target.join("keep.txt"), "mine\n", 0o644);
    write_file(&target.join("sub/more.txt"), "also mine\n", 0o600);
    let before = snapshot(&target);
    let names_before = listing(&target);
    let stderr = run_fails(
        repave()
            .arg("build")
            .arg(&app)
            .arg("--output")
            .arg(oci(&target, "app")),
        1,
    );
    assert!(
        stderr.contains(&target.display().to_string()),
        "error names the directory: {stderr}"
    );
    assert_eq!(snapshot(&target), before);
    assert_eq!(listing(&target), names_before);
    assert!(
        listing(temp.path())
            .iter()
            .all(|n| !n.starts_with(".repave-staging-")),
        "staging left behind: {:?}",
        listing(temp.path())
    );
}

#[test]
fn inspect_reports_base_user_buildpacks_and_default_process() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let layout = temp.path().join("image");
    let built = build_json(&app, &layout, "app", &[]);
    let base_digest = built["base"]["digest"].as_str().expect("base digest");
    let reference = oci(&layout, "app");

    let human = text(&run_ok(repave().arg("inspect").arg(&reference)).stdout);
    for wanted in [
        format!("static@{base_digest}"),
        "65532:65532".to_owned(),
        "repave/go@".to_owned(),
        "web (default)".to_owned(),
    ] {
        assert!(human.contains(&wanted), "no `{wanted}` in:\n{human}");
    }

    let report = json_stdout(&run_ok(
        repave().arg("inspect").arg(&reference).arg("--json"),
    ));
    assert_eq!(report["digest"], built["digest"]);
    assert_eq!(report["base"]["name"], "static");
    assert_eq!(report["base"]["digest"].as_str(), Some(base_digest));
    assert_eq!(report["user"], "65532:65532");
    let buildpacks = report["buildpacks"].as_array().expect("buildpacks");
    assert!(
        buildpacks
            .iter()
            .any(|b| b.as_str().is_some_and(|b| b.starts_with("repave/go@"))),
        "{report}"
    );
    let defaults: Vec<&Value> = report["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter(|p| p["default"] == true)
        .collect();
    assert_eq!(defaults.len(), 1, "{report}");
    assert_eq!(defaults[0]["type"], "web");
}

/// Users run builds side by side (CI jobs, a watch loop) with one cache: every one of
/// them must succeed and give the same image.
#[test]
fn concurrent_builds_sharing_a_cache_all_succeed() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    for round in 0..2 {
        let children: Vec<_> = (0..4)
            .map(|i| {
                let layout = temp.path().join(format!("image-{round}-{i}"));
                let child = repave()
                    .arg("build")
                    .arg(&app)
                    .arg("--output")
                    .arg(oci(&layout, "app"))
                    .arg("--json")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("start repave build");
                (layout, child)
            })
            .collect();
        let mut digests = BTreeSet::new();
        for (layout, child) in children {
            let output = child.wait_with_output().expect("wait for repave build");
            assert!(
                output.status.success(),
                "a build next to others into {} failed:\n{}",
                layout.display(),
                text(&output.stderr)
            );
            digests.insert(json_stdout(&output)["digest"].to_string());
        }
        assert_eq!(digests.len(), 1, "concurrent builds differ: {digests:?}");
    }
}

/// A change here means the image encoding changed (layer bytes, config or manifest
/// JSON): note it in CHANGELOG.md, since every image digest changes with it.
#[test]
fn golden_image_has_pinned_manifest_and_config_digests() {
    let settings = Settings {
        epoch: DEFAULT_EPOCH,
        env: vec!["PATH=/usr/bin:/bin".to_owned(), "PORT=8080".to_owned()],
        entrypoint: Some(vec!["/workspace/run".to_owned()]),
        user: Some("65532:65532".to_owned()),
        working_dir: Some("/workspace".to_owned()),
        exposed_ports: vec!["8080/tcp".to_owned()],
        labels: BTreeMap::from([("org.example.golden".to_owned(), "yes".to_owned())]),
        ..Settings::default()
    };
    let layers = vec![
        vec![
            Entry::file("etc/motd", "golden\n", 0o644),
            Entry {
                path: b"tmp".to_vec(),
                kind: EntryKind::Directory,
                mode: 0o1777,
                uid: 0,
                gid: 0,
            },
        ],
        vec![
            Entry::file("workspace/run", "#!/bin/true\n", 0o755),
            Entry::file("workspace/data.txt", "data\n", 0o644),
        ],
    ];
    let temp = tempfile::tempdir().expect("temp dir");
    let layout = temp.path().join("golden");
    let image = write_test_image(&layout, "golden", layers, &settings);

    validate_schema(Schema::Manifest, &skopeo_manifest(&layout, "golden"));
    assert_eq!(tags(&layout)["golden"], image.manifest_digest.to_string());
    assert_eq!(
        image.config_digest.to_string(),
        "sha256:9aad318cd9d7901a930fa4943ddf4311e8f01931403447c3c61a015d05df2545"
    );
    assert_eq!(
        image.manifest_digest.to_string(),
        "sha256:2580c725791780f7d281a6a131dfe71f37db89629feaadec3e47e4e4bd928754"
    );
}

#[test]
fn usage_errors_exit_2_and_failures_exit_1_naming_what_was_wrong() {
    run_fails(repave().args(["build", "--no-such-flag"]), 2);
    run_fails(repave().arg("frobnicate"), 2);
    run_fails(repave().args(["base", "lock", "def.toml"]), 2);
    run_fails(repave().args(["base", "build"]), 2);

    let temp = tempfile::tempdir().expect("temp dir");
    let stderr = run_fails(
        repave()
            .arg("build")
            .arg(fixture("go"))
            .args(["--output", "foo"]),
        1,
    );
    assert!(
        stderr.contains("`foo`") && stderr.contains("oci:DIR"),
        "{stderr}"
    );

    let stderr = run_fails(
        repave()
            .arg("build")
            .arg(fixture("go"))
            .arg("--output")
            .arg(oci(&temp.path().join("image"), "app"))
            .args(["--env", "NOEQUALS"]),
        1,
    );
    assert!(
        stderr.contains("NOEQUALS") && stderr.contains("KEY=VALUE"),
        "{stderr}"
    );

    let missing_lock = temp.path().join("missing.lock");
    let stderr = run_fails(
        repave()
            .args(["base", "build"])
            .arg(&missing_lock)
            .arg("--output")
            .arg(oci(&temp.path().join("base"), "base")),
        1,
    );
    assert!(stderr.contains("missing.lock"), "{stderr}");

    let garbled = temp.path().join("garbled.lock");
    fs::write(&garbled, "this is = not [ a lock").expect("write");
    let stderr = run_fails(
        repave()
            .args(["base", "build"])
            .arg(&garbled)
            .arg("--output")
            .arg(oci(&temp.path().join("base"), "base")),
        1,
    );
    assert!(stderr.contains("garbled.lock"), "{stderr}");

    let absent = temp.path().join("absent");
    let stderr = run_fails(repave().arg("inspect").arg(oci(&absent, "app")), 1);
    assert!(stderr.contains(&absent.display().to_string()), "{stderr}");

    let stderr = run_fails(
        repave()
            .current_dir(temp.path())
            .arg("build")
            .arg(temp.path().join("nope")),
        1,
    );
    assert!(stderr.contains("nope"), "{stderr}");
    assert!(!temp.path().join("repave-image").exists());
}

/// `docker-archive:` output is what `docker save` writes: skopeo reads it, it holds the
/// same config as the layout build, its layers are the uncompressed diff_ids, and the image
/// copied out of it runs.
#[test]
fn docker_archive_output_is_read_by_skopeo_and_runs() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let layout = temp.path().join("image");
    let built = build_json(&app, &layout, "app", &[]);
    let archive = temp.path().join("app.tar");
    let reference = format!("docker-archive:{}:example/app:v1", archive.display());
    let report = json_stdout(&run_ok(
        repave()
            .arg("build")
            .arg(&app)
            .args(["--output", &reference, "--json", "--tag", "extra"]),
    ));
    assert_eq!(
        report["digest"], built["digest"],
        "the image is the same wherever it goes"
    );

    let config = run_ok(
        Command::new(require_tool("skopeo", "skopeo"))
            .args(["inspect", "--config", "--raw"])
            .arg(format!("docker-archive:{}", archive.display())),
    );
    let config_digest = repave::digest::Digest::of(&config.stdout);
    assert_eq!(
        config_digest.to_string(),
        built["config_digest"].as_str().unwrap()
    );

    let listing = run_ok(
        Command::new("tar")
            .arg("-xOf")
            .arg(&archive)
            .arg("manifest.json"),
    );
    let manifest: Value = serde_json::from_slice(&listing.stdout).expect("manifest.json");
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["example/app:v1", "example/app:extra"])
    );
    let config_json: Value = serde_json::from_slice(&config.stdout).expect("config");
    let diff_ids: Vec<String> = config_json["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|d| format!("{}.tar", d.as_str().unwrap().trim_start_matches("sha256:")))
        .collect();
    let layers: Vec<String> = manifest[0]["Layers"]
        .as_array()
        .expect("Layers")
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(layers, diff_ids);

    // podman loads it into its own store (vfs needs no container runtime).
    let store = temp.path().join("podman");
    let podman = || {
        let mut command = Command::new(require_tool("podman", "podman"));
        command
            .args(["--storage-driver", "vfs", "--root"])
            .arg(store.join("root"))
            .arg("--runroot")
            .arg(store.join("run"));
        command
    };
    let loaded = run_ok(podman().arg("load").arg("-i").arg(&archive));
    let said = text(&loaded.stdout) + &text(&loaded.stderr);
    assert!(said.contains("example/app:v1"), "{said}");
    let images = text(
        &run_ok(podman().args(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])).stdout,
    );
    // podman names an image by its config digest: the loaded image is the one built.
    let config_hex = built["config_digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let expected = format!("localhost/example/app:v1 {}", &config_hex[..12]);
    assert!(
        images.lines().any(|l| l.trim() == expected),
        "want `{expected}` in:\n{images}"
    );

    let copied = temp.path().join("copied");
    run_ok(
        Command::new(require_tool("skopeo", "skopeo"))
            .args(["copy", "-q"])
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(oci(&copied, "app")),
    );
    let bundle = umoci_unpack(&copied, "app", &temp.path().join("bundle"));
    let mut running = run_image(&bundle);
    let (status, body) = running.get("/");
    assert_eq!((status, body.trim()), (200, "hello from go"));
}

/// A docker-archive is read as well as written: `inspect` reads it, and a base saved as
/// one is built on with its layer files passed through byte for byte.
#[test]
fn docker_archive_input_serves_inspect_and_bases() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let base_archive = temp.path().join("base.tar");
    let base_ref = format!("docker-archive:{}:bases/static:1", base_archive.display());
    run_ok(
        repave()
            .args(["base", "build"])
            .arg(app.join("repave.lock"))
            .args(["--output", &base_ref]),
    );

    let layout = temp.path().join("image");
    let built = build_json(&app, &layout, "app", &["--base", &base_ref]);
    assert_eq!(built["base"]["name"], "static", "{built}");
    let manifest = skopeo_manifest(&layout, "app");
    let config = skopeo_config(&layout, "app");
    validate_schema(Schema::Manifest, &manifest);
    let layers = manifest["layers"].as_array().expect("layers");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    let base_layers = built["base"]["layers"].as_u64().expect("base layer count") as usize;
    assert!(base_layers > 0);
    for (layer, diff_id) in layers.iter().zip(diff_ids).take(base_layers) {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar");
        assert_eq!(
            layer["digest"], *diff_id,
            "an archive's tar layer is its own diff_id"
        );
    }
    let bundle = umoci_unpack(&layout, "app", &temp.path().join("bundle"));
    let (status, body) = run_image(&bundle).get("/");
    assert_eq!((status, body.trim()), (200, "hello from go"));

    let report = json_stdout(&run_ok(
        repave().arg("inspect").arg(&base_ref).arg("--json"),
    ));
    assert_eq!(report["os"], "linux");
    assert!(
        report["labels"]["io.buildpacks.base.distro.name"] == "debian",
        "{report}"
    );
    let missing = run_fails(
        repave().arg("inspect").arg(format!(
            "docker-archive:{}:no/such:tag",
            base_archive.display()
        )),
        1,
    );
    assert!(missing.contains("no/such:tag"), "{missing}");
}

/// `repave build` run inside the app writes its default output there; the next build must
/// not pack that output into the image (which would double it every time).
#[test]
fn the_default_output_inside_the_app_stays_out_of_the_image() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let build_here = || {
        json_stdout(&run_ok(
            repave().current_dir(&app).args(["build", "--json"]),
        ))
    };
    let first = build_here();
    assert!(app.join("repave-image/index.json").is_file());
    let second = build_here();
    assert_eq!(first["digest"], second["digest"]);
    let excluded: Vec<&str> = second["excluded"]
        .as_array()
        .expect("excluded")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(excluded.contains(&"repave-image"), "{second}");
}

/// Labels that record the base and buildpacks are repave's; a tag must be a valid tag; an
/// image cannot be written to a digest. Each is refused before any work, naming the value.
#[test]
fn reserved_labels_bad_tags_and_digest_targets_are_refused() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = fixture("go");
    let err = run_fails(
        repave()
            .arg("build")
            .arg(&app)
            .args(["--label", "io.repave.base=forged", "--output"])
            .arg(oci(&temp.path().join("a"), "x")),
        1,
    );
    assert!(err.contains("io.repave.base"), "{err}");
    assert!(!temp.path().join("a").exists());

    let bad_tag = format!("oci:{}:Bad Tag!", temp.path().join("b").display());
    let err = run_fails(
        repave().arg("build").arg(&app).args(["--output", &bad_tag]),
        1,
    );
    assert!(
        err.contains("Bad Tag!") && err.contains("not a valid tag"),
        "{err}"
    );

    let digest = format!(
        "oci:{}@sha256:{}",
        temp.path().join("c").display(),
        "0".repeat(64)
    );
    let err = run_fails(
        repave().arg("build").arg(&app).args(["--output", &digest]),
        1,
    );
    assert!(err.contains("cannot be written to a digest"), "{err}");
    assert_eq!(
        fs::read_dir(temp.path()).expect("temp").count(),
        0,
        "nothing written"
    );
}

/// A Node.js app with neither `scripts.start` nor `main` runs `index.js`, npm's default
/// `main`; a `main` without its `.js` names the file Node would load.
#[test]
fn node_default_process_falls_back_to_index_js() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    fs::create_dir_all(&app).expect("app dir");
    fs::write(
        app.join("package.json"),
        r#"{"name":"idx","version":"1.0.0"}"#,
    )
    .expect("write");
    fs::write(app.join("index.js"), "console.log('hi')\n").expect("write");
    let report = build_json(&app, &temp.path().join("a"), "app", &[]);
    let web = &report["processes"][0];
    assert_eq!(
        web["args"],
        serde_json::json!(["/workspace/index.js"]),
        "{report}"
    );

    fs::write(
        app.join("package.json"),
        r#"{"name":"idx","version":"1.0.0","main":"index"}"#,
    )
    .expect("write");
    let report = build_json(&app, &temp.path().join("b"), "app", &[]);
    assert_eq!(
        report["processes"][0]["args"],
        serde_json::json!(["/workspace/index.js"])
    );
}
