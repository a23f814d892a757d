//! SLSA provenance v1 (<https://slsa.dev/spec/v1.0/provenance>) and what strata records in it.
//!
//! The generic SLSA types ([`Provenance`], [`BuildDefinition`], [`ResourceDescriptor`],
//! [`RunDetails`]) carry the spec's exact field names. strata's build types define the parameters:
//! [`DOCKERFILE_BUILD_TYPE`] (externalParameters = [`DockerfileParameters`]) and
//! [`IMPORT_BUILD_TYPE`] (externalParameters = [`ImportParameters`]); both use
//! [`InternalParameters`], which holds the owner team and the tier. `docs/provenance.md` describes
//! them for people who verify strata's images with other tools.
//!
//! `resolvedDependencies` names its entries: [`DEP_BASE`] is the image underneath (the last stage's
//! `FROM`), [`DEP_CONTEXT`] the build context's tree, [`DEP_SOURCE`] the git commit, [`DEP_IMPORT`]
//! what an imported base was made from, and `stage:<name>` other images a multi-stage build read.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use strata_oci::{Digest, Reference};

use crate::error::ProvenanceError;

/// strata's build type for an image built from a Dockerfile.
pub const DOCKERFILE_BUILD_TYPE: &str = "https://strata.dev/buildtypes/dockerfile/v1";
/// strata's build type for a bought base imported from a tarball or a pinned image.
pub const IMPORT_BUILD_TYPE: &str = "https://strata.dev/buildtypes/import/v1";
/// `builder.id` of strata.
pub const BUILDER_ID: &str = "https://strata.dev/builder/v1";

/// `resolvedDependencies[].name` of the image underneath.
pub const DEP_BASE: &str = "base";
/// `resolvedDependencies[].name` of the build context tree.
pub const DEP_CONTEXT: &str = "context";
/// `resolvedDependencies[].name` of the git commit the context is in.
pub const DEP_SOURCE: &str = "source";
/// `resolvedDependencies[].name` of an imported base's source.
pub const DEP_IMPORT: &str = "import";

/// A SLSA v1 provenance predicate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// What was built and from what.
    pub build_definition: BuildDefinition,
    /// Who built it and when.
    pub run_details: RunDetails,
}

/// `buildDefinition`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// A URI naming the build's template and how to read the parameters.
    pub build_type: String,
    /// The parameters a user controls (for strata's types: [`DockerfileParameters`] or
    /// [`ImportParameters`]).
    pub external_parameters: serde_json::Value,
    /// The parameters the build platform controls ([`InternalParameters`] for strata's types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_parameters: Option<serde_json::Value>,
    /// Artifacts the build read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// A SLSA/in-toto ResourceDescriptor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// Where the resource is identified (`pkg:docker/...`, `git+https://...`, `file:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Digests by algorithm (`sha256`, `gitCommit`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    /// The resource's role in the build ([`DEP_BASE`], [`DEP_CONTEXT`], ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Extra facts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, serde_json::Value>,
}

impl ResourceDescriptor {
    /// The sha256 digest, when present and well formed.
    pub fn sha256(&self) -> Option<Digest> {
        self.digest
            .get("sha256")
            .and_then(|hex| Digest::from_hex(hex).ok())
    }

    /// An image dependency: `uri` = [`image_uri`] of `reference`, `digest.sha256`.
    pub fn image(name: &str, reference: &str, digest: &Digest) -> ResourceDescriptor {
        ResourceDescriptor {
            uri: Some(image_uri(reference)),
            digest: sha256_map(digest),
            name: Some(name.to_string()),
            annotations: BTreeMap::new(),
        }
    }
}

/// `runDetails`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    /// The build platform.
    pub builder: Builder,
    /// This run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BuildMetadata>,
    /// Other artifacts the build produced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byproducts: Vec<ResourceDescriptor>,
}

/// `runDetails.builder`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    /// The builder's URI ([`BUILDER_ID`]).
    pub id: String,
    /// Versions of the builder's parts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
}

/// `runDetails.metadata`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    /// This build's id (unique per run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// When the build started (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    /// When the build finished (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
}

/// externalParameters of [`DOCKERFILE_BUILD_TYPE`]: what the user asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerfileParameters {
    /// The Dockerfile, relative to the chain file's directory.
    pub dockerfile: String,
    /// The build context directory, relative to the chain file's directory.
    pub context: String,
    /// The target stage, when not the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Build arguments.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
}

/// externalParameters of [`IMPORT_BUILD_TYPE`]: what a bought base was imported from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportParameters {
    /// `rootfs` (a root filesystem tarball) or `image` (a pinned image reference).
    pub source: String,
    /// The tarball's path (relative to the chain file) or the pinned reference.
    pub location: String,
}

