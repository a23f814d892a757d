//! `strata serve`, `push`, `pull` and `copy` against clients and registries we did not write:
//! skopeo copies into strata serve and back, podman pulls and runs from it, a push as the wrong
//! team is refused with 403 and changes nothing, and strata pushes to and pulls from Debian's
//! `docker-registry` (distribution 2.8). Every server listens on 127.0.0.1 and is stopped.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use strata_testutil::{busybox_rootfs_tar, require_tool, run_ok};

use crate::common::Serve;

fn strata(store: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("strata"));
    cmd.env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .env("HOME", store.parent().unwrap())
        .arg("--store")
        .arg(store);
    cmd
}

/// A lower-case temp dir (podman derives names from paths).
fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("strata-registry-")
        .tempdir()
        .unwrap()
}

/// A store holding `acme/base` (busybox, built by `strata build-image`). None: no busybox.
fn busybox_store(dir: &Path) -> Option<PathBuf> {
    let context = dir.join("base");
    std::fs::create_dir_all(&context).unwrap();
    busybox_rootfs_tar(&context.join("rootfs.tar"))?;
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nADD rootfs.tar /\nCMD [\"/bin/sh\"]\n",
    )
    .unwrap();
    let store = dir.join("store");
    run_ok(
        strata(&store)
            .current_dir(dir)
            .args(["build-image", "base", "-t", "acme/base"]),
    );
    Some(store)
}

/// Standard base64 with padding (for a Docker config's `auth`).
fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// An auth file: olga (operations) owns acme/corebuild, abe (apps) owns acme/app; tokens as
/// passwords.
fn auth_file(dir: &Path, pull: &str) -> PathBuf {
    let path = dir.join("auth.toml");
    std::fs::write(
        &path,
        format!(
            r#"pull = "{pull}"
unknown_repositories = "deny"
[users.olga]
token_sha256 = "{}"
team = "operations"
[users.abe]
token_sha256 = "{}"
team = "apps"
[owners]
"acme/corebuild" = "operations"
"acme/app" = "apps"
"#,
            sha256_hex("ops-token"),
            sha256_hex("app-token")
        ),
    )
    .unwrap();
    path
}

