//! `target = "gitops"` end to end through `strata deploy` (issue 19): a three-tier chain built by
//! strata, a deploy repository made with `git init`, the digest committed into the kustomization
//! with the cascade as its message, checked by `kubectl kustomize` (a tool we did not write).

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use strata_testutil::require_tool;

use crate::common::{git, ok};

const KUSTOMIZATION: &str = "\
# production: Argo CD applies this directory
resources:
  - ../../base
images:
  - name: acme/wordpress   # strata moves the digest
    newName: registry.example.com/acme/wordpress
";

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: wordpress
spec:
  selector:
    matchLabels: {app: wordpress}
  template:
    metadata:
      labels: {app: wordpress}
    spec:
      containers:
        - name: wordpress
          image: acme/wordpress
";

/// A chain of three `FROM` tiers (operations, middleware, development) with the teams' keys, and
/// a deploy repository with one commit.
fn world(d: &Path) {
    let mut chain = String::from("name = \"acme\"\n");
    for team in ["operations", "middleware", "development"] {
        ok(strata(d)
            .args(["key", "generate", "--team", team, "--out"])
            .arg(d.join("keys")));
        chain.push_str(&format!("[teams.{team}]\nkeys = [\"keys/{team}.pub\"]\n"));
    }
    for (name, owner, from, file) in [
        ("corebuild", "operations", "scratch", "motd"),
        ("httpd-php", "middleware", "acme/corebuild", "httpd.conf"),
        ("wordpress", "development", "acme/httpd-php", "index.html"),
    ] {
        chain.push_str(&format!(
            "[[image]]\nname = \"{name}\"\nowner = \"{owner}\"\ncontext = \"{name}\"\n"
        ));
        std::fs::create_dir_all(d.join(name)).unwrap();
        std::fs::write(
            d.join(name).join("Dockerfile"),
            format!("FROM {from}\nCOPY {file} /{file}\n"),
        )
        .unwrap();
        std::fs::write(d.join(name).join(file), format!("{name} 1\n")).unwrap();
    }
    std::fs::write(d.join("strata.toml"), chain).unwrap();

    let repo = d.join("deploy-repo");
    std::fs::create_dir_all(repo.join("overlays/prod")).unwrap();
    std::fs::create_dir_all(repo.join("base")).unwrap();
    std::fs::write(repo.join("overlays/prod/kustomization.yaml"), KUSTOMIZATION).unwrap();
    std::fs::write(repo.join("base/deployment.yaml"), DEPLOYMENT).unwrap();
    std::fs::write(
        repo.join("base/kustomization.yaml"),
        "resources:\n  - deployment.yaml\n",
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "the manifests"]);

    std::fs::create_dir_all(d.join("releases")).unwrap();
    std::fs::write(
        d.join("releases/deploy.toml"),
        "name = \"acme-prod\"\nowner = \"development\"\n[[deployment]]\nname = \"wordpress\"\n\
         image = \"acme/wordpress:latest\"\ntarget = \"gitops\"\n\
         gitops = { repo = \"../deploy-repo\", path = \"overlays/prod/kustomization.yaml\", \
         branch = \"main\" }\n",
    )
    .unwrap();
}

fn strata(d: &Path) -> Command {
    let mut c = crate::common::strata(d, &[]);
    c.env("STRATA_DEPLOY_FILE", d.join("releases/deploy.toml"));
    for team in ["operations", "middleware", "development"] {
        c.env(
            format!("STRATA_KEY_{}", team.to_uppercase()),
            d.join(format!("keys/{team}.key")),
        );
    }
    c
}

