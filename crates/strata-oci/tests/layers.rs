//! The deterministic layer writer, read back with the layer reader and the safe unpacker.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use strata_oci::tar::{
    Entry, EntryKindInfo, LayerOptions, Metadata, TarWriter, UnpackOptions, collect_tree,
    list_entries,
};
use strata_oci::{Compression, Digest, Error, Store};

fn meta(mode: u32, uid: u64, gid: u64, mtime: u64) -> Metadata {
    Metadata {
        mtime,
        ..Metadata::new(mode, uid, gid)
    }
}

/// A small tree of every entry kind, in sorted order.
fn sample_entries() -> Vec<Entry> {
    vec![
        Entry::dir("app", meta(0o755, 1000, 1000, 1_700_000_000)),
        Entry::file_bytes(
            "app/hello",
            "hello\n",
            meta(0o4755, 1000, 1000, 1_700_000_000),
        ),
        Entry::hardlink("app/hello-link", "app/hello", meta(0o4755, 1000, 1000, 0)),
        Entry::symlink("app/latest", "hello", meta(0o777, 0, 0, 5)),
        Entry::dir("dev", meta(0o755, 0, 0, 0)),
        Entry::char_device("dev/null", 1, 3, meta(0o666, 0, 0, 0)),
        Entry::block_device("dev/sda", 8, 0, meta(0o660, 0, 6, 0)),
        Entry::fifo("dev/pipe", meta(0o600, 0, 0, 0)),
        Entry::dir("tmp", meta(0o1777, 0, 0, 0)),
        Entry::file_bytes("usr-bin-sg", "x", meta(0o2755, 0, 50, 0)),
    ]
}

fn write_layer(
    store: &Store,
    entries: Vec<Entry>,
    options: LayerOptions,
) -> strata_oci::tar::Layer {
    let mut writer = store.layer_writer(options).unwrap();
    writer.append_all(entries).unwrap();
    writer.finish().unwrap()
}

#[test]
fn headers_carry_exact_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path()).unwrap();
    let options = LayerOptions {
        compression: Compression::Gzip,
        source_date_epoch: 1_000,
    };
    let layer = write_layer(&store, sample_entries(), options);
    assert_eq!(
        layer.descriptor.media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let entries = store.layer_entries(&layer.descriptor).unwrap();
    let paths: Vec<_> = entries
        .iter()
        .map(|e| e.path.display().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "app",
            "app/hello",
            "app/hello-link",
            "app/latest",
            "dev",
            "dev/null",
            "dev/pipe",
            "dev/sda",
            "tmp",
            "usr-bin-sg"
        ]
    );
    let hello = &entries[1];
    assert_eq!(hello.kind, EntryKindInfo::File);
    assert_eq!(hello.mode, 0o4755);
    assert_eq!((hello.uid, hello.gid), (1000, 1000));
    assert_eq!((hello.uname.as_str(), hello.gname.as_str()), ("", ""));
    assert_eq!(hello.mtime, 1_000, "mtime clamped to SOURCE_DATE_EPOCH");
    assert_eq!(hello.content_digest, Some(Digest::of(b"hello\n")));
    assert!(!hello.pax, "no PAX header for a short name");
    assert_eq!(entries[2].kind, EntryKindInfo::Hardlink);
    assert_eq!(entries[2].link.as_deref(), Some(Path::new("app/hello")));
    assert_eq!(entries[3].kind, EntryKindInfo::Symlink);
    assert_eq!(entries[3].mtime, 5, "earlier mtimes are kept");
    assert_eq!(entries[5].device, Some((1, 3)));
    assert_eq!(entries[5].kind, EntryKindInfo::Char);
    assert_eq!(entries[6].kind, EntryKindInfo::Fifo);
    assert_eq!(entries[7].kind, EntryKindInfo::Block);
    assert_eq!(entries[8].mode, 0o1777);
    assert_eq!(entries[9].mode, 0o2755);
    assert!(entries.iter().all(|e| !e.pax));
}

