//! RPM version order: `rpmvercmp` over one version or release string, and the EVR comparison rpm
//! applies to `[EPOCH:]VERSION[-RELEASE]` (rpm 4.18's `rpmverCmp`).

use std::cmp::Ordering;

use super::cmp_digits;

/// rpm's `rpmvercmp`: alphanumeric segments compared in turn (numbers as numbers, letters as
/// strings, a number beats letters), other characters only separate; `~` sorts before everything
/// and `^` after the end of the string but before any further segment.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut one, mut two) = (a.as_bytes(), b.as_bytes());
    let sep = |s: &[u8]| {
        s.iter()
            .take_while(|&&c| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^')
            .count()
    };
    while !one.is_empty() || !two.is_empty() {
        one = &one[sep(one)..];
        two = &two[sep(two)..];
        let (c1, c2) = (one.first().copied(), two.first().copied());
        if c1 == Some(b'~') || c2 == Some(b'~') {
            if c1 != Some(b'~') {
                return Ordering::Greater;
            }
            if c2 != Some(b'~') {
                return Ordering::Less;
            }
            one = &one[1..];
            two = &two[1..];
            continue;
        }
        if c1 == Some(b'^') || c2 == Some(b'^') {
            if c1.is_none() {
                return Ordering::Less;
            }
            if c2.is_none() {
                return Ordering::Greater;
            }
            if c1 != Some(b'^') {
                return Ordering::Greater;
            }
            if c2 != Some(b'^') {
                return Ordering::Less;
            }
            one = &one[1..];
            two = &two[1..];
            continue;
        }
        let (Some(c1), Some(_)) = (c1, c2) else {
            break;
        };
        let numeric = c1.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let n1 = one.iter().take_while(|c| class(c)).count();
        let n2 = two.iter().take_while(|c| class(c)).count();
        if n2 == 0 {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let rc = if numeric {
            cmp_digits(&one[..n1], &two[..n2])
        } else {
            one[..n1].cmp(&two[..n2])
        };
        if rc != Ordering::Equal {
            return rc;
        }
        one = &one[n1..];
        two = &two[n2..];
    }
    match (one.is_empty(), two.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// An EVR split as rpm's `parseEVR` does: leading digits then `:` make the epoch; the release
/// follows the last `-` after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evr<'a> {
    /// The epoch (`None` when absent, compared as `0`).
    pub epoch: Option<&'a str>,
    /// The version.
    pub version: &'a str,
    /// The release (`None` when absent: rpm 4.18's `rpm.vercmp` then sorts it before any
    /// release, even an empty one).
    pub release: Option<&'a str>,
}

impl<'a> Evr<'a> {
    /// Split `evr`.
    pub fn parse(evr: &'a str) -> Evr<'a> {
        let digits = evr.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = if evr.as_bytes().get(digits) == Some(&b':') {
            let e = &evr[..digits];
            (Some(if e.is_empty() { "0" } else { e }), &evr[digits + 1..])
        } else {
            (None, evr)
        };
        match rest.rfind('-') {
            Some(i) => Evr {
                epoch,
                version: &rest[..i],
                release: Some(&rest[i + 1..]),
            },
            None => Evr {
                epoch,
                version: rest,
                release: None,
            },
        }
    }
}

/// Compare two `[EPOCH:]VERSION[-RELEASE]` strings as rpm 4.18's `rpm.vercmp` does.
pub fn compare_evr(a: &str, b: &str) -> Ordering {
    let (a, b) = (Evr::parse(a), Evr::parse(b));
    rpmvercmp(a.epoch.unwrap_or("0"), b.epoch.unwrap_or("0"))
        .then_with(|| rpmvercmp(a.version, b.version))
        .then_with(|| match (a.release, b.release) {
            (Some(x), Some(y)) => rpmvercmp(x, y),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_examples() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0", "1.0a", Less),
            ("1.a", "1.1", Less),
            ("010", "10", Equal),
        ] {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
        }
        assert_eq!(compare_evr("1:1.0-1", "2.0-1"), Greater);
        assert_eq!(compare_evr("1.0-1.el8", "1.0"), Greater);
        assert_eq!(compare_evr("1.0-", "1.0"), Greater);
        assert_eq!(compare_evr("0:1.0", "1.0"), Equal);
    }
}
