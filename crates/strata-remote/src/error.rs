//! The one error type of the registry client, which the server (`strata-registry`) answers with
//! too.
//!
//! Like go-containerregistry's `transport.Error`, a [`RegistryError`] carries the protocol's
//! details: the HTTP status, the distribution spec's error code, and [`RegistryError::is_temporary`],
//! which drives the client's retries. The server answers with the same codes in the spec's JSON
//! error body.

use std::fmt;
use std::path::PathBuf;

/// An error code of the OCI distribution spec (the `code` of an error body entry).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The blob is unknown to the registry.
    BlobUnknown,
    /// The blob upload encountered an error and can no longer proceed.
    BlobUploadInvalid,
    /// The upload session is unknown (expired, cancelled or never started).
    BlobUploadUnknown,
    /// The content does not match its digest, or the digest is malformed.
    DigestInvalid,
    /// A manifest references a blob the registry does not have.
    ManifestBlobUnknown,
    /// The manifest is malformed.
    ManifestInvalid,
    /// The manifest is unknown.
    ManifestUnknown,
    /// The repository name is malformed.
    NameInvalid,
    /// The repository is unknown.
    NameUnknown,
    /// Content length does not match.
    SizeInvalid,
    /// Authentication is required.
    Unauthorized,
    /// The authenticated user may not do this.
    Denied,
    /// The operation is unsupported.
    Unsupported,
    /// Too many requests.
    TooManyRequests,
    /// A code this crate does not know, as sent.
    Other(String),
}

impl ErrorCode {
    /// The code as the spec spells it (`BLOB_UNKNOWN`).
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::Other(code) => code,
        }
    }

    /// Parse a code as sent by a registry.
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "BLOB_UNKNOWN" => ErrorCode::BlobUnknown,
            "BLOB_UPLOAD_INVALID" => ErrorCode::BlobUploadInvalid,
            "BLOB_UPLOAD_UNKNOWN" => ErrorCode::BlobUploadUnknown,
            "DIGEST_INVALID" => ErrorCode::DigestInvalid,
            "MANIFEST_BLOB_UNKNOWN" => ErrorCode::ManifestBlobUnknown,
            "MANIFEST_INVALID" => ErrorCode::ManifestInvalid,
            "MANIFEST_UNKNOWN" => ErrorCode::ManifestUnknown,
            "NAME_INVALID" => ErrorCode::NameInvalid,
            "NAME_UNKNOWN" => ErrorCode::NameUnknown,
            "SIZE_INVALID" => ErrorCode::SizeInvalid,
            "UNAUTHORIZED" => ErrorCode::Unauthorized,
            "DENIED" => ErrorCode::Denied,
            "UNSUPPORTED" => ErrorCode::Unsupported,
            "TOOMANYREQUESTS" => ErrorCode::TooManyRequests,
            other => ErrorCode::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong serving, pushing, pulling or copying images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A registry answered with an error status (for the server: the error it answers with).
    #[error("{}{status} {}: {message}", what.as_ref().map(|w| format!("{w}: ")).unwrap_or_default(), code.as_ref().map(ErrorCode::as_str).unwrap_or("HTTP"))]
    Api {
        /// What was being done, with the URL's path (never its query or credentials).
        what: Option<String>,
        /// The HTTP status.
        status: u16,
        /// The spec's error code, when the body had one.
        code: Option<ErrorCode>,
        /// The registry's message.
        message: String,
    },
    /// The registry could not be reached, or the connection broke.
    #[error("{what}")]
    Transport {
        /// What was being done, e.g. `GET 127.0.0.1:5000/v2/acme/app/manifests/1`.
        what: String,
        /// The HTTP client's error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The content store failed.
    #[error(transparent)]
    Store(#[from] strata_oci::Error),
    /// A local file failed.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Content from a registry does not hash to the digest it was asked for.
    #[error("{what}: content hashes to {actual}, expected {expected}")]
    DigestMismatch {
        /// What was fetched.
        what: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what came.
        actual: String,
    },
    /// The auth file is invalid.
    #[error("{}: {reason}", path.display())]
    AuthConfig {
        /// The auth file.
        path: PathBuf,
        /// What is wrong, with the key at fault.
        reason: String,
    },
    /// Credentials could not be found or used.
    #[error("credentials for {registry}: {reason}")]
    Credentials {
        /// The registry host.
        registry: String,
        /// What went wrong.
        reason: String,
    },
    /// A reference breaks the reference grammar.
    #[error("invalid image reference {input:?}")]
    Reference {
        /// The reference as given.
        input: String,
        /// What is wrong with it.
        #[source]
        source: strata_reference::Error,
    },
    /// A reference, location or option is invalid.
    #[error("{0}")]
    Invalid(String),
    /// A manifest cannot be used (copied, or its references followed).
    #[error("manifest {digest}")]
    Manifest {
        /// The manifest's digest.
        digest: strata_oci::Digest,
        /// What is wrong with it.
        #[source]
        source: crate::media::ManifestError,
    },
    /// A registry answered with something this client cannot use.
    #[error("{what}: {reason}")]
    Protocol {
        /// What was being done.
        what: String,
        /// What was wrong with the answer.
        reason: String,
    },
}

impl RegistryError {
    /// An API error with a spec code, as the server answers.
    pub fn api(status: u16, code: ErrorCode, message: impl Into<String>) -> RegistryError {
        RegistryError::Api {
            what: None,
            status,
            code: Some(code),
            message: message.into(),
        }
    }

    /// The HTTP status, for errors that have one.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The spec's error code, for errors that have one.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            RegistryError::Api { code, .. } => code.as_ref(),
            _ => None,
        }
    }

    /// True when retrying may succeed: connection failures and timeouts, 408, 429 and 5xx
    /// (except 501), like go-containerregistry's `Temporary()`.
    pub fn is_temporary(&self) -> bool {
        match self {
            RegistryError::Api { status, code, .. } => {
                matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
                    || code.as_ref() == Some(&ErrorCode::TooManyRequests)
            }
            RegistryError::Transport { source, .. } => matches!(
                **source,
                ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::HostNotFound
            ),
            _ => false,
        }
    }
}

