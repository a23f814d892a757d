//! Resolve `user[:group]` specs (USER, `COPY --chown`) through the image's `/etc/passwd` and
//! `/etc/group`, as Docker does: numbers are taken as they are, names must exist in the image.

/// A spec that cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// The user name is not in the image's `/etc/passwd`.
    #[error("unknown user {0:?}: not in the image's /etc/passwd")]
    UnknownUser(String),
    /// The group name is not in the image's `/etc/group`.
    #[error("unknown group {0:?}: not in the image's /etc/group")]
    UnknownGroup(String),
    /// The spec is empty or malformed.
    #[error("invalid user spec {0:?}")]
    Invalid(String),
}

/// A resolved owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// One `/etc/passwd` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

/// Parse `/etc/passwd` content; malformed lines are skipped as libc does.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// Parse `/etc/group` content into (name, gid, members).
pub fn parse_group(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

/// Resolve `spec` (`user`, `uid`, `user:group`, `uid:gid`, ...). `passwd` and `group` are the file
/// contents from the image, `None` when the file does not exist. Without a group, the user's
/// primary group is used (gid = uid for a numeric user not in passwd, as BuildKit does for COPY).
pub fn resolve_owner(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<Owner, UserError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || grp.is_some_and(str::is_empty) {
        return Err(UserError::Invalid(spec.to_string()));
    }
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let (uid, primary_gid) = match user.parse::<u32>() {
        Ok(uid) => (uid, users.iter().find(|u| u.uid == uid).map(|u| u.gid)),
        Err(_) => {
            let entry = users
                .iter()
                .find(|u| u.name == user)
                .ok_or_else(|| UserError::UnknownUser(user.to_string()))?;
            (entry.uid, Some(entry.gid))
        }
    };
    let gid = match grp {
        None => primary_gid.unwrap_or(uid),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group
                .map(parse_group)
                .unwrap_or_default()
                .into_iter()
                .find(|(name, _, _)| name == g)
                .map(|(_, gid, _)| gid)
                .ok_or_else(|| UserError::UnknownGroup(g.to_string()))?,
        },
    };
    Ok(Owner { uid, gid })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\nbad line\n";
    const GROUP: &str = "root:x:0:\nwww-data:x:33:\nstaff:x:50:www-data\n";

    #[test]
    fn names_and_numbers() {
        let r = |s| resolve_owner(s, Some(PASSWD), Some(GROUP));
        assert_eq!(r("www-data").unwrap(), Owner { uid: 33, gid: 33 });
        assert_eq!(r("www-data:staff").unwrap(), Owner { uid: 33, gid: 50 });
        assert_eq!(
            r("1000").unwrap(),
            Owner {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(r("1000:50").unwrap(), Owner { uid: 1000, gid: 50 });
        assert_eq!(r("0").unwrap(), Owner { uid: 0, gid: 0 });
        assert_eq!(r("nobody"), Err(UserError::UnknownUser("nobody".into())));
        assert_eq!(
            r("root:wheel"),
            Err(UserError::UnknownGroup("wheel".into()))
        );
        assert_eq!(r(":x"), Err(UserError::Invalid(":x".into())));
    }

    #[test]
    fn no_passwd_file_means_names_fail_and_numbers_work() {
        assert!(resolve_owner("www-data", None, None).is_err());
        assert_eq!(
            resolve_owner("5:6", None, None).unwrap(),
            Owner { uid: 5, gid: 6 }
        );
    }
}
