//! Other projects' images read from the registries they came from: the [`Upstream`] that
//! `strata verify` and the deployments' `require.verified` check walk into.

use strata_attest::custody::{FetchError, Upstream};
use strata_oci::{Descriptor, Digest};
use strata_remote::{Client, RemoteRef};

/// The largest attestation envelope read from a registry.
const MAX_ENVELOPE: u64 = 4 << 20;

/// Reads upstream images' manifests and attestations from their registries.
pub struct Registries {
    client: Client,
}

impl Registries {
    /// Read upstream images through `client`.
    pub fn new(client: Client) -> Registries {
        Registries { client }
    }
}

impl Upstream for Registries {
    fn manifest(&self, repository: &str, digest: &Digest) -> Result<Vec<u8>, FetchError> {
        let r = RemoteRef::parse(&format!("{repository}@{digest}"))?;
        Ok(self.client.get_manifest(&r)?.bytes)
    }

    fn referrers(&self, repository: &str, digest: &Digest) -> Result<Vec<Descriptor>, FetchError> {
        let r = RemoteRef::parse(&format!("{repository}@{digest}"))?;
        Ok(self.client.referrers_or_tag(&r, digest)?)
    }

    fn blob(&self, repository: &str, digest: &Digest) -> Result<Vec<u8>, FetchError> {
        let r = RemoteRef::parse(repository)?;
        Ok(self.client.get_blob_bytes(&r, digest, MAX_ENVELOPE)?)
    }
}
