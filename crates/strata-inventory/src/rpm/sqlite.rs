//! The sqlite rpm database (`rpmdb.sqlite`): table `Packages(hnum INTEGER PRIMARY KEY, blob BLOB)`,
//! one header blob per package. The file is written to a private temporary copy and opened
//! read-only there (never the layer's bytes in place, and never with write access), with SQLite's
//! own defences against corrupt files enabled.

use std::io::Write;

use rusqlite::{Connection, OpenFlags};

use crate::error::{InventoryError, Result};
use crate::limits::MAX_PACKAGES;
use crate::package::Package;

/// Read the packages of an `rpmdb.sqlite` given as bytes (`file` names it in errors).
pub fn parse(file: &str, data: &[u8]) -> Result<Vec<Package>> {
    parse_in(file, data, &std::env::temp_dir())
}

/// [`parse`], with the private copy made in a new directory under `temp` (removed, with
/// everything SQLite wrote beside the copy, before returning).
pub fn parse_in(file: &str, data: &[u8], temp: &std::path::Path) -> Result<Vec<Package>> {
    let temp_err = |source| InventoryError::TempCopy {
        file: file.to_string(),
        source,
    };
    // A private directory, not a lone temporary file: SQLite opens a WAL-mode database (rpm's
    // default) with `-wal` and `-shm` files beside it, which a read-only connection leaves behind;
    // they go with the directory.
    let dir = tempfile::tempdir_in(temp).map_err(temp_err)?;
    let path = dir.path().join("rpmdb.sqlite");
    let mut copy = std::fs::File::create(&path).map_err(temp_err)?;
    copy.write_all(data).map_err(temp_err)?;
    copy.flush().map_err(temp_err)?;
    drop(copy);
    let sql = |source| InventoryError::Sqlite {
        file: file.to_string(),
        source,
    };
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    // A hostile file must not make SQLite trust its schema text or run anything it names.
    conn.pragma_update(None, "trusted_schema", false)
        .map_err(sql)?;
    conn.pragma_update(None, "cell_size_check", true)
        .map_err(sql)?;
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(sql)?;
    let mut rows = stmt.query([]).map_err(sql)?;
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some(row) = rows.next().map_err(sql)? {
        if blobs.len() >= MAX_PACKAGES {
            return Err(crate::error::too_large(
                file,
                "packages",
                blobs.len() as u64 + 1,
                MAX_PACKAGES as u64,
            ));
        }
        let hnum: i64 = row.get(0).map_err(sql)?;
        let blob: Vec<u8> = row.get(1).map_err(sql)?;
        blobs.push((format!("header {hnum}"), blob));
    }
    drop(rows);
    drop(stmt);
    drop(conn);
    drop(dir);
    super::packages_of(file, blobs.iter().map(|(at, b)| (at.clone(), b.as_slice())))
}
