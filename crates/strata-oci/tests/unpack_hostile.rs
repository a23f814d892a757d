//! The safe extractor against hostile archives: nothing may land outside the root.

use std::fs;
use std::path::Path;

use ::tar::{EntryType, Header};
use strata_oci::Error;
use strata_oci::tar::{UnpackOptions, unpack_layer};

/// One raw entry: name and link bytes written verbatim (no normalisation).
struct Raw<'a> {
    name: &'a str,
    ty: EntryType,
    link: &'a str,
    data: &'a [u8],
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
    let mut out = Vec::new();
    for e in entries {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        h.set_entry_type(e.ty);
        h.set_mode(if e.ty == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(e.data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// A sandbox: `root` to unpack into, `outside` a sibling that must stay untouched.
struct Sandbox {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn sandbox() -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), "original").unwrap();
    Sandbox {
        root,
        outside,
        _dir: dir,
    }
}

impl Sandbox {
    fn unpack(&self, entries: &[Raw<'_>]) -> Result<(), Error> {
        unpack_layer(
            hostile_tar(entries).as_slice(),
            &self.root,
            &UnpackOptions::default(),
        )
        .map(|_| ())
    }

    fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["victim"], "nothing new outside the root");
        assert_eq!(
            fs::read_to_string(self.outside.join("victim")).unwrap(),
            "original"
        );
        assert!(!self.root.parent().unwrap().join("evil").exists());
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
        fn nothing_escapes(entries in proptest::collection::vec((path(), kind()), 1..12)) {
            let s = sandbox();
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
