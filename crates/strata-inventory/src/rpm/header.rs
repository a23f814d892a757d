//! An rpm header as the database stores it (no lead, no magic): `il` index entries and `dl` bytes
//! of data store, both big-endian counts, then `il` × 16-byte entries (tag, type, offset, count),
//! then the data store. Every count and offset is checked before use.

use crate::limits::{MAX_HEADER_DATA, MAX_HEADER_TAGS};
use crate::package::{Ecosystem, Package};

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// The fields strata reads from an rpm header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// NAME.
    pub name: Option<String>,
    /// EPOCH.
    pub epoch: Option<u32>,
    /// VERSION.
    pub version: Option<String>,
    /// RELEASE.
    pub release: Option<String>,
    /// ARCH.
    pub arch: Option<String>,
    /// SOURCERPM (`openssl-3.0.7-1.el9.src.rpm`).
    pub source_rpm: Option<String>,
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

impl Header {
    /// Parse a header blob; the error says what is wrong with it.
    pub fn parse(blob: &[u8]) -> Result<Header, String> {
        let il = be32(blob, 0).ok_or("shorter than a header's 8-byte preamble")?;
        let dl = be32(blob, 4).ok_or("shorter than a header's 8-byte preamble")?;
        if il == 0 || il > MAX_HEADER_TAGS {
            return Err(format!(
                "{il} index entries (1 to {MAX_HEADER_TAGS} allowed)"
            ));
        }
        if dl > MAX_HEADER_DATA {
            return Err(format!(
                "a data store of {dl} bytes (at most {MAX_HEADER_DATA})"
            ));
        }
        let index_end = 8 + il as usize * 16;
        let end = index_end + dl as usize;
        if blob.len() < end {
            return Err(format!(
                "{} bytes, shorter than its {il} index entries and {dl}-byte data store",
                blob.len()
            ));
        }
        let store = &blob[index_end..end];
        let mut header = Header::default();
        for k in 0..il as usize {
            let at = 8 + k * 16;
            let (Some(tag), Some(kind), Some(offset), Some(count)) = (
                be32(blob, at),
                be32(blob, at + 4),
                be32(blob, at + 8),
                be32(blob, at + 12),
            ) else {
                return Err(format!("index entry {k} is cut short"));
            };
            let wanted = matches!(
                tag,
                TAG_NAME | TAG_VERSION | TAG_RELEASE | TAG_EPOCH | TAG_ARCH | TAG_SOURCERPM
            );
            if !wanted {
                continue;
            }
            let offset = offset as usize;
            if offset >= store.len() {
                return Err(format!(
                    "tag {tag}: offset {offset} outside the {}-byte data store",
                    store.len()
                ));
            }
            if tag == TAG_EPOCH {
                if kind != TYPE_INT32 || count < 1 {
                    return Err(format!(
                        "tag {tag}: type {kind} count {count}, not an INT32"
                    ));
                }
                header.epoch =
                    Some(be32(store, offset).ok_or_else(|| {
                        format!("tag {tag}: INT32 at {offset} past the data store")
                    })?);
                continue;
            }
            if !matches!(kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) || count < 1 {
                return Err(format!(
                    "tag {tag}: type {kind} count {count}, not a string"
                ));
            }
            let rest = &store[offset..];
            let len = rest
                .iter()
                .position(|&c| c == 0)
                .ok_or_else(|| format!("tag {tag}: a string at {offset} without its NUL"))?;
            let value = std::str::from_utf8(&rest[..len])
                .map_err(|_| format!("tag {tag}: a string at {offset} that is not UTF-8"))?
                .to_string();
            let slot = match tag {
                TAG_NAME => &mut header.name,
                TAG_VERSION => &mut header.version,
                TAG_RELEASE => &mut header.release,
                TAG_ARCH => &mut header.arch,
                _ => &mut header.source_rpm,
            };
            *slot = Some(value);
        }
        Ok(header)
    }

    /// `[EPOCH:]VERSION-RELEASE`.
    pub fn evr(&self) -> String {
        let mut out = String::new();
        if let Some(epoch) = self.epoch {
            out.push_str(&format!("{epoch}:"));
        }
        out.push_str(self.version.as_deref().unwrap_or_default());
        if let Some(release) = &self.release {
            out.push('-');
            out.push_str(release);
        }
        out
    }

