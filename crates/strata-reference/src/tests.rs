use super::*;

const SHA256: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn sha384() -> String {
    format!("sha384:{}", "0123456789abcdef".repeat(6))
}

fn sha512() -> String {
    format!("sha512:{}", "0123456789abcdef".repeat(8))
}

/// What the one grammar answers.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Parsed: the normalised reference and its domain.
    Ok(String, Option<&'static str>),
    /// Refused with this error.
    Err(Error),
}

/// The cases where strata's five former grammars disagreed, with what each said, and what
/// docker/distribution's `ParseNormalizedNamed` (and so this crate) answers. The five were:
/// oci = `strata_oci::Reference::parse`, remote = the client's `RemoteRef::parse`,
/// chain = `strata_chain::names::check_pinned`, dockerfile = `validate_reference`,
/// route = the server's `valid_name`/`valid_tag`/`ManifestRef`.
#[test]
fn the_cases_where_the_five_grammars_disagreed() {
    let long_path = "a".repeat(250);
    let table: Vec<(String, &str, Answer)> = vec![
        (
            "Foo/bar:1".into(),
            "oci, chain, dockerfile refused (upper case in the path); distribution: domain Foo",
            Answer::Ok("Foo/bar:1".into(), Some("Foo")),
        ),
        (
            "docker.io/busybox".into(),
            "oci kept docker.io/busybox; remote added library/",
            Answer::Ok("docker.io/library/busybox".into(), Some("docker.io")),
        ),
        (
            "index.docker.io/library/busybox:1".into(),
            "oci and remote kept index.docker.io, a second name for Docker Hub",
            Answer::Ok("docker.io/library/busybox:1".into(), Some("docker.io")),
        ),
        (
            "index.docker.io/busybox".into(),
            "oci and remote: index.docker.io/busybox, a repository Docker Hub does not have",
            Answer::Ok("docker.io/library/busybox".into(), Some("docker.io")),
        ),
        (
            "host:/x".into(),
            "oci accepted an empty port; chain and dockerfile refused",
            Answer::Err(Error::InvalidDomain("host:".into())),
        ),
        (
            "-bad.example.com/x".into(),
            "oci accepted a label starting with '-'; chain and dockerfile refused",
            Answer::Err(Error::InvalidDomain("-bad.example.com".into())),
        ),
        (
            "example.com./x".into(),
            "oci accepted an empty DNS label; chain and dockerfile refused",
            Answer::Err(Error::InvalidDomain("example.com.".into())),
        ),
        (
            format!("a@{}", sha512()),
            "dockerfile accepted sha512; oci, remote, chain and route refused it",
            Answer::Ok(format!("a@{}", sha512()), None),
        ),
        (
            format!("a@{}", sha384()),
            "dockerfile accepted sha384; oci, remote, chain and route refused it",
            Answer::Ok(format!("a@{}", sha384()), None),
        ),
        (
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            "oci and dockerfile took an image id for a repository name",
            Answer::Err(Error::IdentifierAsName),
        ),
        (
            format!("registry.example.com/{long_path}"),
            "chain counted 255 on the path only and accepted; dockerfile counted the whole name",
            Answer::Err(Error::NameTooLong(271)),
        ),
        (
            format!("{}/{}", "b".repeat(200), "c".repeat(200)),
            "oci had no length limit",
            Answer::Err(Error::NameTooLong(401)),
        ),
        (
            "[::1]:5000/x:1".into(),
            "remote and oci accepted an IPv6 registry; chain and dockerfile refused",
            Answer::Ok("[::1]:5000/x:1".into(), Some("[::1]:5000")),
        ),
        (
            format!("registry.example.com:123456/x@{SHA256}"),
            "chain refused ports of more than 5 digits; the others accepted",
            Answer::Ok(
                format!("registry.example.com:123456/x@{SHA256}"),
                Some("registry.example.com:123456"),
            ),
        ),
        (
            format!("debian:12@{SHA256}"),
            "all agreed: a tag and a digest both stay",
            Answer::Ok(format!("debian:12@{SHA256}"), None),
        ),
        (
            "a@md5:0123456789abcdef0123456789abcdef".into(),
            "all refused; dockerfile alone said the algorithm is unsupported",
            Answer::Err(Error::UnsupportedAlgorithm("md5".into())),
        ),
        (
            format!("a@{}", SHA256.to_uppercase().replace("SHA256", "sha256")),
            "all refused upper-case hex",
            Answer::Err(Error::DigestUppercase),
        ),
        (
            "Alpine".into(),
            "all refused",
            Answer::Err(Error::NameContainsUppercase("Alpine".into())),
        ),
    ];
    let mut wrong = Vec::new();
    for (input, history, expected) in table {
        let got = match parse(&input) {
            Ok(r) => Answer::Ok(
                r.to_string(),
                r.domain().map(|d| &*String::leak(d.to_string())),
            ),
            Err(e) => Answer::Err(e),
        };
        if got != expected {
            wrong.push(format!(
                "{input}: got {got:?}, want {expected:?} ({history})"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn good_references() {
    for (input, domain, path, tag, digest) in [
        ("alpine", None, "alpine", None, None),
        ("alpine:3.20", None, "alpine", Some("3.20"), None),
        (
            "library/golang:1.23-alpine",
            None,
            "library/golang",
            Some("1.23-alpine"),
            None,
        ),
        (
            "registry.example.com:5000/team/corebuild:1.0",
            Some("registry.example.com:5000"),
            "team/corebuild",
            Some("1.0"),
            None,
        ),
        ("localhost/app", Some("localhost"), "app", None, None),
        ("localhost:5000", None, "localhost", Some("5000"), None),
        (
            "ghcr.io/org/a__b/c-d.e:latest",
            Some("ghcr.io"),
            "org/a__b/c-d.e",
            Some("latest"),
            None,
        ),
        (
            "127.0.0.1:5000/acme/app",
            Some("127.0.0.1:5000"),
            "acme/app",
            None,
            None,
        ),
        ("[fe80::1]/x", Some("[fe80::1]"), "x", None, None),
        ("a---b/c_d", None, "a---b/c_d", None, None),
        (
            &format!("busybox@{SHA256}"),
            None,
            "busybox",
            None,
            Some(SHA256),
        ),
    ] {
        let r = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.domain(), domain, "{input}");
        assert_eq!(r.path(), path, "{input}");
        assert_eq!(r.tag(), tag, "{input}");
        assert_eq!(r.digest(), digest, "{input}");
        assert_eq!(parse(&r.to_string()).unwrap(), r, "{input} round trips");
    }
}

#[test]
fn bad_references() {
    for input in [
        "",
        ":tag",
        "@sha256:00",
        "a:b:c",
        "a/-b",
        "a//b",
        "a/",
        "/a",
        "a:",
        "a@",
        "a@sha256:xyz",
        "a b",
        "a..b",
        "a___b",
        "a.-b",
        "a:.tag",
        "a:-tag",
        "a:tag+x",
        "a@sha256:0123456789abcdef0123456789abcdef",
        "a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00",
        "a@sha256",
        "a@1sha:0123456789abcdef0123456789abcdef",
        "my_registry.com/x",
        "[zz::1]/x",
        "[::1/x",
        "é/x",
        "x/é",
        "example.com/Foo",
    ] {
        assert!(parse(input).is_err(), "{input:?} parsed");
    }
    let long_tag = format!("a:{}", "t".repeat(129));
    assert!(matches!(parse(&long_tag), Err(Error::InvalidTag(_))));
    assert!(parse(&format!("a:{}", "t".repeat(128))).is_ok());
    assert!(parse(&"a".repeat(255)).is_ok());
    assert_eq!(parse(&"a".repeat(256)), Err(Error::NameTooLong(256)));
}

#[test]
fn errors_say_what_is_wrong_without_the_input() {
    assert_eq!(
        parse("example.com/Foo").unwrap_err().to_string(),
        "repository name \"Foo\" must be lowercase"
    );
    assert_eq!(
        parse("a@sha256:abcd0123abcd0123abcd0123abcd0123")
            .unwrap_err()
            .to_string(),
        "invalid checksum digest length: sha256 needs 64 hex digits, not 32"
    );
}

#[test]
fn names_hosts_and_tags() {
    assert!(is_repository_path("acme/platform/corebuild"));
    assert!(is_repository_path("docker.io/library/busybox"));
    assert!(!is_repository_path("127.0.0.1:5000/x"));
    assert!(!is_repository_path(&"a".repeat(256)));
    assert!(is_domain("localhost"));
    assert!(is_domain("registry.example.com:5000"));
    assert!(is_domain("[::1]:5000"));
    assert!(!is_domain("registry.example.com:"));
    assert!(!is_domain("[::1]x"));
    assert!(is_tag("v1.2_3-rc") && is_tag("_x") && !is_tag(".hidden") && !is_tag(""));
    assert_eq!(split_domain("acme/app"), (None, "acme/app"));
    assert_eq!(split_domain("localhost/app"), (Some("localhost"), "app"));
}

#[test]
fn split_finds_tag_and_digest_without_checking() {
    let p = split("localhost:5000/acme/app:1.0@sha256:00");
    assert_eq!(
        (p.name, p.tag, p.digest),
        ("localhost:5000/acme/app", Some("1.0"), Some("sha256:00"))
    );
    let p = split("localhost:5000/acme/app");
    assert_eq!(
        (p.name, p.tag, p.digest),
        ("localhost:5000/acme/app", None, None)
    );
    assert_eq!(split("corebuild:latest").tag, Some("latest"));
    assert_eq!(split("[::1]/x").tag, None);
}
