//! Debian version order (deb-version(7)): `[epoch:]upstream[-revision]`, compared as dpkg's
//! `verrevcmp` does.

use std::cmp::Ordering;

use super::cmp_digits;

/// A Debian version split into its three parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebVersion<'a> {
    /// The epoch's digits (`""` when absent, which is 0).
    pub epoch: &'a str,
    /// The upstream version.
    pub upstream: &'a str,
    /// The Debian revision (`""` when absent).
    pub revision: &'a str,
}

impl<'a> DebVersion<'a> {
    /// Split `version` at the first `:` and the last `-`, as dpkg does.
    pub fn parse(version: &'a str) -> DebVersion<'a> {
        let version = version.trim();
        let (epoch, rest) = match version.split_once(':') {
            Some((e, rest)) => (e, rest),
            None => ("", version),
        };
        let (upstream, revision) = match rest.rfind('-') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        DebVersion {
            epoch,
            upstream,
            revision,
        }
    }
}

/// Compare two Debian versions (`dpkg --compare-versions A lt B` ⇔ `compare(A, B) == Less`).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (DebVersion::parse(a), DebVersion::parse(b));
    cmp_digits(a.epoch.as_bytes(), b.epoch.as_bytes())
        .then_with(|| verrevcmp(a.upstream.as_bytes(), b.upstream.as_bytes()))
        .then_with(|| verrevcmp(a.revision.as_bytes(), b.revision.as_bytes()))
}

/// dpkg's weight of a non-digit character: `~` below the end of the string, letters below
/// everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// Compare one part (upstream or revision): alternating non-digit and digit runs.
fn verrevcmp(mut a: &[u8], mut b: &[u8]) -> Ordering {
    let digit = |s: &[u8]| s.first().is_some_and(u8::is_ascii_digit);
    while !a.is_empty() || !b.is_empty() {
        while (!a.is_empty() && !digit(a)) || (!b.is_empty() && !digit(b)) {
            let (ac, bc) = (order(a.first().copied()), order(b.first().copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            a = a.get(1..).unwrap_or_default();
            b = b.get(1..).unwrap_or_default();
        }
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let rc = cmp_digits(&a[..da], &b[..db]);
        if rc != Ordering::Equal {
            return rc;
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_policy_examples() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0~rc1-1", "1.0-1", Less),
            ("1.0-1", "1.0-1+b1", Less),
            ("1:0.9", "2.0", Greater),
            ("3.0.11-1~deb12u2", "3.0.11-1", Less),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
            ("1.0a", "1.0+", Less),
            ("1.0", "1.0-0", Equal),
            ("1.0~~", "1.0~", Less),
            ("001", "1", Equal),
            ("1.2.3~bpo12+1", "1.2.3", Less),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
        }
    }
}
