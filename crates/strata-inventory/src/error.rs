//! The errors of strata-inventory: each names the database file (and, inside it, the record or page)
//! at fault.

/// Why a package database or an image's inventory could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// A database file is malformed: `file` names it, `at` the place inside it (a line, a page, a
    /// record), `reason` what is wrong.
    #[error("{file}: {at}: {reason}")]
    Malformed {
        /// The database file (e.g. `/var/lib/rpm/Packages`).
        file: String,
        /// Where inside it (`line 12`, `page 7`, `header 3`).
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// A database file or a count inside it is over a bound strata sets for hostile input.
    #[error("{file}: {what} is {found}, over the limit of {limit}")]
    TooLarge {
        /// The database file.
        file: String,
        /// What was counted (`size`, `packages`, `index entries`).
        what: &'static str,
        /// What the file holds or claims.
        found: u64,
        /// The bound.
        limit: u64,
    },
    /// The sqlite rpm database could not be opened or queried.
    #[error("{file}: the sqlite rpm database cannot be read")]
    Sqlite {
        /// The database file.
        file: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A temporary copy of a database could not be written.
    #[error("{file}: cannot write a temporary copy")]
    TempCopy {
        /// The database file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A layer of an image could not be read from the store.
    #[error("layer {index} ({digest}) of {image}")]
    Layer {
        /// The image.
        image: String,
        /// Its position, 0 = bottom.
        index: usize,
        /// Its blob digest.
        digest: String,
        /// The store's error.
        source: strata_oci::Error,
    },
    /// A layer's tar stream is broken.
    #[error("layer {index} ({digest}) of {image}: the tar stream cannot be read")]
    LayerStream {
        /// The image.
        image: String,
        /// Its position, 0 = bottom.
        index: usize,
        /// Its blob digest.
        digest: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store's tags, or the manifests and configs of the images whose packages the index did
    /// not hold, could not be read.
    #[error("cannot read the images of the store")]
    Images {
        /// strata-inspect's error.
        source: strata_inspect::InspectError,
    },
    /// An image asked for by manifest digest is not in the store.
    #[error("no image {digest} in the store")]
    NoImage {
        /// The manifest digest.
        digest: String,
    },
    /// A database read from layer `index` of `image` is malformed.
    #[error("{image}, after layer {index}")]
    InLayer {
        /// The image.
        image: String,
        /// The layer after which the database state was read.
        index: usize,
        /// The database's error.
        source: Box<InventoryError>,
    },
}

/// The result type of strata-inventory.
pub type Result<T, E = InventoryError> = std::result::Result<T, E>;

pub(crate) fn malformed(
    file: &str,
    at: impl Into<String>,
    reason: impl Into<String>,
) -> InventoryError {
    InventoryError::Malformed {
        file: file.to_string(),
        at: at.into(),
        reason: reason.into(),
    }
}

pub(crate) fn too_large(file: &str, what: &'static str, found: u64, limit: u64) -> InventoryError {
    InventoryError::TooLarge {
        file: file.to_string(),
        what,
        found,
        limit,
    }
}
