//! The article's demo across four projects (issue 18), each its own git repository, sharing one
//! registry (`strata serve`): operations (a bought busybox base, the vendor's image pinned by
//! digest and imported only with the vendor's cosign signature, and the corebuild on it),
//! middleware (httpd-php FROM the registry's ops/corebuild), development (wordpress FROM the
//! registry's middleware/httpd-php, a busybox httpd page showing the corebuild's /etc/motd) and a
//! deploy project (deploy.toml following the registry's development/wordpress with
//! `require = { verified = true }`, under podman). One `strata watch` per downstream project.
//! Operations commits a corebuild patch, builds and pushes; with no other command the patch reaches
//! the served page. `strata verify` in the deploy project walks the deployed digest down to the
//! vendor-signed base; `strata log` in each project tells its part; two patches pushed while a
//! cascade is held are taken in at most two cascades, the page ending on the last.
//! The vendor is a busybox image pushed to the shared registry as `vendor/base:1` and signed with
//! a cosign key pair made by openssl; operations' `strata.toml` pins it with `signed_by`. The
//! refusals (missing, foreign, replayed signatures) are `vendor_signatures.rs`'s.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::common::{
    PATIENCE, Serve, Watch, free_port, git, http_get, ok, openssl_key, push_cosign_signature,
    strata,
};

const RUN_ARGS: &str = "--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=1024:1024";
const TEAMS: [&str; 3] = ["operations", "middleware", "development"];

/// The four projects, their registry and keys.
struct World {
    _dir: tempfile::TempDir,
    _server: Serve,
    host: String,
    keys: PathBuf,
    ops: PathBuf,
    mid: PathBuf,
    dev: PathBuf,
    deploy: PathBuf,
    podman_args: String,
    port: u16,
    name: String,
    /// The vendor's image operations bought, as the registry holds it (`HOST/vendor/base`).
    vendor_image: String,
    /// Its manifest digest, operations' pin.
    vendor_digest: String,
}

/// `[teams.T] keys = [...]` for `teams`, their public keys copied into `project/trusted`.
fn trust(keys: &Path, project: &Path, teams: &[&str]) -> String {
    let mut text = String::new();
    std::fs::create_dir_all(project.join("trusted")).unwrap();
    for team in teams {
        std::fs::copy(
            keys.join(format!("{team}.pub")),
            project.join(format!("trusted/{team}.pub")),
        )
        .unwrap();
        text.push_str(&format!(
            "[teams.{team}]\nkeys = [\"trusted/{team}.pub\"]\n"
        ));
    }
    text
}

