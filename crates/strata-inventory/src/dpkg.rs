//! dpkg's database: `/var/lib/dpkg/status` (deb822 stanzas, one per package) and distroless's
//! `/var/lib/dpkg/status.d/NAME` (one stanza, or a few, per file).
//!
//! Only stanzas whose `Status` says `installed` count (a `deinstall ok config-files` package left
//! its configuration files behind, not the package); distroless files carry no `Status` and are
//! all installed. `Source: NAME (VERSION)` gives the source package and its version when they
//! differ from the binary's.

use crate::error::{Result, malformed, too_large};
use crate::limits::{MAX_FIELD, MAX_PACKAGES};
use crate::package::{Ecosystem, Package};

/// Parse a dpkg status file (`file` names it in errors).
pub fn parse_status(file: &str, data: &[u8]) -> Result<Vec<Package>> {
    let mut out = Vec::new();
    parse_into(file, data, true, &mut out)?;
    Ok(out)
}

/// Parse one distroless `status.d` file: stanzas without `Status` are installed.
pub fn parse_status_d(file: &str, data: &[u8]) -> Result<Vec<Package>> {
    let mut out = Vec::new();
    parse_into(file, data, false, &mut out)?;
    Ok(out)
}

#[derive(Default)]
struct Stanza<'a> {
    line: usize,
    package: Option<&'a str>,
    version: Option<&'a str>,
    arch: Option<&'a str>,
    source: Option<&'a str>,
    status: Option<&'a str>,
}

fn parse_into(file: &str, data: &[u8], need_status: bool, out: &mut Vec<Package>) -> Result<()> {
    let text = std::str::from_utf8(data).map_err(|e| {
        let line = data[..e.valid_up_to()]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1;
        malformed(file, format!("line {line}"), "not UTF-8")
    })?;
    let mut stanza = Stanza::default();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            finish(file, &mut stanza, need_status, out)?;
            continue;
        }
        if line.starts_with([' ', '\t']) || line.starts_with('#') {
            continue; // a continuation line of a multi-line field, or a comment
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(malformed(
                file,
                format!("line {}", n + 1),
                "a field line without ':'",
            ));
        };
        let value = value.trim();
        if value.len() > MAX_FIELD {
            return Err(too_large(
                file,
                "field length",
                value.len() as u64,
                MAX_FIELD as u64,
            ));
        }
        if stanza.package.is_none() && stanza.line == 0 {
            stanza.line = n + 1;
        }
        match key {
            "Package" => stanza.package = Some(value),
            "Version" => stanza.version = Some(value),
            "Architecture" => stanza.arch = Some(value),
            "Source" => stanza.source = Some(value),
            "Status" => stanza.status = Some(value),
            _ => {}
        }
    }
    finish(file, &mut stanza, need_status, out)
}

fn finish(
    file: &str,
    stanza: &mut Stanza<'_>,
    need_status: bool,
    out: &mut Vec<Package>,
) -> Result<()> {
    let s = std::mem::take(stanza);
    let Some(name) = s.package else {
        return Ok(()); // blank lines, or a stanza without a package (nothing to count)
    };
    let installed = match s.status {
        Some(status) => status.split_whitespace().last() == Some("installed"),
        None => !need_status,
    };
    if !installed {
        return Ok(());
    }
    let at = || format!("line {} (package {name})", s.line);
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(malformed(
            file,
            at(),
            "a package name that is empty or holds spaces",
        ));
    }
    let Some(version) = s.version.filter(|v| !v.is_empty()) else {
        return Err(malformed(
            file,
            at(),
            "an installed package without a Version",
        ));
    };
    let (source_name, source_version) = match s.source {
        Some(source) => match source.split_once('(') {
            Some((n, v)) => (n.trim(), v.trim().trim_end_matches(')').trim()),
            None => (source.trim(), version),
        },
        None => (name, version),
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
        ecosystem: Ecosystem::Deb,
        name: name.to_string(),
        version: version.to_string(),
        arch: s.arch.unwrap_or_default().to_string(),
        source_name: if source_name.is_empty() {
            name
        } else {
            source_name
        }
        .to_string(),
        source_version: source_version.to_string(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_stanzas_with_sources() {
        let text = b"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\nDescription: x\n more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: libc6\nStatus: install ok installed\nSource: glibc (2.36-9)\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\n";
        let p = parse_status("/var/lib/dpkg/status", text).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source_name, "openssl");
        assert_eq!(p[0].source_version, "3.0.11-1~deb12u2");
        assert_eq!(p[1].source_version, "2.36-9");
        assert_eq!(p[1].version, "2.36-9+deb12u4");
    }

    #[test]
    fn a_stanza_without_version_is_named() {
        let err = parse_status(
            "/var/lib/dpkg/status",
            b"Package: x\nStatus: install ok installed\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/var/lib/dpkg/status: line 1 (package x)"),
            "{err}"
        );
    }
}
