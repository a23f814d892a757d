//! TLS for `strata serve --tls-cert C --tls-key K`: rustls with the ring provider.
//!
//! Each handshake runs in its connection's own task, under the server's connection cap and within
//! `HANDSHAKE_TIMEOUT`, so a slow or broken client never holds up the others and clients that
//! never finish a handshake cannot open more connections than the cap.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::error::{RegistryError, Result};

/// A certificate chain and key read from PEM files, ready to serve.
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

impl TlsConfig {
    /// Read a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsConfig> {
        let invalid = |path: &Path, reason: String| RegistryError::AuthConfig {
            path: path.to_path_buf(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| invalid(cert, format!("cannot read certificates: {e}")))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| invalid(cert, format!("invalid PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(invalid(cert, "no certificate in the file".into()));
        }
        let private_key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| invalid(key, format!("cannot read a private key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(cert, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, private_key)
            .map_err(|e| invalid(key, format!("the key does not fit the certificate: {e}")))?;
        Ok(TlsConfig {
            config: Arc::new(config),
        })
    }
}

impl TlsConfig {
    /// An acceptor for this certificate: the server runs each handshake in the connection's own
    /// task, holding one of the connection slots, within [`HANDSHAKE_TIMEOUT`].
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

/// How long a client has to finish its TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
