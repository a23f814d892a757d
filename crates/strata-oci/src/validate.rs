//! Test helper: check a stored image end to end (`test-util` feature).

use std::io::{self, Read};

use crate::compress::{Compression, Decoder};
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result, stream_err};
use crate::layout::Store;

/// Check the image `reference` names: manifest and config digests and sizes, config media type,
/// `rootfs.type`, one diff_id per layer, and for every layer its compressed digest and size, its
/// compression against its media type, a readable tar, and its uncompressed digest against the
/// diff_id.
pub fn image(store: &Store, reference: &str) -> Result<()> {
    let image = store.image(reference)?;
    let invalid = |reason: String| Error::InvalidImage {
        image: reference.to_string(),
        reason,
    };
    let config_type = image.config_descriptor().media_type().to_string();
    if config_type != "application/vnd.oci.image.config.v1+json"
        && config_type != "application/vnd.docker.container.image.v1+json"
    {
        return Err(invalid(format!("config media type {config_type}")));
    }
    if image.config().rootfs().typ() != "layers" {
        return Err(invalid(format!(
            "rootfs.type is {:?}, not \"layers\"",
            image.config().rootfs().typ()
        )));
    }
    let diff_ids = image.diff_ids()?;
    if diff_ids.len() != image.layers().len() {
        return Err(invalid(format!(
            "{} layers but {} diff_ids",
            image.layers().len(),
            diff_ids.len()
        )));
    }
    for (layer, diff_id) in image.layers().iter().zip(&diff_ids) {
        let digest = Digest::from_oci(layer.digest())?;
        let Some(expected) = Compression::from_media_type(layer.media_type()) else {
            return Err(invalid(format!(
                "layer {digest}: unknown media type {}",
                layer.media_type()
            )));
        };
        if store.blobs().size(&digest)? != layer.size() {
            return Err(Error::SizeMismatch {
                digest,
                expected: layer.size(),
                actual: store.blobs().size(&Digest::from_oci(layer.digest())?)?,
            });
        }
        let decoder = Decoder::detect(store.blobs().open(&digest)?)
            .map_err(stream_err(format!("layer {digest}")))?;
        if decoder.compression() != expected {
            return Err(invalid(format!(
                "layer {digest} is {} but its media type says {expected}",
                decoder.compression()
            )));
        }
        let mut archive = ::tar::Archive::new(HashingReader::new(decoder));
        let err = || stream_err(format!("layer {digest}"));
        for entry in archive.entries().map_err(err())? {
            let mut entry = entry.map_err(err())?;
            io::copy(&mut entry, &mut io::sink()).map_err(err())?;
        }
        let mut hashing = archive.into_inner();
        let mut rest = Vec::new();
        hashing.read_to_end(&mut rest).map_err(err())?;
        let (decoder, actual, _) = hashing.into_parts();
        // Read the compressed blob to its end so its digest is verified too.
        decoder.into_inner().finish()?;
        if actual != *diff_id {
            return Err(invalid(format!(
                "layer {digest} uncompresses to {actual}, config says {diff_id}"
            )));
        }
    }
    Ok(())
}
