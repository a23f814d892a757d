//! The real Debian chain, made the official way: the base is `FROM scratch` / `ADD rootfs.tar /` of a
//! debootstrap root filesystem (device nodes included), as Debian's official image is made,
//! apt-get in the corebuild and middleware RUN steps (through the sandbox's default private network),
//! and podman running apache from the top image and serving its page.

#![allow(clippy::print_stderr)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin_cmd;
use strata_testutil::{debian_rootfs_tar, is_root, require_tool, run_ok};

/// A directory podman accepts in `oci:` paths (no dots, no upper case).
fn podman_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("strata-debian-{}", std::process::id()))
        .rand_bytes(0)
        .tempdir()
        .unwrap()
}

/// A TCP port free on 127.0.0.1 now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes the podman container (and its storage) however the test ends.
struct Container {
    podman: Vec<String>,
    name: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = StdCommand::new("podman")
            .args(&self.podman)
            .args(["rm", "-f", "-t", "0", &self.name])
            .output();
    }
}

fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

fn link_or_copy(from: &Path, to: &Path) {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap();
    }
}

#[test]
fn a_debootstrap_chain_builds_with_apt_and_podman_serves_its_page() {
    if !is_root() {
        assert!(!strata_testutil::in_ci(), "CI runs as root");
        eprintln!("skipping: RUN steps need root");
        return;
    }
    let Some(_) = require_tool("podman") else {
        return;
    };
    let Some(rootfs) = debian_rootfs_tar() else {
        return;
    };
    let dir = podman_dir();
    let d = dir.path();
    let port = free_port();
    std::fs::create_dir(d.join("debian")).unwrap();
    link_or_copy(&rootfs, &d.join("debian/rootfs.tar"));
    std::fs::write(
        d.join("debian/Dockerfile"),
        "FROM scratch\nADD rootfs.tar /\nCMD [\"bash\"]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("strata.toml"),
        r#"name = "deb"

[teams.operations]
[teams.middleware]

[[image]]
name = "debian"
owner = "operations"
tier = "base"
context = "debian"

[[image]]
name = "corebuild"
owner = "operations"
tier = "corebuild"
context = "corebuild"

[[image]]
name = "httpd"
owner = "middleware"
tier = "middleware"
context = "httpd"
"#,
    )
    .unwrap();
    std::fs::create_dir(d.join("corebuild")).unwrap();
    std::fs::write(
        d.join("corebuild/Dockerfile"),
        "FROM deb/debian\n\
         RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends procps \\\n\
         \x20&& rm -rf /var/lib/apt/lists/*\n\
         RUN echo 'corebuild by operations' > /etc/motd\n",
    )
    .unwrap();
    std::fs::create_dir(d.join("httpd")).unwrap();
    std::fs::write(
        d.join("httpd/Dockerfile"),
        format!(
            "FROM deb/corebuild\n\
             RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends apache2 \\\n\
             \x20&& rm -rf /var/lib/apt/lists/*\n\
             RUN sed -i 's/^Listen 80$/Listen 127.0.0.1:{port}/' /etc/apache2/ports.conf \\\n\
             \x20&& echo '<h1>served from the strata chain</h1>' > /var/www/html/index.html\n\
             CMD [\"apachectl\", \"-D\", \"FOREGROUND\"]\n"
        ),
    )
    .unwrap();
    let store = d.join("store");
    let out = cargo_bin_cmd!("strata")
        .arg("-C")
        .arg(d)
        .arg("--store")
        .arg(&store)
        .arg("build")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "strata build of the Debian chain:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The base keeps debootstrap's device nodes in its layer (unusable inside steps).
    let listing = cargo_bin_cmd!("strata")
        .arg("--store")
        .arg(&store)
        .args(["run", "deb/httpd", "--", "sh", "-c"])
        .arg("ls -l /usr/sbin/apache2 && cat /etc/motd && dpkg -s procps apache2 | grep -c '^Status: install ok installed'")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    assert!(text.contains("corebuild by operations"), "{text}");
    assert!(text.trim_end().ends_with('2'), "{text}");

    // The checks below only read the built store, and each mostly waits on one process at a time
    // (strata, dpkg-query, trivy, the validators, podman): they run side by side, as this is the
    // suite's longest test.
    std::thread::scope(|threads| {
        threads.spawn(|| packages_match_dpkg_query_and_are_credited_to_their_tiers(&store));
        threads.spawn(|| crate::debian_sbom::check(d, &store));
        threads.spawn(|| podman_serves_the_page(d, &store, port));
    });
}

