//! Attestations in the store: OCI 1.1 artifacts whose `subject` is the image manifest.
//!
//! An attestation is a manifest with `artifactType` [`ATTESTATION_ARTIFACT_TYPE`], the empty config
//! (`application/vnd.oci.empty.v1+json`, `{}`), one layer holding the DSSE envelope JSON
//! ([`ENVELOPE_MEDIA_TYPE`]) and `subject` = the image's manifest descriptor. It is kept in the
//! store's `index.json` as an untagged root and found again through the image's referrers; it is
//! never put inside the image's own index (BuildKit's `unknown/unknown` entries break deployments).

use std::collections::HashMap;

use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use strata_oci::{Digest, Store};

use crate::dsse::Envelope;
use crate::error::AttestError;
use crate::keys::PrivateKey;
use crate::provenance::Provenance;
use crate::statement::Statement;

/// The attestation manifest's `artifactType`.
pub const ATTESTATION_ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";
/// The media type of the layer that holds the DSSE envelope.
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The annotation naming the statement's predicate type on the attestation manifest.
pub const ANNOTATION_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";

/// Store `envelope` as an attestation of the image `subject` (its manifest descriptor) and return
/// the attestation manifest's descriptor. The subject must be in the store. Attaching the same
/// envelope twice stores it once.
pub fn attach(
    store: &Store,
    subject: &Descriptor,
    envelope: &Envelope,
) -> Result<Descriptor, AttestError> {
    let envelope_json = serde_json::to_vec(envelope).map_err(|e| strata_oci::Error::Json {
        what: "DSSE envelope".into(),
        source: e,
    })?;
    let layer = store
        .blobs()
        .put(&envelope_json)?
        .descriptor(MediaType::Other(ENVELOPE_MEDIA_TYPE.into()));
    let config = store.blobs().put(b"{}")?.descriptor(MediaType::EmptyJSON);
    let mut subject = subject.clone();
    subject.set_annotations(None);
    subject.set_platform(None);
    let mut manifest = strata_oci::image::new_manifest(config, vec![layer]);
    manifest.set_artifact_type(Some(MediaType::Other(ATTESTATION_ARTIFACT_TYPE.into())));
    manifest.set_subject(Some(subject));
    if let Ok(statement) = envelope.statement_unverified() {
        manifest.set_annotations(Some(HashMap::from([(
            ANNOTATION_PREDICATE_TYPE.to_string(),
            statement.predicate_type,
        )])));
    }
    Ok(store.put_referrer(&manifest)?)
}

/// What a build calls once its image is stored: sign `provenance` as an in-toto statement about
/// the image `name` (its full reference) whose manifest is `subject`, with `key`, and attach the
/// envelope. Returns the attestation manifest's descriptor and the envelope.
pub fn attest_provenance(
    store: &Store,
    subject: &Descriptor,
    name: &str,
    provenance: &Provenance,
    key: &PrivateKey,
) -> Result<(Descriptor, Envelope), AttestError> {
    let digest = Digest::from_oci(subject.digest())?;
    let statement = Statement::provenance_for(name, &digest, provenance);
    let envelope = crate::dsse::sign(&statement, key);
    let descriptor = attach(store, subject, &envelope)?;
    Ok((descriptor, envelope))
}

/// One attestation found in the store.
#[derive(Clone, Debug)]
pub struct Attestation {
    /// The attestation manifest's digest.
    pub manifest: Digest,
    /// The envelope.
    pub envelope: Envelope,
}

/// The attestations of the image whose manifest is `subject`, sorted by attestation digest.
/// Nothing is verified here: see [`crate::dsse::verify`] and [`crate::custody`].
pub fn find(store: &Store, subject: &Digest) -> Result<Vec<Envelope>, AttestError> {
    Ok(find_attestations(store, subject)?
        .into_iter()
        .map(|a| a.envelope)
        .collect())
}

/// Like [`find`], with each attestation's manifest digest. A referrer of the attestation type
/// that does not hold a DSSE envelope fails the whole call with [`AttestError::BadAttestation`].
pub fn find_attestations(store: &Store, subject: &Digest) -> Result<Vec<Attestation>, AttestError> {
    find_each(store, subject)?.into_iter().collect()
}

/// The attestations of `subject`, each read on its own: a malformed one is an `Err` in the list
/// (so a verifier can name it and still use the others); a store that cannot be read fails the
/// call.
pub fn find_each(
    store: &Store,
    subject: &Digest,
) -> Result<Vec<Result<Attestation, AttestError>>, AttestError> {
    let mut found = Vec::new();
    for referrer in store.referrers(subject, Some(ATTESTATION_ARTIFACT_TYPE))? {
        let digest = Digest::from_oci(referrer.digest())?;
        found.push(read_attestation(store, digest));
    }
    Ok(found)
}

fn read_attestation(store: &Store, digest: Digest) -> Result<Attestation, AttestError> {
    let manifest: ImageManifest = store.blobs().read_manifest(&digest)?;
    attestation_from(digest, &manifest, |layer| {
        Ok(store.blobs().read_descriptor(layer)?)
    })
}