fn manifest_digest(store: &Path, reference: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .unwrap_or_else(|| panic!("{reference} not in {index}"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn blob_names(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn skopeo_copies_into_strata_serve_and_back_and_the_wrong_team_is_refused() {
    let Some(skopeo) = require_tool("skopeo") else {
        return;
    };
    let dir = tempdir();
    let Some(source) = busybox_store(dir.path()) else {
        return;
    };
    let digest = manifest_digest(&source, "localhost/acme/base:latest");
    let served = dir.path().join("served");
    let auth = auth_file(dir.path(), "open");
    let server = Serve::start(&served, &["--auth", auth.to_str().unwrap()]);
    let src = format!("oci:{}:localhost/acme/base:latest", source.display());
    let dst = format!("docker://{}/acme/corebuild:latest", server.host);

    // skopeo as olga (operations) pushes acme/corebuild through the bearer-token flow.
    run_ok(Command::new(&skopeo).args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "olga:ops-token",
        &src,
        &dst,
    ]));
    assert_eq!(
        manifest_digest(&served, "localhost/acme/corebuild:latest"),
        digest
    );
    let inspected = run_ok(Command::new(&skopeo).args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &dst,
    ]));
    assert_eq!(inspected.trim(), digest);

    // Credentials from a Docker config: an `auths` entry, then a credential helper.
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            server.host,
            base64("olga:ops-token")
        ),
    )
    .unwrap();
    run_ok(
        strata(&source)
            .env("DOCKER_CONFIG", &docker)
            .env_remove("REGISTRY_AUTH_FILE")
            .args([
                "push",
                "acme/base",
                &format!("{}/acme/corebuild:auths", server.host),
            ]),
    );
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-strata-test");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"olga\",\"Secret\":\"ops-token\"}' \"$server\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"strata-test"}}}}"#, server.host),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run_ok(
        strata(&source)
            .env("DOCKER_CONFIG", &docker)
            .env("PATH", path)
            .env_remove("REGISTRY_AUTH_FILE")
            .args([
                "push",
                "acme/base",
                &format!("{}/acme/corebuild:helper", server.host),
            ]),
    );
    for tag in ["auths", "helper"] {
        assert_eq!(
            manifest_digest(&served, &format!("localhost/acme/corebuild:{tag}")),
            digest
        );
    }

    // And back out into an OCI layout, anonymously (pull = "open").
    let back = dir.path().join("back");
    run_ok(Command::new(&skopeo).args([
        "copy",
        "--src-tls-verify=false",
        &dst,
        &format!("oci:{}:out", back.display()),
    ]));
    assert_eq!(manifest_digest(&back, "out"), digest);

    // Docker v2 schema 2: skopeo converts on the way in, strata serves it back as such.
    run_ok(Command::new(&skopeo).args([
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        "--dest-creds",
        "olga:ops-token",
        &src,
        &format!("docker://{}/acme/corebuild:v2s2", server.host),
    ]));
    let raw = run_ok(Command::new(&skopeo).args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/acme/corebuild:v2s2", server.host),
    ]));
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{raw}"
    );
    let pulled = dir.path().join("pulled-v2s2");
    run_ok(strata(&pulled).args(["pull", &format!("{}/acme/corebuild:v2s2", server.host)]));
    let index = std::fs::read_to_string(pulled.join("index.json")).unwrap();
    assert!(
        index.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{index}"
    );
    run_ok(strata(&pulled).args(["store", "fsck"]));

    // abe (apps) may not push acme/corebuild: 403, and the store does not change.
    let index_before = std::fs::read(served.join("index.json")).unwrap();
    let blobs_before = blob_names(&served);
    let other = dir.path().join("other");
    std::fs::create_dir_all(other.join("x")).unwrap();
    std::fs::write(
        other.join("x/Dockerfile"),
        "FROM localhost/acme/base\nLABEL x=y\n",
    )
    .unwrap();
    run_ok(
        strata(&source)
            .current_dir(&other)
            .args(["build-image", "x", "-t", "acme/evil"]),
    );
    let out = Command::new(&skopeo)
        .args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "abe:app-token",
            &format!("oci:{}:localhost/acme/evil:latest", source.display()),
            &dst,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("denied") || stderr.contains("403"),
        "skopeo said: {stderr}"
    );
    assert_eq!(
        std::fs::read(served.join("index.json")).unwrap(),
        index_before
    );
    assert_eq!(blob_names(&served), blobs_before);

    // strata's own client gets the same 403, with the spec's code and the reason.
    let out = strata(&source)
        .args([
            "push",
            "acme/evil",
            &format!("{}/acme/corebuild:latest", server.host),
            "--creds",
            "abe:app-token",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("403 DENIED") && stderr.contains("owned by team operations"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(served.join("index.json")).unwrap(),
        index_before
    );
}

#[test]
fn podman_pulls_and_runs_an_image_from_strata_serve() {
    let Some(podman) = require_tool("podman") else {
        return;
    };
    let dir = tempdir();
    let Some(store) = busybox_store(dir.path()) else {
        return;
    };
    let auth = auth_file(dir.path(), "open");
    let server = Serve::start(&store, &["--auth", auth.to_str().unwrap()]);
    let image = format!("{}/acme/base:latest", server.host);
    let podman_cmd = || {
        let mut c = Command::new(&podman);
        c.arg("--root")
            .arg(dir.path().join("podman-root"))
            .arg("--runroot")
            .arg(dir.path().join("podman-run"))
            .args(["--storage-driver", "vfs"]);
        c
    };
    run_ok(podman_cmd().args(["pull", "--quiet", "--tls-verify=false", &image]));
    let out = run_ok(podman_cmd().args([
        "run",
        "--rm",
        "--quiet",
        "--runtime",
        "runc",
        "--network",
        "none",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=1024:1024",
        &image,
        "sh",
        "-c",
        "echo served by strata",
    ]));
    assert_eq!(out.trim(), "served by strata");
    // podman login (the token flow) and push as the owning team.
    let authfile = dir.path().join("podman-auth.json");
    let authfile = authfile.to_str().unwrap();
    run_ok(podman_cmd().args([
        "login",
        "--tls-verify=false",
        "--authfile",
        authfile,
        "-u",
        "olga",
        "-p",
        "ops-token",
        &server.host,
    ]));
    let pushed = format!("{}/acme/corebuild:podman", server.host);
    run_ok(podman_cmd().args([
        "push",
        "--quiet",
        "--tls-verify=false",
        "--authfile",
        authfile,
        &image,
        &format!("docker://{pushed}"),
    ]));
    assert!(
        strata_oci::Store::open(&store)
            .unwrap()
            .refs()
            .resolve("acme/corebuild:podman")
            .is_ok()
    );
    // A wrong password is refused at login.
    let out = podman_cmd()
        .args([
            "login",
            "--tls-verify=false",
            "--authfile",
            authfile,
            "-u",
            "olga",
            "-p",
            "wrong",
            &server.host,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let _ = podman_cmd().args(["rmi", "-a", "-f"]).output();
}

/// Debian's docker-registry (distribution 2.8) on 127.0.0.1, filesystem storage in a temp dir.
pub(crate) struct Distribution {
    child: Child,
    pub(crate) host: String,
}

impl Distribution {
    /// Start it with its data under `dir`; None when the tool is missing (outside CI).
    pub(crate) fn start(dir: &Path) -> Option<Distribution> {
        let binary = require_tool("docker-registry")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                dir.join("registry-data").display()
            ),
        )
        .unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = Distribution { child, host };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&registry.host).is_ok() {
                return Some(registry);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry did not start on {}", registry.host);
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn strata_pushes_to_and_pulls_from_distribution() {
    let dir = tempdir();
    let Some(registry) = Distribution::start(dir.path()) else {
        return;
    };
    let Some(store) = busybox_store(dir.path()) else {
        return;
    };
    let digest = manifest_digest(&store, "localhost/acme/base:latest");
    // An attestation on the image, as an untagged referrer in the store.
    let st = strata_oci::Store::open(&store).unwrap();
    let subject = st.refs().resolve("acme/base").unwrap();
    let empty = st.blobs().put(b"{}").unwrap();
    let statement = st
        .blobs()
        .put(br#"{"_type":"https://in-toto.io/Statement/v1"}"#)
        .unwrap();
    let referrer = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.in-toto+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.digest.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": statement.digest.to_string(), "size": statement.size}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject.digest().to_string(), "size": subject.size()},
    });
    let manifest: strata_oci::ImageManifest = serde_json::from_value(referrer).unwrap();
    let referrer = st.put_referrer(&manifest).unwrap();

    let remote = format!("{}/acme/base:1", registry.host);
    let out = run_ok(strata(&store).args(["push", "acme/base", &remote]));
    assert!(out.contains(&digest), "{out}");
    assert!(out.contains("1 referrers"), "{out}");
    // distribution 2.8 has no referrers API: the attestation is under the sha256-<hex> tag.
    let tags = run_ok(strata(&store).args([
        "copy",
        "--json",
        &remote,
        &format!("oci:{}:check", dir.path().join("check").display()),
    ]));
    assert!(tags.contains(&digest), "{tags}");
    let client = strata_remote::Client::new(strata_remote::ClientOptions {
        docker_config: false,
        ..Default::default()
    })
    .unwrap();
    let r = strata_remote::RemoteRef::parse(&remote).unwrap();
    let listed = client.tags(&r).unwrap();
    let scheme_tag = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    assert!(listed.contains(&scheme_tag), "{listed:?}");

    // Pull into a fresh store: same digest, the referrer came along, every blob checks out.
    let pulled = dir.path().join("pulled");
    let out = run_ok(strata(&pulled).args(["pull", &remote]));
    assert!(out.contains(&digest), "{out}");
    assert_eq!(
        manifest_digest(&pulled, &format!("{}/acme/base:1", registry.host)),
        digest
    );
    let pulled_store = strata_oci::Store::open(&pulled).unwrap();
    let referrers = pulled_store
        .referrers(
            &strata_oci::Digest::from_oci(subject.digest()).unwrap(),
            None,
        )
        .unwrap();
    assert_eq!(referrers.len(), 1);
    assert_eq!(referrers[0].digest(), referrer.digest());
    run_ok(strata(&pulled).args(["store", "fsck"]));
    // Both transfers are in the local events log, with their digests.
    let log: serde_json::Value =
        serde_json::from_str(&run_ok(strata(&store).args(["log", "--json"]))).unwrap();
    assert!(
        log.as_array().unwrap().iter().any(|e| e["kind"] == "push"
            && e["image"] == remote.as_str()
            && e["newDigest"] == digest.as_str()
            && e["result"] == "ok"),
        "{log}"
    );
    let log: serde_json::Value =
        serde_json::from_str(&run_ok(strata(&pulled).args(["log", "--json"]))).unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "pull" && e["newDigest"] == digest.as_str()),
        "{log}"
    );

    // Copy registry to registry (distribution → strata serve) mounts nothing but skips nothing
    // either; then a second copy within distribution mounts every blob.
    let out = run_ok(strata(&store).args([
        "copy",
        "--json",
        &remote,
        &format!("{}/acme/copy:1", registry.host),
    ]));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["digest"], digest);
    assert!(report["blobs_mounted"].as_u64().unwrap() >= 1, "{report}");
}

