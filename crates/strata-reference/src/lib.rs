//! The one image reference grammar of strata: docker/distribution's `reference` package.
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path                       (at most 255 characters)
//! domain           := host [':' port]
//! host             := domain-name | '[' IPv6 ']'
//! domain-name      := component ['.' component]*               component: [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?
//! path             := path-component ['/' path-component]*
//! path-component   := [a-z0-9]+ (separator [a-z0-9]+)*         separator: '.' | '_' | '__' | '-'+
//! tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest           := algorithm ':' hex                        sha256 (64), sha384 (96), sha512 (128)
//! ```
//!
//! [`parse`] follows `ParseNormalizedNamed`: the first path component is the domain when it
//! contains `.` or `:`, is `localhost`, or has an upper-case letter (Docker's `splitDockerDomain`);
//! `index.docker.io` is `docker.io`, and `docker.io/NAME` is `docker.io/library/NAME`; a bare
//! 64-hex string is refused (it would be an image id, not a name); the digest must be of a known
//! algorithm with exactly its length of lower-case hex (go-digest's `Validate`).
//!
//! One thing is left to the caller: the domain of a reference that names none. Docker would
//! say `docker.io`; strata's store says `localhost`, because its images are local (see
//! `strata_oci::Reference`). [`Reference::domain`] is therefore an `Option`.
//!
//! The crate depends on no other strata crate, so the Dockerfile parser, the chain model, the
//! store, the registry client and the server all check names with the same code.

#![deny(missing_docs)]

use std::fmt;

/// The longest a name (domain and path, without tag or digest) may be.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// The longest a tag may be.
pub const TAG_LENGTH_MAX: usize = 128;
/// Docker Hub's canonical domain.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's legacy domain, read as [`DOCKER_HUB`].
pub const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// The repository prefix of Docker Hub's official images (`docker.io/busybox` is
/// `docker.io/library/busybox`).
pub const OFFICIAL_REPO_PREFIX: &str = "library/";

/// Why a reference was refused. The messages follow docker/distribution's; none repeats the
/// reference itself (the caller names it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference (or its name) is empty.
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// The name is longer than [`NAME_TOTAL_LENGTH_MAX`].
    #[error(
        "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters (it has {0})"
    )]
    NameTooLong(usize),
    /// The path has an upper-case letter.
    #[error("repository name {0:?} must be lowercase")]
    NameContainsUppercase(String),
    /// A path component breaks the grammar.
    #[error(
        "repository name component {0:?} must be lowercase letters and digits, separated by '.', '_', '__' or '-'"
    )]
    InvalidPathComponent(String),
    /// The domain breaks the grammar.
    #[error("invalid registry host {0:?}")]
    InvalidDomain(String),
    /// The tag breaks the grammar.
    #[error(
        "invalid tag {0:?}: 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
    )]
    InvalidTag(String),
    /// The digest is not `algorithm:hex`.
    #[error("invalid digest format {0:?}")]
    InvalidDigestFormat(String),
    /// The digest's algorithm is not one of sha256, sha384, sha512.
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The digest's hex has the wrong length for its algorithm.
    #[error(
        "invalid checksum digest length: {algorithm} needs {expected} hex digits, not {actual}"
    )]
    DigestLength {
        /// The algorithm.
        algorithm: String,
        /// The hex length it needs.
        expected: usize,
        /// The hex length given.
        actual: usize,
    },
    /// The digest's hex has upper-case letters.
    #[error("invalid checksum digest format: hex digits must be lower case")]
    DigestUppercase,
    /// The whole reference is 64 hex digits: an image id, not a name.
    #[error("cannot specify 64-byte hexadecimal strings as a repository name")]
    IdentifierAsName,
}

/// A parsed, normalised image reference. The domain stays `None` when the reference names none.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// The registry host (and port) the reference names, if it names one.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The repository path (`acme/corebuild`, `library/busybox` on Docker Hub).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if the reference has one (no default is added).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:...`), if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `domain/path`, or the path alone when there is no domain.
    pub fn name(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference, Error> {
        parse(s)
    }
}

