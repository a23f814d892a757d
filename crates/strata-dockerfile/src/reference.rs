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
        check_digest(d)?;
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

/// A digest as BuildKit's reference parser takes it (go-digest's `Validate`): a registered
/// algorithm (`sha256`, `sha384`, `sha512`) and exactly its length of lower-case hex.
fn check_digest(d: &str) -> Result<(), String> {
    let Some((algo, hex)) = d.split_once(':') else {
        return Err("digest has no algorithm".into());
    };
    // the reference grammar: [A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}
    let grammar = algo.split(['-', '_', '+', '.']).all(|c| {
        c.starts_with(|c: char| c.is_ascii_alphabetic())
            && c.chars().all(|c| c.is_ascii_alphanumeric())
    }) && hex.len() >= 32
        && hex.chars().all(|c| c.is_ascii_hexdigit());
    if !grammar {
        return Err("malformed digest".into());
    }
    let size = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm {algo:?}")),
    };
    if hex.len() != size {
        return Err(format!(
            "invalid checksum digest length: {algo} needs {size} hex digits, not {}",
            hex.len()
        ));
    }
    if hex.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("invalid checksum digest format: hex digits must be lower case".into());
    }
    Ok(())
}

/// Check a platform as BuildKit's `platforms.Parse` does (containerd): `os[/arch[/variant]]`,
/// where the OS may carry `(version+features)`, and a lone component must be a known OS or
/// architecture. The error says what is wrong.
pub fn validate_platform(p: &str) -> Result<(), String> {
    if p.contains('*') {
        return Err("wildcards not yet supported".into());
    }
    let parts: Vec<&str> = p.splitn(4, '/').collect();
    let component = |s: &str, extra: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c) || extra.contains(c))
    };
    // <os>[(<version>[+<feature>]*)]
    let (os, options) = match parts[0].split_once('(') {
        Some((os, rest)) => (
            os,
            Some(rest.strip_suffix(')').ok_or("unclosed OS version")?),
        ),
        None => (parts[0], None),
    };
    if !component(os, "") {
        return Err(format!("{:?} is an invalid OS component", parts[0]));
    }
    if let Some(options) = options {
        let mut pieces = options.split('+');
        let version = pieces.next().unwrap_or_default();
        if !(version.is_empty() || component(version, ".%")) || !pieces.all(|f| component(f, ".%"))
        {
            return Err(format!("{:?} is an invalid OS component", parts[0]));
        }
        if !percent_escapes_ok(options) {
            return Err(format!("{:?} has an invalid escape", parts[0]));
        }
    }
    for part in &parts[1..] {
        if !component(part, ".") {
            return Err(format!("{part:?} is an invalid platform component"));
        }
    }
    match parts.len() {
        1 => {
            let os = os.to_ascii_lowercase();
            let known_os = matches!(
                os.as_str(),
                "aix"
                    | "android"
                    | "darwin"
                    | "macos"
                    | "dragonfly"
                    | "freebsd"
                    | "hurd"
                    | "illumos"
                    | "ios"
                    | "js"
                    | "linux"
                    | "nacl"
                    | "netbsd"
                    | "openbsd"
                    | "plan9"
                    | "solaris"
                    | "windows"
                    | "zos"
            );
            let arch = match os.as_str() {
                "i386" => "386",
                "x86_64" | "x86-64" => "amd64",
                "aarch64" => "arm64",
                "armhf" | "armel" => "arm",
                a => a,
            };
            let known_arch = matches!(
                arch,
                "386"
                    | "amd64"
                    | "amd64p32"
                    | "arm"
                    | "armbe"
                    | "arm64"
                    | "arm64be"
                    | "ppc64"
                    | "ppc64le"
                    | "loong64"
                    | "mips"
                    | "mipsle"
                    | "mips64"
                    | "mips64le"
                    | "mips64p32"
                    | "mips64p32le"
                    | "ppc"
                    | "riscv"
                    | "riscv64"
                    | "s390"
                    | "s390x"
                    | "sparc"
                    | "sparc64"
                    | "wasm"
            );
            if known_os || (options.is_none() && known_arch) {
                Ok(())
            } else {
                Err("unknown operating system or architecture".into())
            }
        }
        2 | 3 => Ok(()),
        _ => Err("cannot parse platform specifier".into()),
    }
}

/// Every `%` starts a `%XX` hex escape (Go's `url.PathUnescape`).
fn percent_escapes_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
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
    fn platforms() {
        for p in [
            "linux",
            "linux/amd64",
            "linux/arm/v7",
            "windows(10.0.17763)/amd64",
            "windows(10.0+win32k)/amd64",
            "arm64",
            "Linux/AMD64",
            "x86_64",
            "linux/made-up",
        ] {
            assert_eq!(validate_platform(p), Ok(()), "{p}");
        }
        for p in [
            "",
            "foo",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/*",
            "linux amd64",
            "linux/amd64 ",
            "lin(ux/amd64",
            "windows(%zz)/amd64",
        ] {
            assert!(validate_platform(p).is_err(), "{p:?}");
        }
    }

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
            "a@sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
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
            // go-digest: wrong length, upper case, unknown algorithm
            "a@sha256:0123456789abcdef0123456789abcdef",
            "a@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
            "a@md5:0123456789abcdef0123456789abcdef",
            "a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00",
        ] {
            assert!(validate_reference(r).is_err(), "{r}");
        }
    }
}
