//! Chain of custody through the CLI: `strata build` signs each tier with its owner's key and
//! `strata verify` walks the chain; a wrong key, an unsigned parent and a missing key are caught.

#![allow(clippy::print_stderr)]

use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;
use predicates::str::contains;

pub(crate) const TEAMS: [&str; 3] = ["operations", "middleware", "development"];

/// The example chain with a key pair per team, the public keys trusted in strata.toml.
pub(crate) fn signed_example() -> Option<tempfile::TempDir> {
    if !strata_testutil::can_build_example() {
        return None;
    }
    let dir = strata_testutil::init_example(assert_cmd::cargo::cargo_bin!("strata"));
    let d = dir.path();
    let mut toml = std::fs::read_to_string(d.join("strata.toml")).unwrap();
    for team in TEAMS {
        cargo_bin_cmd!("strata")
            .args(["key", "generate", "--team", team, "--out"])
            .arg(d.join("keys"))
            .assert()
            .success();
        toml = toml.replace(
            &format!("[teams.{team}]\n"),
            &format!("[teams.{team}]\nkeys = [\"keys/{team}.pub\"]\n"),
        );
    }
    std::fs::write(d.join("strata.toml"), toml).unwrap();
    Some(dir)
}

pub(crate) fn strata(d: &Path) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("strata");
    cmd.arg("-C").arg(d);
    for team in TEAMS {
        cmd.env_remove(format!("STRATA_KEY_{}", team.to_uppercase()));
    }
    cmd
}

pub(crate) fn with_keys(
    mut cmd: assert_cmd::Command,
    d: &Path,
    teams: &[(&str, &str)],
) -> assert_cmd::Command {
    for (team, key_of) in teams {
        cmd.env(
            format!("STRATA_KEY_{}", team.to_uppercase()),
            d.join(format!("keys/{key_of}.key")),
        );
    }
    cmd
}

