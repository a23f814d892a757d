//! Test helper: write images of pseudo-random content into a store (`test-util` feature).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::{Arch, ImageConfiguration, Os, RootFs};

use crate::error::Result;
use crate::image::Image;
use crate::layout::Store;
use crate::tar::{LayerOptions, Metadata};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// An image of `layers` layers, each holding one file of `size` random bytes. Successive calls
/// give different images. Nothing is tagged.
pub fn image(store: &Store, layers: usize, size: usize) -> Result<Image> {
    let seed = COUNTER.fetch_add(1, Ordering::Relaxed)
        ^ (u64::from(std::process::id()) << 32)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    image_with_seed(store, layers, size, seed)
}

/// Like [`image`] but reproducible: the same seed gives the same image digest.
pub fn image_with_seed(store: &Store, layers: usize, size: usize, seed: u64) -> Result<Image> {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..layers {
        let mut writer = store.layer_writer(LayerOptions::default())?;
        let mut rng = XorShift(
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(i as u64)
                | 1,
        );
        writer.append(&crate::tar::Entry::dir(
            "random",
            Metadata::new(0o755, 0, 0),
        ))?;
        writer.append_file(
            Path::new(&format!("random/layer-{i}")),
            &Metadata::new(0o644, 0, 0),
            size as u64,
            &mut (&mut rng).take(size as u64),
        )?;
        let layer = writer.finish()?;
        diff_ids.push(layer.diff_id.to_string());
        descriptors.push(layer.descriptor);
    }
    let mut rootfs = RootFs::default();
    rootfs.set_diff_ids(diff_ids);
    let mut config = ImageConfiguration::default();
    config.set_architecture(Arch::from(crate::image::host_architecture()));
    config.set_os(Os::Linux);
    config.set_rootfs(rootfs);
    store.write_image(&config, &descriptors, None)
}

/// An image of `parent`'s layers plus one holding the file `path` (its own path as content),
/// annotated with its parent's digest as its base image (as the builder annotates), for custody
/// and chain tests. Nothing is tagged.
pub fn image_on(store: &Store, parent: Option<&Image>, path: &str) -> Result<Image> {
    let mut writer = store.layer_writer(LayerOptions::default())?;
    writer.append(&crate::tar::Entry::file_bytes(
        path,
        path.as_bytes().to_vec(),
        Metadata::new(0o644, 0, 0),
    ))?;
    let layer = writer.finish()?;
    let (mut layers, mut diff_ids) = match parent {
        Some(p) => (p.layers().to_vec(), p.diff_ids()?),
        None => (Vec::new(), Vec::new()),
    };
    layers.push(layer.descriptor);
    diff_ids.push(layer.diff_id);
    let mut rootfs = RootFs::default();
    rootfs.set_diff_ids(diff_ids.iter().map(ToString::to_string).collect());
    let mut config = ImageConfiguration::default();
    config.set_architecture(Arch::Amd64);
    config.set_os(Os::Linux);
    config.set_rootfs(rootfs);
    let annotations = parent.map(|p| {
        HashMap::from([(
            crate::annotations::ANNOTATION_BASE_IMAGE_DIGEST.to_string(),
            p.digest().to_string(),
        )])
    });
    store.write_image(&config, &layers, annotations)
}

/// A tiny deterministic generator (xorshift64*), enough for test content.
struct XorShift(u64);

impl Read for XorShift {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(buf.len())
    }
}