#[test]
fn strata_serve_speaks_tls_to_skopeo() {
    let Some(skopeo) = require_tool("skopeo") else {
        return;
    };
    let Some(openssl) = require_tool("openssl") else {
        return;
    };
    let Some(curl) = require_tool("curl") else {
        return;
    };
    let dir = tempdir();
    let Some(store) = busybox_store(dir.path()) else {
        return;
    };
    let digest = manifest_digest(&store, "localhost/acme/base:latest");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    // A CA, and a server certificate for 127.0.0.1 signed by it.
    let ca_key = dir.path().join("ca-key.pem");
    let ca = dir.path().join("ca.pem");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    run_ok(Command::new(&openssl).args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=strata test CA",
        "-keyout",
        &p(&ca_key),
        "-out",
        &p(&ca),
    ]));
    let csr = dir.path().join("server.csr");
    run_ok(Command::new(&openssl).args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &p(&key),
        "-out",
        &p(&csr),
    ]));
    let ext = dir.path().join("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run_ok(Command::new(&openssl).args([
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&ca),
        "-CAkey",
        &p(&ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p(&ext),
        "-out",
        &p(&cert),
    ]));
    let served = dir.path().join("served");
    let auth = auth_file(dir.path(), "authenticated");
    let server = Serve::start(
        &served,
        &[
            "--auth",
            auth.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let dst = format!("docker://{}/acme/corebuild:tls", server.host);
    run_ok(Command::new(&skopeo).args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "olga:ops-token",
        &format!("oci:{}:localhost/acme/base:latest", store.display()),
        &dst,
    ]));
    assert_eq!(
        manifest_digest(&served, "localhost/acme/corebuild:tls"),
        digest
    );
    let inspected = run_ok(Command::new(&skopeo).args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        "abe:app-token",
        "--format",
        "{{.Digest}}",
        &dst,
    ]));
    assert_eq!(inspected.trim(), digest);
    // strata's client over HTTPS, trusting the server's certificate.
    let pulled = dir.path().join("pulled-tls");
    let out = run_ok(strata(&pulled).args([
        "pull",
        &format!("{}/acme/corebuild:tls", server.host),
        "--creds",
        "abe:app-token",
        "--ca-cert",
        ca.to_str().unwrap(),
    ]));
    assert!(out.contains(&digest), "{out}");
    // Without the CA the certificate is refused.
    let out = strata(&pulled)
        .args([
            "pull",
            &format!("{}/acme/corebuild:tls", server.host),
            "--creds",
            "abe:app-token",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());

    // The challenge names an https realm; plain HTTP gets no registry answer.
    let out = Command::new(&curl)
        .args(["-sk", "-i", &format!("https://{}/v2/", server.host)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("realm=\"https://{}/token\"", server.host)),
        "{text}"
    );
    let out = Command::new(&curl)
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{}/v2/", server.host),
        ])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&out.stdout), "401");
}

