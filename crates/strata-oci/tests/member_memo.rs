//! The store's gzip member memo (issue 22): a layer that repeats most of an earlier one copies the
//! earlier layer's members instead of compressing its chunks again, and its bytes are exactly what a
//! store without the memo writes. GNU gzip reads the result.

use std::fs;
use std::io::Write;
use std::path::Path;

use strata_oci::tar::{Entry, Layer, LayerOptions, LayerTimes, Metadata};
use strata_oci::{Digest, Store};

/// Text-like content that differs from file to file, `len` bytes.
fn text(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = seed * 1_000_003;
    while out.len() < len {
        i += 1;
        out.extend_from_slice(
            format!("/usr/lib/pkg{}/lib{}.so.{} {}\n", i % 991, i, i % 7, i * 17).as_bytes(),
        );
    }
    out.truncate(len);
    out
}

/// Ten 1 MiB files, the fifth changed when `patched`, and a small new file first when `extra`.
fn files(patched: bool, extra: bool) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = (1..=10u64)
        .map(|n| {
            let seed = if patched && n == 5 { 500 } else { n };
            (format!("usr/f{n:02}"), text(1 << 20, seed))
        })
        .collect();
    if extra {
        files.push(("etc/new.conf".to_string(), b"added by the patch\n".to_vec()));
    }
    files
}

fn write(store: &Store, files: &[(String, Vec<u8>)]) -> (Layer, LayerTimes) {
    let meta = Metadata::new(0o644, 0, 0);
    let mut writer = store.layer_writer(LayerOptions::default()).unwrap();
    writer
        .append_all(
            files
                .iter()
                .map(|(path, bytes)| Entry::file_bytes(path.as_str(), bytes.clone(), meta.clone()))
                .collect(),
        )
        .unwrap();
    writer.finish_timed().unwrap()
}

fn blob_path(store: &Store, layer: &Layer) -> std::path::PathBuf {
    store
        .blobs()
        .path(&Digest::from_oci(layer.descriptor.digest()).unwrap())
}

/// Check that GNU gzip decompresses `path` to the tar whose digest is `diff_id`.
fn assert_gunzips_to(path: &Path, diff_id: &Digest) {
    let Some(gzip) = strata_testutil::require_tool("gzip") else {
        return;
    };
    let out = std::process::Command::new(gzip)
        .arg("-dc")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "gzip -dc {}", path.display());
    assert_eq!(&Digest::of(&out.stdout), diff_id);
}

fn store(dir: &Path, name: &str) -> Store {
    Store::init(dir.join(name)).unwrap()
}

#[test]
fn a_layer_that_repeats_an_earlier_one_reuses_its_members_and_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let memo_store = store(dir.path(), "memo");
    let (first, first_times) = write(&memo_store, &files(false, false));
    assert_eq!(first_times.reused, 0);

    // The patch: a new small file sorted first (every later byte shifts) and one file changed.
    let patched = files(true, true);
    let (again, times) = write(&memo_store, &patched);
    assert_ne!(again.descriptor.digest(), first.descriptor.digest());
    // Ten 1 MiB files; the members around the new file and over the changed one (about a
    // member and a half on either side of a change, at 0.5 to 2 MiB each) are compressed again.
    assert!(
        times.reused >= 4 << 20,
        "only {} bytes of {} reused",
        times.reused,
        again.uncompressed_size
    );

    // A store that never saw the first layer writes the same bytes, compressing everything.
    let fresh = store(dir.path(), "fresh");
    let (alone, alone_times) = write(&fresh, &patched);
    assert_eq!(alone_times.reused, 0);
    assert_eq!(alone.descriptor, again.descriptor);
    assert_eq!(
        fs::read(blob_path(&memo_store, &again)).unwrap(),
        fs::read(blob_path(&fresh, &alone)).unwrap()
    );
    assert_gunzips_to(&blob_path(&memo_store, &again), &again.diff_id);
}

#[test]
fn a_remembered_member_that_no_longer_checks_out_is_compressed_again() {
    let dir = tempfile::tempdir().unwrap();
    let memo_store = store(dir.path(), "memo");
    let (first, _) = write(&memo_store, &files(false, false));
    let entries: Vec<_> = fs::read_dir(strata_oci::member_memo::members_dir(&memo_store))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(entries.len() >= 8, "{} entries", entries.len());

    // The blob rots in the middle (fsck's business, but no new layer may copy it), one entry
    // points elsewhere in the blob, one is empty, as a crash can leave it, and one is a link.
    let blob = blob_path(&memo_store, &first);
    let mut bytes = fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let mut file = fs::OpenOptions::new().write(true).open(&blob).unwrap();
    file.write_all(&bytes).unwrap();
    drop(file);
    let entry = fs::read_to_string(&entries[0]).unwrap();
    let mut words: Vec<String> = entry.split_whitespace().map(str::to_string).collect();
    words[1] = (words[1].parse::<u64>().unwrap() + 1).to_string();
    fs::write(&entries[0], words.join(" ")).unwrap();
    fs::write(&entries[1], "").unwrap();
    // A planted link to a FIFO: reading it would block the build for ever.
    fs::remove_file(&entries[2]).unwrap();
    strata_testutil::link_to_fifo(&entries[2]);

    let patched = files(false, true);
    let (again, times) = write(&memo_store, &patched);
    let (alone, _) = write(&store(dir.path(), "fresh"), &patched);
    assert_eq!(again.descriptor, alone.descriptor);
    assert_gunzips_to(&blob_path(&memo_store, &again), &again.diff_id);
    // The rest was still reused.
    assert!(times.reused > 0 && times.reused < again.uncompressed_size);
}

#[test]
fn zstd_and_uncompressed_layers_leave_the_memo_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), "store");
    for compression in [strata_oci::Compression::Zstd, strata_oci::Compression::None] {
        let mut writer = store
            .layer_writer(LayerOptions {
                compression,
                ..LayerOptions::default()
            })
            .unwrap();
        writer
            .append(&Entry::file_bytes(
                "big",
                text(4 << 20, 1),
                Metadata::new(0o644, 0, 0),
            ))
            .unwrap();
        let (_, times) = writer.finish_timed().unwrap();
        assert_eq!(times.reused, 0);
    }
    assert!(!strata_oci::member_memo::members_dir(&store).exists());
}
