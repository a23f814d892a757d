//! Parse `/v2/...` paths (repository names have slashes, so axum cannot route them) and map
//! repositories to store references.
//!
//! The mapping: a store tag `localhost/<name>:<tag>` is served as repository `<name>`, tag `<tag>`;
//! a store tag naming another registry, `<host>/<name>:<tag>`, is served as repository
//! `<host>/<name>` (hosts with a port are not valid repository names and are not served). A push
//! of `<name>:<tag>` is stored as `localhost/<name>:<tag>` (or `<host>/<name>:<tag>` when the
//! name's first component is a host). This is `strata_oci::Reference`'s normalisation, both ways.

use strata_oci::{Digest, Reference};

/// What a `/v2/` request is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/manifests/<reference>`.
    Manifest {
        /// The repository.
        name: String,
        /// A tag or a digest.
        reference: String,
    },
    /// `/v2/<name>/blobs/<digest>`.
    Blob {
        /// The repository.
        name: String,
        /// The digest, as written.
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/`.
    UploadStart {
        /// The repository.
        name: String,
    },
    /// `/v2/<name>/blobs/uploads/<id>`.
    Upload {
        /// The repository.
        name: String,
        /// The session id.
        id: String,
    },
    /// `/v2/<name>/tags/list`.
    Tags {
        /// The repository.
        name: String,
    },
    /// `/v2/<name>/referrers/<digest>`.
    Referrers {
        /// The repository.
        name: String,
        /// The subject's digest, as written.
        digest: String,
    },
}

impl Route {
    /// Parse the part of the path after `/v2/`. None: not a spec endpoint.
    pub fn parse(rest: &str) -> Option<Route> {
        if rest.is_empty() {
            return Some(Route::Base);
        }
        if rest == "_catalog" {
            return Some(Route::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Some(Route::Tags { name: name.into() });
        }
        if let Some(name) = rest
            .strip_suffix("/blobs/uploads/")
            .or_else(|| rest.strip_suffix("/blobs/uploads"))
        {
            return Some(Route::UploadStart { name: name.into() });
        }
        let split = |marker: &str| {
            rest.rfind(marker).and_then(|i| {
                let tail = &rest[i + marker.len()..];
                (i > 0 && !tail.is_empty() && !tail.contains('/'))
                    .then(|| (rest[..i].to_string(), tail.to_string()))
            })
        };
        if let Some((name, id)) = split("/blobs/uploads/") {
            return Some(Route::Upload { name, id });
        }
        if let Some((name, reference)) = split("/manifests/") {
            return Some(Route::Manifest { name, reference });
        }
        if let Some((name, digest)) = split("/blobs/") {
            return Some(Route::Blob { name, digest });
        }
        if let Some((name, digest)) = split("/referrers/") {
            return Some(Route::Referrers { name, digest });
        }
        None
    }

    /// The repository the route is about, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Tags { name }
            | Route::Referrers { name, .. } => Some(name),
        }
    }
}

/// Is `name` a repository name of the distribution spec
/// (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255)?
/// strata's one reference grammar answers (`strata_reference`).
pub fn valid_name(name: &str) -> bool {
    strata_reference::is_repository_path(name)
}

/// Is `tag` a tag of the spec (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`)?
pub fn valid_tag(tag: &str) -> bool {
    strata_reference::is_tag(tag)
}

/// The repository a store reference is served as (`localhost/acme/app` → `acme/app`).
pub fn served_name(reference: &Reference) -> String {
    if reference.registry() == strata_oci::reference::DEFAULT_REGISTRY {
        reference.repository().to_string()
    } else {
        format!("{}/{}", reference.registry(), reference.repository())
    }
}

/// The canonical served form of a requested repository name (`localhost/acme/app` and
/// `acme/app` are the same repository). None when the store could not hold it.
pub fn canonical_name(name: &str) -> Option<String> {
    Reference::parse(&format!("{name}:latest"))
        .ok()
        .map(|r| served_name(&r))
}

/// The store reference of `name:tag`.
pub fn store_ref(name: &str, tag: &str) -> String {
    format!("{name}:{tag}")
}

/// A reference in a manifest path: a digest or a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestRef {
    /// `sha256:...`.
    Digest(Digest),
    /// A tag.
    Tag(String),
}