/// Parse and normalise a reference (see the crate docs).
pub fn parse(input: &str) -> Result<Reference, Error> {
    if input.is_empty() {
        return Err(Error::NameEmpty);
    }
    if input.len() == 64 && input.bytes().all(is_lower_hex) {
        return Err(Error::IdentifierAsName);
    }
    let Parts { name, tag, digest } = split(input);
    let (domain, path) = split_domain(name);
    // Upper case in the path first, as `ParseNormalizedNamed` does: it is the likely mistake.
    let remote = path.split(':').next().unwrap_or(path);
    if remote.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Error::NameContainsUppercase(remote.to_string()));
    }
    if let Some(digest) = digest {
        check_digest(digest)?;
    }
    if let Some(tag) = tag
        && !is_tag(tag)
    {
        return Err(Error::InvalidTag(tag.to_string()));
    }
    if path.is_empty() {
        return Err(Error::NameEmpty);
    }
    if let Some(domain) = domain
        && !is_domain(domain)
    {
        return Err(Error::InvalidDomain(domain.to_string()));
    }
    let domain = domain.map(|d| {
        if d == LEGACY_DOCKER_HUB {
            DOCKER_HUB
        } else {
            d
        }
    });
    let path = if domain == Some(DOCKER_HUB) && !path.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{path}")
    } else {
        path.to_string()
    };
    check_path(&path)?;
    let length = domain.map_or(0, |d| d.len() + 1) + path.len();
    if length > NAME_TOTAL_LENGTH_MAX {
        return Err(Error::NameTooLong(length));
    }
    Ok(Reference {
        domain: domain.map(str::to_string),
        path,
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// The pieces of a reference as written: `name[:tag][@digest]`, not checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    /// Everything before the tag and digest, the domain included (`reg:5000/acme/app`).
    pub name: &'a str,
    /// The tag, without its `:`.
    pub tag: Option<&'a str>,
    /// The digest, without its `@`.
    pub digest: Option<&'a str>,
}

/// Split a reference into name, tag and digest without checking them (for look-ups that must
/// not fail; [`parse`] checks). The digest follows the first `@`; the tag follows the last `:`
/// that no `/` comes after (an earlier `:` is a registry port's).
pub fn split(input: &str) -> Parts<'_> {
    let (name_tag, digest) = match input.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (input, None),
    };
    let (name, tag) = match name_tag.rfind(':') {
        Some(i) if !name_tag[i..].contains('/') => (&name_tag[..i], Some(&name_tag[i + 1..])),
        _ => (name_tag, None),
    };
    Parts { name, tag, digest }
}

/// Split a name into its domain (when the first component is one, by Docker's rule) and path.
pub fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest)) if is_domain_like(first) => (Some(first), rest),
        _ => (None, name),
    }
}

/// Docker's rule for a first path component that is a registry host: it has a `.` or a `:`,
/// is `localhost`, or has an upper-case letter (a path component cannot).
fn is_domain_like(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Is `s` one path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`?
pub fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

fn check_path(path: &str) -> Result<(), Error> {
    for component in path.split('/') {
        if !is_path_component(component) {
            return Err(Error::InvalidPathComponent(component.to_string()));
        }
    }
    Ok(())
}

/// Is `s` a repository path (path components joined by `/`, at most 255 characters), as a
/// registry's `/v2/<name>/` and a chain's image names are?
pub fn is_repository_path(s: &str) -> bool {
    s.len() <= NAME_TOTAL_LENGTH_MAX && s.split('/').all(is_path_component)
}

/// Is `s` a registry host: `host[:port]`, the host being DNS labels or a bracketed IPv6 address?
pub fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if s.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// Is `s` a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`?
pub fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_LENGTH_MAX
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// The hex length of a digest algorithm strata accepts in references (go-digest's).
pub fn digest_hex_len(algorithm: &str) -> Option<usize> {
    match algorithm {
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    }
}

/// Check a digest as go-digest's `Parse` does: `algorithm:hex`, a known algorithm, exactly its
/// length of lower-case hex.
pub fn check_digest(digest: &str) -> Result<(), Error> {
    let format = || Error::InvalidDigestFormat(digest.to_string());
    let (algorithm, hex) = digest.split_once(':').ok_or_else(format)?;
    // The grammar: [A-Za-z][A-Za-z0-9]*([+._-][A-Za-z][A-Za-z0-9]*)* ':' [0-9a-fA-F]{32,}
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|c| {
        c.starts_with(|c: char| c.is_ascii_alphabetic())
            && c.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !algorithm_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format());
    }
    let expected = digest_hex_len(algorithm)
        .ok_or_else(|| Error::UnsupportedAlgorithm(algorithm.to_string()))?;
    if hex.len() != expected {
        return Err(Error::DigestLength {
            algorithm: algorithm.to_string(),
            expected,
            actual: hex.len(),
        });
    }
    if !hex.bytes().all(is_lower_hex) {
        return Err(Error::DigestUppercase);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
