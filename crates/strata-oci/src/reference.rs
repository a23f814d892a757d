//! Image references: `[registry/]repository[:tag][@sha256:...]` (or `@sha512:...`), normalised to
//! full form.
//!
//! The grammar is strata's one (`strata_reference`, docker/distribution's: domain detection,
//! `docker.io/library/` normalisation, lengths). What this type adds is the store's defaults: a
//! reference without a registry gets `localhost/` (so `acme/corebuild` and
//! `localhost/acme/corebuild:latest` are the same image; strata's images are local, so it never
//! adds Docker's `docker.io/library/`), and one with neither tag nor digest gets `:latest`. The
//! digest must be one the store can hold ([`Digest`]).

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
        let invalid = |reason: String| Error::InvalidReference {
            input: input.to_string(),
            reason,
        };
        let parsed = strata_reference::parse(input).map_err(|e| invalid(e.to_string()))?;
        let digest = parsed
            .digest()
            .map(|d| d.parse::<Digest>())
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        let tag = match (parsed.tag(), &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference {
            registry: parsed.domain().unwrap_or(DEFAULT_REGISTRY).to_string(),
            repository: parsed.path().to_string(),
            tag,
            digest,
        })
    }

    /// A reference to `name` (parsed as above, without tag or digest) at `tag`.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        if !strata_reference::is_tag(tag) {
            return Err(Error::InvalidReference {
                input: format!("{}:{tag}", self.name()),
                reason: strata_reference::Error::InvalidTag(tag.to_string()).to_string(),
            });
        }
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
        // Docker Hub's short names, as docker/distribution normalises them.
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            norm("index.docker.io/library/busybox:1"),
            "docker.io/library/busybox:1"
        );
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
            "acme/Corebuild",
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
    fn digests_the_store_cannot_hold_are_refused_by_name() {
        let digest = format!("sha512:{}", "0123456789abcdef".repeat(8));
        let sha512 = format!("a@{digest}");
        assert!(strata_reference::parse(&sha512).is_ok());
        // Whatever digests the store holds, the reference takes exactly those.
        match digest.parse::<Digest>() {
            Ok(_) => assert!(Reference::parse(&sha512).is_ok()),
            Err(e) => {
                let err = Reference::parse(&sha512).unwrap_err().to_string();
                assert!(err.contains(&e.to_string()), "{err}");
            }
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
