//! docker-archive: the tarball `docker save` writes and `docker load`, `podman load` and
//! skopeo read. Output stores layers uncompressed under their diff_id, as `docker save`
//! does, so the archive's bytes depend only on the image, and appears at its path by
//! rename, whole or not at all. Input unpacks the archive into a scratch OCI layout whose
//! layer blobs are the archive's layer files byte for byte.

use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, DigestWriter};
use crate::image::assemble::Assembled;
use crate::image::spec::{
    Descriptor, Manifest, MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_ZSTD,
    MEDIA_TYPE_MANIFEST,
};
use crate::json;
use crate::layer::MEDIA_TYPE_LAYER_GZIP;
use crate::store::layout::Layout;
use crate::store::output::{BlobSource, SourceImage, StoreError};

/// One image's entry in the archive's `manifest.json`, as written.
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

/// One image's entry in the archive's `manifest.json`, as read.
#[derive(Deserialize)]
struct ReadManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Reads the image named `name` (or the only image) of the docker-archive at `file`.
pub fn read_archive(file: &Path, name: Option<&str>) -> Result<SourceImage, StoreError> {
    let bad = |message: String| {
        StoreError::Io(io::Error::other(format!(
            "`{}` is not a readable docker-archive: {message}",
            file.display()
        )))
    };
    let scratch = tempfile::Builder::new()
        .prefix("repave-archive-")
        .tempdir()?;
    let unpacked = scratch.path().join("files");
    fs_err::create_dir_all(&unpacked)?;
    let mut archive = tar::Archive::new(io::BufReader::new(fs_err::File::open(file)?));
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        if entry.header().entry_type().is_file() {
            // Paths are checked by `unpack_in`, which refuses `..` and absolute names.
            entry.unpack_in(&unpacked).map_err(|e| bad(e.to_string()))?;
        }
    }

    let manifests: Vec<ReadManifest> = serde_json::from_slice(
        &fs_err::read(unpacked.join("manifest.json"))
            .map_err(|_| bad("no manifest.json".into()))?,
    )
    .map_err(|e| bad(format!("manifest.json: {e}")))?;
    let chosen = match name {
        Some(name) => manifests
            .iter()
            .find(|m| m.repo_tags.iter().flatten().any(|t| t == name))
            .ok_or_else(|| bad(format!("no image tagged `{name}`")))?,
        None if manifests.len() == 1 => &manifests[0],
        None => {
            return Err(bad(format!(
                "it holds {} images: name one with `docker-archive:FILE:REPO:TAG`",
                manifests.len()
            )))
        }
    };

    let layout = Layout::create(&scratch.path().join("layout"))?;
    let config_bytes = fs_err::read(unpacked.join(&chosen.config))?;
    let config_digest = layout.write_blob(&config_bytes)?;
    let mut layers = Vec::new();
    for path in &chosen.layers {
        let source = unpacked.join(path);
        let (digest, size) =
            crate::digest::digest_reader(io::BufReader::new(fs_err::File::open(&source)?))?;
        layout.import_blob(&source, &digest)?;
        layers.push(Descriptor::new(media_type_of(&source)?, digest, size));
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.to_owned()),
        config: Descriptor::new(MEDIA_TYPE_CONFIG, config_digest, config_bytes.len() as u64),
        layers,
        annotations: Default::default(),
    };
    let manifest_bytes =
        json::to_canonical_vec(&manifest).map_err(|e| bad(format!("manifest: {e}")))?;
    let digest = layout.write_blob(&manifest_bytes)?;
    let descriptor = Descriptor::new(MEDIA_TYPE_MANIFEST, digest, manifest_bytes.len() as u64);
    let image = layout.image(&descriptor)?;
    fs_err::remove_dir_all(&unpacked)?;
    Ok(SourceImage {
        layout,
        image,
        scratch: Some(std::sync::Arc::new(scratch)),
    })
}

/// A layer file's media type, from its first bytes: gzip, zstd or a plain tar.
fn media_type_of(path: &Path) -> io::Result<&'static str> {
    let mut magic = [0u8; 4];
    let mut file = fs_err::File::open(path)?;
    let read = file.read(&mut magic)?;
    Ok(match &magic[..read] {
        [0x1f, 0x8b, ..] => MEDIA_TYPE_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => MEDIA_TYPE_LAYER_ZSTD,
        _ => MEDIA_TYPE_LAYER_TAR,
    })
}

/// The Debian packages an image holds, as `(name, version)` sorted by name, from the dpkg
/// status entries of its layers (`var/lib/dpkg/status.d/*`, as distroless writes them, and
/// `var/lib/dpkg/status`); empty for an image without dpkg data.
// Limitation: whiteouts are not applied, so a package whose entry a later layer deletes is
// still listed.
pub fn dpkg_packages(image: &SourceImage) -> io::Result<Vec<(String, String)>> {
    let mut found = std::collections::BTreeMap::new();
    for (blob, descriptor) in image.layer_files().iter().zip(&image.image.manifest.layers) {
        let mut archive = tar::Archive::new(Reader::open(&blob.file, &descriptor.media_type)?);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path_bytes().into_owned();
            let path = path.strip_prefix(b"./").unwrap_or(&path);
            let status = path == b"var/lib/dpkg/status"
                || (path.starts_with(b"var/lib/dpkg/status.d/") && !path.ends_with(b".md5sums"));
            if !status || !entry.header().entry_type().is_file() {
                continue;
            }
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            for stanza in text.split("\n\n") {
                let field = |name: &str| {
                    stanza
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
                };
                let installed = field("Status:").is_none_or(|s| s.ends_with(" installed"));
                if let (Some(name), Some(version), true) =
                    (field("Package:"), field("Version:"), installed)
                {
                    found.insert(name, version);
                }
            }
        }
    }
    Ok(found.into_iter().collect())
}
