//! The registry transport against Debian's real `docker-registry` on a loopback port: push,
//! pull, cross-repository mount and basic auth from an auth file. skopeo judges what is
//! pushed, the registry's access log proves which blobs were uploaded, and the image pulled
//! back runs under bubblewrap.

mod common;
#[path = "registry/servers.rs"]
mod servers;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use common::*;
use repave::digest::Digest;
use repave::image::assemble::Assembled;
use repave::reference::Reference;
use repave::store::output::{read_image_metadata, write_image};
use serde_json::Value;
use servers::{Auth, CuttingProxy, Registry, TokenServer, TOKEN_SERVICE};
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn locked_go_app(dir: &Path) -> PathBuf {
    let app = dir.join("app");
    copy_variant(&fixture("go"), &app, &Variant::plain());
    run_ok(repave().arg("lock").arg(&app));
    app
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_stdout(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", text(&output.stdout)))
}

/// `skopeo inspect` of a registry image over plain HTTP, with `extra` flags.
fn skopeo_inspect(reference: &str, extra: &[&str]) -> Value {
    let output = run_ok(
        Command::new(require_tool("skopeo", "skopeo"))
            .args(["inspect", "--tls-verify=false"])
            .args(extra)
            .arg(reference),
    );
    serde_json::from_slice(&output.stdout).expect("skopeo inspect prints JSON")
}

/// Runs `command`, expecting failure; returns its stderr.
fn run_fails(command: &mut Command) -> String {
    let output = command.output().expect("start repave");
    assert!(
        !output.status.success(),
        "{command:?} should fail:\n{}",
        text(&output.stdout)
    );
    text(&output.stderr)
}

#[test]
fn build_pushes_pulls_and_mounts_against_a_real_registry() {
    let registry = Registry::start(Auth::Anonymous);
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());

    // A base pushed by repave, then read back by its digest as skopeo sees it.
    let base_tagged = registry.reference("bases/static:1");
    run_ok(
        repave()
            .args(["base", "build"])
            .arg(app.join("repave.lock"))
            .args(["--output", &base_tagged]),
    );
    let base_digest = skopeo_inspect(&base_tagged, &[])["Digest"]
        .as_str()
        .expect("base digest")
        .to_owned();
    let base_pinned = registry.reference(&format!("bases/static@{base_digest}"));

    let refused = run_fails(
        repave()
            .arg("build")
            .arg(&app)
            .args(["--base", &base_tagged])
            .args(["--output", &registry.reference("team/app:v1")])
            .env_remove("REPAVE_ALLOW_BASE_TAG"),
    );
    assert!(
        refused.contains("pin it by digest") && refused.contains("--allow-base-tag"),
        "{refused}"
    );

    let target = registry.reference("team/app:v1");
    let build = || {
        json_stdout(&run_ok(repave().arg("build").arg(&app).args([
            "--base",
            &base_pinned,
            "--output",
            &target,
            "--json",
        ])))
    };
    let report = build();
    let digest = report["digest"].as_str().expect("digest").to_owned();
    assert_eq!(report["base"]["digest"], base_digest.as_str(), "{report}");

    // skopeo reads the pushed image, and it is the image repave reported.
    let inspected = skopeo_inspect(&target, &[]);
    assert_eq!(inspected["Digest"], digest.as_str(), "{inspected}");
    let raw = skopeo_inspect(&target, &["--raw"]);
    let layer_count = raw["layers"].as_array().expect("layers").len();
    let base_layers = report["base"]["layers"].as_u64().expect("base layers") as usize;
    let app_layers = report["layers"].as_array().expect("layers").len();
    assert!(base_layers > 0 && app_layers > 0, "{report}");
    assert_eq!(layer_count, base_layers + app_layers);

    // Base layers were mounted from bases/static; only app layers and config were sent.
    let mounts: Vec<_> = registry
        .requests("POST /v2/team/app/blobs/uploads/?mount=")
        .into_iter()
        .filter(|line| line.contains("from=bases/static") && line.contains("\" 201 "))
        .collect();
    assert_eq!(mounts.len(), base_layers, "{}", registry.log());
    let uploads = registry.requests("PUT /v2/team/app/blobs/uploads/");
    assert_eq!(uploads.len(), app_layers + 1, "{}", registry.log());

    // The same build pushed again uploads nothing and mounts nothing: every blob is there.
    let before = registry.requests("POST /v2/team/app/blobs/uploads/").len();
    let again = build();
    assert_eq!(again["digest"], digest.as_str());
    assert_eq!(
        registry.requests("POST /v2/team/app/blobs/uploads/").len(),
        before
    );
    assert_eq!(
        registry.requests("PUT /v2/team/app/blobs/uploads/").len(),
        uploads.len()
    );
    assert_eq!(registry.requests("PUT /v2/team/app/manifests/v1").len(), 2);

    let inspect = json_stdout(&run_ok(repave().arg("inspect").arg(&target).arg("--json")));
    assert_eq!(inspect["digest"], digest.as_str(), "{inspect}");

    // Pulled back by skopeo, the image unpacks and runs.
    let copied = temp.path().join("copied");
    run_ok(
        Command::new(require_tool("skopeo", "skopeo"))
            .args(["copy", "-q", "--src-tls-verify=false"])
            .arg(registry.reference(&format!("team/app@{digest}")))
            .arg(format!("oci:{}:app", copied.display())),
    );
    let bundle = umoci_unpack(&copied, "app", &temp.path().join("bundle"));
    let (status, body) = run_image(&bundle).get("/");
    assert_eq!((status, body.trim()), (200, "hello from go"));

    // Read without its layers, the image is copied to another repository by mounts alone.
    let source = read_image_metadata(
        &Reference::parse(&registry.reference(&format!("team/app@{digest}"))).expect("reference"),
    )
    .expect("read the manifest and config");
    let files = source.layer_files();
    assert!(
        files.iter().all(|f| !f.file.exists()),
        "layers were downloaded"
    );
    let stored = &source.image;
    let manifest_bytes = source
        .layout
        .read_blob(&stored.descriptor.digest)
        .expect("manifest bytes");
    let copy = Assembled {
        config: stored.config.clone(),
        config_bytes: stored.config_bytes.clone(),
        config_digest: stored.manifest.config.digest.clone(),
        manifest: stored.manifest.clone(),
        manifest_digest: Digest::of(&manifest_bytes),
        manifest_bytes,
    };
    let copy_target = registry.reference("team/copy:v1");
    write_image(
        &Reference::parse(&copy_target).expect("reference"),
        &copy,
        &files,
        &[],
    )
    .expect("copy by mounts");
    assert_eq!(skopeo_inspect(&copy_target, &[])["Digest"], digest.as_str());
    assert!(registry
        .requests("PUT /v2/team/copy/blobs/uploads/")
        .is_empty());
    assert_eq!(
        registry
            .requests("POST /v2/team/copy/blobs/uploads/?mount=")
            .len(),
        layer_count + 1
    );

    // With the opt-in, the base's tag is read, and names the same base.
    let by_tag = json_stdout(&run_ok(
        repave()
            .arg("build")
            .arg(&app)
            .args([
                "--base",
                &base_tagged,
                "--allow-base-tag",
                "--json",
                "--output",
            ])
            .arg(format!("oci:{}:app", temp.path().join("by-tag").display()))
            .env_remove("REPAVE_ALLOW_BASE_TAG"),
    ));
    assert_eq!(by_tag["base"]["digest"], base_digest.as_str(), "{by_tag}");
    assert_eq!(by_tag["digest"], digest.as_str(), "{by_tag}");

    // A blob altered in the registry's storage is caught when pulled, naming its digest.
    let layer = raw["layers"][layer_count - 1]["digest"]
        .as_str()
        .expect("layer digest");
    let data = registry.blob_file(layer);
    let mut bytes = fs::read(&data).expect("read stored blob");
    bytes[0] ^= 0xff;
    fs::write(&data, bytes).expect("alter stored blob");
    let refused = run_fails(repave().arg("inspect").arg(&target));
    assert!(
        refused.contains(layer) && refused.contains("hashes to"),
        "{refused}"
    );
}

