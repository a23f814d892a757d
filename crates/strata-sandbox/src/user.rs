//! `USER` resolution through the image's `/etc/passwd` and `/etc/group`, read safely from a view.

use crate::error::SandboxError;
use crate::spec::Identity;
use crate::view::LayerView;

/// Largest passwd or group file read (a bigger one is refused, not truncated).
const MAX_DB: u64 = 4 << 20;

/// A resolved user: the identity to run as, and the home directory for `HOME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// uid, gid and supplementary groups.
    pub identity: Identity,
    /// The passwd home directory, `/` when the user is not in passwd.
    pub home: String,
}

/// Resolve `spec` (`user`, `user:group`, `uid`, `uid:gid`, names or numbers) as Docker does:
/// a name must exist in the image; a number is taken as it is (gid 0 when a numeric uid is not in
/// passwd). Supplementary groups are the primary gid plus every group listing the user as member
/// (not added when an explicit group is given, as runc does). Files are read from `root` with
/// symlinks resolved inside it, size-limited, and only when regular files.
pub fn resolve_user(spec: &str, root: &LayerView) -> Result<ResolvedUser, SandboxError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group == Some("") {
        return Err(SandboxError::User(format!("invalid user spec {spec:?}")));
    }
    let passwd = read_db(root, "/etc/passwd")?;
    let groups_db = read_db(root, "/etc/group")?;
    let users = parse_passwd(&passwd);
    let groups = parse_group(&groups_db);

    let found = if let Ok(uid) = user.parse::<u32>() {
        users.iter().find(|u| u.uid == uid)
    } else {
        users.iter().find(|u| u.name == user)
    };
    let (uid, mut gid, name, home) = match (found, user.parse::<u32>()) {
        (Some(u), _) => (u.uid, u.gid, Some(u.name.clone()), u.home.clone()),
        (None, Ok(uid)) => (uid, 0, None, "/".to_string()),
        (None, Err(_)) => {
            return Err(SandboxError::User(format!(
                "unknown user {user:?}: not in the image's /etc/passwd"
            )));
        }
    };
    let mut supplementary = Vec::new();
    match group {
        Some(g) => {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => groups
                    .iter()
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| {
                        SandboxError::User(format!(
                            "unknown group {g:?}: not in the image's /etc/group"
                        ))
                    })?,
            };
            supplementary.push(gid);
        }
        None => {
            supplementary.push(gid);
            if let Some(name) = &name {
                for g in &groups {
                    if g.members.iter().any(|m| m == name) && !supplementary.contains(&g.gid) {
                        supplementary.push(g.gid);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        identity: Identity {
            uid,
            gid,
            groups: supplementary,
        },
        home: if home.is_empty() { "/".into() } else { home },
    })
}

fn read_db(root: &LayerView, path: &str) -> Result<String, SandboxError> {
    match root.read_file(path, MAX_DB) {
        Ok(Some(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Ok(None) => Ok(String::new()),
        Err(e) => Err(SandboxError::User(format!(
            "cannot read the image's {path}: {}",
            strata_oci::report(&e)
        ))),
    }
}

/// One `/etc/passwd` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdLine {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

/// One `/etc/group` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLine {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Member logins.
    pub members: Vec<String>,
}

/// The colon-separated fields of each line of a passwd-style file that has at least `min` of them
/// (comments and shorter lines are skipped, as libc does).
fn records(text: &str, min: usize) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(move |f| f.len() >= min)
}

/// Parse `/etc/passwd` text; malformed lines are skipped as libc does.
pub fn parse_passwd(text: &str) -> Vec<PasswdLine> {
    records(text, 4)
        .filter_map(|f| {
            Some(PasswdLine {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Parse `/etc/group` text; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<GroupLine> {
    records(text, 3)
        .filter_map(|f| {
            Some(GroupLine {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn root() -> (tempfile::TempDir, LayerView) {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n# comment\nwww-data:x:33:33:www:/var/www:/bin/sh\nbad\n",
        )
        .unwrap();
        fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nwww-data:x:33:\nadm:x:4:syslog,www-data\nweb:x:1000:www-data\n",
        )
        .unwrap();
        let view = LayerView::single(t.path());
        (t, view)
    }

    #[test]
    fn names_resolve_with_member_groups() {
        let (_t, view) = root();
        let u = resolve_user("www-data", &view).unwrap();
        assert_eq!(
            u.identity,
            Identity {
                uid: 33,
                gid: 33,
                groups: vec![33, 4, 1000]
            }
        );
        assert_eq!(u.home, "/var/www");
        let u = resolve_user("www-data:adm", &view).unwrap();
        assert_eq!(
            u.identity,
            Identity {
                uid: 33,
                gid: 4,
                groups: vec![4]
            }
        );
    }

    #[test]
    fn numbers_pass_through() {
        let (_t, view) = root();
        let u = resolve_user("1234", &view).unwrap();
        assert_eq!(
            u.identity,
            Identity {
                uid: 1234,
                gid: 0,
                groups: vec![0]
            }
        );
        assert_eq!(resolve_user("33:7", &view).unwrap().identity.gid, 7);
        assert_eq!(resolve_user("0", &view).unwrap().home, "/root");
    }

    #[test]
    fn unknown_names_fail_clearly() {
        let (_t, view) = root();
        let e = resolve_user("nobody", &view).unwrap_err().to_string();
        assert!(e.contains("nobody") && e.contains("/etc/passwd"), "{e}");
        let e = resolve_user("root:wheel", &view).unwrap_err().to_string();
        assert!(e.contains("wheel") && e.contains("/etc/group"), "{e}");
        assert!(resolve_user(":x", &view).is_err());
    }

    #[test]
    fn passwd_symlink_escaping_the_root_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        // Absolute link: must resolve to <root>/etc/real, not the host's /etc/real.
        std::os::unix::fs::symlink("/etc/real", t.path().join("etc/passwd")).unwrap();
        fs::write(t.path().join("etc/real"), "app:x:77:77::/app:/bin/sh\n").unwrap();
        let view = LayerView::single(t.path());
        assert_eq!(resolve_user("app", &view).unwrap().identity.uid, 77);
        // A FIFO is refused rather than blocking.
        fs::remove_file(t.path().join("etc/real")).unwrap();
        nix::unistd::mkfifo(
            &t.path().join("etc/real"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        assert!(resolve_user("app", &view).is_err());
    }
}
