//! Resolve `user[:group]` specs (USER, `COPY --chown`) through the image's `/etc/passwd` and
//! `/etc/group`, as Docker does: numbers are taken as they are, names must exist in the image.
//! The file formats are parsed by the sandbox's parsers (one reading of passwd for RUN and COPY).

use strata_sandbox::{parse_group, parse_passwd};

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

/// Resolve `spec` (`user`, `uid`, `user:group`, `uid:gid`, ...). `passwd` and `group` are the file
/// contents from the image, `None` when the file does not exist. Without a group, a user given by
/// name gets its primary group from `/etc/passwd` and a user given by number gets gid = uid, as
/// BuildKit does for `COPY --chown` and WORKDIR (Docker: "a UID without GID will use the same
/// numeric UID as the GID").
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
        Ok(uid) => (uid, None),
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
                .find(|entry| entry.name == g)
                .map(|entry| entry.gid)
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
        // By name: the primary group from passwd; by number: gid = uid, even for a known uid.
        let app = "app:x:1000:50::/home/app:/bin/sh\n";
        assert_eq!(
            resolve_owner("app", Some(app), None).unwrap(),
            Owner { uid: 1000, gid: 50 }
        );
        assert_eq!(
            resolve_owner("1000", Some(app), None).unwrap(),
            Owner {
                uid: 1000,
                gid: 1000
            }
        );
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