#[test]
fn basic_auth_credentials_come_from_the_auth_file() {
    let (user, password) = ("builder", "s3cret-pw");
    let registry = Registry::start(Auth::Basic(user, password));
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let target = registry.reference("bases/static:1");
    let home = temp.path().join("home");
    fs::create_dir_all(&home).expect("home");
    let auth_file = temp.path().join("auth.json");
    let push = |auth: &str| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(auth);
        let entry = format!(
            r#"{{"auths":{{"{}":{{"auth":"{encoded}"}}}}}}"#,
            registry.host
        );
        fs::write(&auth_file, entry).expect("write auth file");
        let mut command = repave();
        command
            .args(["base", "build"])
            .arg(app.join("repave.lock"))
            .args(["--output", &target])
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .env("HOME", &home)
            .env("REPAVE_LOG", "debug")
            .env_remove("DOCKER_CONFIG")
            .env_remove("XDG_RUNTIME_DIR");
        command
    };

    let refused = run_fails(&mut push("builder:wrong"));
    assert!(
        refused.contains("podman login") && refused.contains(&registry.host),
        "{refused}"
    );
    assert!(registry
        .requests("PUT /v2/bases/static/manifests/")
        .is_empty());

    let output = run_ok(&mut push(&format!("{user}:{password}")));
    let stderr = text(&output.stderr);
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    assert!(
        !stderr.contains(password) && !stderr.contains(&encoded),
        "a secret was logged:\n{stderr}"
    );

    let creds = format!("--creds={user}:{password}");
    let inspected = skopeo_inspect(&target, &[&creds]);
    let report = json_stdout(&run_ok(
        repave()
            .arg("inspect")
            .arg(&target)
            .arg("--json")
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .env("HOME", &home),
    ));
    assert_eq!(report["digest"], inspected["Digest"], "{report}");

    // --creds stands in for the auth file, and a wrong one is refused without echoing it.
    let no_file = temp.path().join("none.json");
    let with_creds = |creds: &str| {
        let mut command = repave();
        command
            .args(["inspect", "--json", "--creds", creds])
            .arg(&target)
            .env("REGISTRY_AUTH_FILE", &no_file)
            .env("HOME", &home)
            .env_remove("DOCKER_CONFIG")
            .env_remove("XDG_RUNTIME_DIR");
        command
    };
    let report = json_stdout(&run_ok(&mut with_creds(&format!("{user}:{password}"))));
    assert_eq!(report["digest"], inspected["Digest"], "{report}");
    let refused = run_fails(&mut with_creds("builder:not-the-password"));
    assert!(!refused.contains("not-the-password"), "{refused}");
}

