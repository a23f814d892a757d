//! Reading layers: a tar archive over a blob whose compression is detected by its magic bytes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use ::tar::{Archive, EntryType};
use oci_spec::image::Descriptor;

use crate::blob::VerifyingReader;
use crate::compress::Decoder;
use crate::digest::Digest;
use crate::error::{Result, stream_err};
use crate::layout::Store;

/// A tar archive over `reader`, decompressing gzip or zstd when the stream starts with their
/// magic bytes.
pub fn layer_archive<R: Read>(reader: R) -> Result<Archive<Decoder<R>>> {
    let decoder = Decoder::detect(reader).map_err(stream_err("reading a layer"))?;
    Ok(Archive::new(decoder))
}

/// The kind of a tar entry, as listed by [`list_entries`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKindInfo {
    /// Directory.
    Dir,
    /// Regular file.
    File,
    /// Symlink.
    Symlink,
    /// Hard link.
    Hardlink,
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// Named pipe.
    Fifo,
    /// Anything else (e.g. GNU sparse files), with the tar type byte.
    Other(u8),
}

/// A summary of one tar entry: everything but its content.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EntryInfo {
    /// The path as stored (PAX `path` applied; a trailing `/` of directories removed).
    pub path: PathBuf,
    /// What it is.
    pub kind: EntryKindInfo,
    /// Permission bits incl. setuid/setgid/sticky.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// User name field (strata writes it empty).
    pub uname: String,
    /// Group name field (strata writes it empty).
    pub gname: String,
    /// Modification time (PAX `mtime` applied).
    pub mtime: u64,
    /// Content size.
    pub size: u64,
    /// Symlink or hard-link target.
    pub link: Option<PathBuf>,
    /// Device numbers of devices.
    pub device: Option<(u32, u32)>,
    /// The sha256 of a regular file's content.
    pub content_digest: Option<Digest>,
    /// xattrs from PAX `SCHILY.xattr.*` records.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Whether this entry was preceded by a PAX extended header.
    pub pax: bool,
}

/// List every entry of a (possibly compressed) tar stream, hashing file contents.
pub fn list_entries<R: Read>(reader: R) -> Result<Vec<EntryInfo>> {
    let mut archive = layer_archive(reader)?;
    let mut out = Vec::new();
    let err = || stream_err("reading layer entries");
    for entry in archive.entries().map_err(err())? {
        let mut entry = entry.map_err(err())?;
        let mut xattrs = BTreeMap::new();
        let mut pax_mtime = None;
        let mut pax = false;
        if let Some(extensions) = entry.pax_extensions().map_err(err())? {
            pax = true;
            for ext in extensions {
                let ext = ext.map_err(err())?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(name.to_string(), ext.value_bytes().to_vec());
                } else if key == "mtime" {
                    pax_mtime = ext
                        .value()
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse().ok());
                }
            }
        }
        let header = entry.header().clone();
        let kind = match header.entry_type() {
            EntryType::Directory => EntryKindInfo::Dir,
            EntryType::Regular | EntryType::Continuous => EntryKindInfo::File,
            EntryType::Symlink => EntryKindInfo::Symlink,
            EntryType::Link => EntryKindInfo::Hardlink,
            EntryType::Char => EntryKindInfo::Char,
            EntryType::Block => EntryKindInfo::Block,
            EntryType::Fifo => EntryKindInfo::Fifo,
            other => EntryKindInfo::Other(other.as_byte()),
        };
        let mut path_bytes = entry.path_bytes().into_owned();
        while path_bytes.len() > 1 && path_bytes.ends_with(b"/") {
            path_bytes.pop();
        }
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(&path_bytes));
        let link = entry
            .link_name_bytes()
            .map(|l| PathBuf::from(std::ffi::OsStr::from_bytes(&l)));
        let device = match kind {
            EntryKindInfo::Char | EntryKindInfo::Block => Some((
                header.device_major().ok().flatten().unwrap_or(0),
                header.device_minor().ok().flatten().unwrap_or(0),
            )),
            _ => None,
        };
        let size = entry.size();
        let content_digest = if kind == EntryKindInfo::File {
            let mut hasher = crate::digest::HashingReader::new(&mut entry);
            std::io::copy(&mut hasher, &mut std::io::sink()).map_err(err())?;
            Some(hasher.finish().0)
        } else {
            None
        };
        out.push(EntryInfo {
            path,
            kind,
            mode: header.mode().unwrap_or(0),
            uid: header.uid().unwrap_or(0),
            gid: header.gid().unwrap_or(0),
            uname: String::from_utf8_lossy(header.username_bytes().unwrap_or_default())
                .into_owned(),
            gname: String::from_utf8_lossy(header.groupname_bytes().unwrap_or_default())
                .into_owned(),
            mtime: pax_mtime.unwrap_or_else(|| header.mtime().unwrap_or(0)),
            size,
            link,
            device,
            content_digest,
            xattrs,
            pax,
        });
    }
    Ok(out)
}

impl Store {
    /// Open a layer blob as a tar archive (compression detected). The underlying reader verifies
    /// the blob's digest when read to the end.
    pub fn open_layer(
        &self,
        descriptor: &Descriptor,
    ) -> Result<Archive<Decoder<VerifyingReader<File>>>> {
        let digest = Digest::from_oci(descriptor.digest())?;
        layer_archive(self.blobs().open(&digest)?)
    }

    /// List a stored layer's entries (see [`list_entries`]); the blob's digest is verified.
    pub fn layer_entries(&self, descriptor: &Descriptor) -> Result<Vec<EntryInfo>> {
        let digest = Digest::from_oci(descriptor.digest())?;
        let mut reader = self.blobs().open(&digest)?;
        let entries = list_entries(&mut reader)?;
        reader.finish()?;
        Ok(entries)
    }
}
