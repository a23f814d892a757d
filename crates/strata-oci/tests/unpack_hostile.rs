//! The safe extractor against hostile archives: nothing may land outside the root.
//!
//! Each case is a tarball made here, unpacked next to a canary directory whose listing, modes,
//! mtimes and contents are recorded before and compared after; the cases run through both
//! resolvers (`openat2` and the `O_NOFOLLOW` walk).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ::tar::{EntryType, Header};
use strata_oci::Error;
use strata_oci::rootdir::{Resolver, Root};
use strata_oci::tar::{UnpackOptions, Whiteouts, unpack_layer};

/// One raw entry: name and link bytes written verbatim (no normalisation).
struct Raw<'a> {
    name: &'a str,
    ty: EntryType,
    link: &'a str,
    data: &'a [u8],
}

/// A recorded tree: every path under it with its kind, mode, mtime and content or link target.
type TreeState = BTreeMap<PathBuf, (String, u32, i64, i64, Vec<u8>)>;

fn record(dir: &Path) -> TreeState {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.unwrap();
        let md = entry.path().symlink_metadata().unwrap();
        let (kind, content) = if md.is_dir() {
            ("dir", Vec::new())
        } else if md.file_type().is_symlink() {
            (
                "symlink",
                fs::read_link(entry.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else {
            ("file", fs::read(entry.path()).unwrap())
        };
        out.insert(
            entry.path().strip_prefix(dir).unwrap().to_path_buf(),
            (
                kind.to_string(),
                md.mode(),
                md.mtime(),
                md.mtime_nsec(),
                content,
            ),
        );
    }
    out
}

/// Both resolvers; the first is the kernel's `openat2` where this machine has it.
fn resolvers() -> [Resolver; 2] {
    [Resolver::Auto, Resolver::Walk]
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        name,
        ty: EntryType::Regular,
        link: "",
        data,
    }
}
fn dir(name: &str) -> Raw<'_> {
    Raw {
        name,
        ty: EntryType::Directory,
        link: "",
        data: b"",
    }
}
fn symlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        name,
        ty: EntryType::Symlink,
        link: target,
        data: b"",
    }
}
fn hardlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        name,
        ty: EntryType::Link,
        link: target,
        data: b"",
    }
}

fn hostile_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let modes: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e,
                if e.ty == EntryType::Directory {
                    0o755
                } else {
                    0o644
                },
            )
        })
        .collect();
    tar_with_modes(&modes)
}

