//! strata's reference parsers agree: the store's `Reference`, the client's `RemoteRef`, the
//! chain's pinned-base check, the Dockerfile parser's FROM check and the server's repository
//! names all answer as `strata_reference` (docker/distribution's grammar) does. Before there was
//! one grammar they disagreed on every input below.

use strata_remote::RemoteRef;

const SHA256: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Inputs that named a registry, carried a digest, and on which the five used to disagree.
fn disputed() -> Vec<String> {
    let long = "a".repeat(250);
    vec![
        format!("Foo/bar@{SHA256}"),
        format!("docker.io/busybox@{SHA256}"),
        format!("index.docker.io/library/busybox:1@{SHA256}"),
        format!("host:/x@{SHA256}"),
        format!("-bad.example.com/x@{SHA256}"),
        format!("example.com./x@{SHA256}"),
        format!("registry.example.com/{long}@{SHA256}"),
        format!("[::1]:5000/x:1@{SHA256}"),
        format!("registry.example.com:123456/x@{SHA256}"),
        format!("localhost:5000/Acme/x@{SHA256}"),
        format!("localhost:5000/acme/x:-bad@{SHA256}"),
        "localhost:5000/acme/x@sha256:0123".to_string(),
    ]
}

#[test]
fn every_parser_accepts_what_the_grammar_accepts() {
    let mut disagreements = Vec::new();
    for input in disputed() {
        let grammar = strata_reference::parse(&input);
        let answers = [
            ("store", strata_oci::Reference::parse(&input).is_ok()),
            ("client", RemoteRef::parse(&input).is_ok()),
            ("chain", strata_chain::names::check_pinned(&input).is_ok()),
            (
                "dockerfile",
                strata_dockerfile::validate_reference(&input).is_ok(),
            ),
        ];
        for (who, accepted) in answers {
            if accepted != grammar.is_ok() {
                disagreements.push(format!(
                    "{who} {} {input:?}; the grammar says {grammar:?}",
                    if accepted { "accepts" } else { "refuses" }
                ));
            }
        }
        // The server names repositories by their path (a host with a port is no path).
        if let Ok(parsed) = &grammar {
            let served = format!("{}/{}", parsed.domain().unwrap_or_default(), parsed.path());
            let path_ok = strata_reference::is_repository_path(&served);
            if strata_registry::server::route::valid_name(&served) != path_ok {
                disagreements.push(format!("the server disagrees on the name {served:?}"));
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn the_store_and_the_client_normalise_alike() {
    for (input, normal) in [
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/busybox:1", "docker.io/library/busybox:1"),
        (
            "Registry.Example.com/acme/x",
            "Registry.Example.com/acme/x:latest",
        ),
    ] {
        assert_eq!(
            strata_oci::Reference::parse(input).unwrap().to_string(),
            normal,
            "store: {input}"
        );
        assert_eq!(
            RemoteRef::parse(input).unwrap().to_string(),
            normal,
            "client: {input}"
        );
    }
}