/// internalParameters of strata's build types: facts the platform (the chain file and the
/// builder) decides, not the Dockerfile's author.
///
/// The owner team and the tier live here because SLSA leaves internalParameters' schema to the
/// build type, verifiers must read them (the owner decides whose key is trusted), and they are
/// platform configuration (`strata.toml`), not inputs of the build itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalParameters {
    /// The team owning the image (`[[image]] owner` in strata.toml).
    pub owner: String,
    /// The image's tier label (`base`, `corebuild`, `middleware`, `application`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The chain's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// How layers were squashed: `none`, `own` or `all` (with `all` the parent's layers are not
    /// kept, so verifiers cannot check that they are a prefix).
    #[serde(default = "squash_none")]
    pub squash: String,
    /// The target platform, `os/arch[/variant]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Other builder options (cache use, compression, `SOURCE_DATE_EPOCH`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, serde_json::Value>,
}

impl Default for InternalParameters {
    /// No owner yet, no tier, `squash = "none"`.
    fn default() -> Self {
        InternalParameters {
            owner: String::new(),
            tier: None,
            chain: None,
            squash: squash_none(),
            platform: None,
            options: BTreeMap::new(),
        }
    }
}

fn squash_none() -> String {
    "none".to_string()
}

/// A git checkout the build context is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitSource {
    /// The repository URL.
    pub repository: String,
    /// The commit id (hex).
    pub commit: String,
}

/// When and as which run a build happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// A unique id of this build.
    pub invocation_id: String,
    /// When it started.
    pub started_on: DateTime<Utc>,
    /// When it finished.
    pub finished_on: DateTime<Utc>,
}

/// What the builder knows after building an image from a Dockerfile; [`DockerfileBuild::provenance`]
/// turns it into SLSA provenance.
#[derive(Clone, Debug, PartialEq)]
pub struct DockerfileBuild {
    /// The user's parameters.
    pub parameters: DockerfileParameters,
    /// The platform's parameters (owner, tier, ...).
    pub internal: InternalParameters,
    /// The image underneath: the name the chain knows it by (`localhost/acme/corebuild:latest`,
    /// not a bought image's external name, so verifiers find its owner) and its manifest digest;
    /// None for `FROM scratch`.
    pub base: Option<(String, Digest)>,
    /// Other images the build read (multi-stage `FROM`s, `COPY --from`), by stage name.
    pub other_images: Vec<(String, String, Digest)>,
    /// The digest of the build context's tree (after `.dockerignore`).
    pub context_digest: Option<Digest>,
    /// The git commit the context is in, when known.
    pub git: Option<GitSource>,
    /// strata's version.
    pub builder_version: String,
    /// The run.
    pub run: Run,
}

impl DockerfileBuild {
    /// The SLSA v1 provenance of this build.
    pub fn provenance(&self) -> Provenance {
        let mut deps = Vec::new();
        if let Some((reference, digest)) = &self.base {
            deps.push(ResourceDescriptor::image(DEP_BASE, reference, digest));
        }
        for (stage, reference, digest) in &self.other_images {
            deps.push(ResourceDescriptor::image(
                &format!("stage:{stage}"),
                reference,
                digest,
            ));
        }
        if let Some(digest) = &self.context_digest {
            deps.push(ResourceDescriptor {
                uri: Some(format!("file:{}", self.parameters.context)),
                digest: sha256_map(digest),
                name: Some(DEP_CONTEXT.to_string()),
                annotations: BTreeMap::new(),
            });
        }
        if let Some(git) = &self.git {
            deps.push(git_dependency(git));
        }
        provenance(
            DOCKERFILE_BUILD_TYPE,
            serde_json::to_value(&self.parameters).expect("parameters serialise"),
            &self.internal,
            deps,
            &self.builder_version,
            &self.run,
        )
    }
}

/// What the importer knows after importing a bought base; [`ImportBuild::provenance`] turns it
/// into SLSA provenance.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportBuild {
    /// Where the base came from.
    pub parameters: ImportParameters,
    /// The platform's parameters (owner, tier, ...).
    pub internal: InternalParameters,
    /// The digest of the imported source (the tarball's sha256, or the pinned manifest digest).
    pub source_digest: Digest,
    /// strata's version.
    pub builder_version: String,
    /// The run.
    pub run: Run,
}

impl ImportBuild {
    /// The SLSA v1 provenance of this import.
    pub fn provenance(&self) -> Provenance {
        let uri = match self.parameters.source.as_str() {
            "image" => image_uri(&self.parameters.location),
            _ => format!("file:{}", self.parameters.location),
        };
        let deps = vec![ResourceDescriptor {
            uri: Some(uri),
            digest: sha256_map(&self.source_digest),
            name: Some(DEP_IMPORT.to_string()),
            annotations: BTreeMap::new(),
        }];
        provenance(
            IMPORT_BUILD_TYPE,
            serde_json::to_value(&self.parameters).expect("parameters serialise"),
            &self.internal,
            deps,
            &self.builder_version,
            &self.run,
        )
    }
}

