//! A check of image references against the distribution reference grammar
//! (`[host[:port]/]name[:tag][@digest]`, lower-case repository path).

/// Check `r` is a well-formed image reference; the error says what is wrong (without `r`).
pub fn validate_reference(r: &str) -> Result<(), String> {
    let bad = |why: &str| Err(why.to_string());
    if r.is_empty() {
        return bad("empty reference");
    }
    let (name_tag, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let Some((algo, hex)) = d.split_once(':') else {
            return bad("digest has no algorithm");
        };
        let algo_ok = !algo.is_empty()
            && algo
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
        if !algo_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return bad("malformed digest");
        }
    }
    // a tag is after the last ':' that follows the last '/'
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(tag) = tag {
        let mut chars = tag.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !first_ok
            || tag.len() > 128
            || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return bad("malformed tag");
        }
    }
    if name.is_empty() || name.len() > 255 {
        return bad("malformed repository name");
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // the first part is a host when it has a '.', a ':' or is localhost (and more follow)
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            let (host, port) = match first.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (first, None),
            };
            let host_ok = !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty()
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            let port_ok =
                port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            if !host_ok || !port_ok {
                return bad("malformed registry host");
            }
            parts.remove(0);
        }
    }
    for part in parts {
        if part.chars().any(|c| c.is_ascii_uppercase()) {
            return bad("repository name must be lowercase");
        }
        if !path_component_ok(part) {
            return bad("malformed repository name");
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn path_component_ok(p: &str) -> bool {
    let b = p.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    let run = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && alnum(b[*i]) {
            *i += 1;
        }
        *i > s
    };
    if !run(&mut i) {
        return false;
    }
    while i < b.len() {
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !run(&mut i) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_references() {
        for r in [
            "alpine",
            "alpine:3.20",
            "library/golang:1.23-alpine",
            "registry.example.com:5000/team/corebuild:1.0",
            "localhost/app",
            "ghcr.io/org/a__b/c-d.e:latest",
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(validate_reference(r), Ok(()), "{r}");
        }
    }

    #[test]
    fn bad_references() {
        for r in [
            "",
            "Alpine",
            "a:b:c",
            "a/-b",
            "a//b",
            "a:",
            "a@sha256:xyz",
            "a b",
        ] {
            assert!(validate_reference(r).is_err(), "{r}");
        }
    }
}
