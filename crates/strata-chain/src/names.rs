//! OCI name grammar (the distribution spec's `reference` grammar): repository paths, registry
//! hosts, tags, digests; and splitting a reference into its repository and tag/digest.

/// True when `s` is one repository path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: "." | "_" | "__" | "-"+
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A team name: ASCII letters and digits, with `.`, `_` or `-` between them, at most 64 bytes.
/// Team names appear in the events log, in signatures' key ids and on the command line, so no
/// whitespace or control characters (a newline in a team name would forge lines in `strata log`).
pub fn is_team_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// True when `s` is a repository path: path components joined by `/`, at most 255 characters.
pub fn is_repository_path(s: &str) -> bool {
    s.len() <= 255 && s.split('/').all(is_path_component)
}

/// True when `s` is a registry host: `host[:port]`, the host being dot-separated labels of letters,
/// digits and inner dashes (or `localhost`).
pub fn is_registry_host(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// True when `s` is a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// True when `s` is a sha256 digest: `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// The parts of an image reference `repository[:tag][@digest]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference<'a> {
    /// Everything before the tag and digest, registry host included: `reg:5000/acme/app`.
    pub repository: &'a str,
    /// The tag, without `:`.
    pub tag: Option<&'a str>,
    /// The digest, without `@`.
    pub digest: Option<&'a str>,
}

/// Split a reference into repository, tag and digest. No validation: see [`check_pinned`].
pub fn split_reference(reference: &str) -> Reference<'_> {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    // a tag's colon comes after the last slash (a colon before it is a registry port)
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    Reference {
        repository,
        tag,
        digest,
    }
}

/// Check that `reference` is a well-formed image reference pinned by digest:
/// `[host[:port]/]path[:tag]@sha256:<64 hex>`. The error says what is wrong, on one line.
pub fn check_pinned(reference: &str) -> Result<(), String> {
    let r = split_reference(reference);
    let Some(digest) = r.digest else {
        return Err(format!(
            "image \"{reference}\" is not pinned: add @sha256:<digest> so the base cannot change unseen"
        ));
    };
    if !is_sha256_digest(digest) {
        return Err(format!(
            "image \"{reference}\": digest \"{digest}\" is not sha256: followed by 64 lowercase hex digits"
        ));
    }
    if let Some(tag) = r.tag
        && !is_tag(tag)
    {
        return Err(format!("image \"{reference}\": invalid tag \"{tag}\""));
    }
    let (host, path) = match r.repository.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, r.repository),
    };
    if let Some(host) = host
        && !is_registry_host(host)
    {
        return Err(format!(
            "image \"{reference}\": invalid registry host \"{host}\""
        ));
    }
    if !is_repository_path(path) {
        return Err(format!(
            "image \"{reference}\": invalid repository name \"{path}\" (lowercase letters, digits, and . _ __ - between them)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_components_follow_the_oci_grammar() {
        for ok in [
            "a",
            "corebuild",
            "httpd-php",
            "a__b",
            "a.b",
            "a_b",
            "a---b",
            "0",
        ] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a.-b",
            "a/b",
            "httpd php",
            "é",
        ] {
            assert!(!is_path_component(bad), "{bad}");
        }
        assert!(is_repository_path("acme/platform/corebuild"));
        assert!(!is_repository_path("acme//corebuild"));
    }

    #[test]
    fn hosts_tags_and_digests() {
        assert!(is_registry_host("localhost"));
        assert!(is_registry_host("registry.example.com:5000"));
        assert!(!is_registry_host("registry.example.com:"));
        assert!(!is_registry_host("-bad.com"));
        assert!(is_tag("v1.2_3-rc"));
        assert!(!is_tag(".hidden"));
        assert!(is_sha256_digest(&format!("sha256:{}", "ab".repeat(32))));
        assert!(!is_sha256_digest(&format!("sha256:{}", "AB".repeat(32))));
    }

    #[test]
    fn references_split_at_the_tag_and_digest() {
        let r = split_reference("localhost:5000/acme/app:1.0@sha256:00");
        assert_eq!(r.repository, "localhost:5000/acme/app");
        assert_eq!(r.tag, Some("1.0"));
        assert_eq!(r.digest, Some("sha256:00"));
        let r = split_reference("localhost:5000/acme/app");
        assert_eq!(
            (r.repository, r.tag, r.digest),
            ("localhost:5000/acme/app", None, None)
        );
        assert_eq!(split_reference("corebuild:latest").tag, Some("latest"));
    }

    #[test]
    fn pins_need_a_sha256_digest() {
        let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
        assert!(check_pinned(&format!("docker.io/library/debian:12@{digest}")).is_ok());
        assert!(check_pinned(&format!("debian@{digest}")).is_ok());
        let err = check_pinned("debian:12").unwrap_err();
        assert!(err.contains("not pinned"), "{err}");
        assert!(
            check_pinned("debian@sha256:abc")
                .unwrap_err()
                .contains("64 lowercase hex")
        );
        assert!(
            check_pinned(&format!("Debian@{digest}"))
                .unwrap_err()
                .contains("repository")
        );
    }
}