#[test]
fn raw_headers_are_ustar_without_atime_and_dirs_end_in_slash() {
    let mut tar = TarWriter::new(Vec::new(), 0);
    tar.append(&Entry::dir("d", meta(0o755, 0, 0, 99))).unwrap();
    let bytes = tar.finish().unwrap();
    assert_eq!(bytes.len(), 512 + 1024);
    let header = ::tar::Header::from_byte_slice(&bytes[..512]);
    assert!(header.as_ustar().is_some(), "ustar format");
    assert_eq!(&header.path_bytes()[..], b"d/");
    assert_eq!(header.mtime().unwrap(), 0);
    assert_eq!(header.username_bytes(), Some(&b""[..]));
    // ustar has no atime/ctime fields; the GNU fields at those offsets stay zero.
    assert!(
        bytes[345..500].iter().all(|&b| b == 0),
        "prefix/atime area is empty"
    );
}

#[test]
fn pax_only_when_needed() {
    let long = format!("{}/file", "d".repeat(120));
    let mut xattr_meta = meta(0o755, 0, 0, 0);
    xattr_meta
        .xattrs
        .insert("security.capability".into(), vec![1, 0, 0, 2]);
    let mut entries = vec![
        Entry::file_bytes(&long, "long", meta(0o644, 0, 0, 0)),
        Entry::file_bytes("big-ids", "", meta(0o644, 3_000_000, 4_000_000, 0)),
        Entry::file_bytes("cap", "", xattr_meta),
        Entry::symlink("long-link", "t".repeat(150), meta(0o777, 0, 0, 0)),
        Entry::file_bytes("plain", "", meta(0o644, 2_097_151, 0, 0)),
    ];
    strata_oci::tar::sort_entries(&mut entries);
    let mut tar = TarWriter::new(Vec::new(), 0);
    for e in &entries {
        tar.append(e).unwrap();
    }
    let bytes = tar.finish().unwrap();
    let listed = list_entries(bytes.as_slice()).unwrap();
    let by = |p: &str| listed.iter().find(|e| e.path == Path::new(p)).unwrap();
    assert!(by("big-ids").pax);
    assert_eq!(
        (by("big-ids").uid, by("big-ids").gid),
        (3_000_000, 4_000_000)
    );
    assert!(by("cap").pax);
    assert_eq!(by("cap").xattrs["security.capability"], vec![1, 0, 0, 2]);
    assert!(by(&long).pax);
    assert_eq!(by(&long).content_digest, Some(Digest::of(b"long")));
    assert!(by("long-link").pax);
    assert_eq!(
        by("long-link").link.as_deref(),
        Some(Path::new(&"t".repeat(150)))
    );
    assert!(!by("plain").pax, "the largest octal uid needs no PAX");
    assert_eq!(by("plain").uid, 2_097_151);
    // GNU tar reads it the same way.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x.tar"), &bytes).unwrap();
    let out = std::process::Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(dir.path().join("x.tar"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("3000000/4000000"), "{listing}");
    assert!(listing.contains(&long), "{listing}");
}

#[test]
fn writer_refuses_bad_input() {
    let mut tar = TarWriter::new(Vec::new(), 0);
    tar.append(&Entry::dir("b", meta(0o755, 0, 0, 0))).unwrap();
    let err = tar
        .append(&Entry::dir("a", meta(0o755, 0, 0, 0)))
        .unwrap_err();
    assert!(err.to_string().contains("sorted"), "{err}");
    let err = tar
        .append(&Entry::dir("b", meta(0o755, 0, 0, 0)))
        .unwrap_err();
    assert!(err.to_string().contains("duplicate"), "{err}");
    let err = tar
        .append(&Entry::hardlink("c", "z", meta(0o644, 0, 0, 0)))
        .unwrap_err();
    assert!(err.to_string().contains("earlier file"), "{err}");
    let err = tar
        .append(&Entry::file_bytes("d/../../x", "", meta(0o644, 0, 0, 0)))
        .unwrap_err();
    assert!(err.to_string().contains(".."), "{err}");
    let err = tar
        .append_file(
            Path::new("e"),
            &meta(0o644, 0, 0, 0),
            10,
            &mut &b"short"[..],
        )
        .unwrap_err();
    assert!(matches!(err, Error::LayerEntry { .. }), "{err}");
    // Leading '/' and './' are dropped, and paths compare after normalisation.
    tar.append(&Entry::dir("/f", meta(0o755, 0, 0, 0))).unwrap();
    tar.append(&Entry::dir("./g", meta(0o755, 0, 0, 0)))
        .unwrap();
}

#[test]
fn same_entries_same_bytes_and_one_pass_digests() {
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::init(dir.path().join("a")).unwrap();
        let b = Store::init(dir.path().join("b")).unwrap();
        let options = LayerOptions {
            compression,
            source_date_epoch: 0,
        };
        let la = write_layer(&a, sample_entries(), options);
        // Reverse input order: append_all sorts.
        let mut reversed = sample_entries();
        reversed.reverse();
        let lb = write_layer(&b, reversed, options);
        assert_eq!(la, lb, "{compression}");
        // diff_id is the sha256 of the uncompressed tar; digest of the blob as stored.
        let blob = a.blobs().read(&la.digest()).unwrap();
        assert_eq!(Digest::of(&blob), la.digest());
        assert_eq!(blob.len() as u64, la.descriptor.size());
        let mut tar = Vec::new();
        strata_oci::compress::Decoder::detect(blob.as_slice())
            .unwrap()
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(Digest::of(&tar), la.diff_id, "{compression}");
        assert_eq!(tar.len() as u64, la.uncompressed_size);
        assert_eq!(la.entries, 10);
        if compression == Compression::None {
            assert_eq!(la.diff_id, la.digest());
        }
    }
}