#[test]
fn bearer_tokens_are_fetched_from_the_challenge_realm() {
    let (user, password) = ("builder", "t0ken-pw");
    let tokens = TokenServer::start("bases/static", user, password);
    let registry = Registry::start(Auth::Token {
        realm: &tokens.realm,
        cert: &tokens.cert,
    });
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let target = registry.reference("bases/static:1");
    let auth_file = temp.path().join("auth.json");
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    fs::write(
        &auth_file,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{encoded}"}}}}}}"#,
            registry.host
        ),
    )
    .expect("write auth file");

    let output = run_ok(
        repave()
            .args(["base", "build"])
            .arg(app.join("repave.lock"))
            .args(["--output", &target])
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .env("REPAVE_LOG", "debug"),
    );
    let stderr = text(&output.stderr);
    assert!(
        !stderr.contains(password) && !stderr.contains(&encoded) && !stderr.contains("eyJ"),
        "a secret was logged:\n{stderr}"
    );
    let asked = tokens.requests();
    assert!(
        asked
            .iter()
            .any(|line| line.contains(&format!("service={TOKEN_SERVICE}"))
                && line.contains("scope=repository%3Abases%2Fstatic%3Apull%2Cpush")),
        "token requests: {asked:?}"
    );

    let creds = format!("--creds={user}:{password}");
    let inspected = skopeo_inspect(&target, &[&creds]);
    let report = json_stdout(&run_ok(
        repave()
            .arg("inspect")
            .arg(&target)
            .arg("--json")
            .env("REGISTRY_AUTH_FILE", &auth_file),
    ));
    assert_eq!(report["digest"], inspected["Digest"], "{report}");
}