    /// The package this header describes; `None` for a `gpg-pubkey` pseudo-package or a header
    /// without a name or version.
    pub fn package(&self) -> Option<Package> {
        let name = self.name.as_deref()?;
        self.version.as_ref()?;
        if name == "gpg-pubkey" {
            return None;
        }
        let version = self.evr();
        let (source_name, source_version) = self
            .source_rpm
            .as_deref()
            .and_then(split_source_rpm)
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .unwrap_or_else(|| (name.to_string(), version.clone()));
        Some(Package {
            ecosystem: Ecosystem::Rpm,
            name: name.to_string(),
            version,
            arch: self.arch.clone().unwrap_or_default(),
            source_name,
            source_version,
        })
    }
}

/// `openssl-3.0.7-1.el9.src.rpm` → `("openssl", "3.0.7-1.el9")`.
pub fn split_source_rpm(file: &str) -> Option<(&str, &str)> {
    let stem = file
        .strip_suffix(".src.rpm")
        .or_else(|| file.strip_suffix(".nosrc.rpm"))?;
    let release_dash = stem.rfind('-')?;
    let version_dash = stem[..release_dash].rfind('-')?;
    let name = &stem[..version_dash];
    (!name.is_empty()).then_some((name, &stem[version_dash + 1..]))
}

/// Build a header blob with string and INT32 tags (for tests and fixtures of hostile input).
#[doc(hidden)]
pub fn build(tags: &[(u32, HeaderValue<'_>)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut store = Vec::new();
    for (tag, value) in tags {
        let (kind, bytes): (u32, Vec<u8>) = match value {
            HeaderValue::Str(s) => (TYPE_STRING, [s.as_bytes(), &[0]].concat()),
            HeaderValue::Int(i) => {
                while store.len() % 4 != 0 {
                    store.push(0);
                }
                (TYPE_INT32, i.to_be_bytes().to_vec())
            }
        };
        for word in [*tag, kind, store.len() as u32, 1] {
            index.extend_from_slice(&word.to_be_bytes());
        }
        store.extend_from_slice(&bytes);
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&(tags.len() as u32).to_be_bytes());
    blob.extend_from_slice(&(store.len() as u32).to_be_bytes());
    blob.extend_from_slice(&index);
    blob.extend_from_slice(&store);
    blob
}

/// A value for [`build`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum HeaderValue<'a> {
    /// A STRING.
    Str(&'a str),
    /// An INT32.
    Int(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_header_reads_back() {
        let blob = build(&[
            (TAG_NAME, HeaderValue::Str("openssl-libs")),
            (TAG_EPOCH, HeaderValue::Int(1)),
            (TAG_VERSION, HeaderValue::Str("3.0.7")),
            (TAG_RELEASE, HeaderValue::Str("1.el9")),
            (TAG_ARCH, HeaderValue::Str("x86_64")),
            (
                TAG_SOURCERPM,
                HeaderValue::Str("openssl-3.0.7-1.el9.src.rpm"),
            ),
        ]);
        let p = Header::parse(&blob).unwrap().package().unwrap();
        assert_eq!(p.version, "1:3.0.7-1.el9");
        assert_eq!(
            (p.source_name.as_str(), p.source_version.as_str()),
            ("openssl", "3.0.7-1.el9")
        );
    }

    #[test]
    fn bad_offsets_and_counts_are_refused() {
        let mut blob = build(&[(TAG_NAME, HeaderValue::Str("x"))]);
        blob[8 + 8..8 + 12].copy_from_slice(&1000u32.to_be_bytes());
        assert!(Header::parse(&blob).unwrap_err().contains("outside"));
        let mut blob = build(&[(TAG_NAME, HeaderValue::Str("x"))]);
        blob[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Header::parse(&blob).unwrap_err().contains("index entries"));
        let mut blob = build(&[(TAG_NAME, HeaderValue::Str("x"))]);
        blob[4..8].copy_from_slice(&(MAX_HEADER_DATA - 1).to_be_bytes());
        assert!(Header::parse(&blob).unwrap_err().contains("shorter"));
    }
}
