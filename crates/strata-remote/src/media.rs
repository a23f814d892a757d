//! Manifest media types and what a manifest references.

use serde::Deserialize;
use strata_oci::Digest;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI artifact manifest (from the 1.1 release candidates; still accepted).
pub const OCI_ARTIFACT: &str = "application/vnd.oci.artifact.manifest.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest media type served and accepted, for `Accept` headers.
pub const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.artifact.manifest.v1+json";

/// Is this a manifest media type the registry handles?
pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_MANIFEST | OCI_INDEX | OCI_ARTIFACT | DOCKER_MANIFEST | DOCKER_LIST
    )
}

/// Is this an index (a list of manifests)?
pub fn is_index_type(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_LIST)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<u32>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    blobs: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    #[allow(dead_code)]
    size: Option<u64>,
}

/// The media type a manifest declares in its `mediaType` field, or infers from its shape.
pub fn media_type_of(bytes: &[u8]) -> Option<String> {
    ParsedManifest::parse(bytes, None)
        .ok()
        .map(|p| p.media_type)
}

/// Why a manifest is refused by [`ParsedManifest::parse`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The body is not a JSON manifest.
    #[error("invalid JSON")]
    Json(#[source] serde_json::Error),
    /// The `Content-Type` names one manifest type and the body's `mediaType` another.
    #[error("the Content-Type is {sent} but the manifest's mediaType is {declared}")]
    MediaTypeMismatch {
        /// The `Content-Type`.
        sent: String,
        /// The body's `mediaType`.
        declared: String,
    },
    /// The media type is not a manifest type.
    #[error("unsupported manifest media type {0}")]
    UnsupportedMediaType(String),
    /// An image manifest or index whose `schemaVersion` is not 2.
    #[error("schemaVersion must be 2")]
    SchemaVersion,
    /// A descriptor's digest does not parse.
    #[error("bad descriptor digest")]
    Digest(#[source] strata_oci::Error),
    /// An image manifest without a config.
    #[error("an image manifest needs a config")]
    NoConfig,
}

/// What the registry needs from a manifest: its media type and the digests it references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedManifest {
    /// The media type (the body's `mediaType`, else the `Content-Type`, else inferred).
    pub media_type: String,
    /// The manifest's `artifactType`, or for image manifests with a non-image config, the
    /// config's media type.
    pub artifact_type: Option<String>,
    /// Config, layers, blobs or child manifests, in order.
    pub references: Vec<Digest>,
    /// Child manifests of an index, with their media types.
    pub children: Vec<(Digest, String)>,
    /// The `subject` the manifest refers to.
    pub subject: Option<Digest>,
}

