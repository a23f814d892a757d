//! apk's database: `/lib/apk/db/installed`, stanzas of `X:value` lines separated by blank lines
//! (apk-tools' "installed database" format: `P` name, `V` version, `A` architecture, `o` origin,
//! i.e. the source package; the `F`/`R` file lines are skipped).

use crate::error::{Result, malformed, too_large};
use crate::limits::{MAX_FIELD, MAX_PACKAGES};
use crate::package::{Ecosystem, Package};

/// Parse an apk installed database (`file` names it in errors).
pub fn parse_installed(file: &str, data: &[u8]) -> Result<Vec<Package>> {
    let text = std::str::from_utf8(data).map_err(|e| {
        let line = data[..e.valid_up_to()]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1;
        malformed(file, format!("line {line}"), "not UTF-8")
    })?;
    let mut out = Vec::new();
    let (mut name, mut version, mut arch, mut origin) = (None, None, None, None);
    let mut start = 1;
    let mut flush = |name: &mut Option<&str>,
                     version: &mut Option<&str>,
                     arch: &mut Option<&str>,
                     origin: &mut Option<&str>,
                     start: usize|
     -> Result<()> {
        let (n, v, a, o) = (name.take(), version.take(), arch.take(), origin.take());
        let Some(n) = n else { return Ok(()) };
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            return Err(malformed(
                file,
                format!("line {start} (package {n})"),
                "a package without a V: version",
            ));
        };
        if out.len() >= MAX_PACKAGES {
            return Err(too_large(
                file,
                "packages",
                out.len() as u64 + 1,
                MAX_PACKAGES as u64,
            ));
        }
        out.push(Package {
            ecosystem: Ecosystem::Apk,
            name: n.to_string(),
            version: v.to_string(),
            arch: a.unwrap_or_default().to_string(),
            source_name: o.filter(|o| !o.is_empty()).unwrap_or(n).to_string(),
            source_version: v.to_string(),
        });
        Ok(())
    };
    for (k, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            flush(&mut name, &mut version, &mut arch, &mut origin, start)?;
            start = k + 2;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(malformed(
                file,
                format!("line {}", k + 1),
                "a line without ':'",
            ));
        };
        if value.len() > MAX_FIELD {
            return Err(too_large(
                file,
                "field length",
                value.len() as u64,
                MAX_FIELD as u64,
            ));
        }
        match key {
            "P" => name = Some(value),
            "V" => version = Some(value),
            "A" => arch = Some(value),
            "o" => origin = Some(value),
            _ => {}
        }
    }
    flush(&mut name, &mut version, &mut arch, &mut origin, start)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_with_origins() {
        let db = b"C:Q1abc=\nP:libssl3\nV:3.1.4-r5\nA:x86_64\no:openssl\nF:lib\nR:libssl.so.3\n\nP:musl\nV:1.2.4-r2\nA:x86_64\n\n";
        let p = parse_installed("/lib/apk/db/installed", db).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].source_name.as_str(), p[1].source_name.as_str()),
            ("openssl", "musl")
        );
    }
}
