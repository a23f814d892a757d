//! Image references: `[registry/]repository[:tag][@sha256:...]` (or `@sha512:...`), normalised to
//! full form.
//!
//! A reference without a registry gets `localhost/` (so `acme/corebuild` and
//! `localhost/acme/corebuild:latest` are the same image); one with neither tag nor digest gets
//! `:latest`. The first path component is a registry when it contains `.` or `:` or is `localhost`
//! (Docker's rule). Unlike Docker, strata never adds `docker.io/library/`: its images are local.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The registry given to references that name none.
pub const DEFAULT_REGISTRY: &str = "localhost";
/// The tag given to references that name neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse and normalise a reference (see the module docs).
    pub fn parse(input: &str) -> Result<Reference> {
        let invalid = |reason: &str| Error::InvalidReference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(invalid("empty"));
        }
        if input.len() > 4096 {
            return Err(invalid("longer than 4096 characters"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest: Digest = digest.parse().map_err(|e: Error| invalid(&e.to_string()))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag follows the last ':' only if that ':' is after the last '/' (else it is a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|reason| invalid(&reason))?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first, rest)
            }
            _ => (DEFAULT_REGISTRY, name),
        };
        validate_registry(registry).map_err(|reason| invalid(&reason))?;
        validate_repository(repository).map_err(|reason| invalid(&reason))?;
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// A reference to `name` (parsed as above, without tag or digest) at `tag`.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        validate_tag(tag).map_err(|reason| Error::InvalidReference {
            input: format!("{}:{tag}", self.name()),
            reason,
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The registry host (and port), e.g. `localhost`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `acme/corebuild`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (always set unless the reference names a digest only).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || tag.len() > 128 {
        return Err(format!(
            "tag {tag:?} must be 1-128 characters starting with a letter, digit or '_'"
        ));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return Err(format!(
            "tag {tag:?} may only hold letters, digits, '_', '.' and '-'"
        ));
    }
    Ok(())
}

fn validate_registry(registry: &str) -> std::result::Result<(), String> {
    let ok = !registry.is_empty()
        && registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid registry {registry:?}"))
    }
}

/// Path components: lowercase alphanumerics separated by `.`, `_`, `__` or runs of `-`.
fn validate_repository(repository: &str) -> std::result::Result<(), String> {
    if repository.is_empty() {
        return Err("the repository name is empty".into());
    }
    for component in repository.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let valid = !bytes.is_empty()
            && alnum(bytes[0])
            && alnum(bytes[bytes.len() - 1])
            && bytes.iter().all(|&b| alnum(b) || b"._-".contains(&b))
            && !component.contains("..")
            && !component.contains("._")
            && !component.contains("_.")
            && !component.contains("___")
            && !component.contains("-.")
            && !component.contains(".-")
            && !component.contains("-_")
            && !component.contains("_-");
        if !valid {
            return Err(format!(
                "repository component {component:?} must be lowercase letters and digits, \
                 separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_short_forms() {
        assert_eq!(norm("acme/corebuild"), "localhost/acme/corebuild:latest");
        assert_eq!(norm("acme/corebuild:1.2"), "localhost/acme/corebuild:1.2");
        assert_eq!(norm("corebuild"), "localhost/corebuild:latest");
        assert_eq!(
            norm("localhost/acme/corebuild:latest"),
            "localhost/acme/corebuild:latest"
        );
        assert_eq!(
            norm("registry.example.com:5000/acme/x"),
            "registry.example.com:5000/acme/x:latest"
        );
        assert_eq!(norm("localhost:5000/x:v1"), "localhost:5000/x:v1");
        let d = Digest::of(b"m");
        assert_eq!(
            norm(&format!("acme/corebuild@{d}")),
            format!("localhost/acme/corebuild@{d}")
        );
        let r = Reference::parse(&format!("acme/corebuild:v2@{d}")).unwrap();
        assert_eq!(r.tag(), Some("v2"));
        assert_eq!(r.digest(), Some(&d));
        assert_eq!(r.registry(), "localhost");
        assert_eq!(r.repository(), "acme/corebuild");
        assert_eq!(r.name(), "localhost/acme/corebuild");
    }

    #[test]
    fn refuses_bad_references() {
        for bad in [
            "",
            "Acme/corebuild",
            "acme//x",
            "acme/x:",
            "acme/x:-bad",
            "acme/x@sha256:123",
            "acme/x:t@",
            "-acme/x",
            "acme/x_",
            "acme/x:has space",
            "/acme",
        ] {
            let err = Reference::parse(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidReference { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("invalid image reference"));
        }
    }

    #[test]
    fn with_tag_replaces_tag_and_digest() {
        let sha512 = crate::digest::Digest::of_with(crate::digest::Algorithm::Sha512, b"x");
        let r = Reference::parse(&format!("a/b:t@{sha512}")).unwrap();
        assert_eq!(r.digest(), Some(&sha512));
        assert_eq!(r.to_string(), format!("localhost/a/b:t@{sha512}"));
        let r = Reference::parse(&format!("a/b@{}", Digest::of(b"x"))).unwrap();
        assert_eq!(r.with_tag("v1").unwrap().to_string(), "localhost/a/b:v1");
        assert!(r.with_tag("bad tag").is_err());
    }
}
