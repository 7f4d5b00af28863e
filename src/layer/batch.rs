//! Writes several layers at once: each layer is collected, tarred, compressed and hashed
//! on its own rayon task, so a build's layers take about as long as the largest one. The
//! bytes of a layer never depend on how many threads ran.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::entry::Entry;
use super::source::{self, Collected, Rules, SourceError};
use super::writer::{write_layer, LayerBlob, LayerError};

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Layer(#[from] LayerError),
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
pub fn write_layers(
    inputs: Vec<LayerInput>,
    epoch: u64,
    work_dir: &Path,
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
            let blob = write_layer(entries, epoch, &file)?;
            Ok(WrittenLayer {
                blob,
                file,
                collected,
            })
        })
        .collect()
}
