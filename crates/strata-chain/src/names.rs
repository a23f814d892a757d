//! Names in a chain file: repository paths, registry hosts, tags and pinned references follow
//! strata's one reference grammar (`strata_reference`, docker/distribution's); team names are
//! the chain's own.

pub use strata_reference::{is_path_component, is_repository_path, is_tag};

/// A team name: ASCII letters and digits, with `.`, `_` or `-` between them, at most 64 bytes.
/// Team names appear in the events log, in signatures' key ids and on the command line, so no
/// whitespace or control characters (a newline in a team name would forge lines in `strata log`).
pub fn is_team_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// True when `s` is a registry host: `host[:port]`, the host being dot-separated labels of letters,
/// digits and inner dashes (or a bracketed IPv6 address).
pub fn is_registry_host(s: &str) -> bool {
    strata_reference::is_domain(s)
}

/// The parts of an image reference `repository[:tag][@digest]`, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference<'a> {
    /// Everything before the tag and digest, registry host included: `reg:5000/acme/app`.
    pub repository: &'a str,
    /// The tag, without `:`.
    pub tag: Option<&'a str>,
    /// The digest, without `@`.
    pub digest: Option<&'a str>,
}

/// Split a reference into repository, tag and digest. No validation: see [`check_pinned`].
pub fn split_reference(reference: &str) -> Reference<'_> {
    let parts = strata_reference::split(reference);
    Reference {
        repository: parts.name,
        tag: parts.tag,
        digest: parts.digest,
    }
}

/// Why a `source.image` reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// The reference has no digest.
    #[error("image \"{0}\" is not pinned: add @sha256:<digest> so the base cannot change unseen")]
    NotPinned(String),
    /// The reference breaks the grammar.
    #[error("image \"{reference}\": {source}")]
    Invalid {
        /// The reference.
        reference: String,
        /// What is wrong.
        source: strata_reference::Error,
    },
}

/// Check that `reference` is a well-formed image reference pinned by digest:
/// `[host[:port]/]path[:tag]@<algorithm>:<hex>`. The error says what is wrong, on one line.
pub fn check_pinned(reference: &str) -> Result<(), PinError> {
    let parsed = strata_reference::parse(reference).map_err(|source| PinError::Invalid {
        reference: reference.to_string(),
        source,
    })?;
    if parsed.digest().is_none() {
        return Err(PinError::NotPinned(reference.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_need_a_digest() {
        let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
        assert!(check_pinned(&format!("docker.io/library/debian:12@{digest}")).is_ok());
        assert!(check_pinned(&format!("debian@{digest}")).is_ok());
        let err = check_pinned("debian:12").unwrap_err().to_string();
        assert!(err.contains("not pinned"), "{err}");
        let err = check_pinned("debian@sha256:abc").unwrap_err().to_string();
        assert!(err.contains("invalid digest format"), "{err}");
        let err = check_pinned(&format!("Debian@{digest}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be lowercase"), "{err}");
    }

    #[test]
    fn references_split_at_the_tag_and_digest() {
        let r = split_reference("localhost:5000/acme/app:1.0@sha256:00");
        assert_eq!(r.repository, "localhost:5000/acme/app");
        assert_eq!(r.tag, Some("1.0"));
        assert_eq!(r.digest, Some("sha256:00"));
    }
}
