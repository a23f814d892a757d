//! The busybox rootfs tarball: content, ownership, determinism.

use std::io::Read;
use std::path::Path;

use strata_scaffold::rootfs::{APPLETS, DEFAULT_BUSYBOX, write_busybox_rootfs};

#[test]
fn rootfs_holds_busybox_applets_and_users_deterministically() {
    if !Path::new(DEFAULT_BUSYBOX).is_file() && strata_testutil::require_tool("busybox").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("one/rootfs.tar");
    let b = dir.path().join("two/rootfs.tar");
    write_busybox_rootfs(Path::new(DEFAULT_BUSYBOX), &a).unwrap();
    write_busybox_rootfs(Path::new(DEFAULT_BUSYBOX), &b).unwrap();
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&b).unwrap(),
        "same busybox, same bytes"
    );

    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut paths = Vec::new();
    let mut passwd = String::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let h = entry.header().clone();
        assert_eq!(
            (h.uid().unwrap(), h.gid().unwrap(), h.mtime().unwrap()),
            (0, 0, 0),
            "{path}"
        );
        assert_eq!(h.username().unwrap(), Some("root"));
        if path == "bin/sh" {
            assert_eq!(h.entry_type(), tar::EntryType::Symlink);
            assert_eq!(
                entry.link_name().unwrap().unwrap().to_str(),
                Some("busybox")
            );
        }
        if path == "tmp/" {
            assert_eq!(h.mode().unwrap(), 0o1777);
        }
        if path == "etc/passwd" {
            entry.read_to_string(&mut passwd).unwrap();
        }
        if path == "bin/busybox" {
            assert_eq!(
                h.size().unwrap(),
                std::fs::metadata(DEFAULT_BUSYBOX).unwrap().len()
            );
        }
        paths.push(path);
    }
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries are sorted");
    for needed in [
        "bin/",
        "etc/",
        "tmp/",
        "root/",
        "usr/",
        "var/",
        "bin/busybox",
        "etc/group",
        "etc/shadow",
    ] {
        assert!(paths.iter().any(|p| p == needed), "{needed} missing");
    }
    for applet in APPLETS {
        assert!(paths.contains(&format!("bin/{applet}")), "applet {applet}");
    }
    assert!(passwd.contains("root:x:0:0:"));
    assert!(passwd.contains("www-data:x:33:33:"));
    assert!(passwd.contains("nobody:x:65534:"));

    // the peer tool reads it too, and busybox runs from it
    let list = strata_testutil::run_ok(std::process::Command::new("tar").arg("-tvf").arg(&a));
    assert!(list.contains("bin/sh -> busybox"), "{list}");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    strata_testutil::run_ok(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(&a)
            .arg("-C")
            .arg(&root),
    );
    let out = strata_testutil::run_ok(
        std::process::Command::new(root.join("bin/busybox")).args(["echo", "hello"]),
    );
    assert_eq!(out, "hello\n");
}
