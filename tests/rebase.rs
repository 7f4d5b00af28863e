//! `repave rebase` through the real binary: a layout image moves from base A to base B (A
//! plus one package) with its app layers untouched, equal to a fresh build on B, readable
//! by skopeo and umoci and still answering; every refusal names its check and writes
//! nothing.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use repave::image::assemble::{assemble, Settings};
use repave::image::spec::ImageConfig;
use repave::layer::Entry;
use repave::reference::Reference;
use repave::store::output::{read_image, write_image};
use serde_json::Value;

const STATIC_SET: &str = r#""ca-certificates", "tzdata", "netbase", "base-files""#;

fn definition(dir: &Path, file: &str, extra: &str) -> PathBuf {
    let path = dir.join(file);
    fs::write(
        &path,
        format!(
            "name = \"static\"\nsuite = \"bookworm\"\ncomponents = [\"main\"]\n\
             architecture = \"amd64\"\npackages = [{STATIC_SET}{extra}]\n\
             exclude = [\"openssl\", \"debconf\", \"awk\"]\n"
        ),
    )
    .expect("write definition");
    path
}

/// Locks and builds base `name` from a definition with `extra` packages into `dir/bases`.
fn base(dir: &Path, name: &str, extra: &str) -> String {
    let def = definition(dir, &format!("{name}.toml"), extra);
    let lock = dir.join(format!("{name}.lock"));
    run_ok(
        repave()
            .args(["base", "lock"])
            .arg(&def)
            .arg("--output")
            .arg(&lock),
    );
    let reference = format!("oci:{}:{name}", dir.join("bases").display());
    run_ok(
        repave()
            .args(["base", "build"])
            .arg(&lock)
            .args(["--output", &reference]),
    );
    reference
}

fn build(app: &Path, base: &str, layout: &Path) -> Value {
    let output = run_ok(
        repave()
            .arg("build")
            .arg(app)
            .args(["--base", base, "--json", "--output"])
            .arg(format!("oci:{}:app", layout.display())),
    );
    serde_json::from_slice(&output.stdout).expect("build --json")
}

fn go_app(dir: &Path) -> PathBuf {
    let app = dir.join("app");
    copy_variant(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/go"),
        &app,
        &Variant::plain(),
    );
    app
}

