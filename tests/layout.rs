//! The OCI layout store: what repave writes, skopeo and umoci read back; `index.json` is
//! replaced last, so an interrupted write leaves the previous image valid; a failed write
//! into a new directory leaves nothing behind.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::*;
use repave::epoch::DEFAULT_EPOCH;
use repave::image::assemble::Settings;
use repave::image::spec::{Descriptor, MEDIA_TYPE_MANIFEST};
use repave::layer::Entry;
use repave::store::layout::Layout;
use repave::store::output::{read_image, write_image, BlobSource};
use serde_json::Value;

fn settings(greeting: &str) -> Settings {
    Settings {
        epoch: DEFAULT_EPOCH,
        env: vec![format!("GREETING={greeting}")],
        entrypoint: Some(vec!["/bin/true".to_owned()]),
        user: Some("65532:65532".to_owned()),
        ..Settings::default()
    }
}

fn layers(text: &str) -> Vec<Vec<Entry>> {
    vec![
        vec![Entry::file("etc/base.conf", "base\n", 0o644)],
        vec![Entry::file("workspace/hello.txt", text, 0o644)],
    ]
}

/// Names in `dir`, recursively, relative to it.
fn tree(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.expect("walk");
            let rel = e.path().strip_prefix(dir).expect("under dir");
            rel.to_string_lossy().into_owned()
        })
        .collect()
}

/// Asserts that `tag` in `layout` names `digest` and that skopeo, umoci and the schemas
/// accept it whole.
fn assert_valid_image(layout: &Path, tag: &str, digest: &str, text: &str) {
    let image = read_image(&oci_reference(layout, tag)).expect("read back");
    assert_eq!(image.image.descriptor.digest.to_string(), digest);
    for blob in image.layer_files() {
        image
            .layout
            .verify_blob(&blob.digest)
            .expect("blob matches");
    }
    let manifest = skopeo_manifest(layout, tag);
    validate_schema(Schema::Manifest, &manifest);
    validate_schema(Schema::Config, &skopeo_config(layout, tag));
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index")).expect("json");
    validate_schema(Schema::Index, &index);

    let bundle_parent = tempfile::tempdir().expect("temp dir");
    let bundle = umoci_unpack(layout, tag, &bundle_parent.path().join("bundle"));
    let hello = fs::read_to_string(bundle.rootfs.join("workspace/hello.txt")).expect("unpacked");
    assert_eq!(hello, text);
    assert!(bundle.rootfs.join("etc/base.conf").is_file());
}

#[test]
fn an_image_written_to_a_layout_reads_back_the_same() {
    let temp = tempfile::tempdir().expect("temp dir");
    let layout = temp.path().join("out");
    let first = write_test_image(&layout, "v1", layers("one\n"), &settings("one"));
    let second = write_test_image(&layout, "v2", layers("two\n"), &settings("two"));

    let read = read_image(&oci_reference(&layout, "v1")).expect("read v1");
    assert_eq!(read.image.manifest, first.manifest);
    assert_eq!(read.image.config_bytes, first.config_bytes);
    assert_eq!(read.image.config.env_var("GREETING"), Some("one"));
    let raw_manifest = fs::read(read.layout.blob_path(&first.manifest_digest)).expect("blob");
    assert_eq!(
        raw_manifest, first.manifest_bytes,
        "the manifest is stored byte for byte"
    );
    let ours: Value = serde_json::from_slice(&first.manifest_bytes).expect("json");
    assert_eq!(skopeo_manifest(&layout, "v1"), ours);

    assert_valid_image(&layout, "v1", &first.manifest_digest.to_string(), "one\n");
    assert_valid_image(&layout, "v2", &second.manifest_digest.to_string(), "two\n");
    let leftovers: Vec<_> = tree(&layout)
        .into_iter()
        .filter(|p| p.contains(".tmp-") || p.contains(".index-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_interrupted_write_leaves_the_old_tag_valid() {
    let temp = tempfile::tempdir().expect("temp dir");
    let layout_dir = temp.path().join("out");
    let old = write_test_image(&layout_dir, "app", layers("old\n"), &settings("old"));
    let old_digest = old.manifest_digest.to_string();
    let index_before = fs::read(layout_dir.join("index.json")).expect("index");

    // A write that dies after some blobs landed: the last layer's file is gone.
    let work = tempfile::tempdir().expect("work dir");
    let (new, mut blobs) = assemble_test_image(work.path(), layers("new\n"), &settings("new"));
    let missing = work.path().join("vanished.tar.gz");
    blobs.last_mut().expect("two layers").file = missing.clone();
    let err = write_image(&oci_reference(&layout_dir, "app"), &new, &blobs, &[])
        .expect_err("a missing blob fails the write");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(Layout::open(&layout_dir)
        .expect("layout")
        .has_blob(&blobs[0].digest));
    assert_eq!(
        fs::read(layout_dir.join("index.json")).expect("index"),
        index_before
    );
    assert_valid_image(&layout_dir, "app", &old_digest, "old\n");

    // A write stopped between blobs and index: every blob of the new image is there,
    // config and manifest too, but the index was not replaced yet.
    let (new, blobs) = assemble_test_image(work.path(), layers("newer\n"), &settings("newer"));
    let layout = Layout::open(&layout_dir).expect("layout");
    for BlobSource { digest, file } in &blobs {
        layout.import_blob(file, digest).expect("import");
    }
    layout.write_blob(&new.config_bytes).expect("config");
    layout.write_blob(&new.manifest_bytes).expect("manifest");
    assert_valid_image(&layout_dir, "app", &old_digest, "old\n");

    // Finishing that write moves the tag, and only then.
    let descriptor = Descriptor::new(
        MEDIA_TYPE_MANIFEST,
        new.manifest_digest.clone(),
        new.manifest_bytes.len() as u64,
    );
    layout.set_tag("app", &descriptor).expect("tag");
    assert_valid_image(
        &layout_dir,
        "app",
        &new.manifest_digest.to_string(),
        "newer\n",
    );
}

#[test]
fn a_failed_write_into_a_new_directory_leaves_nothing_behind() {
    let temp = tempfile::tempdir().expect("temp dir");
    let work = temp.path().join("work");
    fs::create_dir(&work).expect("mkdir");
    let (image, mut blobs) = assemble_test_image(&work, layers("x\n"), &settings("x"));
    blobs[1].file = work.join("vanished.tar.gz");
    let before = tree(temp.path());

    let target = temp.path().join("out");
    write_image(&oci_reference(&target, "app"), &image, &blobs, &[]).expect_err("fails");
    assert!(
        !target.exists(),
        "a new layout directory appears only when complete"
    );
    assert_eq!(
        tree(temp.path()),
        before,
        "no staging directory is left behind"
    );

    // An empty directory the user made for the output stays, empty.
    fs::create_dir(&target).expect("mkdir");
    write_image(&oci_reference(&target, "app"), &image, &blobs, &[]).expect_err("fails");
    assert!(target.is_dir());
    assert!(tree(&target).is_empty());
}
