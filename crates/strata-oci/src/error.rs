//! The one error type of this crate.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// Everything that can go wrong in the store, the layer writer and the layer reader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed; `path` names the file.
    #[error("{}", path.display())]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A stream (not a named file) failed, e.g. while compressing a layer.
    #[error("{context}")]
    Stream {
        /// What was being read or written.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A string is not a `sha256:<64 lowercase hex>` digest.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest {
        /// The text given.
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Content does not hash to the digest it is stored or referenced under.
    #[error("blob {expected} is corrupt: its content hashes to {actual}")]
    DigestMismatch {
        /// The digest the content should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// A blob's size differs from the size its descriptor declares.
    #[error("blob {digest} has {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// Declared size.
        expected: u64,
        /// Size found.
        actual: u64,
    },
    /// A blob is not in the store.
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    /// The directory is not an OCI image layout.
    #[error("{} is not an OCI image layout: {reason}", path.display())]
    NotALayout {
        /// The directory.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// A string is not an image reference.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference {
        /// The text given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// No image of that reference in the store.
    #[error("image {0} is not in the store")]
    ImageNotFound(String),
    /// JSON in a blob or in `index.json` could not be read or written.
    #[error("{what}: invalid JSON")]
    Json {
        /// The document (e.g. `manifest sha256:...`, `index.json`).
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A descriptor has a media type this operation cannot handle.
    #[error("{digest}: unsupported media type {media_type}")]
    UnsupportedMediaType {
        /// The blob.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// An image is malformed (found by `validate::image` or while reading it).
    #[error("image {image}: {reason}")]
    InvalidImage {
        /// The image (reference or digest).
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// A layer entry cannot be written as given (bad path, out of order, short file ...).
    #[error("layer entry {path:?}: {reason}")]
    LayerEntry {
        /// The entry's path inside the layer.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An archive entry would write outside the extraction root, or is otherwise hostile.
    #[error("unsafe archive entry {path:?}: {reason}")]
    UnsafeEntry {
        /// The entry's path as found in the archive.
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// Another process holds the store in a way that blocks this operation.
    #[error("store {} is busy: {reason}", path.display())]
    Busy {
        /// The store.
        path: PathBuf,
        /// Who holds it.
        reason: String,
    },
}

/// An error and its causes on one line, outermost first (`a: b: c`), as the CLI prints them: how
/// a library writes an error into text it keeps (a build's failure in a summary or the events
/// log). Each error's message holds only its own text; the causes come from `source()`.
pub fn report(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a path to an `io::Error`.
pub(crate) fn io_err(path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> Error {
    let path = path.as_ref().to_path_buf();
    move |source| Error::Io { path, source }
}

/// Attach a description to an `io::Error` from a stream.
pub(crate) fn stream_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| {
        // A digest mismatch detected by a verifying reader travels inside an io::Error.
        match source.downcast::<Error>() {
            Ok(inner) => inner,
            Err(source) => Error::Stream { context, source },
        }
    }
}