fn provenance(
    build_type: &str,
    external: serde_json::Value,
    internal: &InternalParameters,
    deps: Vec<ResourceDescriptor>,
    builder_version: &str,
    run: &Run,
) -> Provenance {
    Provenance {
        build_definition: BuildDefinition {
            build_type: build_type.to_string(),
            external_parameters: external,
            internal_parameters: Some(
                serde_json::to_value(internal).expect("parameters serialise"),
            ),
            resolved_dependencies: deps,
        },
        run_details: RunDetails {
            builder: Builder {
                id: BUILDER_ID.to_string(),
                version: BTreeMap::from([("strata".to_string(), builder_version.to_string())]),
            },
            metadata: Some(BuildMetadata {
                invocation_id: Some(run.invocation_id.clone()),
                started_on: Some(rfc3339(&run.started_on)),
                finished_on: Some(rfc3339(&run.finished_on)),
            }),
            byproducts: Vec::new(),
        },
    }
}

impl Provenance {
    /// strata's internalParameters, when the build type is one of strata's.
    pub fn internal(&self) -> Result<InternalParameters, ProvenanceError> {
        let Some(value) = &self.build_definition.internal_parameters else {
            return Err(ProvenanceError::NoInternalParameters);
        };
        serde_json::from_value(value.clone()).map_err(ProvenanceError::NotStrata)
    }

    /// The dependencies named `name`.
    pub fn dependencies(&self, name: &str) -> impl Iterator<Item = &ResourceDescriptor> {
        self.build_definition
            .resolved_dependencies
            .iter()
            .filter(move |d| d.name.as_deref() == Some(name))
    }

    /// The image underneath, as recorded: its full name (from the `pkg:docker` URI) and digest.
    /// `Ok(None)` when none is recorded (an import, or `FROM scratch`); an error when the entry is
    /// malformed or there are several.
    pub fn base(&self) -> Result<Option<(Option<String>, Digest)>, ProvenanceError> {
        let mut bases = self.dependencies(DEP_BASE);
        let Some(base) = bases.next() else {
            return Ok(None);
        };
        if bases.next().is_some() {
            return Err(ProvenanceError::SeveralBases);
        }
        let digest = base.sha256().ok_or(ProvenanceError::BaseWithoutDigest)?;
        Ok(Some((
            base.uri.as_deref().and_then(image_name_from_uri),
            digest,
        )))
    }