/// podman runs apache from the top image (`deb/httpd` in `store`) and serves the page on `port`.
fn podman_serves_the_page(d: &Path, store: &Path, port: u16) {
    let podman: Vec<String> = [
        "--root",
        &d.join("podman-root").display().to_string(),
        "--runroot",
        &d.join("podman-run").display().to_string(),
        "--storage-driver",
        "vfs",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let name = format!("strata-debian-{}", std::process::id());
    let _container = Container {
        podman: podman.clone(),
        name: name.clone(),
    };
    run_ok(
        StdCommand::new("podman")
            .args(&podman)
            .args(["run", "-d", "--quiet", "--name", &name])
            .args(["--runtime", "runc", "--network", "host"])
            .args([
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .arg(format!(
                "oci:{}:localhost/deb/httpd:latest",
                store.display()
            )),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let page = loop {
        if let Some(body) = http_get(port).filter(|b| b.contains("200 OK")) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "apache did not serve on 127.0.0.1:{port}: {}",
            run_ok(
                StdCommand::new("podman")
                    .args(&podman)
                    .args(["logs", &name])
            )
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(page.contains("served from the strata chain"), "{page}");
}

/// `strata packages` of every image of the chain lists what dpkg-query, run inside that image,
/// lists (name, version, architecture, source name and version), and credits each package to the
/// tier whose layer installed it: procps to corebuild (operations), apache2 to httpd (middleware),
/// libc6 to the debootstrap base — although both upper tiers rewrote dpkg's status file.
fn packages_match_dpkg_query_and_are_credited_to_their_tiers(store: &Path) {
    for image in ["deb/debian", "deb/corebuild", "deb/httpd"] {
        let out = cargo_bin_cmd!("strata")
            .arg("--store")
            .arg(store)
            .args(["packages", image, "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "strata packages {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let packages = json["packages"].as_array().unwrap();
        let mut ours: Vec<String> = packages
            .iter()
            .map(|p| {
                format!(
                    "{}\t{}\t{}\t{}\t{}",
                    p["name"].as_str().unwrap(),
                    p["version"].as_str().unwrap(),
                    p["arch"].as_str().unwrap(),
                    p["sourceName"].as_str().unwrap(),
                    p["sourceVersion"].as_str().unwrap()
                )
            })
            .collect();
        ours.sort();
        let query = cargo_bin_cmd!("strata")
            .arg("--store")
            .arg(store)
            .args(["run", image, "--", "dpkg-query", "-W", "-f"])
            .arg("${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n")
            .output()
            .unwrap();
        assert!(query.status.success(), "dpkg-query in {image}");
        let mut theirs: Vec<String> = String::from_utf8(query.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("installed\t").map(str::to_string))
            .collect();
        theirs.sort();
        assert!(theirs.len() > 50, "{image}: {theirs:?}");
        assert_eq!(ours, theirs, "{image}: strata packages vs dpkg-query");
        let tier = |name: &str| {
            let p = packages
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{name} not in {image}"));
            (
                p["installedBy"]["chainImage"].as_str().unwrap().to_string(),
                p["installedBy"]["owner"].as_str().unwrap().to_string(),
            )
        };
        assert_eq!(tier("libc6"), ("deb/debian".into(), "operations".into()));
        if image != "deb/debian" {
            assert_eq!(
                tier("procps"),
                ("deb/corebuild".into(), "operations".into())
            );
        }
        if image == "deb/httpd" {
            assert_eq!(tier("apache2"), ("deb/httpd".into(), "middleware".into()));
        }
    }
}
