//! Under load: 50 concurrent pulls of one image from `strata serve` all get every blob with the
//! right digest, and the server's memory stays bounded (blobs are streamed from the store, never
//! held whole): its peak RSS stays far below what the pulls move in total.

#![allow(clippy::print_stderr)]

use strata_oci::{Digest, Store, VerifyingReader};
use strata_remote::{Client, ClientOptions, RemoteRef};

use crate::common::Serve;

#[test]
fn fifty_concurrent_pulls_get_correct_digests_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("store")).unwrap();
    // 4 layers of 6 MB random content (about 24 MB per pull, 1.2 GB over 50 pulls).
    let image = strata_oci::random::image(&store, 4, 6 << 20).unwrap();
    store.refs().tag("acme/load:1", image.descriptor()).unwrap();
    let server = Serve::start(store.root(), &[]);
    let (_, peak_before) = server.rss_kib();
    let reference = RemoteRef::parse(&format!("{}/acme/load:1", server.host)).unwrap();

    let pulls = 50;
    let per_pull: u64 = image.size();
    let results: Vec<(Digest, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..pulls)
            .map(|_| {
                let reference = reference.clone();
                scope.spawn(move || {
                    let client = Client::new(ClientOptions {
                        docker_config: false,
                        ..ClientOptions::default()
                    })
                    .unwrap();
                    let manifest = client.get_manifest(&reference).unwrap();
                    let parsed: strata_oci::ImageManifest =
                        serde_json::from_slice(&manifest.bytes).unwrap();
                    let mut bytes = manifest.bytes.len() as u64;
                    for d in std::iter::once(parsed.config()).chain(parsed.layers()) {
                        let digest = Digest::from_oci(d.digest()).unwrap();
                        let body = client.get_blob(&reference, &digest, 0).unwrap();
                        let mut verified = VerifyingReader::new(body, digest, Some(d.size()));
                        bytes += std::io::copy(&mut verified, &mut std::io::sink())
                            .unwrap_or_else(|e| panic!("blob {}: {e}", d.digest()));
                        assert!(verified.is_verified());
                    }
                    (manifest.digest, bytes)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.len(), pulls);
    for (digest, bytes) in &results {
        assert_eq!(*digest, image.digest());
        assert_eq!(*bytes, per_pull);
    }
    let (rss, peak) = server.rss_kib();
    let total_mb = (per_pull * pulls as u64) as f64 / 1e6;
    eprintln!(
        "{pulls} concurrent pulls of {:.1} MB ({total_mb:.0} MB in all): server RSS {} MiB now, peak {} MiB (before: {} MiB)",
        per_pull as f64 / 1e6,
        rss / 1024,
        peak / 1024,
        peak_before / 1024
    );
    // Bounded: the peak stays under a quarter of what moved, and under 256 MiB.
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB");
    assert!(
        (peak as f64 / 1024.0) < total_mb / 4.0,
        "peak RSS {peak} KiB"
    );
}