    /// When the build finished, when recorded and well formed.
    pub fn finished_on(&self) -> Option<DateTime<Utc>> {
        let text = self.run_details.metadata.as_ref()?.finished_on.as_deref()?;
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The URI strata records for an image reference, as BuildKit does: `pkg:docker/<full name>@<tag>`
/// (`localhost/acme/corebuild:latest` → `pkg:docker/localhost/acme/corebuild@latest`); a reference
/// that does not parse is kept after `pkg:docker/` as written.
pub fn image_uri(reference: &str) -> String {
    match Reference::parse(reference) {
        Ok(r) => match r.tag() {
            Some(tag) => format!("pkg:docker/{}@{tag}", r.name()),
            None => format!("pkg:docker/{}", r.name()),
        },
        Err(_) => format!("pkg:docker/{reference}"),
    }
}

/// The image name (`registry/repository`) in a URI written by [`image_uri`].
pub fn image_name_from_uri(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("pkg:docker/")?;
    let name = match rest.rsplit_once('@') {
        Some((name, version)) if !version.contains('/') => name,
        _ => rest,
    };
    Reference::parse(name).ok().map(|r| r.name())
}

/// The SLSA form of a git dependency: `git+<repository>@<commit>`, `digest.gitCommit`.
fn git_dependency(git: &GitSource) -> ResourceDescriptor {
    ResourceDescriptor {
        uri: Some(format!("git+{}@{}", git.repository, git.commit)),
        digest: BTreeMap::from([("gitCommit".to_string(), git.commit.clone())]),
        name: Some(DEP_SOURCE.to_string()),
        annotations: BTreeMap::new(),
    }
}

fn sha256_map(digest: &Digest) -> BTreeMap<String, String> {
    BTreeMap::from([("sha256".to_string(), digest.hex().to_string())])
}

/// RFC 3339 in UTC with a `Z`, to the second.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        Run {
            invocation_id: "b1f0c3e2".into(),
            started_on: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                .unwrap()
                .into(),
            finished_on: DateTime::parse_from_rfc3339("2026-11-23T10:02:30Z")
                .unwrap()
                .into(),
        }
    }

    #[test]
    fn dockerfile_provenance_has_the_slsa_field_names() {
        let base = Digest::of(b"base manifest");
        let build = DockerfileBuild {
            parameters: DockerfileParameters {
                dockerfile: "httpd-php/Dockerfile".into(),
                context: "httpd-php".into(),
                target: None,
                build_args: BTreeMap::from([("PHP".into(), "8.3".into())]),
            },
            internal: InternalParameters {
                owner: "middleware".into(),
                tier: Some("middleware".into()),
                chain: Some("acme".into()),
                squash: "none".into(),
                platform: Some("linux/amd64".into()),
                options: BTreeMap::new(),
            },
            base: Some(("localhost/acme/corebuild:latest".into(), base.clone())),
            other_images: vec![],
            context_digest: Some(Digest::of(b"tree")),
            git: Some(GitSource {
                repository: "https://git.example/acme/chain".into(),
                commit: "0123456789abcdef0123456789abcdef01234567".into(),
            }),
            builder_version: "0.1.0".into(),
            run: run(),
        };
        let p = build.provenance();
        let json = serde_json::to_value(&p).unwrap();
        let bd = &json["buildDefinition"];
        assert_eq!(bd["buildType"], DOCKERFILE_BUILD_TYPE);
        assert_eq!(
            bd["externalParameters"]["dockerfile"],
            "httpd-php/Dockerfile"
        );
        assert_eq!(bd["externalParameters"]["buildArgs"]["PHP"], "8.3");
        assert_eq!(bd["internalParameters"]["owner"], "middleware");
        assert_eq!(bd["internalParameters"]["tier"], "middleware");
        let deps = bd["resolvedDependencies"].as_array().unwrap();
        assert_eq!(deps[0]["name"], "base");
        assert_eq!(deps[0]["uri"], "pkg:docker/localhost/acme/corebuild@latest");
        assert_eq!(deps[0]["digest"]["sha256"], base.hex());
        assert_eq!(deps[1]["name"], "context");
        assert_eq!(
            deps[2]["uri"],
            "git+https://git.example/acme/chain@0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(
            deps[2]["digest"]["gitCommit"],
            "0123456789abcdef0123456789abcdef01234567"
        );
        let rd = &json["runDetails"];
        assert_eq!(rd["builder"]["id"], BUILDER_ID);
        assert_eq!(rd["metadata"]["invocationId"], "b1f0c3e2");
        assert_eq!(rd["metadata"]["startedOn"], "2026-11-23T10:00:00Z");
        assert_eq!(rd["metadata"]["finishedOn"], "2026-11-23T10:02:30Z");
        // And back.
        let back: Provenance = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            back.base().unwrap(),
            Some((Some("localhost/acme/corebuild".into()), base))
        );
        assert_eq!(back.internal().unwrap().owner, "middleware");
        assert_eq!(back.finished_on().unwrap(), run().finished_on);
    }

    #[test]
    fn import_provenance_records_its_source_and_no_base() {
        let build = ImportBuild {
            parameters: ImportParameters {
                source: "rootfs".into(),
                location: "base/rootfs.tar".into(),
            },
            internal: InternalParameters {
                owner: "operations".into(),
                tier: Some("base".into()),
                ..Default::default()
            },
            source_digest: Digest::of(b"tarball"),
            builder_version: "0.1.0".into(),
            run: run(),
        };
        let p = build.provenance();
        assert_eq!(p.build_definition.build_type, IMPORT_BUILD_TYPE);
        assert_eq!(p.base().unwrap(), None);
        let import: Vec<_> = p.dependencies(DEP_IMPORT).collect();
        assert_eq!(import[0].uri.as_deref(), Some("file:base/rootfs.tar"));
        assert_eq!(import[0].sha256(), Some(Digest::of(b"tarball")));
        assert_eq!(p.internal().unwrap().squash, "none");
    }

    #[test]
    fn image_uris_round_trip_names() {
        assert_eq!(
            image_uri("acme/corebuild"),
            "pkg:docker/localhost/acme/corebuild@latest"
        );
        let d = Digest::of(b"x");
        assert_eq!(
            image_uri(&format!("reg.example:5000/debian@{d}")),
            "pkg:docker/reg.example:5000/debian"
        );
        for (uri, name) in [
            (
                "pkg:docker/localhost/acme/corebuild@latest",
                "localhost/acme/corebuild",
            ),
            (
                "pkg:docker/reg.example:5000/debian",
                "reg.example:5000/debian",
            ),
            (
                "pkg:docker/reg.example:5000/debian@12",
                "reg.example:5000/debian",
            ),
        ] {
            assert_eq!(image_name_from_uri(uri).as_deref(), Some(name), "{uri}");
        }
        assert_eq!(image_name_from_uri("file:x"), None);
    }
}
