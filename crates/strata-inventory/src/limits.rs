//! The bounds strata sets on package databases, which it reads as hostile data.

/// The largest database file read (the rpm BerkeleyDB of a large RHEL image is ~100 MiB).
pub const MAX_DB_FILE: u64 = 512 << 20;
/// The most packages one database may list.
pub const MAX_PACKAGES: usize = 100_000;
/// The longest field value of a text database (dpkg, apk).
pub const MAX_FIELD: usize = 1 << 20;
/// The most files under `/var/lib/dpkg/status.d/`.
pub const MAX_STATUS_D_FILES: usize = 100_000;
/// The most index entries of one rpm header (rpm's own limit, `0xffff`).
pub const MAX_HEADER_TAGS: u32 = 0xffff;
/// The largest data store of one rpm header (rpm's own `headerMaxbytes`, 256 MiB).
pub const MAX_HEADER_DATA: u32 = 256 << 20;
/// The most bytes of database files kept for one filesystem state (all tracked files together).
pub const MAX_TOTAL_DB_BYTES: u64 = 1 << 30;