/// The commit subjects of the deploy repository, newest first.
fn subjects(d: &Path) -> Vec<String> {
    git(&d.join("deploy-repo"), &["log", "--format=%s"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn digest_of(d: &Path, image: &str) -> String {
    let v: Value =
        serde_json::from_str(&ok(strata(d).args(["inspect", image, "--format", "json"]))).unwrap();
    v["digest"].as_str().unwrap().to_string()
}

/// What `kubectl kustomize` renders as the container's image.
fn rendered_image(kubectl: &Path, d: &Path) -> String {
    let out = ok(Command::new(kubectl)
        .arg("kustomize")
        .arg(d.join("deploy-repo/overlays/prod")));
    out.lines()
        .find_map(|l| l.trim().trim_start_matches("- ").strip_prefix("image: "))
        .unwrap_or_else(|| panic!("no image in\n{out}"))
        .to_string()
}

#[test]
fn a_cascade_is_one_commit_naming_its_cause_and_holds_and_rollbacks_are_respected() {
    let Some(kubectl) = require_tool("kubectl") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    world(d);

    ok(strata(d).arg("build"));
    let first = digest_of(d, "acme/wordpress");
    let out = ok(strata(d).args(["deploy", "--json"]));
    assert!(out.contains("\"deployed\""), "{out}");
    assert_eq!(subjects(d).len(), 2);
    assert_eq!(
        rendered_image(&kubectl, d),
        format!("registry.example.com/acme/wordpress@{first}")
    );

    // operations patches the corebuild: one commit, naming the change and the cascade
    std::fs::write(d.join("corebuild/motd"), "corebuild 2: patched\n").unwrap();
    ok(strata(d).arg("build"));
    let second = digest_of(d, "acme/wordpress");
    assert_ne!(first, second);
    ok(strata(d).arg("deploy"));
    let s = subjects(d);
    assert_eq!(s.len(), 3, "{s:#?}");
    assert_eq!(
        s[0],
        format!(
            "deploy acme-prod/wordpress {second} (corebuild context changed by operations → \
             httpd-php → wordpress)"
        )
    );
    assert_eq!(
        rendered_image(&kubectl, d),
        format!("registry.example.com/acme/wordpress@{second}")
    );
    // the same digest again: no commit
    let out = ok(strata(d).args(["deploy", "--json"]));
    assert!(out.contains("\"up-to-date\""), "{out}");
    assert_eq!(subjects(d).len(), 3);

    // status says where it runs
    let status = ok(strata(d).args(["deploy", "status"]));
    let head = git(&d.join("deploy-repo"), &["rev-parse", "--short=12", "HEAD"]);
    assert!(
        status.contains(&format!("runs at: git commit {}", head.trim())),
        "{status}"
    );

    // a rollback is a commit writing the previous digest, held there
    ok(strata(d).args(["deploy", "rollback", "wordpress", "--team", "development"]));
    let s = subjects(d);
    assert_eq!(s.len(), 4, "{s:#?}");
    assert!(
        s[0].starts_with(&format!("rollback acme-prod/wordpress {first}")),
        "{}",
        s[0]
    );
    assert_eq!(
        rendered_image(&kubectl, d),
        format!("registry.example.com/acme/wordpress@{first}")
    );
    // the next cascade does not undo it
    std::fs::write(d.join("corebuild/motd"), "corebuild 3: patched again\n").unwrap();
    ok(strata(d).arg("build"));
    let out = ok(strata(d).args(["deploy", "--json"]));
    assert!(out.contains("\"held\""), "{out}");
    assert_eq!(subjects(d).len(), 4);
    assert_eq!(
        rendered_image(&kubectl, d),
        format!("registry.example.com/acme/wordpress@{first}")
    );

    // released, it follows the image again, in one more commit
    ok(strata(d).args(["deploy", "release", "wordpress", "--team", "development"]));
    ok(strata(d).arg("deploy"));
    let third = digest_of(d, "acme/wordpress");
    let s = subjects(d);
    assert!(s[1].starts_with("release acme-prod/wordpress"), "{s:#?}");
    assert!(
        s[0].starts_with(&format!("deploy acme-prod/wordpress {third}")),
        "{s:#?}"
    );

    // the history, as for a local deployment
    let history = ok(strata(d).args(["deploy", "history", "wordpress"]));
    for digest in [&first, &second, &third] {
        assert!(history.contains(digest.as_str()), "{history}");
    }
    // another team may not roll it back: nothing is committed
    let out = strata(d)
        .args(["deploy", "rollback", "wordpress", "--team", "operations"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(subjects(d).len(), 6);
}
