//! Small images made with the library, for tests that need an image without a base or a
//! buildpack: layers from entries, stacked on an empty linux/amd64 base.

use std::path::Path;

use repave::image::assemble::{assemble, Assembled, NewLayer, Settings};
use repave::image::spec::{ImageConfig, RootFs};
use repave::layer::{write_layer, Entry};
use repave::reference::Reference;
use repave::store::output::{write_image, BlobSource};

/// An empty linux/amd64 base config.
pub fn empty_base() -> ImageConfig {
    ImageConfig {
        architecture: "amd64".to_owned(),
        os: "linux".to_owned(),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: Vec::new(),
        },
        ..ImageConfig::default()
    }
}

/// Writes the layers (each a list of entries) into `work_dir` and assembles an image of
/// them on an empty base; returns the image and where its layer blobs are.
pub fn assemble_test_image(
    work_dir: &Path,
    layers: Vec<Vec<Entry>>,
    settings: &Settings,
) -> (Assembled, Vec<BlobSource>) {
    let mut new_layers = Vec::new();
    for (i, entries) in layers.into_iter().enumerate() {
        let file = work_dir.join(format!("layer-{i}.tar.gz"));
        let blob = write_layer(entries, settings.epoch, &file).expect("write layer");
        new_layers.push(NewLayer {
            blob,
            file,
            holds: format!("test layer {i}"),
        });
    }
    let image = assemble(&empty_base(), &[], &new_layers, settings).expect("assemble");
    let blobs = new_layers
        .iter()
        .map(|layer| BlobSource {
            digest: layer.blob.digest.clone(),
            file: layer.file.clone(),
        })
        .collect();
    (image, blobs)
}

/// The reference `oci:LAYOUT_DIR:TAG`.
pub fn oci_reference(layout_dir: &Path, tag: &str) -> Reference {
    Reference::Oci {
        dir: layout_dir.to_path_buf(),
        tag: Some(tag.to_owned()),
        digest: None,
    }
}

/// Writes an image of `layers` (each a list of entries) on an empty base to
/// `oci:LAYOUT_DIR:TAG` and returns what was assembled.
pub fn write_test_image(
    layout_dir: &Path,
    tag: &str,
    layers: Vec<Vec<Entry>>,
    settings: &Settings,
) -> Assembled {
    let work = tempfile::tempdir().expect("work dir");
    let (image, blobs) = assemble_test_image(work.path(), layers, settings);
    write_image(&oci_reference(layout_dir, tag), &image, &blobs, &[]).expect("write image");
    image
}
