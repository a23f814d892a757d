//! strata's chain of custody: team keys, signed SLSA provenance, and verification from an image
//! down to its base.
//!
//! The main entry points: [`dsse::sign`] wraps an in-toto [`Statement`] (with a SLSA v1
//! [`Provenance`] predicate) in a DSSE [`Envelope`] signed by a team's [`PrivateKey`];
//! [`artifact::attach`] stores it as an OCI 1.1 artifact whose `subject` is the image manifest, and
//! [`artifact::find`] finds it again through the store's referrers; [`custody::verify_chain`] walks
//! from an image down to its base, checking at every tier the signature against the owner team's
//! keys, the subject, the parent underneath and the owner, and returns a [`custody::Report`].
//!
//! The key decision: everything here is the standard formats (in-toto Statement v1, SLSA
//! provenance v1, DSSE with PAE, PKCS#8/SPKI PEM keys, DER ECDSA signatures), so tools we did not
//! write (securesystemslib, in-toto, cosign) read what strata signs. Verification results are
//! data (a report with a verdict per link), not errors: errors are for a store that cannot be read.

#![deny(missing_docs)]

pub mod artifact;
pub mod custody;
pub mod dsse;
pub mod error;
pub mod evidence;
pub mod keys;
pub mod policy;
pub mod provenance;
pub mod statement;
pub mod vendor;

pub use artifact::{attach, attest_provenance, find};
pub use custody::{Report, TrustConfig, Upstream, verify_chain, verify_chain_with};
pub use dsse::{Envelope, sign, verify};
pub use error::{AttestError, KeyError, ProvenanceError, VerifyError};
pub use keys::{KeyId, KeyKind, PrivateKey, PublicKey};
pub use policy::Policy;
pub use provenance::Provenance;
pub use statement::Statement;