#[test]
fn a_dropped_upload_is_started_again_and_a_failed_push_leaves_no_tag() {
    let registry = Registry::start(Auth::Anonymous);
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let push = |proxy: &CuttingProxy, name: &str| {
        let mut command = repave();
        command
            .args(["base", "build"])
            .arg(app.join("repave.lock"))
            .args(["--output", &format!("docker://{}/{name}", proxy.host)]);
        command
    };

    let once = CuttingProxy::start(&registry.host, false);
    run_ok(&mut push(&once, "bases/static:1"));
    assert_eq!(once.cuts(), 1, "the upload was not cut");
    let digest = skopeo_inspect(&registry.reference("bases/static:1"), &[])["Digest"].clone();
    let report = json_stdout(&run_ok(
        repave()
            .arg("inspect")
            .arg(registry.reference("bases/static:1"))
            .arg("--json"),
    ));
    assert_eq!(report["digest"], digest);

    let always = CuttingProxy::start(&registry.host, true);
    let refused = run_fails(&mut push(&always, "bases/broken:1"));
    assert!(always.cuts() >= 3, "{} cuts", always.cuts());
    assert!(refused.contains(&always.host), "{refused}");
    assert!(
        registry
            .requests("PUT /v2/bases/broken/manifests/")
            .is_empty(),
        "a manifest was pushed after a failed upload"
    );
    let missing = Command::new(require_tool("skopeo", "skopeo"))
        .args(["inspect", "--tls-verify=false"])
        .arg(registry.reference("bases/broken:1"))
        .output()
        .expect("start skopeo");
    assert!(
        !missing.status.success(),
        "the tag exists after a failed push"
    );
}

/// Writes an OCI image index over `manifests` (each with its platform) into the layout at
/// `dir` as a blob, tagged `tag`; returns its digest.
fn write_index(dir: &Path, tag: &str, manifests: &[(Value, &str, Option<&str>)]) -> String {
    let entries: Vec<Value> = manifests
        .iter()
        .map(|(descriptor, arch, variant)| {
            let mut entry = descriptor.clone();
            entry["platform"] = serde_json::json!({ "os": "linux", "architecture": arch });
            if let Some(variant) = variant {
                entry["platform"]["variant"] = Value::from(*variant);
            }
            entry
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let bytes = serde_json::to_vec(&index).expect("index JSON");
    let digest = Digest::of(&bytes);
    fs::write(dir.join("blobs/sha256").join(digest.hex()), &bytes).expect("write index blob");
    let mut layout_index: Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("read index.json"))
            .expect("index.json is JSON");
    layout_index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest.to_string(),
            "size": bytes.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }));
    fs::write(dir.join("index.json"), layout_index.to_string()).expect("write index.json");
    digest.to_string()
}

/// Descriptor of the manifest tagged `tag` in the layout at `dir`.
fn tagged_descriptor(dir: &Path, tag: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("read index.json"))
            .expect("index.json is JSON");
    let mut entry = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .expect("tagged manifest")
        .clone();
    entry.as_object_mut().expect("object").remove("annotations");
    entry
}