/// This crate's result type.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in [
            ErrorCode::BlobUnknown,
            ErrorCode::BlobUploadInvalid,
            ErrorCode::BlobUploadUnknown,
            ErrorCode::DigestInvalid,
            ErrorCode::ManifestBlobUnknown,
            ErrorCode::ManifestInvalid,
            ErrorCode::ManifestUnknown,
            ErrorCode::NameInvalid,
            ErrorCode::NameUnknown,
            ErrorCode::SizeInvalid,
            ErrorCode::Unauthorized,
            ErrorCode::Denied,
            ErrorCode::Unsupported,
            ErrorCode::TooManyRequests,
        ] {
            assert_eq!(ErrorCode::parse(code.as_str()), code);
        }
        assert_eq!(
            ErrorCode::parse("WHATEVER"),
            ErrorCode::Other("WHATEVER".into())
        );
    }

    #[test]
    fn temporary_errors() {
        assert!(RegistryError::api(503, ErrorCode::Unsupported, "busy").is_temporary());
        assert!(RegistryError::api(429, ErrorCode::TooManyRequests, "slow").is_temporary());
        assert!(!RegistryError::api(404, ErrorCode::BlobUnknown, "no").is_temporary());
        assert!(!RegistryError::api(403, ErrorCode::Denied, "no").is_temporary());
        let e = RegistryError::Api {
            what: Some("PUT /v2/a/manifests/1".into()),
            status: 403,
            code: Some(ErrorCode::Denied),
            message: "team apps may not push acme/corebuild".into(),
        };
        assert_eq!(
            e.to_string(),
            "PUT /v2/a/manifests/1: 403 DENIED: team apps may not push acme/corebuild"
        );
    }
}
