//! Checks of what FROM lines and `--from` flags name: image references (strata's one grammar,
//! `strata_reference`, which is docker/distribution's as BuildKit uses it) and platforms.

/// Check `r` is a well-formed image reference; the error says what is wrong (without `r`).
pub fn validate_reference(r: &str) -> Result<(), strata_reference::Error> {
    strata_reference::parse(r).map(|_| ())
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
