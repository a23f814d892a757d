//! in-toto Statement v1: what is attested (`subject`), and the claim (`predicate`).
//!
//! See <https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>. The predicate is
//! kept as JSON so statements of any predicate type parse; [`Statement::provenance`] reads the SLSA
//! v1 provenance strata writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_oci::Digest;

use crate::provenance::Provenance;

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of SLSA provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// An in-toto Statement v1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// The artifacts the statement is about: for strata, one image by name and manifest digest.
    pub subject: Vec<Subject>,
    /// The predicate's type URI, e.g. [`SLSA_PROVENANCE_V1`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    pub predicate: serde_json::Value,
}

/// One attested artifact: a name and its digests by algorithm (`{"sha256": "<hex>"}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The artifact's name; for an image, its full reference (`localhost/acme/corebuild:latest`).
    pub name: String,
    /// Digests by algorithm, hex encoded.
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// A subject for an image manifest.
    pub fn image(name: impl Into<String>, digest: &Digest) -> Subject {
        Subject {
            name: name.into(),
            digest: BTreeMap::from([("sha256".to_string(), digest.hex().to_string())]),
        }
    }

    /// The sha256 digest, when present and well formed.
    pub fn sha256(&self) -> Option<Digest> {
        self.digest
            .get("sha256")
            .and_then(|hex| Digest::from_hex(hex).ok())
    }
}

impl Statement {
    /// A statement that `provenance` describes the image `name` whose manifest is `digest`.
    pub fn provenance_for(
        name: impl Into<String>,
        digest: &Digest,
        provenance: &Provenance,
    ) -> Statement {
        Statement {
            type_: STATEMENT_TYPE.to_string(),
            subject: vec![Subject::image(name, digest)],
            predicate_type: SLSA_PROVENANCE_V1.to_string(),
            predicate: serde_json::to_value(provenance).expect("provenance serialises to JSON"),
        }
    }

    /// The SLSA v1 provenance in the predicate; an error names what is wrong.
    pub fn provenance(&self) -> Result<Provenance, crate::ProvenanceError> {
        if self.predicate_type != SLSA_PROVENANCE_V1 {
            return Err(crate::ProvenanceError::PredicateType {
                found: self.predicate_type.clone(),
            });
        }
        serde_json::from_value(self.predicate.clone()).map_err(crate::ProvenanceError::Malformed)
    }

    /// The sha256 digests of the subjects.
    pub fn subject_digests(&self) -> Vec<Digest> {
        self.subject.iter().filter_map(Subject::sha256).collect()
    }
}