/// Append one header (name and link written verbatim in the old fields) and its data.
fn push_entry(out: &mut Vec<u8>, e: &Raw<'_>, mode: u32) {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
    h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
    h.set_entry_type(e.ty);
    h.set_mode(mode);
    h.set_mtime(1_000_000);
    h.set_size(e.data.len() as u64);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(e.data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn tar_with_modes(entries: &[(&Raw<'_>, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (e, mode) in entries {
        push_entry(&mut out, e, *mode);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// A PAX extended header (type `x`) setting `path`, then a regular file with a dummy name.
fn pax_path_tar(path: &str, data: &[u8]) -> Vec<u8> {
    let body = |len: usize| format!("{len} path={path}\n");
    let mut len = body(0).len();
    while body(len).len() != len {
        len = body(len).len();
    }
    let record = body(len);
    let mut out = Vec::new();
    push_entry(
        &mut out,
        &Raw {
            name: "PaxHeader",
            ty: EntryType::XHeader,
            link: "",
            data: record.as_bytes(),
        },
        0o644,
    );
    push_entry(&mut out, &file("dummy", data), 0o644);
    out.extend_from_slice(&[0; 1024]);
    out
}

/// A GNU long-name entry (type `L`) naming the next entry, a regular file.
fn gnu_longname_tar(path: &str, data: &[u8]) -> Vec<u8> {
    let mut name = path.as_bytes().to_vec();
    name.push(0);
    let mut out = Vec::new();
    push_entry(
        &mut out,
        &Raw {
            name: "././@LongLink",
            ty: EntryType::GNULongName,
            link: "",
            data: &name,
        },
        0o644,
    );
    push_entry(&mut out, &file("dummy", data), 0o644);
    out.extend_from_slice(&[0; 1024]);
    out
}

/// A sandbox: `root` to unpack into, `outside` a sibling canary that must stay untouched.
struct Sandbox {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
    /// The canary's state before the unpack.
    canary: TreeState,
    resolver: Resolver,
}

fn sandbox() -> Sandbox {
    sandbox_with(Resolver::Auto)
}

/// A sandbox whose canary holds a file, a subdirectory `sub` (mode 0755) with a file, all with
/// old mtimes, so a chmod, a utimes, a write or a new entry shows.
fn sandbox_with(resolver: Resolver) -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), "original").unwrap();
    fs::create_dir(outside.join("sub")).unwrap();
    fs::write(outside.join("sub/file"), "canary").unwrap();
    fs::set_permissions(outside.join("sub"), fs::Permissions::from_mode(0o755)).unwrap();
    for p in ["victim", "sub/file", "sub", ""] {
        let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(500_000);
        let f = fs::File::open(outside.join(p)).unwrap();
        f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
            .unwrap();
    }
    let canary = record(&outside);
    Sandbox {
        root,
        outside,
        canary,
        resolver,
        _dir: dir,
    }
}

impl Sandbox {
    fn options(&self) -> UnpackOptions {
        UnpackOptions {
            resolver: self.resolver,
            ..UnpackOptions::default()
        }
    }

    fn unpack(&self, entries: &[Raw<'_>]) -> Result<(), Error> {
        self.unpack_bytes(&hostile_tar(entries))
    }

    fn unpack_bytes(&self, tar: &[u8]) -> Result<(), Error> {
        unpack_layer(tar, &self.root, &self.options()).map(|_| ())
    }

    fn outside_str(&self) -> String {
        self.outside.to_str().unwrap().to_string()
    }

    fn assert_outside_untouched(&self) {
        assert_eq!(
            record(&self.outside),
            self.canary,
            "the canary outside the root changed"
        );
        let mut siblings: Vec<_> = fs::read_dir(self.root.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        siblings.sort();
        assert_eq!(siblings, ["outside", "root"], "nothing new beside the root");
    }
}

#[test]
fn dotdot_is_refused() {
    let s = sandbox();
    let err = s.unpack(&[file("../evil", b"x")]).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    assert!(err.to_string().contains("../evil"), "{err}");
    let err = s
        .unpack(&[file("a/../../outside/victim", b"x")])
        .unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    s.assert_outside_untouched();
}

#[test]
fn inner_dotdot_is_neutralised() {
    let s = sandbox();
    s.unpack(&[dir("a"), file("a/../b", b"x")]).unwrap();
    assert_eq!(fs::read(s.root.join("b")).unwrap(), b"x");
}

#[test]
fn absolute_paths_land_inside() {
    let s = sandbox();
    s.unpack(&[file("/etc/evil", b"x")]).unwrap();
    assert_eq!(fs::read(s.root.join("etc/evil")).unwrap(), b"x");
    assert!(!Path::new("/etc/evil").exists());
}

#[test]
fn symlinked_parent_to_absolute_dir_stays_inside() {
    let s = sandbox();
    let outside = s.outside.to_str().unwrap().to_string();
    s.unpack(&[symlink("a", &outside), file("a/evil", b"x")])
        .unwrap();
    s.assert_outside_untouched();
    // Resolved as if the root were '/': ROOT/<outside path>/evil.
    let inside = s.root.join(outside.trim_start_matches('/')).join("evil");
    assert_eq!(fs::read(inside).unwrap(), b"x");
    // The symlink itself is kept verbatim.
    assert_eq!(
        fs::read_link(s.root.join("a")).unwrap(),
        Path::new(&outside)
    );
}

#[test]
fn symlinked_parent_to_tmp_stays_inside() {
    let s = sandbox();
    s.unpack(&[symlink("a", "/tmp"), file("a/strata-evil-test", b"x")])
        .unwrap();
    assert!(!Path::new("/tmp/strata-evil-test").exists());
    assert_eq!(fs::read(s.root.join("tmp/strata-evil-test")).unwrap(), b"x");
}

#[test]
fn relative_symlink_chains_are_clamped_at_the_root() {
    let s = sandbox();
    s.unpack(&[
        symlink("a", "b"),
        symlink("b", "c/../../../../.."),
        dir("c"),
        file("a/evil", b"x"),
    ])
    .unwrap();
    s.assert_outside_untouched();
    assert_eq!(fs::read(s.root.join("evil")).unwrap(), b"x");
}

#[test]
fn symlink_loops_are_refused() {
    let s = sandbox();
    let err = s
        .unpack(&[symlink("a", "b"), symlink("b", "a"), file("a/x", b"x")])
        .unwrap_err();
    assert!(err.to_string().contains("symbolic links"), "{err}");
}

#[test]
fn final_symlink_is_replaced_not_followed() {
    let s = sandbox();
    let victim = s.outside.join("victim");
    s.unpack(&[symlink("x", victim.to_str().unwrap()), file("x", b"evil")])
        .unwrap();
    s.assert_outside_untouched();
    assert_eq!(fs::read(s.root.join("x")).unwrap(), b"evil");
}

#[test]
fn hardlinks_to_outside_are_refused() {
    let s = sandbox();
    let err = s.unpack(&[hardlink("passwd", "/etc/passwd")]).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    let err = s
        .unpack(&[hardlink("victim", "../outside/victim")])
        .unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    // Through a symlinked parent: resolved inside the root, where it does not exist.
    let outside = s.outside.to_str().unwrap().to_string();
    let target = format!("{}/victim", "l");
    let err = s
        .unpack(&[symlink("l", &outside), hardlink("v", &target)])
        .unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    s.assert_outside_untouched();
    // Writing through a hard link made inside must not reach the outside either.
    assert!(!s.root.join("v").exists());
}

#[test]
fn hardlink_to_a_symlink_links_the_symlink_itself() {
    let s = sandbox();
    let victim = s.outside.join("victim");
    s.unpack(&[symlink("l", victim.to_str().unwrap()), hardlink("h", "l")])
        .unwrap();
    let md = fs::symlink_metadata(s.root.join("h")).unwrap();
    assert!(md.file_type().is_symlink());
    s.assert_outside_untouched();
}

#[test]
fn whiteout_cannot_delete_outside() {
    let s = sandbox();
    let outside = s.outside.to_str().unwrap().to_string();
    s.unpack(&[symlink("a", &outside), file("a/.wh.victim", b"")])
        .unwrap();
    s.assert_outside_untouched();
    let err = s.unpack(&[file("../outside/.wh.victim", b"")]).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    s.unpack(&[symlink("b", "/"), file("b/.wh..wh..opq", b"")])
        .unwrap();
    s.assert_outside_untouched();
}

// Issue 13: the end-of-unpack pass applied directory modes and mtimes by joined path, through a
// parent an later entry had replaced with a symlink to a host directory.
#[test]
fn replaced_parent_cannot_redirect_directory_metadata() {
    for resolver in resolvers() {
        let s = sandbox_with(resolver);
        let outside = s.outside_str();
        let sub = dir("x/sub");
        let x = dir("x");
        let link = symlink("x", &outside);
        let tar = tar_with_modes(&[(&x, 0o755), (&sub, 0o777), (&link, 0o777)]);
        s.unpack_bytes(&tar).unwrap();
        s.assert_outside_untouched();
        assert_eq!(fs::read_link(s.root.join("x")).unwrap(), s.outside);
    }
}

#[test]
fn symlink_replacing_a_directory_with_pending_children_stays_inside() {
    for resolver in resolvers() {
        let s = sandbox_with(resolver);
        let outside = s.outside_str();
        let d = dir("d");
        let e = dir("d/sub");
        let f = file("d/sub/f", b"x");
        let link = symlink("d", &outside);
        let g = file("d/sub/g", b"evil");
        let again = dir("d/sub");
        let tar = tar_with_modes(&[
            (&d, 0o755),
            (&e, 0o700),
            (&f, 0o644),
            (&link, 0o777),
            (&g, 0o644),
            (&again, 0o777),
        ]);
        s.unpack_bytes(&tar).unwrap();
        s.assert_outside_untouched();
        // The writes after the swap went to ROOT/<outside path>/sub, inside the root.
        let inside = s.root.join(outside.trim_start_matches('/')).join("sub");
        assert_eq!(fs::read(inside.join("g")).unwrap(), b"evil");
        let mode = fs::metadata(&inside).unwrap().permissions().mode() & 0o7777;
        assert_eq!(
            mode, 0o777,
            "the directory the last entry made got its mode"
        );
    }
}

#[test]
fn directory_metadata_is_applied_by_handle() {
    for resolver in resolvers() {
        let s = sandbox_with(resolver);
        let a = dir("a");
        let b = dir("a/b");
        let f = file("a/b/f", b"x");
        s.unpack_bytes(&tar_with_modes(&[(&a, 0o711), (&b, 0o500), (&f, 0o600)]))
            .unwrap();
        let md = fs::metadata(s.root.join("a/b")).unwrap();
        assert_eq!(md.permissions().mode() & 0o7777, 0o500);
        assert_eq!(md.mtime(), 1_000_000);
        assert_eq!(
            fs::metadata(s.root.join("a")).unwrap().permissions().mode() & 0o7777,
            0o711
        );
        // A directory reached through a lower layer's symlink still gets its metadata.
        let lib = dir("usr/lib");
        let link = symlink("lib", "usr/lib");
        let m = dir("lib/modules");
        s.unpack_bytes(&tar_with_modes(&[
            (&lib, 0o755),
            (&link, 0o777),
            (&m, 0o700),
        ]))
        .unwrap();
        let md = fs::metadata(s.root.join("usr/lib/modules")).unwrap();
        assert_eq!(md.permissions().mode() & 0o7777, 0o700);
        s.assert_outside_untouched();
    }
}

#[test]
fn symlink_loops_are_refused_by_both_resolvers() {
    for resolver in resolvers() {
        let s = sandbox_with(resolver);
        let err = s
            .unpack(&[symlink("a", "b"), symlink("b", "a"), file("a/x", b"x")])
            .unwrap_err();
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
        assert!(err.to_string().contains("symbolic links"), "{err}");
        assert!(err.to_string().contains("a/x"), "{err}");
        let err = s
            .unpack(&[symlink("self", "self/x"), file("self/y", b"x")])
            .unwrap_err();
        assert!(err.to_string().contains("symbolic links"), "{err}");
        s.assert_outside_untouched();
    }
}

#[test]
fn long_names_are_refused() {
    for resolver in resolvers() {
        let s = sandbox_with(resolver);
        let long = format!("{}/evil", "d/".repeat(2100));
        let err = s.unpack_bytes(&gnu_longname_tar(&long, b"x")).unwrap_err();
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
        assert!(err.to_string().contains("longer than 4096"), "{err}");
        let err = s.unpack_bytes(&pax_path_tar(&long, b"x")).unwrap_err();
        assert!(err.to_string().contains("longer than 4096"), "{err}");
        // Long but legal names work.
        let fine = format!("{}/ok", "dir/".repeat(200));
        s.unpack_bytes(&gnu_longname_tar(&fine, b"x")).unwrap();
        assert_eq!(fs::read(s.root.join(&fine)).unwrap(), b"x");
        s.assert_outside_untouched();
    }
}

#[test]
fn dotdot_in_pax_names_is_refused() {
    for resolver in resolvers() {
        let s = sandbox_with(resolver);
        for path in [
            "../outside/victim",
            "a/../../outside/evil",
            "/../outside/evil",
        ] {
            let err = s.unpack_bytes(&pax_path_tar(path, b"pwned")).unwrap_err();
            assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
            assert!(err.to_string().contains(path), "{err}");
        }
        // A PAX name climbing through a symlink lands inside.
        s.unpack(&[symlink("up", "../../..")]).unwrap();
        s.unpack_bytes(&pax_path_tar("up/outside/victim", b"pwned"))
            .unwrap();
        assert_eq!(fs::read(s.root.join("outside/victim")).unwrap(), b"pwned");
        s.assert_outside_untouched();
    }
}

#[test]
fn hardlinks_to_outside_paths_are_refused_by_both_resolvers() {
    for resolver in resolvers() {
        let s = sandbox_with(resolver);
        let victim = format!("{}/victim", s.outside_str());
        for target in [victim.as_str(), "../outside/victim", "/etc/passwd"] {
            let err = s.unpack(&[hardlink("h", target)]).unwrap_err();
            assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
            assert!(err.to_string().contains("\"h\""), "{err}");
        }
        let err = s
            .unpack(&[symlink("l", &s.outside_str()), hardlink("h", "l/victim")])
            .unwrap_err();
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
        // Writing to the name afterwards must not reach the canary either.
        s.unpack(&[file("h", b"pwned")]).unwrap();
        s.assert_outside_untouched();
    }
}

#[test]
fn whiteout_names_follow_the_policy() {
    for resolver in resolvers() {
        let s = sandbox_with(resolver);
        let outside = s.outside_str();
        // Applied: through a symlinked parent it deletes inside the root only.
        s.unpack(&[
            symlink("a", &outside),
            file("a/victim", b"inside"),
            file("a/.wh.victim", b""),
            file("a/.wh.sub", b""),
        ])
        .unwrap();
        assert!(
            !s.root
                .join(outside.trim_start_matches('/'))
                .join("victim")
                .exists()
        );
        // Kept: an ordinary file.
        let keep = UnpackOptions {
            whiteouts: Whiteouts::Keep,
            ..s.options()
        };
        unpack_layer(
            hostile_tar(&[file("k/.wh.victim", b"")]).as_slice(),
            &s.root,
            &keep,
        )
        .unwrap();
        assert!(s.root.join("k/.wh.victim").is_file());
        // Refused: named in the error.
        let refuse = UnpackOptions {
            whiteouts: Whiteouts::Refuse,
            ..s.options()
        };
        let err = unpack_layer(
            hostile_tar(&[file("r/.wh.victim", b"")]).as_slice(),
            &s.root,
            &refuse,
        )
        .unwrap_err();
        assert!(err.to_string().contains("r/.wh.victim"), "{err}");
        assert!(err.to_string().contains("whiteout"), "{err}");
        s.assert_outside_untouched();
    }
}

#[test]
fn absolute_symlink_parents_stay_inside_both_resolvers() {
    for resolver in resolvers() {
        let s = sandbox_with(resolver);
        let outside = s.outside_str();
        s.unpack(&[
            symlink("a", &outside),
            file("a/victim", b"pwned"),
            dir("a/sub"),
            file("a/sub/file", b"pwned"),
            symlink("b", &format!("{outside}/sub")),
            file("b/new", b"pwned"),
        ])
        .unwrap();
        s.assert_outside_untouched();
        let inside = s.root.join(outside.trim_start_matches('/'));
        assert_eq!(fs::read(inside.join("victim")).unwrap(), b"pwned");
        assert_eq!(fs::read(inside.join("sub/new")).unwrap(), b"pwned");
    }
}

#[test]
fn a_file_then_a_directory_of_the_same_name() {
    for resolver in resolvers() {
        let s = sandbox_with(resolver);
        s.unpack(&[file("x", b"file"), dir("x"), file("x/f", b"y")])
            .unwrap();
        assert!(s.root.join("x").is_dir());
        assert_eq!(fs::read(s.root.join("x/f")).unwrap(), b"y");
        // And a file below a file is refused, naming the entry.
        let err = s
            .unpack(&[file("y", b"file"), file("y/z", b"z")])
            .unwrap_err();
        assert!(err.to_string().contains("y/z"), "{err}");
        s.assert_outside_untouched();
    }
}

#[test]
fn the_walk_is_forced_and_openat2_used_where_present() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        !Root::open_with(dir.path(), Resolver::Walk)
            .unwrap()
            .uses_openat2()
    );
    if std::env::var("STRATA_RESOLVER").is_err() {
        // Linux 5.6+: every kernel CI runs on has openat2.
        assert!(Root::open(dir.path()).unwrap().uses_openat2());
    }
}

/// Random archives built from hostile pieces never touch anything outside the root.
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Kind {
        File,
        Dir,
        Symlink(String),
        Hardlink(String),
    }

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("..".to_string()),
            Just(".".to_string()),
            Just("".to_string()),
            Just(".wh.victim".to_string()),
            Just("sub".to_string()),
            Just(".wh..wh..opq".to_string()),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        (any::<bool>(), proptest::collection::vec(component(), 1..5))
            .prop_map(|(abs, parts)| format!("{}{}", if abs { "/" } else { "" }, parts.join("/")))
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            Just(Kind::File),
            Just(Kind::Dir),
            path().prop_map(Kind::Symlink),
            Just(Kind::Symlink("@OUTSIDE@".into())),
            Just(Kind::Symlink("@OUTSIDE@/victim".into())),
            Just(Kind::Symlink("../../../..".into())),
            path().prop_map(Kind::Hardlink),
            Just(Kind::Hardlink("@OUTSIDE@/victim".into())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn nothing_escapes(
            entries in proptest::collection::vec((path(), kind()), 1..12),
            walk in any::<bool>(),
        ) {
            let s = sandbox_with(if walk { Resolver::Walk } else { Resolver::Auto });
            let outside = s.outside.to_str().unwrap().to_string();
            let owned: Vec<(String, Kind)> = entries
                .into_iter()
                .filter(|(p, _)| !p.is_empty() && p.len() < 90)
                .map(|(p, k)| {
                    let k = match k {
                        Kind::Symlink(t) => Kind::Symlink(t.replace("@OUTSIDE@", &outside)),
                        Kind::Hardlink(t) => Kind::Hardlink(t.replace("@OUTSIDE@", &outside)),
                        k => k,
                    };
                    (p, k)
                })
                .collect();
            let raws: Vec<Raw<'_>> = owned
                .iter()
                .filter(|(_, k)| match k {
                    Kind::Symlink(t) | Kind::Hardlink(t) => t.len() < 100,
                    _ => true,
                })
                .map(|(p, k)| match k {
                    Kind::File => file(p, b"pwned"),
                    Kind::Dir => dir(p),
                    Kind::Symlink(t) => symlink(p, t),
                    Kind::Hardlink(t) => hardlink(p, t),
                })
                .collect();
            // Errors are fine (refused entries); escapes are not.
            let _ = s.unpack(&raws);
            s.assert_outside_untouched();
            let siblings: Vec<_> = fs::read_dir(s.root.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            let mut siblings = siblings;
            siblings.sort();
            prop_assert_eq!(siblings, vec!["outside".to_string(), "root".to_string()]);
        }
    }
}

/// A PAX record: key and value.
type PaxRecord<'a> = (&'a str, &'a [u8]);

// A layer's entries may carry file capabilities and user attributes, never overlayfs' own: set
// on a tree that becomes an overlay's lower layer, an opaque mark would hide what lower layers
// hold and a redirect would show another directory in place of this one, so a RUN step would see
// something other than the image. The unpacker refuses them and says so in its report.
#[test]
fn overlay_attributes_from_a_layer_are_not_set() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let mut builder = ::tar::Builder::new(Vec::new());
    let entries: [(&str, EntryType, &[PaxRecord<'_>]); 2] = [
        (
            "etc/",
            EntryType::Directory,
            &[
                ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
                ("SCHILY.xattr.user.overlay.opaque", b"y"),
            ],
        ),
        (
            "etc/ping",
            EntryType::Regular,
            &[
                ("SCHILY.xattr.trusted.overlay.redirect", b"/usr"),
                ("SCHILY.xattr.user.overlay.redirect", b"/usr"),
                ("SCHILY.xattr.user.kept", b"1"),
            ],
        ),
    ];
    for (name, ty, pax) in entries {
        builder.append_pax_extensions(pax.iter().copied()).unwrap();
        let mut header = Header::new_ustar();
        header.set_entry_type(ty);
        header.set_mode(if ty == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_size(0);
        header.set_mtime(1_000);
        builder.append_data(&mut header, name, &[][..]).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let report = unpack_layer(&tar[..], &root, &UnpackOptions::default()).unwrap();
    assert!(
        strata_testutil::xattrs(&root.join("etc"))
            .keys()
            .all(|k| !k.contains("overlay")),
        "{:?}",
        strata_testutil::xattrs(&root.join("etc"))
    );
    let file = strata_testutil::xattrs(&root.join("etc/ping"));
    assert!(file.keys().all(|k| !k.contains("overlay")), "{file:?}");
    let mut skipped = report.skipped_xattrs.clone();
    skipped.sort();
    for refused in [
        "etc: trusted.overlay.opaque",
        "etc: user.overlay.opaque",
        "etc/ping: trusted.overlay.redirect",
        "etc/ping: user.overlay.redirect",
    ] {
        assert!(
            skipped.iter().any(|s| s == refused),
            "{refused} in {skipped:?}"
        );
    }
    // user attributes are the layer's content: set where the file system takes them.
    if !skipped.iter().any(|s| s == "etc/ping: user.kept") {
        assert_eq!(file.get("user.kept").map(Vec::as_slice), Some(&b"1"[..]));
    }
}
