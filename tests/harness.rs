//! Proves the test harness itself against real tools: an image written by the library is
//! unpacked by umoci and its process answers HTTP under bubblewrap as the image's user;
//! the OCI schemas accept what repave writes and reject what is broken; copies made for
//! reproducibility tests really differ on disk.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::*;
use repave::epoch::DEFAULT_EPOCH;
use repave::image::assemble::Settings;
use repave::layer::{Entry, EntryKind};
use serde_json::{json, Value};

fn settings() -> Settings {
    Settings {
        epoch: DEFAULT_EPOCH,
        env: vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
            "GREETING=hello".to_owned(),
        ],
        entrypoint: Some(vec!["/workspace/server".to_owned()]),
        user: Some("65532:65532".to_owned()),
        working_dir: Some("/workspace".to_owned()),
        ..Settings::default()
    }
}

/// The fixture HTTP server, compiled statically so that it needs nothing in the image.
fn hello_server(dir: &Path) -> Vec<u8> {
    let gcc = require_tool("gcc", "gcc libc6-dev");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hello-server.c");
    let binary = dir.join("hello-server");
    run_ok(
        Command::new(gcc)
            .args(["-static", "-O2", "-o"])
            .arg(&binary)
            .arg(source),
    );
    fs::read(binary).expect("compiled server")
}

fn server_image(dir: &Path) -> Vec<Entry> {
    vec![
        Entry::file("workspace/server", hello_server(dir), 0o755),
        Entry {
            path: b"tmp".to_vec(),
            kind: EntryKind::Directory,
            mode: 0o1777,
            uid: 0,
            gid: 0,
        },
    ]
}

#[test]
fn an_image_written_here_runs_as_its_user_under_bubblewrap() {
    let temp = tempfile::tempdir().expect("temp dir");
    let layout = temp.path().join("layout");
    write_test_image(&layout, "app", vec![server_image(temp.path())], &settings());

    let bundle = umoci_unpack(&layout, "app", &temp.path().join("bundle"));
    assert_eq!(bundle.args(), ["/workspace/server"]);
    assert_eq!((bundle.uid(), bundle.gid()), (65532, 65532));
    assert_eq!(bundle.cwd(), "/workspace");
    assert!(bundle.env().contains(&"GREETING=hello".to_owned()));

    let mut app = run_image(&bundle);
    let (status, body) = app.get("/");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body.trim(),
        "uid=65532 gid=65532 cwd=/workspace greeting=hello cwd_writable=no tmp_writable=yes"
    );
    assert_eq!(app.get("/missing").0, 404);
}

#[test]
fn skopeo_and_the_oci_schemas_accept_what_the_library_writes() {
    let temp = tempfile::tempdir().expect("temp dir");
    let layout = temp.path().join("layout");
    let entries = vec![Entry::file("workspace/hello.txt", "hello\n", 0o644)];
    let image = write_test_image(&layout, "v1", vec![entries], &settings());

    let manifest = skopeo_manifest(&layout, "v1");
    let ours: Value = serde_json::from_slice(&image.manifest_bytes).expect("manifest json");
    assert_eq!(manifest, ours);
    let config = skopeo_config(&layout, "v1");
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(1)
    );

    validate_schema(Schema::Manifest, &manifest);
    validate_schema(Schema::Config, &config);
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index"))
        .expect("index json");
    validate_schema(Schema::Index, &index);
    let oci_layout = fs::read(layout.join("oci-layout")).expect("oci-layout");
    validate_schema(
        Schema::Layout,
        &serde_json::from_slice(&oci_layout).expect("json"),
    );
}

#[test]
fn the_oci_schemas_reject_broken_documents() {
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", "a".repeat(64)),
            "size": 10
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{}", "b".repeat(64)),
            "size": 20
        }]
    });
    assert_eq!(
        schema_errors(Schema::Manifest, &manifest),
        Vec::<String>::new()
    );

    manifest["config"]["digest"] = json!("no digest here");
    let errors = schema_errors(Schema::Manifest, &manifest);
    assert!(
        errors.iter().any(|e| e.starts_with("config/digest")),
        "{errors:?}"
    );

    let config = json!({"architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": []}});
    let errors = schema_errors(Schema::Config, &config);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("'os' is a required property")),
        "{errors:?}"
    );

    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": 7}]});
    assert!(!schema_errors(Schema::Index, &index).is_empty());
}

