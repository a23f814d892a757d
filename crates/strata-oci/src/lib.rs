//! The strata content store: an OCI image layout with atomic, digest-checked blobs, and
//! deterministic tar layers.
//!
//! The main type is [`Store`], an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/`) that skopeo, umoci and podman read as `oci:DIR:REF`. The key decision, after
//! go-containerregistry: a small immutable vocabulary ([`Digest`], oci-spec's `Descriptor`,
//! [`Image`], [`tar::Layer`]) with the store, the layer tar format, compression, tags, fsck, gc and
//! referrers in separate modules over it. Images are never edited in place: a builder writes
//! layers ([`tar::LayerWriter`]), then a config and manifest ([`Store::write_image`]), then tags
//! ([`Refs::tag`]).
//!
//! The store's jobs are split into views, one module each: [`Store::blobs`] ([`Blobs`]: write,
//! read and verify content), [`Store::refs`] ([`Refs`]: tags and roots in `index.json`),
//! [`Store::repos`] ([`Repos`]: which repository holds what) and [`Store::maintenance`]
//! ([`Maintenance`]: gc, fsck, repair).
//!
//! Guarantees: blobs are written to a temp file, hashed while written, fsynced and renamed, and
//! checked against their digest when read; `index.json` changes under an exclusive lock with an
//! atomic replace; layers are byte-for-byte reproducible from their entries; the unpacker never
//! writes outside its root: every write goes through [`rootdir::Root`], the one symlink-safe
//! resolver (`openat2` `RESOLVE_IN_ROOT`, or an `O_NOFOLLOW` walk), relative to a directory
//! descriptor. Writers that produce blobs before tagging them hold a [`Lease`] so
//! `gc` cannot remove them halfway.

#![deny(missing_docs)]

pub mod annotations;
pub mod archive;
pub mod blob;
pub mod compress;
pub mod digest;
pub mod document;
pub mod error;
pub mod fault;
pub mod fsck;
pub mod fsindex;
pub mod gc;
pub mod image;
pub mod image_config;
pub mod index;
pub mod index_cache;
pub mod layer_index;
pub mod layout;
pub mod member_memo;
pub mod membership;
pub mod reference;
pub mod referrers;
pub mod rootdir;
pub mod roots;
pub mod scoped;
pub mod squash;
pub mod tar;
mod walk;

#[cfg(any(test, feature = "test-util"))]
pub mod random;
#[cfg(any(test, feature = "test-util"))]
pub mod validate;

pub use blob::{BlobInfo, BlobWriter, Blobs, ParkedBlob, VerifyingReader};
pub use compress::Compression;
pub use digest::{Algorithm, Digest};
pub use error::{Error, Result, report};
pub use fsck::{FsckReport, Problem, ProblemKind, RepairReport};
pub use gc::{GcOptions, GcReport, Maintenance};
pub use image::Image;
pub use index::{Refs, Tag};
pub use index_cache::IndexBatch;
pub use layout::{Lease, NamedLock, Store};
pub use membership::Repos;
pub use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
pub use reference::Reference;
pub use rootdir::{Follow, Root, RootError};
pub use roots::Roots;
pub use squash::Squash;