/// A git repository of `dir`'s files, first commit.
fn repository(dir: &Path, team: &str) {
    std::fs::write(dir.join(".gitignore"), ".strata/\n").unwrap();
    git(dir, &["init", "-q"]);
    git(dir, &["config", "user.name", &format!("{team} bot")]);
    git(dir, &["config", "user.email", &format!("{team}@localhost")]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-qm", "first"]);
}

impl World {
    /// None without busybox (outside CI).
    fn new() -> Option<World> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let registry = d.join("registry");
        strata_oci::Store::init(&registry).unwrap();
        let server = Serve::start(&registry, &[]);
        let host = server.host.clone();
        let keys = d.join("keys");
        for team in TEAMS {
            ok(Command::new(assert_cmd::cargo::cargo_bin!("strata"))
                .args(["key", "generate", "--team", team, "--out"])
                .arg(&keys));
        }
        // `[owners]`: each upstream repository must be signed by the team it belongs to.
        let owners = |teams: &[&str]| {
            let mut text = String::from("[owners]\n");
            for (repository, team) in [
                ("ops", "operations"),
                ("middleware", "middleware"),
                ("development", "development"),
            ] {
                if teams.contains(&team) {
                    text.push_str(&format!("\"{host}/{repository}/*\" = \"{team}\"\n"));
                }
            }
            text
        };

        // The vendor: a busybox image (its root filesystem imported by `strata build-image`),
        // pushed to the shared registry as vendor/base:1; its cosign key pair made by openssl.
        let vendor = d.join("vendor");
        std::fs::create_dir_all(vendor.join("image")).unwrap();
        strata_testutil::busybox_rootfs_tar(&vendor.join("image/rootfs.tar"))?;
        std::fs::write(
            vendor.join("image/Dockerfile"),
            "FROM scratch\nADD rootfs.tar /\n",
        )
        .unwrap();
        let vendor_store = vendor.join("store");
        ok(strata(&vendor, &[])
            .arg("--store")
            .arg(&vendor_store)
            .args(["build-image", "-t", "vendor/base:1"])
            .arg(vendor.join("image")));
        let vendor_image = format!("{host}/vendor/base");
        let tag = format!("{vendor_image}:1");
        let report: serde_json::Value = serde_json::from_str(&ok(strata(&vendor, &[])
            .arg("--store")
            .arg(&vendor_store)
            .args(["push", "--json", "vendor/base:1", &tag])))
        .unwrap();
        let vendor_digest = report["digest"].as_str().unwrap().to_string();
        let (vendor_key, vendor_pub) = openssl_key(&vendor, "vendor-cosign");
        let pinned = format!("{vendor_image}:1@{vendor_digest}");

        // operations: the bought base (the vendor's image, pinned, its signature required) and
        // the corebuild.
        let ops = d.join("ops");
        std::fs::create_dir_all(ops.join("corebuild")).unwrap();
        std::fs::copy(&vendor_pub, ops.join("vendor-cosign.pub")).unwrap();
        let teams = trust(&keys, &ops, &["operations"]);
        std::fs::write(
            ops.join("strata.toml"),
            format!(
                "name = \"ops\"\nregistry = \"{host}\"\n{teams}\
                 [[image]]\nname = \"base\"\nowner = \"operations\"\ntier = \"base\"\n\
                 source = {{ image = \"{pinned}\", signed_by = \"vendor-cosign.pub\" }}\n\
                 [[image]]\nname = \"corebuild\"\nowner = \"operations\"\ntier = \"corebuild\"\n\
                 context = \"corebuild\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            ops.join("corebuild/Dockerfile"),
            "FROM ops/base\nCOPY motd /etc/motd\n",
        )
        .unwrap();
        std::fs::write(ops.join("corebuild/motd"), "acme corebuild 1\n").unwrap();
        repository(&ops, "operations");
        // Until the vendor has signed it, operations cannot import it.
        let operations_key = keys.join("operations.key");
        let out = strata(&ops, &[("operations", &operations_key)])
            .arg("build")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "bought image {pinned} refused: vendor key vendor-cosign.pub: no signature found"
            )),
            "{stderr}"
        );
        push_cosign_signature(
            &vendor,
            &vendor_image,
            &vendor_digest,
            &vendor_digest,
            &vendor_key,
        );

        // middleware: httpd-php on the registry's corebuild (busybox httpd, its config).
        let mid = d.join("middleware");
        std::fs::create_dir_all(mid.join("httpd-php")).unwrap();
        let teams = trust(&keys, &mid, &["operations", "middleware"]);
        let owners_mid = owners(&["operations"]);
        std::fs::write(
            mid.join("strata.toml"),
            format!(
                "name = \"middleware\"\nregistry = \"{host}\"\n{teams}{owners_mid}\
                 [[image]]\nname = \"httpd-php\"\nowner = \"middleware\"\ntier = \"middleware\"\n\
                 context = \"httpd-php\"\ntest = \"httpd-php/structure-test.yaml\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            mid.join("httpd-php/Dockerfile"),
            format!("FROM {host}/ops/corebuild:latest\nCOPY httpd.conf /etc/httpd.conf\n"),
        )
        .unwrap();
        std::fs::write(mid.join("httpd-php/httpd.conf"), "H:/www\n").unwrap();
        // middleware's tier test: its config, on a corebuild that has a motd.
        std::fs::write(
            mid.join("httpd-php/structure-test.yaml"),
            "schemaVersion: \"2.0.0\"\nfileContentTests:\n  - name: motd\n    path: /etc/motd\n    \
             expectedContents: [\"^acme corebuild\"]\nfileExistenceTests:\n  - name: httpd.conf\n    \
             path: /etc/httpd.conf\n",
        )
        .unwrap();
        repository(&mid, "middleware");

        // development: wordpress, a page showing the corebuild's /etc/motd.
        let dev = d.join("development");
        std::fs::create_dir_all(dev.join("wordpress")).unwrap();
        let teams = trust(&keys, &dev, &TEAMS);
        let owners_dev = owners(&["operations", "middleware"]);
        std::fs::write(
            dev.join("strata.toml"),
            format!(
                "name = \"development\"\nregistry = \"{host}\"\n{teams}{owners_dev}\
                 [[image]]\nname = \"wordpress\"\nowner = \"development\"\n\
                 tier = \"application\"\ncontext = \"wordpress\"\n\
                 test = \"wordpress/structure-test.yaml\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dev.join("wordpress/Dockerfile"),
            format!(
                "FROM {host}/middleware/httpd-php:latest\nCOPY index.sh /www/index.sh\n\
                 CMD [\"/bin/sh\", \"/www/index.sh\"]\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dev.join("wordpress/index.sh"),
            "cat /etc/motd > /www/index.html\nexec /bin/busybox httpd -f -p 8080 -h /www\n",
        )
        .unwrap();
        std::fs::write(
            dev.join("wordpress/structure-test.yaml"),
            "schemaVersion: \"2.0.0\"\ncommandTests:\n  - name: the page's script\n    \
             command: cat\n    args: [\"/www/index.sh\"]\n    expectedOutput: [\"/etc/motd\"]\n",
        )
        .unwrap();
        repository(&dev, "development");

        // deploy: follows the registry's wordpress, verified, under its own podman root.
        let deploy = d.join("deploy");
        std::fs::create_dir_all(&deploy).unwrap();
        let teams = trust(&keys, &deploy, &TEAMS);
        std::fs::write(
            deploy.join("strata.toml"),
            format!("name = \"deploy\"\n{teams}{}", owners(&TEAMS)),
        )
        .unwrap();
        let port = free_port();
        let name = format!("t{}-four", std::process::id());
        std::fs::write(
            deploy.join("deploy.toml"),
            format!(
                "name = \"{name}\"\nowner = \"development\"\n[[deployment]]\nname = \"wordpress\"\n\
                 image = \"{host}/development/wordpress:latest\"\ntrigger = \"auto\"\n\
                 ports = [\"127.0.0.1:{port}:8080\"]\n\
                 health = {{ http = \"/index.html\", port = 8080, timeout = \"60s\" }}\n\
                 require = {{ verified = true }}\nstop_grace = \"1s\"\nnetwork = \"none\"\n"
            ),
        )
        .unwrap();
        repository(&deploy, "development");
        strata_oci::Store::init(deploy.join(".strata/store")).unwrap();
        let podman_args = format!(
            "--root {} --runroot {} --storage-driver vfs",
            d.join("podman-root").display(),
            d.join("podman-run").display()
        );
        Some(World {
            _dir: dir,
            _server: server,
            host,
            keys,
            ops,
            mid,
            dev,
            deploy,
            podman_args,
            port,
            name,
            vendor_image,
            vendor_digest,
        })
    }

    fn key(&self, team: &str) -> PathBuf {
        self.keys.join(format!("{team}.key"))
    }

    /// `strata` in the deploy project, with its podman root.
    fn in_deploy(&self) -> Command {
        let mut cmd = strata(&self.deploy, &[]);
        cmd.env("STRATA_DEPLOY_FILE", self.deploy.join("deploy.toml"))
            .env("STRATA_PODMAN_ARGS", &self.podman_args)
            .env("STRATA_PODMAN_RUN_ARGS", RUN_ARGS);
        cmd
    }

    /// operations commits `motd`, builds (signed) and pushes base and corebuild; the corebuild's
    /// digest.
    fn ops_pushes(&self, motd: &str) -> String {
        std::fs::write(self.ops.join("corebuild/motd"), motd).unwrap();
        git(&self.ops, &["commit", "-qam", "corebuild: motd patched"]);
        let key = self.key("operations");
        ok(strata(&self.ops, &[("operations", &key)]).arg("build"));
        for image in ["base", "corebuild"] {
            ok(strata(&self.ops, &[]).args(["push", image]));
        }
        stored(&self.ops, &format!("{}/ops/corebuild:latest", self.host))
    }

    fn watch(&self, name: &'static str, dir: &Path, team: &str) -> Watch {
        let key = self.key(team);
        Watch::start(name, strata(dir, &[(team, &key)]))
    }

    /// Wait (bounded) until the deployment serves `page`.
    fn wait_for_page(&self, page: &str) {
        wait_for(&format!("the page to show {page:?}"), || {
            http_get(self.port, "/index.html").as_deref() == Ok(page)
        });
    }
}

/// Wait until `done` holds (a state other processes reach), failing after [`PATIENCE`].
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < give_up, "gave up waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self
            .in_deploy()
            .args(["deploy", "down", "wordpress"])
            .output();
        let _ = Command::new("podman")
            .args(self.podman_args.split_whitespace())
            .args(["rm", "--all", "--force", "-t", "0"])
            .output();
    }
}

