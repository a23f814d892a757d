//! Every strata.toml error is one line naming the file, line, column and field at fault.

use std::path::Path;

use strata_chain::{Chain, ChainError};

/// A chain directory with contexts `a/`, `b/` (each with a Dockerfile), `empty/` (none) and
/// `base.tar`.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for c in ["a", "b"] {
        std::fs::create_dir(dir.path().join(c)).unwrap();
        std::fs::write(dir.path().join(c).join("Dockerfile"), "FROM scratch\n").unwrap();
    }
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    std::fs::write(dir.path().join("base.tar"), b"").unwrap();
    dir
}

/// Load `toml` as `strata.toml` in a fixture; the error with the directory prefix removed.
fn error(toml: &str) -> String {
    let dir = fixture();
    std::fs::write(dir.path().join("strata.toml"), toml).unwrap();
    let err = Chain::load(&dir.path().join("strata.toml")).expect_err("the chain file is invalid");
    let text = err.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    let prefix = format!("{}/", dir.path().display());
    text.replace(&prefix, "")
}

const HEAD: &str = "name = \"acme\"\n\n[teams.operations]\n[teams.middleware]\n\n";

#[test]
fn unknown_top_level_key() {
    assert_eq!(
        error("name = \"acme\"\nregistyr = \"r.example\"\n"),
        "strata.toml:2:1: field `registyr`: unknown field `registyr`, expected one of `name`, `registry`, `require_signatures`, `teams`, `image`, `owners`"
    );
}

#[test]
fn owner_rules_name_another_registry_and_a_declared_team() {
    for (rule, line) in [
        (
            "acme/corebuild",
            "strata.toml:7:1: field `owners.\"acme/corebuild\"`: invalid owner rule",
        ),
        (
            "localhost/ops/*",
            "strata.toml:7:1: field `owners.\"localhost/ops/*\"`: invalid owner rule",
        ),
        (
            "reg.example/Ops/*",
            "strata.toml:7:1: field `owners.\"reg.example/Ops/*\"`: invalid owner rule",
        ),
    ] {
        let err = error(&format!("{HEAD}[owners]\n\"{rule}\" = \"operations\"\n"));
        assert!(err.starts_with(line), "{rule}: {err}");
    }
    let err = error(&format!(
        "{HEAD}[owners]\n\"reg.example/ops/*\" = \"vendors\"\n"
    ));
    assert!(
        err.starts_with(
            "strata.toml:7:23: field `owners.\"reg.example/ops/*\"`: unknown team \"vendors\""
        ),
        "{err}"
    );
    // Good rules: a repository, a prefix, a whole registry.
    let dir = fixture();
    std::fs::write(
        dir.path().join("strata.toml"),
        format!(
            "{HEAD}[owners]\n\"reg.example/ops/corebuild\" = \"operations\"\n\
             \"reg.example:5000/mw/*\" = \"middleware\"\n\"127.0.0.1:5000/*\" = \"operations\"\n"
        ),
    )
    .unwrap();
    let chain = Chain::load(&dir.path().join("strata.toml")).unwrap();
    assert_eq!(chain.file.owners.len(), 3);
    assert_eq!(chain.file.owners["reg.example:5000/mw/*"], "middleware");
}

#[test]
fn unknown_image_key_names_the_image_by_position() {
    let toml = format!(
        "{HEAD}[[image]]\nname = \"a\"\nowner = \"operations\"\ncontext = \"a\"\n\n[[image]]\nname = \"b\"\nowner = \"middleware\"\ncontext = \"b\"\ncolour = \"blue\"\n"
    );
    let err = error(&toml);
    assert!(
        err.starts_with("strata.toml:15:1: field `image[2].colour`: unknown field `colour`, expected one of `name`, `owner`"),
        "{err}"
    );
}