#[test]
fn a_signed_chain_verifies_from_app_to_base() {
    let Some(dir) = signed_example() else { return };
    let d = dir.path();
    let all: Vec<(&str, &str)> = TEAMS.iter().map(|t| (*t, *t)).collect();
    with_keys(strata(d), d, &all)
        .arg("build")
        .assert()
        .success()
        .stdout(contains("signed by key"));
    strata(d)
        .args(["verify", "acme/wordpress"])
        .assert()
        .success()
        .stdout(contains("verified: 4 tiers"))
        .stdout(contains("team=development"))
        .stdout(contains("team=operations"));
    let json = strata(d)
        .args(["verify", "acme/wordpress", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert_eq!(report["links"].as_array().unwrap().len(), 4);
    // Issue 15: a chain image's short name works in every command, as in `inspect`.
    strata(d)
        .args(["verify", "wordpress"])
        .assert()
        .success()
        .stdout(contains("verified: 4 tiers"));
    strata(d).args(["verify", "corebuild@1"]).assert().success();
    strata(d)
        .args(["run", "wordpress", "--", "cat", "/etc/motd"])
        .assert()
        .success();
    strata(d)
        .args(["export", "corebuild", "--format", "docker-archive", "-o"])
        .arg(d.join("corebuild.tar"))
        .assert()
        .success();
    assert!(d.join("corebuild.tar").is_file());
    strata(d)
        .args(["verify", "nosuchimage"])
        .assert()
        .failure()
        .stderr(contains("nosuchimage"))
        .stderr(contains("strata images"));
    // inspect shows what the attestation claims.
    let out = strata(d)
        .args(["inspect", "acme/httpd-php", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspection: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let provenance = &inspection["provenance"];
    assert_eq!(provenance["status"], "attested", "{provenance}");
    // The SBOMs are attested beside the provenance: take the provenance's entry.
    let attestation = provenance["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| !a["owner"].is_null())
        .unwrap();
    assert_eq!(attestation["owner"], "middleware");
    assert_eq!(attestation["tier"], "middleware");
    assert!(
        attestation["base"]
            .as_str()
            .unwrap()
            .contains("acme/corebuild"),
        "{attestation}"
    );
    // The log records who signed, after the build it signed (ordered by time, not by when the
    // build's own row was written), with the signed digest and no made-up transition.
    let log = strata(d).arg("log").output().unwrap();
    assert!(log.status.success());
    let log = String::from_utf8_lossy(&log.stdout);
    let lines: Vec<&str> = log.lines().collect();
    let built = lines
        .iter()
        .position(|l| l.contains("operations rebuilt corebuild"))
        .unwrap_or_else(|| panic!("{log}"));
    let signed = lines
        .iter()
        .position(|l| l.contains("operations signed the provenance of corebuild"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(built < signed, "{log}");
    assert!(lines[signed].contains(" sha256:"), "{log}");
    assert!(!lines[signed].contains('→'), "{log}");
    assert!(!lines[signed].contains("cascaded"), "{log}");
    // --kind and --since narrow the timeline.
    let signs = strata(d)
        .args(["log", "--kind", "sign", "--since", "1h"])
        .output()
        .unwrap();
    let signs = String::from_utf8_lossy(&signs.stdout);
    assert!(
        !signs.is_empty()
            && signs
                .lines()
                .all(|l| l.contains("signed the provenance of")),
        "{signs}"
    );
    let future = strata(d)
        .args(["log", "--since", "2999-01-01"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&future.stdout), "no events\n");
    strata(d)
        .args(["log", "--since", "yesterday"])
        .assert()
        .failure();
}

#[test]
fn the_wrong_teams_key_breaks_the_chain_at_that_tier() {
    let Some(dir) = signed_example() else { return };
    let d = dir.path();
    // Middleware's image signed with the operations key.
    with_keys(
        strata(d),
        d,
        &[
            ("operations", "operations"),
            ("middleware", "operations"),
            ("development", "development"),
        ],
    )
    .arg("build")
    .assert()
    .success();
    strata(d)
        .args(["verify", "acme/wordpress"])
        .assert()
        .failure()
        .stdout(contains("httpd-php"));
    // The tiers below are still fine on their own.
    strata(d)
        .args(["verify", "acme/corebuild"])
        .assert()
        .success();
}

#[test]
fn an_image_on_an_unsigned_parent_does_not_verify() {
    let Some(dir) = signed_example() else { return };
    let d = dir.path();
    // Operations builds without its key; the upper tiers are signed.
    with_keys(
        strata(d),
        d,
        &[("middleware", "middleware"), ("development", "development")],
    )
    .arg("build")
    .assert()
    .success();
    let out = strata(d)
        .args(["verify", "acme/wordpress"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("broken at acme/corebuild") && text.contains("no signed provenance"),
        "{text}"
    );
}

#[test]
fn a_chain_that_requires_signatures_refuses_to_build_without_the_key() {
    let Some(dir) = signed_example() else { return };
    let d = dir.path();
    let toml = std::fs::read_to_string(d.join("strata.toml")).unwrap();
    std::fs::write(
        d.join("strata.toml"),
        toml.replacen(
            "name = \"acme\"",
            "name = \"acme\"\nrequire_signatures = true",
            1,
        ),
    )
    .unwrap();
    let out = with_keys(strata(d), d, &[("operations", "operations")])
        .args(["build", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let httpd = summary["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "httpd-php")
        .unwrap();
    assert_eq!(httpd["result"], "failed");
    assert!(
        httpd["message"]
            .as_str()
            .unwrap()
            .contains("STRATA_KEY_MIDDLEWARE"),
        "{httpd}"
    );
    // Nothing unsigned became current.
    let index = std::fs::read_to_string(d.join(".strata/store/index.json")).unwrap();
    assert!(!index.contains("acme/httpd-php:latest"));
}

/// Issue 15: `--key operation=...` (a misspelt team) was silently ignored and the images came out
/// unsigned; it is refused before anything is built.
#[test]
fn a_key_for_an_unknown_team_is_refused() {
    let Some(dir) = signed_example() else { return };
    let d = dir.path();
    strata(d)
        .args(["build", "--key"])
        .arg(format!(
            "operation={}",
            d.join("keys/operations.key").display()
        ))
        .assert()
        .failure()
        .stderr(contains("--key \"operation="))
        .stderr(contains(
            "strata.toml: development, middleware, operations)",
        ));
    assert!(
        !d.join(".strata/store/index.json").exists()
            || !std::fs::read_to_string(d.join(".strata/store/index.json"))
                .unwrap()
                .contains("acme/"),
        "nothing was built"
    );
}
