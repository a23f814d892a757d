//! What `strata init` writes: the article's three-tier example chain ([`scaffold`]) and its bought
//! base, a deterministic busybox root filesystem tarball ([`rootfs`]).
//!
//! Kept out of `strata-chain` so the chain stays a pure model (no files written, no tarballs), and
//! so the test helpers (`strata-testutil`) write their busybox root filesystems with the same
//! writer as the example.

#![deny(missing_docs)]

pub mod rootfs;
pub mod scaffold;
