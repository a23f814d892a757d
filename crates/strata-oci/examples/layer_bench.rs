//! Throughput of the layer writer (per compression) and of the safe unpacker.
//!
//! `cargo run -p strata-oci --example layer_bench [MB]` writes a layer of MB (default 50) of
//! pseudo-random, half-compressible files into a temp store and prints MB/s.

#![allow(clippy::print_stdout)]

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use strata_oci::Store;
use strata_oci::tar::{LayerOptions, Metadata, UnpackOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir()?;
    // 1 MB files: half random bytes, half text, so compressors have real work.
    let src = dir.path().join("src");
    std::fs::create_dir(&src)?;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..mb {
        let mut data = vec![0u8; 1 << 20];
        for chunk in data[..1 << 19].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        for (j, b) in data[1 << 19..].iter_mut().enumerate() {
            *b = b"the quick brown fox jumps over the lazy dog\n"[j % 44];
        }
        std::fs::write(src.join(format!("file-{i:04}")), data)?;
    }
    let store = Store::init(dir.path().join("store"))?;
    let total = (mb << 20) as f64 / 1e6;
    for compression in ["none", "gzip", "zstd"] {
        let options = LayerOptions {
            compression: compression.parse()?,
            source_date_epoch: 0,
        };
        let start = Instant::now();
        let mut entries = strata_oci::tar::collect_tree(&src, Path::new("data"))?;
        for e in &mut entries {
            e.meta = Metadata::new(e.meta.mode, 0, 0);
        }
        let mut writer = store.layer_writer(options)?;
        writer.append_all(entries)?;
        let layer = writer.finish()?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "write {compression:>4}: {total:.0} MB in {secs:.2} s = {:.0} MB/s (blob {:.1} MB)",
            total / secs,
            layer.descriptor.size() as f64 / 1e6
        );
        let dest = dir.path().join(format!("unpack-{compression}"));
        std::fs::create_dir(&dest)?;
        let start = Instant::now();
        store.unpack_layer(&layer.descriptor, &dest, &UnpackOptions::default())?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "unpack {compression:>4}: {:.0} MB/s (digest verified)",
            total / secs
        );
    }
    // Raw hashing speed, for scale.
    let mut buf = vec![0u8; 64 << 20];
    std::io::repeat(7).read_exact(&mut buf)?;
    let start = Instant::now();
    let _ = strata_oci::Digest::of(&buf);
    println!(
        "sha256: {:.0} MB/s",
        buf.len() as f64 / 1e6 / start.elapsed().as_secs_f64()
    );
    Ok(())
}