#[test]
fn strata_serve_takes_owners_from_the_chain_and_logs_refusals() {
    let dir = tempdir();
    run_ok(
        strata(&dir.path().join("unused"))
            .current_dir(dir.path())
            .arg("init"),
    );
    let chain = dir.path().join("strata.toml");
    let auth = dir.path().join("users.toml");
    std::fs::write(
        &auth,
        format!(
            "[users.olga]\ntoken_sha256 = \"{}\"\nteam = \"operations\"\n[users.dana]\ntoken_sha256 = \"{}\"\nteam = \"development\"\n",
            sha256_hex("ops-token"),
            sha256_hex("dev-token")
        ),
    )
    .unwrap();
    let source = dir.path().join("source");
    let store = strata_oci::Store::init(&source).unwrap();
    let image = strata_oci::random::image(&store, 1, 1000).unwrap();
    store
        .refs()
        .tag("acme/wordpress:1", image.descriptor())
        .unwrap();
    let served = dir.path().join("served");
    let server = Serve::start(
        &served,
        &[
            "--auth",
            auth.to_str().unwrap(),
            "--chain",
            chain.to_str().unwrap(),
        ],
    );
    let remote = format!("{}/acme/wordpress:1", server.host);
    // olga (operations) may not push the development team's wordpress.
    let out = strata(&source)
        .args([
            "push",
            "acme/wordpress:1",
            &remote,
            "--creds",
            "olga:ops-token",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("403 DENIED")
            && stderr.contains("acme/wordpress is owned by team development"),
        "{stderr}"
    );
    assert!(
        strata_oci::Store::open(&served)
            .unwrap()
            .refs()
            .list()
            .unwrap()
            .is_empty()
    );
    // Without a destination, push goes to the chain's `registry` under the image's name.
    let text = std::fs::read_to_string(&chain).unwrap();
    std::fs::write(
        &chain,
        text.replacen(
            "name = \"acme\"\n",
            &format!("name = \"acme\"\nregistry = \"{}\"\n", server.host),
            1,
        ),
    )
    .unwrap();
    let out = run_ok(strata(&source).args([
        "--chain",
        chain.to_str().unwrap(),
        "push",
        "acme/wordpress:1",
        "--creds",
        "dana:dev-token",
    ]));
    assert!(out.starts_with(&format!("{remote}: ")), "{out}");
    assert_eq!(
        manifest_digest(&served, "localhost/acme/wordpress:1"),
        image.digest().to_string()
    );
    // The server's events log has the refusal and the push, with user and team.
    let log: serde_json::Value =
        serde_json::from_str(&run_ok(strata(&served).args(["log", "--json"]))).unwrap();
    let events = log.as_array().unwrap();
    assert!(
        events.iter().any(|e| e["result"] == "refused"
            && e["user"] == "olga"
            && e["team"] == "operations"
            && e["image"] == "acme/wordpress"),
        "{log}"
    );
    assert!(
        events.iter().any(|e| e["result"] == "ok"
            && e["kind"] == "push"
            && e["user"] == "dana"
            && e["image"] == "acme/wordpress:1"),
        "{log}"
    );
}

// Issue 14: with `registry` in strata.toml the chain's images are stored under it, and
// `strata push acme/wordpress:1` did not find them; under `deny` the owning team could not push
// the registry-prefixed name of its own repository.
#[test]
fn push_finds_registry_prefixed_images_and_their_owners_may_push_the_prefixed_name() {
    let dir = tempdir();
    run_ok(
        strata(&dir.path().join("unused"))
            .current_dir(dir.path())
            .arg("init"),
    );
    let chain = dir.path().join("strata.toml");
    let text = std::fs::read_to_string(&chain).unwrap();
    std::fs::write(
        &chain,
        text.replacen(
            "name = \"acme\"\n",
            "name = \"acme\"\nregistry = \"registry.example.com\"\n",
            1,
        ),
    )
    .unwrap();
    let auth = dir.path().join("users.toml");
    std::fs::write(
        &auth,
        format!(
            "unknown_repositories = \"deny\"\n[users.olga]\ntoken_sha256 = \"{}\"\nteam = \"operations\"\n[users.dana]\ntoken_sha256 = \"{}\"\nteam = \"development\"\n",
            sha256_hex("ops-token"),
            sha256_hex("dev-token")
        ),
    )
    .unwrap();
    // What a cascade with that registry tags.
    let source = dir.path().join("source");
    let store = strata_oci::Store::init(&source).unwrap();
    let image = strata_oci::random::image(&store, 1, 1000).unwrap();
    store
        .refs()
        .tag("registry.example.com/acme/wordpress:1", image.descriptor())
        .unwrap();
    let served = dir.path().join("served");
    let server = Serve::start(
        &served,
        &[
            "--auth",
            auth.to_str().unwrap(),
            "--chain",
            chain.to_str().unwrap(),
        ],
    );
    let push = |who: &str, destination: &str| {
        strata(&source)
            .args([
                "--chain",
                chain.to_str().unwrap(),
                "push",
                "acme/wordpress:1",
            ])
            .arg(destination)
            .args(["--creds", who])
            .output()
            .unwrap()
    };
    let prefixed = format!("{}/registry.example.com/acme/wordpress:1", server.host);
    // The wrong team is refused on the prefixed name (it is acme/wordpress)...
    let out = push("olga:ops-token", &prefixed);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("owned by team development"), "{stderr}");
    // ...the owning team may push it, and the short name.
    let out = push("dana:dev-token", &prefixed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = push(
        "dana:dev-token",
        &format!("{}/acme/wordpress:1", server.host),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for reference in [
        "registry.example.com/acme/wordpress:1",
        "localhost/acme/wordpress:1",
    ] {
        assert_eq!(
            manifest_digest(&served, reference),
            image.digest().to_string()
        );
    }
}

/// One HTTP/1.1 request on a fresh connection; returns the response head and body.
fn http(host: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn strata_serve_stops_on_sigterm_and_drops_open_uploads() {
    let dir = tempdir();
    let store = dir.path().join("store");
    let mut server = Serve::start(&store, &[]);
    let response = http(
        &server.host,
        "POST /v2/acme/x/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let location = response
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("{response}"))
        .trim()
        .to_string();
    let response = http(
        &server.host,
        &format!(
            "PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
        ),
    );
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    let tmp = store.join(".strata/tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 1);
    run_ok(Command::new("kill").args(["-TERM", &server.pid().to_string()]));
    let status = server.wait();
    assert!(status.success(), "{status}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(store.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

/// A registry reference that breaks the reference grammar is refused on one line that names it
/// and its fault, before any connection: `host:/x` used to be tried as a registry called `host:`.
#[test]
fn copy_and_pull_name_a_malformed_reference_and_its_fault() {
    let dir = tempdir();
    let store = dir.path().join("store");
    for (args, fault) in [
        (
            vec!["copy", "acme/app:1", "host:/x:1"],
            "invalid registry host \"host:\"",
        ),
        (
            vec!["pull", "bad-.example.com/x:1"],
            "invalid registry host \"bad-.example.com\"",
        ),
        (
            vec!["pull", "example.com/Acme/x"],
            "repository name \"Acme/x\" must be lowercase",
        ),
    ] {
        let out = strata(&store).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        let reference = args.last().unwrap();
        assert!(
            stderr.contains(&format!("invalid image reference \"{reference}\""))
                && stderr.contains(fault),
            "{args:?}: {stderr}"
        );
    }
}