/// A "watch: pushed REPOSITORY:latest: DIGEST" line: its digest.
fn pushed<'a>(line: &'a str, repository: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(&format!("watch: pushed {repository}:latest: "))?;
    rest.split_whitespace().next()
}

/// `sha256:` and 12 hex digits, as the watch prints digests.
fn short(digest: &str) -> &str {
    &digest[.."sha256:".len() + 12]
}

/// The store digest of `reference` in the project at `dir`.
fn stored(dir: &Path, reference: &str) -> String {
    strata_oci::Store::open(dir.join(".strata/store"))
        .unwrap()
        .refs()
        .resolve(reference)
        .unwrap()
        .digest()
        .to_string()
}

#[test]
fn an_operations_patch_reaches_the_deployed_page_through_four_projects_with_no_other_command() {
    let (Some(_), Some(_)) = (
        strata_testutil::require_tool("podman"),
        strata_testutil::require_tool("openssl"),
    ) else {
        return;
    };
    let Some(w) = World::new() else {
        return;
    };
    let host = w.host.clone();
    let corebuild = format!("{host}/ops/corebuild");
    let httpd = format!("{host}/middleware/httpd-php");
    let wordpress = format!("{host}/development/wordpress");

    // The first version everywhere, by the watches alone once operations has pushed.
    let first = w.ops_pushes("acme corebuild 1 (first)\n");
    let mut mid = w.watch("middleware", &w.mid, "middleware");
    let mut dev = w.watch("development", &w.dev, "development");
    let deploy = Watch::start("deploy", w.in_deploy());
    mid.until("first push", |l| pushed(l, &httpd).is_some());
    dev.until("first push", |l| pushed(l, &wordpress).is_some());
    w.wait_for_page("acme corebuild 1 (first)");
    mid.until("idle pass", |l| l.starts_with("watch: up to date"));
    dev.until("idle pass", |l| l.starts_with("watch: up to date"));

    // operations commits a patch, builds and pushes; nothing else is run.
    let second = w.ops_pushes("acme corebuild 2 (motd patched)\n");
    let said = mid.until("the patched httpd-php pushed", |l| {
        pushed(l, &httpd).is_some()
    });
    let moved = format!(
        "{corebuild}:latest: {}… → {}…, rebuilt by operations ",
        short(&first),
        short(&second)
    );
    assert!(said.iter().any(|l| l.contains(&moved)), "{said:#?}");
    let httpd_digest = pushed(said.last().unwrap(), &httpd).unwrap().to_string();
    let said = dev.until("the patched wordpress pushed", |l| {
        pushed(l, &wordpress).is_some()
    });
    assert!(
        said.iter().any(|l| l.contains(&format!("{httpd}:latest: "))
            && l.contains(&format!("→ {}…", short(&httpd_digest)))),
        "{said:#?}"
    );
    let wordpress_digest = pushed(said.last().unwrap(), &wordpress)
        .unwrap()
        .to_string();
    let lock = std::fs::read_to_string(w.dev.join("strata.lock")).unwrap();
    assert!(lock.contains(&httpd_digest), "{lock}");
    w.wait_for_page("acme corebuild 2 (motd patched)");
    // The deployment runs what development pushed, by digest, and has it on record.
    let deployed = format!("{}/wordpress: deployed {wordpress_digest}", w.name);
    wait_for("the deploy event", || {
        ok(strata(&w.deploy, &[]).arg("log")).contains(&deployed)
    });
    let status: serde_json::Value =
        serde_json::from_str(&ok(w.in_deploy().args(["deploy", "status", "--json"]))).unwrap();
    assert_eq!(status[0]["running"]["digest"], wordpress_digest.as_str());

    // The deployed digest verifies in the deploy project down to operations' bought base, the
    // vendor's image.
    let deployed_ref = format!("{wordpress}@{wordpress_digest}");
    let out = ok(w.in_deploy().args(["verify", &deployed_ref]));
    for (tier, repository, team) in [
        ("application", &wordpress, "development"),
        ("middleware", &httpd, "middleware"),
        ("corebuild", &corebuild, "operations"),
        ("base", &format!("{host}/ops/base"), "operations"),
    ] {
        assert!(
            out.lines().any(|l| l.starts_with("ok")
                && l.contains(tier)
                && l.contains(repository.as_str())
                && l.contains(&format!("team={team} "))),
            "{tier} {repository} {team}: {out}"
        );
    }
    assert!(
        out.contains(&format!(
            "verified: 4 tiers from {wordpress}@{wordpress_digest} down to its base"
        )),
        "{out}"
    );
    // The base link is operations' import of the vendor's image: the pinned digest itself,
    // imported from the pinned reference. The deploy project shows the pin, not the vendor's
    // signature: that is checked when operations imports it (refused in `World::new` until the
    // vendor signed), and again by operations' own `strata verify` (its strata.toml names the
    // vendor key; `vendor_signatures.rs`), not by a project that does not know the vendor key.
    let report: serde_json::Value =
        serde_json::from_str(&ok(w.in_deploy().args(["verify", "--json", &deployed_ref]))).unwrap();
    let links = report["links"].as_array().unwrap();
    assert_eq!(links.len(), 4, "{report:#}");
    let base = &links[3];
    assert_eq!(base["verdict"], "ok", "{base:#}");
    assert_eq!(base["tier"], "base", "{base:#}");
    assert_eq!(base["team"], "operations", "{base:#}");
    assert_eq!(base["digest"], w.vendor_digest.as_str(), "{base:#}");
    assert_eq!(
        base["from"],
        format!("pkg:docker/{}@1@{}", w.vendor_image, w.vendor_digest).as_str(),
        "{base:#}"
    );
    // Operations' own verify checks the vendor's signature kept with the base, with the key its
    // strata.toml names.
    let vendor_key = strata_attest::PublicKey::load(&w.ops.join("vendor-cosign.pub"))
        .unwrap()
        .id()
        .to_string();
    let out = ok(strata(&w.ops, &[]).args(["verify", "--offline", &format!("{corebuild}:latest")]));
    assert!(
        out.contains(&format!("base: signed by the vendor, key {vendor_key} ")),
        "{out}"
    );

    // Each project's git history and events log tell its part.
    assert_eq!(
        git(&w.ops, &["log", "-1", "--format=%s"]).trim(),
        "corebuild: motd patched"
    );
    let subject = git(&w.mid, &["log", "-1", "--format=%s"]);
    assert!(subject.contains(&moved), "{subject}");
    let subject = git(&w.dev, &["log", "-1", "--format=%s"]);
    assert!(
        subject.contains(&format!("{httpd}:latest: ")) && subject.contains(short(&httpd_digest)),
        "{subject}"
    );
    for (dir, wanted) in [
        (&w.ops, format!("operations pushed {corebuild}:latest")),
        (
            &w.mid,
            format!(
                "operations {corebuild}:latest: strata.lock moved: {}…",
                short(&first)
            ),
        ),
        (&w.mid, "middleware rebuilt httpd-php".to_string()),
        (&w.mid, format!("middleware pushed {httpd}:latest")),
        (&w.dev, "development rebuilt wordpress".to_string()),
        (&w.dev, format!("development pushed {wordpress}:latest")),
    ] {
        let log = ok(strata(dir, &[]).arg("log"));
        assert!(log.contains(&wanted), "{}: {wanted}:\n{log}", dir.display());
    }

    // Each rebuild ran its tier's structure test, and it passed.
    for (dir, image) in [(&w.mid, "httpd-php"), (&w.dev, "wordpress")] {
        let log: Vec<serde_json::Value> =
            serde_json::from_str(&ok(strata(dir, &[]).args(["log", "--json"]))).unwrap();
        let tests: Vec<_> = log
            .iter()
            .filter(|e| e["kind"] == "test" && e["image"] == image)
            .map(|e| e["result"].as_str().unwrap())
            .collect();
        assert_eq!(tests, ["ok", "ok"], "{image}");
    }

    // Two patches while middleware's cascade is held (as another `strata build` would hold the
    // store's build lock): at most two cascades in middleware, one push, the page ends on the last.
    mid.until("idle pass", |l| l.starts_with("watch: up to date"));
    let store = strata_oci::Store::open(w.mid.join(".strata/store")).unwrap();
    let held = store.try_lock_named("build").unwrap().unwrap();
    w.ops_pushes("acme corebuild 3\n");
    let mut said = mid.until("the cascade waiting", |l| l.contains("waiting for it"));
    let last = w.ops_pushes("acme corebuild 4 (last)\n");
    drop(held);
    said.extend(mid.until("httpd-php on the last patch pushed", {
        let on_last = std::cell::Cell::new(false);
        let httpd = httpd.clone();
        let last = format!("→ {}…", short(&last));
        move |l: &str| {
            if l.contains(&last) {
                on_last.set(true);
            }
            on_last.get() && pushed(l, &httpd).is_some()
        }
    }));
    let cascades = said
        .iter()
        .filter(|l| l.starts_with("watch: cascading"))
        .count();
    assert!((1..=2).contains(&cascades), "{said:#?}");
    let pushes = said.iter().filter(|l| pushed(l, &httpd).is_some()).count();
    assert_eq!(
        pushes, 1,
        "only the image on the last patch is pushed: {said:#?}"
    );
    w.wait_for_page("acme corebuild 4 (last)");
    mid.stop();
    dev.stop();
    deploy.stop();
}
