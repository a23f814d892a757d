//! The BerkeleyDB hash file `/var/lib/rpm/Packages` of RHEL 7 and 8, read without BerkeleyDB.
//!
//! Why by hand: no maintained Rust crate reads BerkeleyDB files (the bindings need libdb, whose
//! 6.x licence is AGPL and whose 5.3 is end-of-life), and rpm ≥ 4.16 itself only *reads* them
//! through its own minimal `bdb_ro` backend. What rpm's database needs is small: the hash access
//! method's leaf pages, whose key/data pairs are a 4-byte package number and a header blob, the
//! blob usually on a chain of overflow pages. This reader walks every page once, takes the pairs
//! of hash pages and follows overflow chains with every page number, offset and length checked,
//! a page visited twice in one chain refused (a loop), and totals bounded.
//!
//! Layout (BerkeleyDB 5.x `dbinc/db_page.h`): page 0 is the metadata page (magic `0x061561` at
//! byte 12 in the file's byte order, page size at 20, last page number at 32); every other page
//! starts with a 26-byte header (page number at 8, next page at 16, entry count at 20, `hf_offset`
//! at 22, type at 25) followed, on hash pages (types 2 and 13), by the entries' 16-bit offsets.
//! An entry starts with its kind: 1 (`H_KEYDATA`, the bytes inline, up to the previous entry's
//! offset) or 3 (`H_OFFPAGE`: first overflow page at +4, total length at +8). Overflow pages
//! (type 7) hold `hf_offset` bytes after their header.

use crate::error::{InventoryError, Result, malformed};
use crate::limits::{MAX_HEADER_DATA, MAX_PACKAGES};
use crate::package::Package;

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

struct Db<'a> {
    file: &'a str,
    data: &'a [u8],
    little: bool,
    page_size: usize,
    pages: usize,
}

impl<'a> Db<'a> {
    fn u32_at(&self, bytes: &[u8], at: usize) -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn u16_at(&self, bytes: &[u8], at: usize) -> Option<u16> {
        let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn page(&self, pgno: usize) -> Result<&'a [u8]> {
        if pgno == 0 || pgno >= self.pages {
            return Err(malformed(
                self.file,
                format!("page {pgno}"),
                format!("a page number outside the file's {} pages", self.pages),
            ));
        }
        Ok(&self.data[pgno * self.page_size..(pgno + 1) * self.page_size])
    }

    fn bad(&self, pgno: usize, reason: impl Into<String>) -> InventoryError {
        malformed(self.file, format!("page {pgno}"), reason)
    }

    /// Follow an overflow chain from `first`, `total` bytes long.
    fn overflow(&self, from: usize, first: u32, total: u32) -> Result<Vec<u8>> {
        if total > MAX_HEADER_DATA {
            return Err(self.bad(from, format!("an overflow item of {total} bytes")));
        }
        let mut out = Vec::with_capacity((total as usize).min(self.data.len()));
        let mut visited = vec![false; self.pages];
        let mut pgno = first as usize;
        while pgno != 0 {
            let page = self.page(pgno)?;
            if std::mem::replace(&mut visited[pgno], true) {
                return Err(self.bad(pgno, "an overflow chain that loops back to this page"));
            }
            if page[25] != P_OVERFLOW {
                return Err(self.bad(pgno, format!("type {} in an overflow chain", page[25])));
            }
            let len = self.u16_at(page, 22).unwrap_or(0) as usize;
            if PAGE_HEADER + len > self.page_size {
                return Err(self.bad(
                    pgno,
                    format!("{len} overflow bytes on a {}-byte page", self.page_size),
                ));
            }
            out.extend_from_slice(&page[PAGE_HEADER..PAGE_HEADER + len]);
            if out.len() > total as usize {
                return Err(self.bad(
                    pgno,
                    format!("an overflow chain longer than its {total} bytes"),
                ));
            }
            pgno = self.u32_at(page, 16).unwrap_or(0) as usize;
        }
        if out.len() != total as usize {
            return Err(self.bad(
                first as usize,
                format!(
                    "an overflow chain of {} bytes where {total} were announced",
                    out.len()
                ),
            ));
        }
        Ok(out)
    }

