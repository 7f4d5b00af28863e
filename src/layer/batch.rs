//! Writes several layers at once: each layer is collected, tarred, compressed and hashed
//! on its own rayon task, so a build's layers take about as long as the largest one. The
//! bytes of a layer never depend on how many threads ran.
//!
//! With a cache directory, a layer whose tar stream (diff_id) was compressed before is not
//! compressed again: the tar is first only hashed, which costs a read and a sha256, and the
//! cached blob is reused when one exists for that diff_id.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::entry::Entry;
use super::source::{self, Collected, Rules, SourceError};
use super::writer::{write_layer, write_tar, LayerBlob, LayerError};
use crate::digest::{Digest, DigestWriter};

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("layer cache `{}`: {source}", .path.display())]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where one layer's content comes from.
#[derive(Clone, Debug)]
pub enum LayerInput {
    /// A directory on disk, placed at `prefix` in the image.
    Dir {
        dir: PathBuf,
        prefix: String,
        rules: Rules,
    },
    /// Entries already made (package bases, generated files).
    Entries(Vec<Entry>),
}

/// A layer written to a file in the work directory.
#[derive(Debug)]
pub struct WrittenLayer {
    pub blob: LayerBlob,
    pub file: PathBuf,
    /// What was left out of a directory layer (empty for entry layers).
    pub collected: Collected,
}

/// Writes each input as a layer file under `work_dir`, in parallel, keeping input order.
/// With `cache`, layers already compressed once are taken from it and new ones added.
pub fn write_layers(
    inputs: Vec<LayerInput>,
    epoch: u64,
    work_dir: &Path,
    cache: Option<&Path>,
) -> Result<Vec<WrittenLayer>, BatchError> {
    inputs
        .into_par_iter()
        .enumerate()
        .map(|(i, input)| {
            let (entries, collected) = match input {
                LayerInput::Dir { dir, prefix, rules } => {
                    let mut collected = source::collect(&dir, prefix.as_bytes(), &rules)?;
                    let entries = std::mem::take(&mut collected.entries);
                    (entries, collected)
                }
                LayerInput::Entries(entries) => (entries, Collected::default()),
            };
            let file = work_dir.join(format!("layer-{i}.tar.gz"));
            let (blob, file) = match cache {
                Some(cache) => cached_layer(entries, epoch, file, cache)?,
                None => (write_layer(entries, epoch, &file)?, file),
            };
            Ok(WrittenLayer {
                blob,
                file,
                collected,
            })
        })
        .collect()
}

/// A layer from the cache when its diff_id is known there, else written and cached.
fn cached_layer(
    entries: Vec<Entry>,
    epoch: u64,
    file: PathBuf,
    cache: &Path,
) -> Result<(LayerBlob, PathBuf), BatchError> {
    let mut hasher = DigestWriter::new(std::io::sink());
    write_tar(entries.clone(), epoch, &mut hasher)?;
    let (_, diff_id, _) = hasher.finish();

    let index = index_dir(cache).join(diff_id.hex());
    if let Some((digest, size)) = read_index(&index) {
        let blob_file = cache.join("blobs").join("sha256").join(digest.hex());
        if blob_file.metadata().is_ok_and(|m| m.len() == size) {
            tracing::debug!(%diff_id, "layer found in cache");
            let blob = LayerBlob {
                digest,
                diff_id,
                size,
            };
            return Ok((blob, blob_file));
        }
    }

    let blob = write_layer(entries, epoch, &file)?;
    if blob.diff_id != diff_id {
        // The content changed between the two passes; the written layer is what counts,
        // and it is not cached under a key that does not describe it.
        return Ok((blob, file));
    }
    store(cache, &blob, &file).map_err(|(path, source)| BatchError::Cache { path, source })?;
    Ok((blob, file))
}

/// Where the diff_id → blob records of this tool version and layer encoding live.
fn index_dir(cache: &Path) -> PathBuf {
    cache.join("layer-index").join(format!(
        "{}-{}",
        env!("CARGO_PKG_VERSION"),
        super::writer::LAYER_FORMAT
    ))
}

fn read_index(path: &Path) -> Option<(Digest, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (digest, size) = text.trim().split_once(' ')?;
    Some((digest.parse().ok()?, size.parse().ok()?))
}

fn store(cache: &Path, blob: &LayerBlob, file: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    let blobs = cache.join("blobs").join("sha256");
    let layers = index_dir(cache);
    for dir in [&blobs, &layers] {
        std::fs::create_dir_all(dir).map_err(|e| (dir.clone(), e))?;
    }
    let blob_file = blobs.join(blob.digest.hex());
    if !blob_file.exists() && std::fs::hard_link(file, &blob_file).is_err() {
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&blobs)
            .map_err(|e| (blobs.clone(), e))?;
        std::fs::copy(file, tmp.path()).map_err(|e| (file.to_path_buf(), e))?;
        tmp.persist(&blob_file)
            .map_err(|e| (blob_file.clone(), e.error))?;
    }
    let index = layers.join(blob.diff_id.hex());
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(&layers)
        .map_err(|e| (layers.clone(), e))?;
    std::io::Write::write_all(
        &mut tmp,
        format!("{} {}\n", blob.digest, blob.size).as_bytes(),
    )
    .map_err(|e| (index.clone(), e))?;
    tmp.persist(&index).map_err(|e| (index.clone(), e.error))?;
    Ok(())
}