#[test]
fn whiteout_helpers_name_files_right() {
    let wh = Entry::whiteout("etc/motd").unwrap();
    assert_eq!(wh.path, Path::new("etc/.wh.motd"));
    let opq = Entry::opaque("var/cache");
    assert_eq!(opq.path, Path::new("var/cache/.wh..wh..opq"));
}

#[test]
fn collect_write_unpack_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("bin/tool"), "#!/bin/sh\n").unwrap();
    // chown first: it clears setuid.
    std::os::unix::fs::chown(src.join("bin/tool"), Some(1000), Some(1000)).ok();
    fs::set_permissions(src.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(src.join("bin/tool"), src.join("bin/tool2")).unwrap();
    std::os::unix::fs::symlink("tool", src.join("bin/alias")).unwrap();
    let store = Store::init(dir.path().join("store")).unwrap();
    let entries = collect_tree(&src, Path::new("/opt")).unwrap();
    let layer = write_layer(&store, entries, LayerOptions::default());

    let dest = dir.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let report = store
        .unpack_layer(&layer.descriptor, &dest, &UnpackOptions::default())
        .unwrap();
    assert_eq!(report.entries, 5);
    let tool = fs::symlink_metadata(dest.join("opt/bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o4755);
    assert_eq!(tool.mtime(), 0);
    let tool2 = fs::symlink_metadata(dest.join("opt/bin/tool2")).unwrap();
    assert_eq!(tool.ino(), tool2.ino(), "hard link kept");
    assert_eq!(
        fs::read_link(dest.join("opt/bin/alias")).unwrap(),
        Path::new("tool")
    );
    if unsafe_is_root() {
        assert_eq!((tool.uid(), tool.gid()), (1000, 1000));
    }
}

#[test]
fn unpack_creates_devices_and_fifos_and_applies_whiteouts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("store")).unwrap();
    let lower = write_layer(
        &store,
        vec![
            Entry::dir("etc", meta(0o755, 0, 0, 0)),
            Entry::file_bytes("etc/motd", "hi", meta(0o644, 0, 0, 0)),
            Entry::file_bytes("etc/keep", "k", meta(0o644, 0, 0, 0)),
            Entry::dir("var", meta(0o755, 0, 0, 0)),
            Entry::dir("var/cache", meta(0o755, 0, 0, 0)),
            Entry::file_bytes("var/cache/old", "o", meta(0o644, 0, 0, 0)),
            Entry::dir("var/cache/sub", meta(0o755, 0, 0, 0)),
        ],
        LayerOptions::default(),
    );
    let upper = write_layer(
        &store,
        vec![
            Entry::whiteout("etc/motd").unwrap(),
            Entry::dir("var/cache", meta(0o700, 0, 0, 0)),
            Entry::opaque("var/cache"),
            Entry::file_bytes("var/cache/new", "n", meta(0o644, 0, 0, 0)),
            Entry::dir("dev", meta(0o755, 0, 0, 0)),
            Entry::char_device("dev/null", 1, 3, meta(0o666, 0, 0, 0)),
            Entry::fifo("dev/pipe", meta(0o600, 0, 0, 0)),
        ],
        LayerOptions {
            compression: Compression::Zstd,
            source_date_epoch: 0,
        },
    );
    let dest = dir.path().join("rootfs");
    fs::create_dir(&dest).unwrap();
    let options = UnpackOptions::default();
    store
        .unpack_layer(&lower.descriptor, &dest, &options)
        .unwrap();
    let report = store
        .unpack_layer(&upper.descriptor, &dest, &options)
        .unwrap();
    assert_eq!(report.whiteouts, 2);
    assert!(!dest.join("etc/motd").exists());
    assert!(!dest.join("etc/.wh.motd").exists());
    assert!(dest.join("etc/keep").exists());
    assert!(!dest.join("var/cache/old").exists());
    assert!(!dest.join("var/cache/sub").exists());
    assert_eq!(fs::read_to_string(dest.join("var/cache/new")).unwrap(), "n");
    assert_eq!(
        fs::metadata(dest.join("var/cache")).unwrap().mode() & 0o777,
        0o700
    );
    assert!(
        fs::symlink_metadata(dest.join("dev/pipe"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    if unsafe_is_root() && report.skipped_devices.is_empty() {
        let null = fs::symlink_metadata(dest.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
    } else {
        assert_eq!(report.skipped_devices, vec![Path::new("dev/null")]);
    }
}

#[test]
fn unpack_detects_a_corrupt_layer_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("store")).unwrap();
    let layer = write_layer(
        &store,
        vec![Entry::file_bytes("f", "content", meta(0o644, 0, 0, 0))],
        LayerOptions {
            compression: Compression::None,
            source_date_epoch: 0,
        },
    );
    let path = store.blobs().path(&layer.digest());
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.windows(7).position(|w| w == b"content").unwrap();
    bytes[at] = b'C';
    fs::write(&path, bytes).unwrap();
    let dest = dir.path().join("rootfs");
    fs::create_dir(&dest).unwrap();
    let err = store
        .unpack_layer(&layer.descriptor, &dest, &UnpackOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains(&layer.digest().to_string()),
        "{err}"
    );
}

fn unsafe_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

proptest::proptest! {
    /// Any path (short, exactly 100 bytes, long, unicode) and any ids round-trip through the
    /// writer and the reader, with PAX only when a field overflows.
    #[test]
    fn paths_and_ids_roundtrip(
        parts in proptest::collection::vec("[a-zA-Z0-9._é-]{1,40}", 1..8),
        uid in 0u64..10_000_000,
        mode in 0u32..0o7777,
    ) {
        let path: std::path::PathBuf = parts.iter().collect();
        proptest::prop_assume!(parts.iter().all(|p| p != "." && p != ".."));
        let mut tar = TarWriter::new(Vec::new(), 0);
        tar.append(&Entry::file_bytes(&path, "x", meta(mode, uid, 7, 0))).unwrap();
        let bytes = tar.finish().unwrap();
        let listed = list_entries(bytes.as_slice()).unwrap();
        proptest::prop_assert_eq!(listed.len(), 1);
        proptest::prop_assert_eq!(&listed[0].path, &path);
        proptest::prop_assert_eq!(listed[0].uid, uid);
        proptest::prop_assert_eq!(listed[0].mode, mode);
        let needs_pax = path.as_os_str().len() > 100 || uid > 0o7_777_777;
        proptest::prop_assert_eq!(listed[0].pax, needs_pax);
    }
}