/// The attestation whose manifest (digest `digest`) is `manifest`, reading its one layer with
/// `read_layer`. The layer must be a DSSE envelope; where the bytes come from (the store, a
/// registry) is the caller's, and so is checking them against the layer's digest.
pub(crate) fn attestation_from(
    digest: Digest,
    manifest: &ImageManifest,
    read_layer: impl FnOnce(&Descriptor) -> Result<Vec<u8>, AttestError>,
) -> Result<Attestation, AttestError> {
    let bad = |reason: String| AttestError::BadAttestation {
        digest: digest.clone(),
        reason,
    };
    let [layer] = manifest.layers().as_slice() else {
        return Err(bad(format!(
            "expected one layer, found {}",
            manifest.layers().len()
        )));
    };
    if layer.media_type().to_string() != ENVELOPE_MEDIA_TYPE {
        return Err(bad(format!(
            "its layer is {}, expected {ENVELOPE_MEDIA_TYPE}",
            layer.media_type()
        )));
    }
    let bytes = read_layer(layer)?;
    let envelope: Envelope = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("its layer is not a DSSE envelope: {e}")))?;
    Ok(Attestation {
        manifest: digest,
        envelope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsse::sign;
    use crate::keys::{KeyKind, PrivateKey};
    use crate::statement::{STATEMENT_TYPE, Statement, Subject};

    #[test]
    fn attach_then_find_through_referrers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let image = strata_oci::random::image(&store, 1, 16).unwrap();
        let other = strata_oci::random::image(&store, 1, 16).unwrap();
        store.refs().tag("acme/app", image.descriptor()).unwrap();
        let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let statement = Statement {
            type_: STATEMENT_TYPE.into(),
            subject: vec![Subject::image("localhost/acme/app:latest", &image.digest())],
            predicate_type: "https://slsa.dev/provenance/v1".into(),
            predicate: serde_json::json!({}),
        };
        let envelope = sign(&statement, &key);
        assert!(find(&store, &image.digest()).unwrap().is_empty());
        let d = attach(&store, image.descriptor(), &envelope).unwrap();
        attach(&store, image.descriptor(), &envelope).unwrap();
        assert_eq!(
            find(&store, &image.digest()).unwrap(),
            vec![envelope.clone()]
        );
        assert!(find(&store, &other.digest()).unwrap().is_empty());

        // The manifest is an OCI 1.1 artifact with the empty config and a subject.
        let manifest: serde_json::Value = serde_json::from_slice(
            &store
                .blobs()
                .read(&Digest::from_oci(d.digest()).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["artifactType"], ATTESTATION_ARTIFACT_TYPE);
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        assert_eq!(manifest["config"]["size"], 2);
        assert_eq!(manifest["layers"][0]["mediaType"], ENVELOPE_MEDIA_TYPE);
        assert_eq!(manifest["subject"]["digest"], image.digest().to_string());
        assert_eq!(
            manifest["annotations"][ANNOTATION_PREDICATE_TYPE],
            "https://slsa.dev/provenance/v1"
        );
        // The tag still names the image, not the attestation; the attestation is untagged.
        assert_eq!(
            store.refs().resolve("acme/app").unwrap().digest(),
            image.descriptor().digest()
        );
        assert_eq!(store.refs().list().unwrap().len(), 1);
        assert_eq!(store.refs().index().unwrap().manifests().len(), 2);
    }

    #[test]
    fn attest_provenance_signs_and_attaches() {
        use crate::provenance::{ImportBuild, ImportParameters, InternalParameters, Run};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let image = strata_oci::random::image(&store, 1, 16).unwrap();
        let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let now = chrono::Utc::now();
        let provenance = ImportBuild {
            parameters: ImportParameters {
                source: "rootfs".into(),
                location: "base.tar".into(),
            },
            internal: InternalParameters {
                owner: "operations".into(),
                ..Default::default()
            },
            source_digest: Digest::of(b"tar"),
            builder_version: "0.1.0".into(),
            run: Run {
                invocation_id: "1".into(),
                started_on: now,
                finished_on: now,
            },
        }
        .provenance();
        let (_, envelope) = attest_provenance(
            &store,
            image.descriptor(),
            "localhost/acme/base:latest",
            &provenance,
            &key,
        )
        .unwrap();
        let found = find(&store, &image.digest()).unwrap();
        assert_eq!(found, vec![envelope]);
        let statement = crate::dsse::verify(&found[0], &[key.public_key().clone()]).unwrap();
        assert_eq!(statement.subject_digests(), vec![image.digest()]);
        assert_eq!(statement.provenance().unwrap(), provenance);
    }

    #[test]
    fn attaching_to_a_missing_image_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let ghost = Descriptor::new(MediaType::ImageManifest, 10, Digest::of(b"ghost").to_oci());
        let envelope = crate::dsse::sign_payload("x", b"y", &key);
        let err = attach(&store, &ghost, &envelope).unwrap_err();
        assert!(err.to_string().contains("not in the store"), "{err}");
    }
}