#[test]
fn indexes_and_docker_manifests_are_pulled() {
    let registry = Registry::start(Auth::Anonymous);
    let temp = tempfile::tempdir().expect("temp dir");
    let app = locked_go_app(temp.path());
    let skopeo = require_tool("skopeo", "skopeo");

    // Two different images in one layout: the base (posing as arm64) and the app (amd64).
    let layout = temp.path().join("layout");
    let oci_ref = |tag: &str| format!("oci:{}:{tag}", layout.display());
    run_ok(
        repave()
            .args(["base", "build"])
            .arg(app.join("repave.lock"))
            .args(["--output", &oci_ref("base")]),
    );
    let report = json_stdout(&run_ok(repave().arg("build").arg(&app).args([
        "--output",
        &oci_ref("app"),
        "--json",
    ])));
    let app_digest = report["digest"].as_str().expect("digest").to_owned();
    let index_digest = write_index(
        &layout,
        "multi",
        &[
            (tagged_descriptor(&layout, "base"), "arm64", Some("v8")),
            (tagged_descriptor(&layout, "app"), "amd64", None),
        ],
    );
    run_ok(
        Command::new(&skopeo)
            .args(["copy", "-q", "--all", "--dest-tls-verify=false"])
            .arg(oci_ref("multi"))
            .arg(registry.reference("team/multi:1")),
    );

    // By tag and by the index's digest, the linux/amd64 image is the one read.
    for reference in [
        registry.reference("team/multi:1"),
        registry.reference(&format!("team/multi@{index_digest}")),
    ] {
        let inspected = json_stdout(&run_ok(
            repave().arg("inspect").arg(&reference).arg("--json"),
        ));
        assert_eq!(
            inspected["digest"],
            app_digest.as_str(),
            "{reference}: {inspected}"
        );
    }

    // A Docker v2 schema 2 manifest (as docker push writes) is read as well.
    let docker = registry.reference("team/docker:1");
    run_ok(
        Command::new(&skopeo)
            .args(["copy", "-q", "--format", "v2s2", "--dest-tls-verify=false"])
            .arg(oci_ref("app"))
            .arg(&docker),
    );
    let raw = skopeo_inspect(&docker, &["--raw"]);
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let docker_digest = skopeo_inspect(&docker, &[])["Digest"].clone();
    let inspected = json_stdout(&run_ok(repave().arg("inspect").arg(&docker).arg("--json")));
    assert_eq!(inspected["digest"], docker_digest, "{inspected}");
    assert_eq!(inspected["os"], "linux");
}

/// Rebase in a registry sends only the new config and manifest: the new base's layers are
/// mounted from its repository, the app layers stay where they are and are not downloaded.
/// The result is the image a fresh build on the new base gives, and it runs.
#[test]
fn rebase_in_a_registry_uploads_only_config_and_manifest() {
    rebase_in_a_registry(
        "go",
        "static",
        r#""ca-certificates", "tzdata", "netbase", "base-files""#,
        r#""openssl", "debconf", "awk""#,
        "hello from go",
    );
}

/// The same for the Python (Flask + gunicorn) fixture on the `python` package base.
#[test]
fn rebase_of_a_python_image_in_a_registry_uploads_only_config_and_manifest() {
    rebase_in_a_registry(
        "python-flask",
        "python",
        r#""python3", "ca-certificates", "tzdata", "netbase", "base-files""#,
        r#""dpkg", "openssl", "debconf", "awk""#,
        "hello from flask",
    );
}