#[test]
fn rebase_in_a_layout_equals_a_fresh_build_on_the_new_base() {
    let temp = tempfile::tempdir().expect("temp dir");
    let base_a = base(temp.path(), "a", "");
    let base_b = base(temp.path(), "b", r#", "media-types""#);
    let app = go_app(temp.path());
    let layout = temp.path().join("image");
    let built = build(&app, &base_a, &layout);
    let before = skopeo_manifest(&layout, "app");

    let output = run_ok(
        repave()
            .arg("rebase")
            .arg(format!("oci:{}:app", layout.display()))
            .args(["--base", &base_b, "--json"]),
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("rebase --json");
    for key in [
        "digest",
        "old_base",
        "new_base",
        "layers_reused",
        "bytes_uploaded",
    ] {
        assert!(report.get(key).is_some(), "no `{key}` in {report}");
    }
    assert_eq!(report["layers_reused"], 2);

    let fresh_layout = temp.path().join("fresh");
    let fresh = build(&app, &base_b, &fresh_layout);
    assert_eq!(
        report["digest"], fresh["digest"],
        "rebase must equal a fresh build on B"
    );
    assert_ne!(report["digest"], built["digest"]);

    let after = skopeo_manifest(&layout, "app");
    validate_schema(Schema::Manifest, &after);
    validate_schema(Schema::Config, &skopeo_config(&layout, "app"));
    let layers = |m: &Value| -> Vec<Value> { m["layers"].as_array().expect("layers").clone() };
    let (old, new) = (layers(&before), layers(&after));
    let base_layers = built["base"]["layers"].as_u64().expect("base layers") as usize;
    assert_eq!(
        old[base_layers..],
        new[new.len() - 2..],
        "app layers keep their bytes"
    );
    assert_ne!(
        old[..base_layers],
        new[..new.len() - 2],
        "base layers are replaced"
    );
    assert_eq!(
        after["annotations"]["org.opencontainers.image.base.digest"],
        fresh["base"]["digest"]
    );

    let bundle = umoci_unpack(&layout, "app", &temp.path().join("bundle"));
    assert!(
        bundle.rootfs.join("usr/share/mime").exists()
            || bundle.rootfs.join("etc/mime.types").exists()
    );
    let (status, body) = run_image(&bundle).get("/");
    assert_eq!((status, body.trim()), (200, "hello from go"));
}

/// Writes a copy of the image `from` whose config `change` edits (and whose labels
/// `labels` overrides), as `oci:DIR:TAG`.
fn derived_base(
    from: &str,
    to: &Path,
    change: impl Fn(&mut ImageConfig),
    labels: &[(&str, &str)],
) -> String {
    let source = read_image(&Reference::parse(from).unwrap()).expect("read base");
    let mut config = source.image.config.clone();
    change(&mut config);
    let settings = Settings {
        epoch: repave::epoch::DEFAULT_EPOCH,
        env: config.config.env.clone().unwrap_or_default(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Settings::default()
    };
    let image = assemble(&config, &source.image.manifest.layers, &[], &settings).expect("assemble");
    let reference = format!("oci:{}:derived", to.display());
    write_image(
        &Reference::parse(&reference).unwrap(),
        &image,
        &source.layer_files(),
        &[],
    )
    .expect("write derived base");
    reference
}

fn rebase_fails(image: &Path, base: &str) -> String {
    let index = image.join("index.json");
    let before = fs::read(&index).expect("index.json");
    let output = repave()
        .arg("rebase")
        .arg(format!("oci:{}:app", image.display()))
        .args(["--base", base])
        .output()
        .expect("run repave");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        fs::read(&index).expect("index.json"),
        before,
        "nothing may be written"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn rebase_refuses_what_is_not_the_same_base_patched() {
    let temp = tempfile::tempdir().expect("temp dir");
    let base_a = base(temp.path(), "a", "");
    let app = go_app(temp.path());
    let layout = temp.path().join("image");
    build(&app, &base_a, &layout);

    let distro = derived_base(
        &base_a,
        &temp.path().join("distro"),
        |_| {},
        &[("io.buildpacks.base.distro.version", "11")],
    );
    let err = rebase_fails(&layout, &distro);
    assert!(err.contains("distro version differs"), "{err}");

    let arch = derived_base(
        &base_a,
        &temp.path().join("arch"),
        |c| c.architecture = "arm64".into(),
        &[],
    );
    let err = rebase_fails(&layout, &arch);
    assert!(err.contains("architecture differs"), "{err}");

    let fewer = derived_base(
        &base_a,
        &temp.path().join("fewer"),
        |_| {},
        &[("io.repave.base.packages", "base-files=1,ca-certificates=1")],
    );
    let err = rebase_fails(&layout, &fewer);
    assert!(
        err.contains("lacks packages") && err.contains("tzdata"),
        "{err}"
    );

    // --force takes the new base whatever it is.
    run_ok(
        repave()
            .arg("rebase")
            .arg(format!("oci:{}:app", layout.display()))
            .args(["--base", &distro, "--force", "--output"])
            .arg(format!(
                "oci:{}:forced",
                temp.path().join("forced").display()
            )),
    );
}

#[test]
fn rebase_refuses_images_without_a_usable_base_record() {
    let temp = tempfile::tempdir().expect("temp dir");
    let base_a = base(temp.path(), "a", "");

    let plain = temp.path().join("plain");
    let settings = Settings {
        epoch: repave::epoch::DEFAULT_EPOCH,
        ..Settings::default()
    };
    write_test_image(
        &plain,
        "app",
        vec![vec![Entry::file("hello", "hi\n", 0o644)]],
        &settings,
    );
    let err = rebase_fails(&plain, &base_a);
    assert!(err.contains("no base record"), "{err}");

    // A record whose base is not the bottom of the image's layers.
    let source = read_image(&Reference::parse(&base_a).unwrap()).expect("base");
    let labels = source.image.config.labels();
    let record = serde_json::json!({
        "name": "static",
        "digest": source.image.descriptor.digest.to_string(),
        "layers": 1,
        "topLayer": repave::digest::Digest::of(b"not this image").to_string(),
        "history": 1,
        "env": [],
    });
    let mut settings = settings.clone();
    settings.labels = labels;
    settings
        .labels
        .insert("io.repave.base".into(), record.to_string());
    let forged = temp.path().join("forged");
    write_test_image(
        &forged,
        "app",
        vec![vec![Entry::file("hello", "hi\n", 0o644)]],
        &settings,
    );
    let err = rebase_fails(&forged, &base_a);
    assert!(err.contains("not a prefix"), "{err}");
}

/// A base not built by repave carries no package label: the package set recorded for a
/// rebase (the "same base, patched" check) comes from its dpkg status entries.
#[test]
fn a_foreign_base_records_its_packages_from_dpkg_status() {
    let temp = tempfile::tempdir().expect("temp dir");
    let base_a = base(temp.path(), "a", "");
    let unlabelled = |config: &mut ImageConfig| {
        if let Some(labels) = config.config.labels.as_mut() {
            labels.retain(|key, _| !key.starts_with("io.repave."));
        }
    };
    let foreign = derived_base(&base_a, &temp.path().join("foreign"), unlabelled, &[]);
    let app = go_app(temp.path());
    let layout = temp.path().join("image");
    build(&app, &foreign, &layout);

    let config = skopeo_config(&layout, "app");
    let record: Value = serde_json::from_str(
        config["config"]["Labels"]["io.repave.base"]
            .as_str()
            .expect("base record"),
    )
    .expect("record JSON");
    let packages: Vec<&str> = record["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for name in ["base-files", "ca-certificates", "netbase", "tzdata"] {
        assert!(
            packages.iter().any(|p| p.starts_with(&format!("{name}="))),
            "{name} missing from {packages:?}"
        );
    }
}
