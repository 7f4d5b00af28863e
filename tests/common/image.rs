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

/// Writes an image of `layers` (each a list of entries) on an empty base to
/// `oci:LAYOUT_DIR:TAG` and returns what was assembled.
pub fn write_test_image(
    layout_dir: &Path,
    tag: &str,
    layers: Vec<Vec<Entry>>,
    settings: &Settings,
) -> Assembled {
    let work = tempfile::tempdir().expect("work dir");
    let mut new_layers = Vec::new();
    for (i, entries) in layers.into_iter().enumerate() {
        let file = work.path().join(format!("layer-{i}.tar.gz"));
        let blob = write_layer(entries, settings.epoch, &file).expect("write layer");
        new_layers.push(NewLayer {
            blob,
            file,
            holds: format!("test layer {i}"),
        });
    }
    let image = assemble(&empty_base(), &[], &new_layers, settings).expect("assemble");
    let blobs: Vec<BlobSource> = new_layers
        .iter()
        .map(|layer| BlobSource {
            digest: layer.blob.digest.clone(),
            file: layer.file.clone(),
        })
        .collect();
    let target = Reference::Oci {
        dir: layout_dir.to_path_buf(),
        tag: Some(tag.to_owned()),
        digest: None,
    };
    write_image(&target, &image, &blobs, &[]).expect("write image");
    image
}
