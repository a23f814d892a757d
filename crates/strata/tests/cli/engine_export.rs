//! `strata export kubernetes` (issue 19): the chain's deployments as documents a cluster applies,
//! each image by the digest the store holds for it, checked by kubernetes-validate (--strict),
//! with what Kubernetes cannot carry said on stderr.

use std::process::Command;

use crate::common::project::run;
use serde_json::Value;
use strata_testutil::{require_tool, run_ok};

#[test]
fn kubernetes_export_runs_each_deployment_by_the_digest_the_store_holds() {
    let Some(validate) = require_tool("kubernetes-validate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("app")).unwrap();
    if strata_testutil::busybox_rootfs_tar(&d.join("rootfs.tar")).is_none() {
        return;
    }
    std::fs::write(d.join("app/index.html"), "hello\n").unwrap();
    std::fs::write(
        d.join("app/Dockerfile"),
        "FROM registry.acme.example/acme/base\nCOPY index.html /srv/index.html\n\
         CMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/srv\"]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("strata.toml"),
        "name = \"acme\"\nregistry = \"registry.acme.example\"\n\
         [teams.operations]\n[teams.development]\n\
         [[image]]\nname = \"base\"\nowner = \"operations\"\ntier = \"base\"\n\
         source = { rootfs = \"rootfs.tar\" }\n\
         [[image]]\nname = \"app\"\nowner = \"development\"\ntier = \"application\"\n\
         context = \"app\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("deploy.toml"),
        "name = \"acme-prod\"\nowner = \"development\"\n[[deployment]]\nname = \"web\"\n\
         image = \"app\"\nports = [\"8080:8080\"]\n\
         health = { http = \"/index.html\", port = 8080, timeout = \"30s\" }\n",
    )
    .unwrap();
    let out = run(d, &["build"]);
    assert!(out.status.success(), "{out:?}");
    let images: Value = serde_json::from_slice(&run(d, &["images", "--json"]).stdout).unwrap();
    let app = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reference"] == "registry.acme.example/acme/app:latest")
        .unwrap_or_else(|| panic!("{images}"))["digest"]
        .as_str()
        .unwrap()
        .to_string();

    let out = run(d, &["export", "kubernetes", "-o", "k8s", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["namespace"], "acme");
    let written: Vec<&str> = report["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        written.iter().any(|p| p.ends_with("kustomization.yaml")),
        "{written:?}"
    );
    // What plain Kubernetes cannot carry is said, one line each, not dropped.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("strata export kubernetes: ") && l.contains("not carried")),
        "{stderr}"
    );
    let deployment: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("k8s/web-deployment.json")).unwrap())
            .unwrap();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("registry.acme.example/acme/app@{app}").as_str()
    );
    run_ok(
        Command::new(validate)
            .arg("--strict")
            .arg(d.join("k8s/web-deployment.json"))
            .arg(d.join("k8s/web-service.json")),
    );
    // A name that is not an engine (nor given -o) says what it expected.
    let out = run(d, &["export", "openshiftt"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not an engine (openshift, tekton, kubernetes)"),
        "{stderr}"
    );
}