impl ParsedManifest {
    /// Parse a manifest; `content_type` is the request's `Content-Type`. Errors say what is wrong.
    pub fn parse(
        bytes: &[u8],
        content_type: Option<&str>,
    ) -> Result<ParsedManifest, ManifestError> {
        let raw: Raw = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        let inferred = if raw.manifests.is_some() {
            OCI_INDEX
        } else if raw.blobs.is_some() && raw.config.is_none() {
            OCI_ARTIFACT
        } else {
            OCI_MANIFEST
        };
        // A Content-Type naming one manifest type over a body declaring another is refused:
        // which of the two is meant cannot be known, and clients would be told different things.
        if let (Some(declared), Some(sent)) = (raw.media_type.as_deref(), content_type)
            && is_manifest_type(sent)
            && declared != sent
        {
            return Err(ManifestError::MediaTypeMismatch {
                sent: sent.to_string(),
                declared: declared.to_string(),
            });
        }
        let media_type = raw
            .media_type
            .clone()
            .or_else(|| {
                content_type
                    .filter(|c| is_manifest_type(c))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| inferred.to_string());
        if !is_manifest_type(&media_type) {
            return Err(ManifestError::UnsupportedMediaType(media_type));
        }
        if media_type != OCI_ARTIFACT && raw.schema_version != Some(2) {
            return Err(ManifestError::SchemaVersion);
        }
        let digest = |d: &RawDescriptor| d.digest.parse::<Digest>().map_err(ManifestError::Digest);
        let mut references = Vec::new();
        let mut children = Vec::new();
        if is_index_type(&media_type) {
            for m in raw.manifests.as_deref().unwrap_or_default() {
                let d = digest(m)?;
                children.push((
                    d.clone(),
                    m.media_type.clone().unwrap_or_else(|| OCI_MANIFEST.into()),
                ));
                references.push(d);
            }
        } else if media_type == OCI_ARTIFACT {
            for b in raw.blobs.as_deref().unwrap_or_default() {
                references.push(digest(b)?);
            }
        } else {
            let config = raw.config.as_ref().ok_or(ManifestError::NoConfig)?;
            references.push(digest(config)?);
            for layer in raw.layers.as_deref().unwrap_or_default() {
                references.push(digest(layer)?);
            }
        }
        let subject = raw.subject.as_ref().map(digest).transpose()?;
        let artifact_type = raw.artifact_type.clone().or_else(|| {
            raw.config
                .as_ref()
                .and_then(|c| c.media_type.clone())
                .filter(|t| {
                    subject.is_some()
                        && t != "application/vnd.oci.image.config.v1+json"
                        && t != "application/vnd.docker.container.image.v1+json"
                })
        });
        Ok(ParsedManifest {
            media_type,
            artifact_type,
            references,
            children,
            subject,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: &str) -> String {
        Digest::of(c.as_bytes()).to_string()
    }

    #[test]
    fn image_manifest() {
        let text = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"x","digest":"{}","size":1}},"layers":[{{"digest":"{}","size":2}}]}}"#,
            d("c"),
            d("l")
        );
        let p = ParsedManifest::parse(text.as_bytes(), None).unwrap();
        assert_eq!(p.media_type, DOCKER_MANIFEST);
        assert_eq!(p.references.len(), 2);
        assert_eq!(p.subject, None);
    }

    #[test]
    fn referrer_and_index() {
        let text = format!(
            r#"{{"schemaVersion":2,"artifactType":"application/vnd.test","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3}}}}"#,
            d("{}"),
            d("s")
        );
        let p = ParsedManifest::parse(text.as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(p.artifact_type.as_deref(), Some("application/vnd.test"));
        assert_eq!(p.subject, Some(Digest::of(b"s")));
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3}}]}}"#,
            d("m")
        );
        let p = ParsedManifest::parse(index.as_bytes(), None).unwrap();
        assert_eq!(p.media_type, OCI_INDEX);
        assert_eq!(
            p.children,
            vec![(Digest::of(b"m"), OCI_MANIFEST.to_string())]
        );
    }

    #[test]
    fn a_refusal_holds_its_own_text_and_chains_its_cause() {
        let err = ParsedManifest::parse(b"nope", None).unwrap_err();
        assert_eq!(err.to_string(), "invalid JSON");
        let cause = std::error::Error::source(&err).expect("the JSON error is chained");
        assert!(cause.to_string().contains("line 1"), "{cause}");
        let bad = br#"{"schemaVersion":2,"config":{"digest":"md5:00"}}"#;
        let err = ParsedManifest::parse(bad, None).unwrap_err();
        assert_eq!(err.to_string(), "bad descriptor digest");
        let cause = std::error::Error::source(&err).expect("the digest error is chained");
        assert!(cause.to_string().contains("md5:00"), "{cause}");
    }

    #[test]
    fn refusals() {
        assert!(ParsedManifest::parse(b"nope", None).is_err());
        assert!(
            ParsedManifest::parse(br#"{"schemaVersion":1,"config":{"digest":"x"}}"#, None).is_err()
        );
        let err = ParsedManifest::parse(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None)
            .unwrap_err();
        assert!(
            matches!(&err, ManifestError::UnsupportedMediaType(t) if t == "text/plain"),
            "{err}"
        );
    }
}