#[test]
fn repave_binary_inspects_an_image_written_by_the_library() {
    let temp = tempfile::tempdir().expect("temp dir");
    let layout = temp.path().join("layout");
    let entries = vec![Entry::file("workspace/hello.txt", "hello\n", 0o644)];
    let image = write_test_image(&layout, "v1", vec![entries], &settings());

    let reference = format!("oci:{}:v1", layout.display());
    let output = run_ok(repave().args(["inspect", "--json", &reference]));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(report["digest"], image.manifest_digest.to_string());
    assert_eq!(report["user"], "65532:65532");
}

fn tree(root: &Path) {
    fs::create_dir_all(root.join("b/c")).expect("mkdir");
    for (path, mode) in [("a.txt", 0o644), ("b/run.sh", 0o750), ("b/c/d.txt", 0o600)] {
        fs::write(root.join(path), path).expect("write");
        fs::set_permissions(root.join(path), fs::Permissions::from_mode(mode)).expect("chmod");
    }
    fs::hard_link(root.join("a.txt"), root.join("b/a-link.txt")).expect("hard link");
    std::os::unix::fs::symlink("../a.txt", root.join("b/a-sym")).expect("symlink");
}

fn snapshot(root: &Path) -> BTreeMap<String, (u32, i64, Vec<u8>, u64)> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.expect("walk");
        let meta = entry.path().symlink_metadata().expect("lstat");
        let rel = entry.path().strip_prefix(root).expect("under root");
        let content = if meta.is_file() {
            fs::read(entry.path()).expect("read")
        } else if meta.file_type().is_symlink() {
            fs::read_link(entry.path())
                .expect("readlink")
                .into_os_string()
                .into_encoded_bytes()
        } else {
            Vec::new()
        };
        out.insert(
            rel.to_string_lossy().into_owned(),
            (meta.mode() & 0o7777, meta.mtime(), content, meta.nlink()),
        );
    }
    out
}

#[test]
fn variant_copies_differ_in_times_and_bits_but_not_content() {
    let temp = tempfile::tempdir().expect("temp dir");
    let src = temp.path().join("src");
    tree(&src);
    copy_variant(&src, &temp.path().join("plain"), &Variant::plain());
    copy_variant(&src, &temp.path().join("twisted"), &Variant::twisted());
    let plain = snapshot(&temp.path().join("plain"));
    let twisted = snapshot(&temp.path().join("twisted"));

    assert_eq!(
        plain.keys().collect::<Vec<_>>(),
        twisted.keys().collect::<Vec<_>>()
    );
    assert_eq!(plain["b/a-link.txt"].3, 2, "hard links stay hard links");
    assert_eq!(plain["b/a-sym"].2, b"../a.txt");
    for (path, (mode, mtime, content, _)) in &plain {
        let (twisted_mode, twisted_mtime, twisted_content, _) = &twisted[path];
        assert_eq!(content, twisted_content, "{path}");
        if path.ends_with("a-sym") {
            continue;
        }
        assert_ne!(mtime, twisted_mtime, "{path}");
        assert_eq!(
            mode & 0o7700,
            twisted_mode & 0o7700,
            "{path}: owner bits kept"
        );
        assert_eq!(
            mode & 0o77,
            (twisted_mode & 0o77) ^ 0o77,
            "{path}: group/other flipped"
        );
    }

    let mut probe = Command::new("/bin/sh");
    probe.args(["-c", "umask; echo \"$TZ $LC_ALL $RAYON_NUM_THREADS\""]);
    let output = run_ok(&mut Variant::twisted().wrap(&probe));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "0077\nPacific/Chatham de_DE.UTF-8 2\n"
    );
}