#[test]
fn unknown_team_and_source_keys() {
    let err = error("name = \"acme\"\n[teams.ops]\nemail = \"x\"\n");
    assert!(
        err.starts_with("strata.toml:3:1: field `teams.ops.email`: unknown field `email`"),
        "{err}"
    );
    let err = error(&format!(
        "{HEAD}[[image]]\nname = \"base\"\nowner = \"operations\"\nsource = {{ rootfs = \"base.tar\", url = \"x\" }}\n"
    ));
    assert!(
        err.starts_with("strata.toml:9:33: field `image[1].source.url`: unknown field `url`"),
        "{err}"
    );
}

#[test]
fn missing_context_directory() {
    assert_eq!(
        error(&format!(
            "{HEAD}[[image]]\nname = \"a\"\nowner = \"operations\"\ncontext = \"nowhere\"\n"
        )),
        "strata.toml:9:11: field `image[1].context`: no such directory nowhere"
    );
}

#[test]
fn missing_dockerfile() {
    assert_eq!(
        error(&format!(
            "{HEAD}[[image]]\nname = \"a\"\nowner = \"operations\"\ncontext = \"empty\"\n"
        )),
        "strata.toml:9:11: field `image[1].context`: no Dockerfile in empty (add one, or set dockerfile = \"...\")"
    );
    assert_eq!(
        error(&format!(
            "{HEAD}[[image]]\nname = \"a\"\nowner = \"operations\"\ncontext = \"a\"\ndockerfile = \"a/Dockerfile.prod\"\n"
        )),
        "strata.toml:10:14: field `image[1].dockerfile`: no such file a/Dockerfile.prod"
    );
}

#[test]
fn missing_rootfs_file() {
    assert_eq!(
        error(&format!(
            "{HEAD}[[image]]\nname = \"base\"\nowner = \"operations\"\nsource = {{ rootfs = \"base/rootfs.tar\" }}\n"
        )),
        "strata.toml:9:21: field `image[1].source.rootfs`: no such file base/rootfs.tar"
    );
}

#[test]
fn unknown_owner() {
    assert_eq!(
        error(&format!(
            "{HEAD}[[image]]\nname = \"a\"\nowner = \"operations\"\ncontext = \"a\"\n\n[[image]]\nname = \"b\"\nowner = \"ops\"\ncontext = \"b\"\n"
        )),
        "strata.toml:13:9: field `image[2].owner`: unknown team \"ops\" (teams: middleware, operations)"
    );
}

#[test]
fn duplicate_names() {
    assert_eq!(
        error(&format!(
            "{HEAD}[[image]]\nname = \"a\"\nowner = \"operations\"\ncontext = \"a\"\n\n[[image]]\nname = \"a\"\nowner = \"middleware\"\ncontext = \"b\"\n"
        )),
        "strata.toml:12:8: field `image[2].name`: duplicate image name \"a\" (first used by image[1])"
    );
}

#[test]
fn invalid_names() {
    assert_eq!(
        error(&format!(
            "{HEAD}[[image]]\nname = \"HTTPD_php\"\nowner = \"operations\"\ncontext = \"a\"\n"
        )),
        "strata.toml:7:8: field `image[1].name`: invalid image name \"HTTPD_php\" (lowercase letters and digits, with . _ __ - between them)"
    );
    let err = error("name = \"Acme Corp\"\n");
    assert!(
        err.starts_with("strata.toml:1:8: field `name`: invalid chain name \"Acme Corp\""),
        "{err}"
    );
    let err = error("name = \"acme\"\nregistry = \"https://r.example\"\n");
    assert!(
        err.starts_with("strata.toml:2:12: field `registry`: invalid registry host"),
        "{err}"
    );
}

#[test]
fn image_pin_without_digest() {
    assert_eq!(
        error(&format!(
            "{HEAD}[[image]]\nname = \"base\"\nowner = \"operations\"\nsource = {{ image = \"docker.io/library/debian:12\" }}\n"
        )),
        "strata.toml:9:20: field `image[1].source.image`: image \"docker.io/library/debian:12\" is not pinned: add @sha256:<digest> so the base cannot change unseen"
    );
}

