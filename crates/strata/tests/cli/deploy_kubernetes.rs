//! `target = "kubernetes"` through `strata deploy` (issue 19): the kubeconfig found as kubectl
//! finds it (`KUBECONFIG`), a chain image applied by digest to a mock API server
//! (`strata_testutil::kube_mock`, which answers server-side apply and rollout status as the real
//! one does), a rollout stuck past its deadline rolled back, and `status`, `history`, `hold`,
//! `rollback` on the cluster deployment.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use strata_testutil::kube_mock::MockCluster;

use crate::common::ok;

fn world(d: &Path, cluster: &MockCluster) {
    ok(crate::common::strata(d, &[])
        .args(["key", "generate", "--team", "development", "--out"])
        .arg(d.join("keys")));
    std::fs::write(
        d.join("strata.toml"),
        "name = \"acme\"\n[teams.development]\nkeys = [\"keys/development.pub\"]\n\
         [[image]]\nname = \"web\"\nowner = \"development\"\ncontext = \"web\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("web")).unwrap();
    std::fs::write(
        d.join("web/Dockerfile"),
        "FROM scratch\nCOPY index.html /\n",
    )
    .unwrap();
    std::fs::write(d.join("web/index.html"), "1\n").unwrap();
    std::fs::write(d.join("kubeconfig"), cluster.kubeconfig("shop-cluster")).unwrap();
    std::fs::write(
        d.join("deploy.toml"),
        "name = \"acme-prod\"\nowner = \"development\"\n[[deployment]]\nname = \"web\"\n\
         image = \"acme/web\"\ntarget = \"kubernetes\"\nports = [\"80:8080\"]\n\
         kubernetes = { namespace = \"shop\", context = \"shop-cluster\", \
         image = \"registry.example.com/acme/web\", poll = \"10ms\" }\n",
    )
    .unwrap();
}

fn strata(d: &Path) -> Command {
    let mut c = crate::common::strata(d, &[("development", &d.join("keys/development.key"))]);
    c.env("STRATA_DEPLOY_FILE", d.join("deploy.toml"))
        .env("KUBECONFIG", d.join("kubeconfig"));
    c
}

fn build(d: &Path, content: &str) -> String {
    std::fs::write(d.join("web/index.html"), content).unwrap();
    ok(strata(d).arg("build"));
    let v: Value = serde_json::from_str(&ok(
        strata(d).args(["inspect", "acme/web", "--format", "json"])
    ))
    .unwrap();
    v["digest"].as_str().unwrap().to_string()
}

/// The images the Deployment was applied with, in order.
fn applied(cluster: &MockCluster) -> Vec<String> {
    cluster
        .conversation()
        .iter()
        .filter(|r| r.starts_with("PATCH /apis/apps/v1/namespaces/shop/deployments/web"))
        .map(|r| {
            assert!(
                r.contains("fieldManager=strata") && r.contains("[application/apply-patch+yaml]"),
                "{r}"
            );
            r.rsplit_once("image=").unwrap().1.to_string()
        })
        .collect()
}

#[test]
fn a_chain_image_is_applied_by_digest_followed_rolled_back_and_held() {
    let cluster = MockCluster::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    world(d, &cluster);
    let pulled = |digest: &str| format!("registry.example.com/acme/web@{digest}");

    let first = build(d, "1\n");
    let out = ok(strata(d).args(["deploy", "--json"]));
    assert!(out.contains("\"deployed\""), "{out}");
    assert_eq!(applied(&cluster), [pulled(&first)]);
    let status = ok(strata(d).args(["deploy", "status"]));
    assert!(
        status
            .contains("runs at: cluster shop-cluster namespace shop, deployment web generation 1"),
        "{status}"
    );

    // a rollout that never becomes available: failed, marked bad, the previous digest re-applied
    let bad = build(d, "2: crashes\n");
    cluster.mark_bad(&bad);
    let out = strata(d).args(["deploy", "--json"]).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"rolled-back\""), "{text}");
    assert!(text.contains("exceeded its progress deadline"), "{text}");
    assert_eq!(applied(&cluster), [pulled(&bad), pulled(&first)]);
    // not retried
    let out = ok(strata(d).args(["deploy", "--json"]));
    assert!(out.contains("\"known-bad\""), "{out}");
    assert!(applied(&cluster).is_empty());

    let good = build(d, "3\n");
    ok(strata(d).arg("deploy"));
    assert_eq!(applied(&cluster), [pulled(&good)]);

    // a manual rollback re-applies the previous healthy digest and holds it
    ok(strata(d).args(["deploy", "rollback", "web", "--team", "development"]));
    assert_eq!(applied(&cluster), [pulled(&first)]);
    build(d, "4\n");
    let out = ok(strata(d).args(["deploy", "--json"]));
    assert!(out.contains("\"held\""), "{out}");
    assert!(applied(&cluster).is_empty());

    let history = ok(strata(d).args(["deploy", "history", "web"]));
    for digest in [&first, &bad, &good] {
        assert!(history.contains(digest.as_str()), "{history}");
    }
}