/// Why a manifest path's reference is neither a digest nor a tag.
#[derive(Debug, thiserror::Error)]
pub enum ManifestRefError {
    /// It has a `:`, so it is meant as a digest, and is not one.
    #[error(transparent)]
    Digest(#[from] strata_oci::Error),
    /// It breaks the tag grammar.
    #[error("invalid tag {0:?}")]
    Tag(String),
}

impl ManifestRef {
    /// Parse a digest (anything with a `:`) or a tag.
    pub fn parse(reference: &str) -> Result<ManifestRef, ManifestRefError> {
        if reference.contains(':') {
            Ok(ManifestRef::Digest(reference.parse::<Digest>()?))
        } else if valid_tag(reference) {
            Ok(ManifestRef::Tag(reference.to_string()))
        } else {
            Err(ManifestRefError::Tag(reference.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_refs_are_digests_or_tags_and_refusals_are_typed() {
        assert_eq!(
            ManifestRef::parse("v1.0").unwrap(),
            ManifestRef::Tag("v1.0".into())
        );
        let digest = Digest::of(b"m");
        assert_eq!(
            ManifestRef::parse(&digest.to_string()).unwrap(),
            ManifestRef::Digest(digest)
        );
        assert!(matches!(
            ManifestRef::parse("-bad"),
            Err(ManifestRefError::Tag(t)) if t == "-bad"
        ));
        let err = ManifestRef::parse("sha256:short").unwrap_err();
        assert!(matches!(err, ManifestRefError::Digest(_)), "{err:?}");
        assert!(err.to_string().contains("sha256:short"), "{err}");
    }

    #[test]
    fn an_api_message_carries_the_causes_of_its_error() {
        let err = strata_remote::media::ParsedManifest::parse(b"{", None).unwrap_err();
        let message = strata_oci::report(&err);
        assert!(message.starts_with("invalid JSON: "), "{message}");
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn parses_paths_with_slashes() {
        assert_eq!(Route::parse(""), Some(Route::Base));
        assert_eq!(
            Route::parse("acme/corebuild/manifests/latest"),
            Some(Route::Manifest {
                name: "acme/corebuild".into(),
                reference: "latest".into()
            })
        );
        // A component called "manifests" in the name itself.
        assert_eq!(
            Route::parse("a/manifests/b/manifests/1"),
            Some(Route::Manifest {
                name: "a/manifests/b".into(),
                reference: "1".into()
            })
        );
        assert_eq!(
            Route::parse("a/b/blobs/sha256:00"),
            Some(Route::Blob {
                name: "a/b".into(),
                digest: "sha256:00".into()
            })
        );
        assert_eq!(
            Route::parse("a/b/blobs/uploads/"),
            Some(Route::UploadStart { name: "a/b".into() })
        );
        assert_eq!(
            Route::parse("a/b/blobs/uploads/xyz"),
            Some(Route::Upload {
                name: "a/b".into(),
                id: "xyz".into()
            })
        );
        assert_eq!(
            Route::parse("x/tags/list"),
            Some(Route::Tags { name: "x".into() })
        );
        assert_eq!(
            Route::parse("x/y/referrers/sha256:ab"),
            Some(Route::Referrers {
                name: "x/y".into(),
                digest: "sha256:ab".into()
            })
        );
        assert_eq!(Route::parse("x/y/other/z"), None);
        assert_eq!(Route::parse("/manifests/x"), None);
    }

    #[test]
    fn names_and_tags() {
        for ok in [
            "a",
            "acme/corebuild",
            "a.b/c__d/e---f",
            "docker.io/library/busybox",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a/",
            "127.0.0.1:5000/x",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_tag("latest") && valid_tag("_x.1-2") && !valid_tag(".x") && !valid_tag(""));
    }

    #[test]
    fn mapping_is_reference_normalisation() {
        let r = Reference::parse("localhost/acme/app:1").unwrap();
        assert_eq!(served_name(&r), "acme/app");
        let r = Reference::parse("docker.io/library/busybox:1").unwrap();
        assert_eq!(served_name(&r), "docker.io/library/busybox");
        assert_eq!(canonical_name("localhost/acme/app").unwrap(), "acme/app");
        assert_eq!(canonical_name("acme/app").unwrap(), "acme/app");
    }
}