#[test]
fn context_and_source_are_exclusive() {
    let err = error(&format!(
        "{HEAD}[[image]]\nname = \"a\"\nowner = \"operations\"\ncontext = \"a\"\nsource = {{ rootfs = \"base.tar\" }}\n"
    ));
    assert_eq!(
        err,
        "strata.toml:10:10: field `image[1].source`: an image has either a context (built) or a source (bought), not both"
    );
    let err = error(&format!(
        "{HEAD}[[image]]\nname = \"a\"\nowner = \"operations\"\n"
    ));
    assert_eq!(
        err,
        "strata.toml:7:8: field `image[1].context`: image \"a\" needs a context directory, or a source for a bought image"
    );
    let err = error(&format!(
        "{HEAD}[[image]]\nname = \"a\"\nowner = \"operations\"\nsource = {{}}\n"
    ));
    assert!(
        err.starts_with("strata.toml:9:10: field `image[1].source`: a source has exactly one of"),
        "{err}"
    );
}

#[test]
fn bad_values() {
    let image = format!("{HEAD}[[image]]\nname = \"a\"\nowner = \"operations\"\ncontext = \"a\"\n");
    assert_eq!(
        error(&format!("{image}squash = \"some\"\n")),
        "strata.toml:10:10: field `image[1].squash`: unknown variant `some`, expected one of `none`, `own`, `all`"
    );
    assert_eq!(
        error(&format!("{image}args = {{ PHP_VERSION = 8 }}\n")),
        "strata.toml:10:24: field `image[1].args.PHP_VERSION`: invalid type: integer `8`, expected a string"
    );
    assert_eq!(
        error(&format!("{image}tags = [\"1.0\", \"-bad\"]\n")),
        "strata.toml:10:16: field `image[1].tags[2]`: invalid tag \"-bad\" (letters, digits, _ . -, at most 128, not starting with . or -)"
    );
    assert_eq!(
        error(&format!("{image}platform = \"amd64\"\n")),
        "strata.toml:10:12: field `image[1].platform`: invalid platform \"amd64\" (expected os/arch[/variant], e.g. linux/amd64)"
    );
    assert_eq!(
        error(&format!("{image}test = \"a/tests.yaml\"\n")),
        "strata.toml:10:8: field `image[1].test`: no such file a/tests.yaml"
    );
    let err = error(&format!("{image}[teams.operations]\n"));
    assert!(err.starts_with("strata.toml:"), "{err}");
    assert_eq!(
        error("name = \"acme\"\n[teams.operations]\nkeys = [\"keys/ops.pub\"]\n"),
        "strata.toml:3:9: field `teams.operations.keys[1]`: no such file keys/ops.pub"
    );
}

#[test]
fn toml_syntax_errors_are_located() {
    let err = error("name = \"acme\n");
    assert!(err.starts_with("strata.toml:1:13: "), "{err}");
    assert_eq!(
        error("require_signatures = true\n"),
        "strata.toml:1:1: missing field `name`"
    );
    assert_eq!(
        error("name = \"acme\"\nimage = 3\n"),
        "strata.toml:2:9: field `image`: invalid type: integer `3`, expected a sequence"
    );
}

#[test]
fn a_missing_chain_file_is_named() {
    let err = Chain::load(Path::new("/nonexistent/strata.toml")).unwrap_err();
    assert!(matches!(err, ChainError::Read { .. }));
    // The message names the file; the operating system's error is its cause.
    assert_eq!(err.to_string(), "/nonexistent/strata.toml");
    let line = strata_oci::report(&err);
    assert!(line.starts_with("/nonexistent/strata.toml: "), "{line}");
}

