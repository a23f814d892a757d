//! Issue 22: a directory a step already wrote becomes its layer's snapshot instead of the layer
//! being unpacked again: a RUN step's upper directory, and the base image's `ADD rootfs.tar /`.
//! The adopted snapshot must equal the one the unpacker makes from the stored layer.

#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use strata_build::builder::{BuildOptions, NoSink, build};
use strata_build::snapshot::{Snapshots, snapshot_name, unpacked_on_this_thread};
use strata_oci::Store;

/// Everything the overlay and a RUN step can see of a tree, by relative path: type, mode,
/// owner, mtime, size, content or link target, device number, extended attributes, and which
/// paths share an inode (hard links). Access times are left out (reading changes them).
fn describe(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let md = std::fs::symlink_metadata(&path).unwrap();
            let ft = md.file_type();
            let whiteout = ft.is_char_device() && md.rdev() == 0;
            let what = if whiteout {
                // The overlay reads only the type of a whiteout.
                "whiteout".to_string()
            } else {
                let body = if ft.is_symlink() {
                    format!("-> {}", std::fs::read_link(&path).unwrap().display())
                } else if ft.is_file() {
                    format!("{:?}", std::fs::read(&path).unwrap())
                } else if ft.is_char_device() || ft.is_block_device() {
                    format!("dev {}", md.rdev())
                } else {
                    String::new()
                };
                let xattrs: Vec<String> = strata_testutil::xattrs(&path)
                    .into_iter()
                    .filter(|(name, _)| name != "security.selinux")
                    .map(|(name, value)| format!("{name}={value:?}"))
                    .collect();
                format!(
                    "{:o} {}:{} mtime {}.{} size {} links {} xattrs {:?} {}",
                    md.mode(),
                    md.uid(),
                    md.gid(),
                    md.mtime(),
                    md.mtime_nsec(),
                    if ft.is_dir() { 0 } else { md.len() },
                    if ft.is_dir() { 0 } else { md.nlink() },
                    xattrs,
                    body
                )
            };
            out.insert(rel, what);
            if ft.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// `name=value` of every extended attribute of `path` (not followed).
/// Unpack `layer` of the stored image `tag` into a fresh snapshot directory under `dir`.
fn unpacked(store: &Store, dir: &Path, tag: &str, index: usize) -> (String, PathBuf) {
    let image = store.image(tag).unwrap();
    let diff_id = image.diff_ids().unwrap()[index].to_string();
    let layer = image.layers()[index].clone();
    let path = Snapshots::new(dir).get(store, &layer, &diff_id).unwrap();
    (diff_id, path)
}

/// `security.capability` granting `cap_net_raw` (effective and permitted), revision 2: what
/// `setcap cap_net_raw+ep` writes (ping's file capability).
const CAP_NET_RAW: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Rewrite the base tarball `tar` with one more file, `bin/capped`, carrying the extended
/// attributes a layer keeps: a file capability and a user attribute (as PAX records).
fn add_attributed_file(tar: &Path) {
    let bytes = std::fs::read(tar).unwrap();
    let mut out = ::tar::Builder::new(Vec::new());
    let mut archive = ::tar::Archive::new(&bytes[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        out.append(&header, &mut entry).unwrap();
    }
    out.append_pax_extensions([
        ("SCHILY.xattr.security.capability", &CAP_NET_RAW[..]),
        ("SCHILY.xattr.user.strata", &b"kept"[..]),
    ])
    .unwrap();
    let mut header = ::tar::Header::new_ustar();
    header.set_entry_type(::tar::EntryType::Regular);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_000_000_000);
    header.set_size(5);
    out.append_data(&mut header, "bin/capped", &b"ping\n"[..])
        .unwrap();
    std::fs::write(tar, out.into_inner().unwrap()).unwrap();
}

struct Chain {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: Store,
}

impl Chain {
    fn new() -> Option<Chain> {
        if !strata_testutil::is_root() {
            eprintln!("skipping: RUN steps and whiteouts need root");
            assert!(!strata_testutil::in_ci(), "CI runs as root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let base = root.join("base");
        std::fs::create_dir_all(&base).unwrap();
        strata_testutil::busybox_rootfs_tar(&base.join("rootfs.tar"))?;
        add_attributed_file(&base.join("rootfs.tar"));
        std::fs::write(base.join("Dockerfile"), "FROM scratch\nADD rootfs.tar /\n").unwrap();
        let store = Store::init(root.join("store")).unwrap();
        Some(Chain {
            _dir: dir,
            root,
            store,
        })
    }

    fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    fn build(&self, context: &str, tag: &str) {
        let mut options = BuildOptions::new(self.root.join(context));
        options.tags = vec![tag.to_string()];
        options.cache_dir = Some(self.cache());
        // Late enough that files keep their own older times, early enough to clamp new ones.
        options.source_date_epoch = 1_600_000_000;
        options.network = strata_build::builder::RunNetwork::None;
        build(&self.store, &options, &NoSink).unwrap();
    }
}

// See issue 22: the base import's extracted tree and every RUN step's upper directory become
// their layers' snapshots, so a chain of RUN steps unpacks nothing; the adopted snapshots equal
// what the unpacker makes of the stored layers.
#[test]
fn written_trees_become_snapshots_equal_to_unpacked_layers() {
    let Some(chain) = Chain::new() else { return };
    let before = unpacked_on_this_thread();
    chain.build("base", "acme/base");
    // The base's snapshot exists before any RUN asked for it.
    let (base_id, base_unpacked) =
        unpacked(&chain.store, &chain.root.join("fresh"), "acme/base", 0);
    let snapshots = chain.cache().join("snapshots");
    let base_snapshot = snapshots.join(snapshot_name(&base_id));
    assert!(base_snapshot.is_dir(), "the base import left no snapshot");
    assert_eq!(describe(&base_snapshot), describe(&base_unpacked));
    // The layer kept the file capability and the user attribute, and so does the snapshot.
    let capped = &describe(&base_snapshot)["bin/capped"];
    assert!(
        capped.contains("security.capability") && capped.contains("user.strata"),
        "{capped}"
    );

    let app = chain.root.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        r#"FROM acme/base
RUN mkdir -p /srv/a /srv/b && echo one > /srv/a/f && ln /srv/a/f /srv/a/g \
 && ln -s ../a/f /srv/b/link && touch -d @1500000000 /srv/a/old && chmod 4755 /srv/a/old \
 && busybox mkfifo /srv/fifo && rm /etc/group && echo new >> /etc/passwd \
 && rm -rf /bin/yes /sbin && mkdir /sbin && echo s > /sbin/only
RUN rm -rf /srv/a && mkdir /srv/a && echo two > /srv/a/h && rm /srv/b/link && chown 1:2 /srv/b \
 && chmod 750 /bin/capped
COPY --from=acme/base /bin/capped /opt/capped
"#,
    )
    .unwrap();
    let after_base = unpacked_on_this_thread();
    chain.build("app", "acme/app");
    assert_eq!(
        unpacked_on_this_thread(),
        after_base,
        "a layer was unpacked although its tree was at hand"
    );
    for index in 1..=2 {
        let (id, fresh) = unpacked(&chain.store, &chain.root.join("fresh"), "acme/app", index);
        let adopted = snapshots.join(snapshot_name(&id));
        assert!(adopted.is_dir(), "layer {index}: no snapshot");
        let (a, b) = (describe(&adopted), describe(&fresh));
        assert!(!a.is_empty());
        assert_eq!(a, b, "layer {index}: the adopted snapshot differs");
    }
    // The second RUN made /srv/a opaque and whited out /srv/b/link; its chmod copied
    // /bin/capped up with its attributes, which its layer and snapshot keep.
    let (id, _) = unpacked(&chain.store, &chain.root.join("fresh"), "acme/app", 2);
    let second = describe(&snapshots.join(snapshot_name(&id)));
    assert!(
        second["bin/capped"].starts_with("100750")
            && second["bin/capped"].contains("security.capability")
            && second["bin/capped"].contains("user.strata"),
        "{}",
        second["bin/capped"]
    );
    assert_eq!(second["srv/b/link"], "whiteout");
    assert!(
        second["srv/a"].contains("trusted.overlay.opaque"),
        "{}",
        second["srv/a"]
    );
    // COPY --from an image keeps the file's owner and the attributes its layer carries.
    let (_, copied) = unpacked(&chain.store, &chain.root.join("fresh"), "acme/app", 3);
    let copied = describe(&copied);
    assert!(
        copied["opt/capped"].contains("security.capability")
            && copied["opt/capped"].contains("user.strata"),
        "{}",
        copied["opt/capped"]
    );
    umoci_unpacks_the_capability(&chain);
    assert!(unpacked_on_this_thread() > before);
}

/// skopeo copies `acme/app` out of the store and umoci, as root, unpacks it: the file capability
/// and user attribute the layers carry are on both files, as strata's own unpacker sets them.
fn umoci_unpacks_the_capability(chain: &Chain) {
    let (Some(_), Some(_)) = (
        strata_testutil::require_tool("skopeo"),
        strata_testutil::require_tool("umoci"),
    ) else {
        return;
    };
    let layout = chain.root.join("layout");
    let bundle = chain.root.join("bundle");
    strata_testutil::run_ok(
        std::process::Command::new("skopeo")
            .arg("copy")
            .arg(format!(
                "oci:{}:localhost/acme/app:latest",
                chain.store.root().display()
            ))
            .arg(format!("oci:{}:app", layout.display())),
    );
    strata_testutil::run_ok(
        std::process::Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:app", layout.display()))
            .arg(&bundle),
    );
    for file in ["bin/capped", "opt/capped"] {
        let theirs = strata_testutil::xattrs(&bundle.join("rootfs").join(file));
        assert_eq!(
            theirs.get("security.capability").map(Vec::as_slice),
            Some(&CAP_NET_RAW[..]),
            "umoci's {file}: {theirs:?}"
        );
        assert_eq!(
            theirs.get("user.strata").map(Vec::as_slice),
            Some(&b"kept"[..]),
            "umoci's {file}: {theirs:?}"
        );
    }
}
