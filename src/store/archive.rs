//! docker-archive output: the tarball `docker save` writes and `docker load`, `podman load`
//! and skopeo read. Layers are stored uncompressed under their diff_id, as `docker save`
//! does, so the archive's own bytes depend only on the image; the file appears at its path
//! by rename, whole or not at all.

use std::io::{self, Read, Write};
use std::path::Path;

use serde::Serialize;

use crate::digest::{Digest, DigestWriter};
use crate::image::assemble::Assembled;
use crate::image::spec::{MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_ZSTD};
use crate::json;
use crate::store::output::{BlobSource, StoreError};

/// One image's entry in the archive's `manifest.json`.
#[derive(Serialize)]
struct ArchiveManifest<'a> {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<&'a str>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Writes `image` as a docker-archive at `file`, tagged with `names` (`repo:tag`).
pub fn write_archive(
    file: &Path,
    names: &[String],
    image: &Assembled,
    blobs: &[BlobSource],
) -> Result<(), StoreError> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".repave-archive-")
        .tempfile_in(&dir)?;
    let mut tar = tar::Builder::new(io::BufWriter::new(tmp.as_file()));

    let mut layer_names = Vec::new();
    for (descriptor, diff_id) in image
        .manifest
        .layers
        .iter()
        .zip(&image.config.rootfs.diff_ids)
    {
        let source = blobs
            .iter()
            .find(|b| b.digest == descriptor.digest)
            .ok_or_else(|| io::Error::other(format!("no file for layer {}", descriptor.digest)))?;
        let name = format!("{}.tar", diff_id.hex());
        // The tar header needs the size first: one pass counts and checks the diff_id.
        let (actual, size) = uncompressed(&source.file, &descriptor.media_type, io::sink())?;
        if &actual != diff_id {
            return Err(io::Error::other(format!(
                "layer {} does not decompress to its diff_id {diff_id}: the source image is corrupt",
                descriptor.digest
            ))
            .into());
        }
        let mut header = file_header(size);
        tar.append_data(
            &mut header,
            &name,
            Reader::open(&source.file, &descriptor.media_type)?,
        )?;
        layer_names.push(name);
    }

    let config_name = format!("{}.json", image.config_digest.hex());
    let mut header = file_header(image.config_bytes.len() as u64);
    tar.append_data(&mut header, &config_name, &image.config_bytes[..])?;

    let manifest = [ArchiveManifest {
        config: config_name,
        repo_tags: names.iter().map(String::as_str).collect(),
        layers: layer_names,
    }];
    let manifest_bytes = json::to_canonical_vec(&manifest)
        .map_err(|e| io::Error::other(format!("manifest.json: {e}")))?;
    let mut header = file_header(manifest_bytes.len() as u64);
    tar.append_data(&mut header, "manifest.json", &manifest_bytes[..])?;

    let mut writer = tar.into_inner()?;
    writer.flush()?;
    drop(writer);
    tmp.as_file().sync_all()?;
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.persist(file).map_err(|e| StoreError::Io(e.error))?;
    Ok(())
}

/// A plain file entry; the archive's own entries carry no time, so mtime is 0.
fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

/// Streams the uncompressed layer to `out`; returns its digest (the diff_id) and size.
fn uncompressed(path: &Path, media_type: &str, out: impl Write) -> io::Result<(Digest, u64)> {
    let mut reader = Reader::open(path, media_type)?;
    let mut writer = DigestWriter::new(out);
    io::copy(&mut reader, &mut writer)?;
    let (_, digest, size) = writer.finish();
    Ok((digest, size))
}

/// A layer blob read back as its tar stream, whatever its compression.
enum Reader {
    Plain(fs_err::File),
    Gzip(Box<flate2::read::MultiGzDecoder<io::BufReader<fs_err::File>>>),
    Zstd(
        Box<
            ruzstd::decoding::StreamingDecoder<
                io::BufReader<fs_err::File>,
                ruzstd::decoding::FrameDecoder,
            >,
        >,
    ),
}

impl Reader {
    fn open(path: &Path, media_type: &str) -> io::Result<Reader> {
        let file = fs_err::File::open(path)?;
        Ok(
            if media_type == MEDIA_TYPE_LAYER_TAR || media_type.ends_with(".tar") {
                Reader::Plain(file)
            } else if media_type == MEDIA_TYPE_LAYER_ZSTD || media_type.ends_with("+zstd") {
                let decoder = ruzstd::decoding::StreamingDecoder::new(io::BufReader::new(file))
                    .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
                Reader::Zstd(Box::new(decoder))
            } else {
                Reader::Gzip(Box::new(flate2::read::MultiGzDecoder::new(
                    io::BufReader::new(file),
                )))
            },
        )
    }
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Reader::Plain(r) => r.read(buf),
            Reader::Gzip(r) => r.read(buf),
            Reader::Zstd(r) => r.read(buf),
        }
    }
}