/// Issue 15: a newline in a team name forged lines in `strata log`; team names are validated as
/// image names are.
#[test]
fn team_names_are_validated() {
    let err = error("name = \"acme\"\n[teams.\"ops\\nbuilt wordpress\"]\n");
    assert!(
        err.starts_with(
            "strata.toml:2:8: field `teams`: invalid team name \"ops\\nbuilt wordpress\""
        ),
        "{err}"
    );
    let err = error("name = \"acme\"\n[teams.\"\"]\n");
    assert!(err.contains("invalid team name \"\""), "{err}");
    let err = error("name = \"acme\"\n[teams.\"a b\"]\n");
    assert!(err.contains("invalid team name \"a b\""), "{err}");
    // Ordinary names still load.
    let dir = fixture();
    std::fs::write(
        dir.path().join("strata.toml"),
        "name = \"acme\"\n[teams.\"Ops-Team_2.eu\"]\n[teams.dev]\n",
    )
    .unwrap();
    Chain::load(&dir.path().join("strata.toml")).unwrap();
}

/// Issue 15: a duplicate key's error names the key.
#[test]
fn duplicate_keys_are_named() {
    assert_eq!(
        error("name = \"acme\"\nname = \"again\"\n"),
        "strata.toml:2:1: duplicate key `name`"
    );
    assert_eq!(
        error("name = \"acme\"\n[teams.ops]\n[teams.ops]\n"),
        "strata.toml:3:8: duplicate key `ops`"
    );
}

#[test]
fn vendor_signature_policy_errors() {
    let pinned = format!("r.example/vendor/base:1@sha256:{}", "a".repeat(64));
    let image = |source: &str| {
        format!(
            "{HEAD}[[image]]\nname = \"base\"\nowner = \"operations\"\nsource = {{ {source} }}\n"
        )
    };
    assert_eq!(
        error(&image(&format!(
            "image = \"{pinned}\", signed_by = \"vendor.gpg\", sigstore = \"sigs\""
        ))),
        "strata.toml:9:131: field `image[1].source.signed_by`: no such file vendor.gpg"
    );
    // base.tar is empty: not a PEM public key, so taken for OpenPGP, which needs a lookaside.
    let err = error(&image(&format!(
        "image = \"{pinned}\", signed_by = \"base.tar\""
    )));
    assert!(
        err.ends_with("field `image[1].source.signed_by`: base.tar is an OpenPGP key: add sigstore = \"DIR or URL\", where the vendor's simple-signing signatures are"),
        "{err}"
    );
    let err = error(&image(&format!(
        "image = \"{pinned}\", sigstore = \"sigs\""
    )));
    assert!(
        err.contains("field `image[1].source.sigstore`: sigstore without signed_by"),
        "{err}"
    );
    let err = error(&image("rootfs = \"base.tar\", signed_by = \"base.tar\""));
    assert!(
        err.contains("signed_by and sigstore are for a bought image"),
        "{err}"
    );
}

#[test]
fn a_cosign_key_takes_no_sigstore() {
    let dir = fixture();
    std::fs::write(
        dir.path().join("cosign.pub"),
        "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let pinned = format!("r.example/vendor/base:1@sha256:{}", "a".repeat(64));
    let text = format!(
        "{HEAD}[[image]]\nname = \"base\"\nowner = \"operations\"\nsource = {{ image = \"{pinned}\", signed_by = \"cosign.pub\", sigstore = \"sigs\" }}\n"
    );
    std::fs::write(dir.path().join("strata.toml"), &text).unwrap();
    let err = Chain::load(&dir.path().join("strata.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cosign.pub is a cosign public key: its signatures are read from the image's registry, drop sigstore"),
        "{err}"
    );
    let text = text.replace(", sigstore = \"sigs\"", "");
    std::fs::write(dir.path().join("strata.toml"), &text).unwrap();
    let chain = Chain::load(&dir.path().join("strata.toml")).unwrap();
    let strata_chain::Build::Image { signed_by, .. } = &chain.file.images[0].build else {
        panic!("a bought image");
    };
    let signed_by = signed_by.as_ref().unwrap();
    assert_eq!(signed_by.kind, strata_chain::SignatureKind::Cosign);
    assert_eq!(signed_by.key, dir.path().join("cosign.pub"));
}
