//! `strata verify` across projects (issue 18): project "ops" builds and signs base → corebuild and
//! pushes them with their attestations to a shared registry; project "dev" builds its app FROM the
//! registry's corebuild and verifies down to ops' bought base, reading what its store lacks from
//! the registry: through the referrers API of `strata serve`, and through the tag schema of
//! Debian's `docker-registry` (distribution 2.8, which has no referrers API). An upstream signed
//! by another team, or unsigned, breaks the chain at its link.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

use crate::common::Serve;
use crate::registry_interop::Distribution;

/// `strata -C DIR ARGS` with `STRATA_KEY_<TEAM>` = `keys` and nothing from the environment.
fn strata(dir: &Path, keys: &[(&str, &Path)], args: &[&str]) -> std::process::Output {
    let mut cmd = cargo_bin_cmd!("strata");
    cmd.env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .env("HOME", dir)
        .arg("-C")
        .arg(dir);
    for team in ["OPERATIONS", "DEVELOPMENT"] {
        cmd.env_remove(format!("STRATA_KEY_{team}"));
    }
    for (team, key) in keys {
        cmd.env(format!("STRATA_KEY_{}", team.to_uppercase()), key);
    }
    cmd.args(args).output().unwrap()
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A key pair per team under `dir/keys` (operations' and development's).
fn keys(dir: &Path) -> PathBuf {
    let keys = dir.join("keys");
    for team in ["operations", "development"] {
        ok(&cargo_bin_cmd!("strata")
            .args(["key", "generate", "--team", team, "--out"])
            .arg(&keys)
            .output()
            .unwrap());
    }
    keys
}

/// Project `name` of team operations, pushing to `registry`: base (a busybox tarball) and
/// corebuild on it (COPY only), built with `signing_key` as operations' key (none: unsigned), then
/// pushed with their attestations. None: no busybox.
fn ops_project(dir: &Path, name: &str, registry: &str, signing_key: Option<&Path>) -> Option<()> {
    let d = dir.join(name);
    std::fs::create_dir_all(d.join("base")).unwrap();
    std::fs::create_dir_all(d.join("corebuild")).unwrap();
    strata_testutil::busybox_rootfs_tar(&d.join("base/rootfs.tar"))?;
    std::fs::write(d.join("corebuild/motd"), "hardened by operations\n").unwrap();
    std::fs::write(
        d.join("corebuild/Dockerfile"),
        format!("FROM {name}/base\nCOPY motd /etc/motd\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("strata.toml"),
        format!(
            "name = \"{name}\"\nregistry = \"{registry}\"\n\
             [teams.operations]\n\
             [[image]]\nname = \"base\"\nowner = \"operations\"\ntier = \"base\"\n\
             source = {{ rootfs = \"base/rootfs.tar\" }}\n\
             [[image]]\nname = \"corebuild\"\nowner = \"operations\"\ntier = \"corebuild\"\n\
             context = \"corebuild\"\n"
        ),
    )
    .unwrap();
    let keys: Vec<(&str, &Path)> = signing_key.map(|k| ("operations", k)).into_iter().collect();
    ok(&strata(&d, &keys, &["build"]));
    for image in ["base", "corebuild"] {
        ok(&strata(&d, &[], &["push", image]));
    }
    Some(())
}

/// Project "dev": its app is FROM `upstream` (`HOST/ops/corebuild`); it trusts operations' public
/// key (copied from the other project) for the images under `rule`. Built and signed by
/// development.
fn dev_project(dir: &Path, keys: &Path, upstream: &str, rule: &str) -> PathBuf {
    let d = dir.join("dev");
    std::fs::create_dir_all(d.join("app")).unwrap();
    std::fs::create_dir_all(d.join("trusted")).unwrap();
    for team in ["operations", "development"] {
        std::fs::copy(
            keys.join(format!("{team}.pub")),
            d.join(format!("trusted/{team}.pub")),
        )
        .unwrap();
    }
    std::fs::write(d.join("app/index.php"), "<?php echo 'hello';\n").unwrap();
    std::fs::write(
        d.join("app/Dockerfile"),
        // A long-running CMD, so the deployment test can run it under podman.
        format!(
            "FROM {upstream}:latest\nCOPY index.php /var/www/index.php\n\
             CMD [\"sh\", \"-c\", \"exec tail -f /dev/null\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("strata.toml"),
        format!(
            "name = \"dev\"\n\
             [teams.development]\nkeys = [\"trusted/development.pub\"]\n\
             [teams.operations]\nkeys = [\"trusted/operations.pub\"]\n\
             [owners]\n\"{rule}\" = \"operations\"\n\
             [[image]]\nname = \"app\"\nowner = \"development\"\ntier = \"application\"\n\
             context = \"app\"\n"
        ),
    )
    .unwrap();
    let key = keys.join("development.key");
    ok(&strata(&d, &[("development", &key)], &["build"]));
    d
}

/// ops pushes a signed chain to `registry`; dev builds on it and verifies through the registry.
/// Returns dev's directory (None: no busybox).
fn verifies_through(dir: &Path, registry: &str) -> Option<PathBuf> {
    let keys = keys(dir);
    ops_project(dir, "ops", registry, Some(&keys.join("operations.key")))?;
    let upstream = format!("{registry}/ops/corebuild");
    let dev = dev_project(dir, &keys, &upstream, &format!("{registry}/ops/*"));

    // Alone, dev's store does not hold ops' base: the old walk stopped there.
    let offline = strata(&dev, &[], &["verify", "dev/app", "--offline"]);
    assert!(!offline.status.success());
    let text = String::from_utf8_lossy(&offline.stdout);
    assert!(
        text.contains(&format!("chain of custody broken at {upstream}"))
            && text.contains("is not in the store"),
        "{text}"
    );

    let out = ok(&strata(&dev, &[], &["verify", "dev/app"]));
    assert!(
        out.contains("verified: 3 tiers from dev/app down to its base"),
        "{out}"
    );
    let json = ok(&strata(&dev, &[], &["verify", "dev/app", "--json"]));
    let report: Value = serde_json::from_str(&json).unwrap();
    let links = report["links"].as_array().unwrap();
    let seen: Vec<(&str, &str, &str)> = links
        .iter()
        .map(|l| {
            (
                l["image"].as_str().unwrap(),
                l["team"].as_str().unwrap(),
                l["tier"].as_str().unwrap(),
            )
        })
        .collect();
    let base = format!("{registry}/ops/base");
    assert_eq!(
        seen,
        [
            ("dev/app", "development", "application"),
            (upstream.as_str(), "operations", "corebuild"),
            (base.as_str(), "operations", "base"),
        ],
        "{json}"
    );
    // The base, never pulled into dev's store, was verified from the registry, down to the
    // tarball it was imported from.
    assert_eq!(links[2]["fetched_from"], base.as_str(), "{json}");
    // The upstream itself, asked about by its registry name, verifies the same way.
    let out = ok(&strata(
        &dev,
        &[],
        &["verify", &format!("{upstream}:latest")],
    ));
    assert!(
        out.contains(&format!("verified: 2 tiers from {upstream}:latest")),
        "{out}"
    );
    assert!(
        links[2]["from"].as_str().unwrap().contains("rootfs.tar@"),
        "{json}"
    );
    Some(dev)
}

#[test]
fn verify_walks_into_another_projects_images_through_strata_serve() {
    let dir = tempfile::tempdir().unwrap();
    let registry_store = dir.path().join("registry");
    strata_oci::Store::init(&registry_store).unwrap();
    let server = Serve::start(&registry_store, &[]);
    let host = server.host.clone();
    let Some(dev) = verifies_through(dir.path(), &host) else {
        return;
    };
    // With the registry gone, the link that needs it is broken, naming the repository asked.
    drop(server);
    let out = strata(&dev, &[], &["verify", "dev/app", "--retries", "0"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!("chain of custody broken at {host}/ops/corebuild "))
            && summary.contains(&format!("cannot read {host}/ops/base@sha256:"))
            && summary.contains("from its registry"),
        "{text}"
    );
}

#[test]
fn verify_walks_into_another_projects_images_through_a_registry_without_referrers_api() {
    let dir = tempfile::tempdir().unwrap();
    let Some(registry) = Distribution::start(dir.path()) else {
        return;
    };
    if verifies_through(dir.path(), &registry.host).is_none() {
        return;
    }
    // The attestations went up, and were found, through the tag schema.
    let tags = std::fs::read_dir(
        dir.path()
            .join("registry-data/docker/registry/v2/repositories/ops/base/_manifests/tags"),
    )
    .unwrap()
    .map(|e| e.unwrap().file_name().into_string().unwrap())
    .collect::<Vec<_>>();
    assert!(tags.iter().any(|t| t.starts_with("sha256-")), "{tags:?}");
}

#[test]
fn an_upstream_signed_by_another_team_or_unsigned_is_refused_naming_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry_store = d.join("registry");
    strata_oci::Store::init(&registry_store).unwrap();
    let server = Serve::start(&registry_store, &[]);
    let host = &server.host;
    let keys = keys(d);
    // "rogue" signs operations' images with development's key; "plain" does not sign.
    if ops_project(d, "rogue", host, Some(&keys.join("development.key"))).is_none() {
        return;
    }
    ops_project(d, "plain", host, None).unwrap();

    let foreign = format!("{host}/rogue/corebuild");
    let dev = dev_project(d, &keys, &foreign, &format!("{host}/*"));
    let out = strata(&dev, &[], &["verify", "dev/app"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!("chain of custody broken at {foreign} "))
            && summary.contains("signed by team development's key")
            && summary.contains("not by the owner operations"),
        "{text}"
    );

    std::fs::remove_dir_all(&dev).unwrap();
    let unsigned = format!("{host}/plain/corebuild");
    let dev = dev_project(d, &keys, &unsigned, &format!("{host}/*"));
    let out = strata(&dev, &[], &["verify", "dev/app"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!("chain of custody broken at {unsigned} "))
            && summary.contains("no signed provenance is attached"),
        "{text}"
    );

    // Without an owner rule for it, another project's image is nobody's: refused, not trusted.
    std::fs::remove_dir_all(&dev).unwrap();
    let dev = dev_project(
        d,
        &keys,
        &format!("{host}/rogue/corebuild"),
        "elsewhere.example/ops/*",
    );
    let out = strata(&dev, &[], &["verify", "dev/app"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{foreign} is not an image of the chain")),
        "{text}"
    );
}

/// Removes the test's own podman containers (its own podman root) on drop.
struct PodmanRoot(String);

impl Drop for PodmanRoot {
    fn drop(&mut self) {
        let _ = std::process::Command::new("podman")
            .args(self.0.split_whitespace())
            .args(["rm", "--all", "--force", "-t", "0"])
            .output();
    }
}

// A deployment with `require.verified` walks the same chain as `strata verify`: into the
// upstream project's images through its registry. It refused the app before ("is not in the
// store"), as the store never holds the other project's base.
#[test]
fn a_deployment_requiring_verified_images_walks_into_the_upstream_project() {
    if strata_testutil::require_tool("podman").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry_store = dir.path().join("registry");
    strata_oci::Store::init(&registry_store).unwrap();
    let server = Serve::start(&registry_store, &[]);
    let Some(dev) = verifies_through(dir.path(), &server.host) else {
        return;
    };
    std::fs::write(
        dev.join("deploy.toml"),
        "name = \"dev-prod\"\nowner = \"development\"\n[[deployment]]\nname = \"app\"\n\
         image = \"dev/app:latest\"\ntarget = \"local\"\nnetwork = \"none\"\n\
         health = { exec = \"test -f /var/www/index.php\", timeout = \"30s\" }\n\
         require = { verified = true }\nstop_grace = \"1s\"\n",
    )
    .unwrap();
    let podman_args = format!(
        "--root {} --runroot {} --storage-driver vfs",
        dir.path().join("podman-root").display(),
        dir.path().join("podman-run").display()
    );
    let _cleanup = PodmanRoot(podman_args.clone());
    let deploy = |args: &[&str]| {
        let mut cmd = cargo_bin_cmd!("strata");
        cmd.env_remove("STRATA_STORE")
            .env_remove("STRATA_CHAIN")
            .env("HOME", &dev)
            .env("STRATA_DEPLOY_FILE", dev.join("deploy.toml"))
            .env("STRATA_PODMAN_ARGS", &podman_args)
            .env(
                "STRATA_PODMAN_RUN_ARGS",
                "--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=1024:1024",
            )
            .arg("-C")
            .arg(&dev)
            .args(args)
            .output()
            .unwrap()
    };
    let out = ok(&deploy(&["deploy", "--json"]));
    let outcomes: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(outcomes[0]["result"], "deployed", "{out}");
    let status: Value =
        serde_json::from_str(&ok(&deploy(&["deploy", "status", "--json"]))).unwrap();
    let app = ok(&strata(&dev, &[], &["images", "--json"]));
    assert!(
        app.contains(status[0]["running"]["digest"].as_str().unwrap()),
        "{status} {app}"
    );
    let _ = deploy(&["deploy", "down", "app"]);
}