/// Builds `fixture` on its locked base A, pushes both, then rebases the pushed image onto
/// base B (A's packages plus `hicolor-icon-theme`, a data-only package in neither closure)
/// in the registry and checks what went over the wire.
fn rebase_in_a_registry(
    fixture_name: &str,
    base: &str,
    packages: &str,
    exclude: &str,
    answer: &str,
) {
    let registry = Registry::start(Auth::Anonymous);
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    copy_variant(&fixture(fixture_name), &app, &Variant::plain());
    run_ok(repave().arg("lock").arg(&app));

    // Base B is base A (the app's lock) plus one package.
    let lock_a = fs::read_to_string(app.join("repave.lock")).expect("lock");
    assert!(
        !lock_a.contains("hicolor-icon-theme"),
        "the added package must be new"
    );
    assert!(lock_a.contains(&format!("name = \"{base}\"")), "{lock_a}");
    let def_b = temp.path().join("b.toml");
    fs::write(
        &def_b,
        format!(
            "name = \"{base}\"\nsuite = \"bookworm\"\ncomponents = [\"main\"]\n\
             architecture = \"amd64\"\npackages = [{packages}, \"hicolor-icon-theme\"]\n\
             exclude = [{exclude}]\n"
        ),
    )
    .expect("definition");
    let lock_b = temp.path().join("b.lock");
    run_ok(
        repave()
            .args(["base", "lock"])
            .arg(&def_b)
            .arg("--output")
            .arg(&lock_b),
    );
    let pushed_base = |lock: &Path, tag: &str| -> String {
        let tagged = registry.reference(&format!("bases/{base}:{tag}"));
        run_ok(
            repave()
                .args(["base", "build"])
                .arg(lock)
                .args(["--output", &tagged]),
        );
        let digest = skopeo_inspect(&tagged, &[])["Digest"]
            .as_str()
            .expect("digest")
            .to_owned();
        registry.reference(&format!("bases/{base}@{digest}"))
    };
    let base_a = pushed_base(&app.join("repave.lock"), "a");
    let base_b = pushed_base(&lock_b, "b");

    let target = registry.reference("team/app:v1");
    let built = json_stdout(&run_ok(
        repave()
            .arg("build")
            .arg(&app)
            .args(["--base", &base_a, "--output", &target, "--json"]),
    ));
    let app_layers: Vec<String> = built["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_owned())
        .collect();
    let uploads_before = registry.requests("PUT /v2/team/app/blobs/uploads/").len();

    let report = json_stdout(&run_ok(
        repave()
            .arg("rebase")
            .arg(&target)
            .args(["--base", &base_b, "--json"]),
    ));
    let config = skopeo_inspect(&target, &["--config", "--raw"]);
    let manifest_bytes = run_ok(
        Command::new(require_tool("skopeo", "skopeo"))
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(&target),
    )
    .stdout;
    let config_bytes = serde_json::to_vec(&config).expect("config").len();
    assert!(
        report["bytes_uploaded"].as_u64().expect("bytes") > 0,
        "{report}"
    );
    assert!(
        report["bytes_uploaded"].as_u64().expect("bytes")
            <= (manifest_bytes.len() + config_bytes * 2) as u64,
        "only config and manifest may be sent: {report}"
    );
    let uploads_after = registry.requests("PUT /v2/team/app/blobs/uploads/").len();
    assert_eq!(
        uploads_after - uploads_before,
        1,
        "one upload, the config:\n{}",
        registry.log()
    );
    for layer in &app_layers {
        let fetched = registry.requests(&format!("GET /v2/team/app/blobs/{layer}"));
        assert!(
            fetched.is_empty(),
            "app layer {layer} was downloaded: {fetched:?}"
        );
    }
    assert_eq!(
        Digest::of(&manifest_bytes).to_string(),
        report["digest"].as_str().unwrap()
    );

    let fresh = json_stdout(&run_ok(
        repave()
            .arg("build")
            .arg(&app)
            .args(["--base", &base_b, "--json", "--output"])
            .arg(format!("oci:{}:fresh", temp.path().join("fresh").display())),
    ));
    assert_eq!(
        report["digest"], fresh["digest"],
        "rebase equals a fresh build on B"
    );

    let copied = temp.path().join("copied");
    run_ok(
        Command::new(require_tool("skopeo", "skopeo"))
            .args(["copy", "-q", "--src-tls-verify=false"])
            .arg(&target)
            .arg(format!("oci:{}:app", copied.display())),
    );
    let bundle = umoci_unpack(&copied, "app", &temp.path().join("bundle"));
    let (status, body) = run_image(&bundle).get("/");
    assert_eq!((status, body.trim()), (200, answer));
}
