//! The package model every reader produces.

use serde::{Deserialize, Serialize};

/// The packaging system a package belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// Debian packages (dpkg).
    Deb,
    /// RPM packages.
    Rpm,
    /// Alpine packages.
    Apk,
}

impl Ecosystem {
    /// `deb`, `rpm` or `apk` (the purl type).
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Apk => "apk",
        }
    }

    /// Compare two versions by this ecosystem's own order.
    pub fn compare(self, a: &str, b: &str) -> std::cmp::Ordering {
        match self {
            Ecosystem::Deb => crate::version::deb::compare(a, b),
            Ecosystem::Rpm => crate::version::rpm::compare_evr(a, b),
            Ecosystem::Apk => crate::version::apk::compare(a, b),
        }
    }
}

impl std::fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One installed package as its database records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// deb, rpm or apk.
    pub ecosystem: Ecosystem,
    /// The binary package's name.
    pub name: String,
    /// The full version: with its epoch where it has one (`1:2.3-4`; rpm: `EPOCH:VERSION-RELEASE`).
    pub version: String,
    /// The architecture (`amd64`, `x86_64`, `noarch`, `all`), empty when the database has none.
    pub arch: String,
    /// The source package's name (the binary's name when the database names no other).
    pub source_name: String,
    /// The source package's version (the binary's version when the database names no other).
    pub source_version: String,
}

impl Package {
    /// The key a package keeps across versions: ecosystem, name, architecture.
    pub fn key(&self) -> (Ecosystem, &str, &str) {
        (self.ecosystem, &self.name, &self.arch)
    }
}

/// The distribution an image is built on, from `/etc/os-release` (or `/usr/lib/os-release`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Distro {
    /// `ID` (`debian`, `rhel`, `alpine`).
    pub id: String,
    /// `VERSION_ID` (`12`, `8.9`, `3.20.1`), empty when absent.
    pub version_id: String,
    /// `PRETTY_NAME`, empty when absent.
    pub pretty_name: String,
}

impl Distro {
    /// Parse os-release text (shell-style `KEY=value` lines, values optionally quoted); `None`
    /// when it names no `ID`.
    pub fn parse(text: &str) -> Option<Distro> {
        let mut distro = Distro::default();
        for line in text.lines().take(1000) {
            let Some((key, value)) = line.trim().split_once('=') else {
                continue;
            };
            let value = unquote(value.trim());
            match key.trim() {
                "ID" => distro.id = value,
                "VERSION_ID" => distro.version_id = value,
                "PRETTY_NAME" => distro.pretty_name = value,
                _ => {}
            }
        }
        (!distro.id.is_empty()).then_some(distro)
    }
}

fn unquote(value: &str) -> String {
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}