    /// Item `index` of hash page `pgno`.
    fn item(&self, pgno: usize, page: &[u8], entries: usize, index: usize) -> Result<Vec<u8>> {
        let offset_of = |i: usize| self.u16_at(page, PAGE_HEADER + 2 * i).map(usize::from);
        let start =
            offset_of(index).ok_or_else(|| self.bad(pgno, "an entry table past the page"))?;
        let end = if index == 0 {
            self.page_size
        } else {
            offset_of(index - 1).ok_or_else(|| self.bad(pgno, "an entry table past the page"))?
        };
        let table_end = PAGE_HEADER + 2 * entries;
        if start < table_end || start >= end || end > self.page_size {
            return Err(self.bad(pgno, format!("entry {index} at bad offset {start}")));
        }
        let item = &page[start..end];
        match item[0] {
            H_KEYDATA => Ok(item[1..].to_vec()),
            H_OFFPAGE => {
                let (Some(first), Some(total)) = (self.u32_at(item, 4), self.u32_at(item, 8))
                else {
                    return Err(
                        self.bad(pgno, format!("entry {index}: an off-page item cut short"))
                    );
                };
                self.overflow(pgno, first, total)
            }
            kind => Err(self.bad(
                pgno,
                format!("entry {index}: item kind {kind} (rpm stores none)"),
            )),
        }
    }
}

/// The header blobs of a `Packages` hash database, with where each was found.
pub fn header_blobs(file: &str, data: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let meta = |reason: &str| malformed(file, "page 0 (metadata)", reason.to_string());
    let magic = data
        .get(12..16)
        .ok_or_else(|| meta("shorter than a metadata page"))?;
    let little = if u32::from_le_bytes(magic.try_into().unwrap_or_default()) == HASH_MAGIC {
        true
    } else if u32::from_be_bytes(magic.try_into().unwrap_or_default()) == HASH_MAGIC {
        false
    } else {
        return Err(meta("not a BerkeleyDB hash database (bad magic)"));
    };
    let mut db = Db {
        file,
        data,
        little,
        page_size: 0,
        pages: 0,
    };
    let page_size = db.u32_at(data, 20).unwrap_or(0) as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(meta(&format!("page size {page_size}")));
    }
    if data.get(25) != Some(&P_HASHMETA) {
        return Err(meta("page 0 is not a hash metadata page"));
    }
    if data.get(24).is_some_and(|&alg| alg != 0) {
        return Err(meta("an encrypted database"));
    }
    if !data.len().is_multiple_of(page_size) {
        return Err(meta(&format!(
            "{} bytes, not a whole number of {page_size}-byte pages (truncated?)",
            data.len()
        )));
    }
    db.page_size = page_size;
    db.pages = data.len() / page_size;
    let last = db.u32_at(data, 32).unwrap_or(0) as usize;
    if last >= db.pages {
        return Err(meta(&format!(
            "last page {last} beyond the file's {} pages (truncated?)",
            db.pages
        )));
    }
    let mut out = Vec::new();
    for pgno in 1..=last {
        let page = db.page(pgno)?;
        if !matches!(page[25], P_HASH | P_HASH_UNSORTED) {
            continue;
        }
        let entries = db.u16_at(page, 20).unwrap_or(0) as usize;
        if PAGE_HEADER + 2 * entries > page_size || !entries.is_multiple_of(2) {
            return Err(db.bad(pgno, format!("{entries} entries")));
        }
        for pair in 0..entries / 2 {
            let key = db.item(pgno, page, entries, 2 * pair)?;
            let value = db.item(pgno, page, entries, 2 * pair + 1)?;
            let number = match key.as_slice() {
                [a, b, c, d] => {
                    let k = [*a, *b, *c, *d];
                    if little {
                        u32::from_le_bytes(k)
                    } else {
                        u32::from_be_bytes(k)
                    }
                }
                _ => {
                    return Err(db.bad(
                        pgno,
                        format!("a {}-byte key, not a package number", key.len()),
                    ));
                }
            };
            if number == 0 {
                continue; // rpm's record of the next package number, not a header
            }
            if out.len() >= MAX_PACKAGES {
                return Err(crate::error::too_large(
                    file,
                    "packages",
                    out.len() as u64 + 1,
                    MAX_PACKAGES as u64,
                ));
            }
            out.push((format!("page {pgno}, package {number}"), value));
        }
    }
    Ok(out)
}

/// Read the packages of a BerkeleyDB `Packages` file given as bytes (`file` names it in errors).
pub fn parse(file: &str, data: &[u8]) -> Result<Vec<Package>> {
    let blobs = header_blobs(file, data)?;
    super::packages_of(file, blobs.iter().map(|(at, b)| (at.clone(), b.as_slice())))
}
