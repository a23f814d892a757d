//! `strata_export::openshift` on the example chain (plus a bought base, a git context and tier
//! tests) and a deploy file: every document is validated strictly against OpenShift's own
//! OpenAPI document with Python's jsonschema, and the Kubernetes kinds with kubernetes-validate
//! (`--strict`, the newest and the oldest Kubernetes release it ships).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata_chain::Chain;
use strata_chain::git::{Checkout, GitCheckouts, GitError};
use strata_deploy::DeployFile;
use strata_export::{Export, ExportOptions, openshift};
use strata_testutil::{in_ci, require_tool};

/// The engines' schema documents: the project's `../shared/schemas` (the workspace root's
/// sibling).
const SCHEMAS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/schemas");
const PINNED: &str = "registry.example.com/vendor/ubi:9@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Hands out one prepared directory as the checkout of every git context.
struct FakeGit(PathBuf);

impl GitCheckouts for FakeGit {
    fn checkout(&mut self, _url: &str, _rev: &str) -> Result<Checkout, GitError> {
        Ok(Checkout {
            commit: COMMIT.into(),
            root: self.0.clone(),
        })
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The example chain in `dir`, with tier tests (one a script can run, one it cannot), a bought
/// base and an image built from a git context on it; and a deploy file.
fn fixture(dir: &Path) -> (Chain, DeployFile) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/three-tier");
    copy_dir(&example, dir);
    std::fs::write(dir.join("base/rootfs.tar"), b"not read by the export").unwrap();
    std::fs::write(
        dir.join("corebuild/test.yaml"),
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: no wget\n    command: sh\n    args: [\"-c\", \"! test -e /bin/wget\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("httpd-php/test.yaml"),
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: httpd\n    command: httpd\n    args: [\"-h\"]\n    expectedError: [\"Usage\"]\n",
    )
    .unwrap();
    let checkout = dir.join("checkout");
    std::fs::create_dir_all(checkout.join("java")).unwrap();
    std::fs::write(
        checkout.join("java/Dockerfile"),
        format!("FROM {PINNED}\nARG JDK=21\nRUN echo \"jdk $JDK\"\n"),
    )
    .unwrap();
    let mut toml = std::fs::read_to_string(dir.join("strata.toml")).unwrap();
    toml = toml.replace(
        "context = \"corebuild\"\n",
        "context = \"corebuild\"\ntest = \"corebuild/test.yaml\"\n",
    );
    toml = toml.replace(
        "context = \"httpd-php\"\n",
        "context = \"httpd-php\"\ntest = \"httpd-php/test.yaml\"\n",
    );
    toml.push_str(&format!(
        "\n[[image]]\nname = \"ubi\"\nowner = \"operations\"\ntier = \"base\"\nsource = {{ image = \"{PINNED}\" }}\n\n\
         [[image]]\nname = \"java\"\nowner = \"middleware\"\ntier = \"middleware\"\n\
         context = {{ git = \"https://git.example.com/acme/java.git\", rev = \"main\", dir = \"java\" }}\n\
         args = {{ JDK = \"17\" }}\n"
    ));
    let path = dir.join("strata.toml");
    std::fs::write(&path, &toml).unwrap();
    let chain = Chain::load_with(&path, &mut FakeGit(checkout)).expect("the fixture chain loads");
    let deploy_path = dir.join("deploy.toml");
    std::fs::write(
        &deploy_path,
        "name = \"acme-web\"\n\n[[deployment]]\nname = \"wordpress\"\nimage = \"acme/wordpress:latest\"\n\
         ports = [\"8080:8080\"]\nenv = { WP_ENV = \"prod\" }\nhealth = { http = \"/\", port = 8080, timeout = \"20s\" }\n\n\
         [[deployment]]\nname = \"java-tool\"\nimage = \"acme/java\"\ntrigger = \"manual\"\n\
         health = { exec = \"true\" }\n",
    )
    .unwrap();
    let deploy = DeployFile::load(&deploy_path).expect("the fixture deploy file loads");
    (chain, deploy)
}

fn export(dir: &Path) -> Export {
    let (chain, deploy) = fixture(dir);
    let digests = BTreeMap::from([(
        "wordpress".to_string(),
        "sha256:2222222222222222222222222222222222222222222222222222222222222222".to_string(),
    )]);
    openshift::export(
        &chain,
        Some(&deploy),
        &digests,
        &ExportOptions {
            namespace: "acme".into(),
        },
    )
    .expect("the export succeeds")
}

fn document<'a>(export: &'a Export, file: &str) -> &'a Value {
    &export
        .documents
        .iter()
        .find(|d| d.file == file)
        .unwrap_or_else(|| panic!("no document {file}"))
        .value
}

#[test]
fn buildconfigs_follow_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path());

    let corebuild = document(&out, "corebuild-buildconfig.json");
    assert_eq!(corebuild["spec"]["runPolicy"], "Serial");
    assert_eq!(
        corebuild["spec"]["strategy"]["dockerStrategy"]["from"],
        serde_json::json!({"kind": "ImageStreamTag", "name": "base:latest"})
    );
    assert_eq!(
        corebuild["spec"]["output"]["to"]["name"],
        "corebuild:latest"
    );
    let triggers: Vec<&str> = corebuild["spec"]["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["ConfigChange", "ImageChange"]);
    assert_eq!(corebuild["spec"]["source"]["type"], "Dockerfile");
    assert!(
        corebuild["spec"]["source"]["dockerfile"]
            .as_str()
            .unwrap()
            .contains("COPY motd /etc/motd")
    );
    assert!(
        corebuild["spec"]["postCommit"]["script"]
            .as_str()
            .unwrap()
            .contains("'! test -e /bin/wget'")
    );
    assert_eq!(
        corebuild["metadata"]["labels"]["strata.dev/owner"],
        "operations"
    );
    assert_eq!(
        corebuild["metadata"]["labels"]["strata.dev/tier"],
        "corebuild"
    );

    // The test expecting output on stderr cannot be a script: said, not dropped.
    let httpd = document(&out, "httpd-php-buildconfig.json");
    assert!(httpd["spec"].get("postCommit").is_none());
    assert!(out.unsupported.iter().any(|u| u.subject == "httpd-php"
        && u.what.contains("httpd-php/test.yaml")
        && u.what.contains("postCommit")));

    // Local contexts with files to COPY need a binary build.
    assert!(
        out.unsupported
            .iter()
            .any(|u| u.subject == "wordpress" && u.what.contains("binary build"))
    );
    // The rootfs base needs a registry image.
    assert!(
        out.unsupported
            .iter()
            .any(|u| u.subject == "base" && u.what.contains("base/rootfs.tar"))
    );
    assert!(
        out.documents
            .iter()
            .all(|d| d.file != "base-buildconfig.json")
    );
    // The extra tag is not moved by OpenShift.
    assert!(
        out.unsupported
            .iter()
            .any(|u| u.subject == "wordpress" && u.what.contains("6.4"))
    );

    // The bought base: a scheduled import of its pinned digest, no build.
    let ubi = document(&out, "ubi-imagestream.json");
    assert_eq!(ubi["spec"]["tags"][0]["from"]["name"], PINNED);
    assert_eq!(ubi["spec"]["tags"][0]["importPolicy"]["scheduled"], true);
    assert!(
        out.documents
            .iter()
            .all(|d| d.file != "ubi-buildconfig.json")
    );

    // The git context: uri, ref, contextDir; FROM the bought base's stream; build args.
    let java = document(&out, "java-buildconfig.json");
    assert_eq!(
        java["spec"]["source"],
        serde_json::json!({"type": "Git", "git": {"uri": "https://git.example.com/acme/java.git", "ref": "main"}, "contextDir": "java"})
    );
    assert_eq!(
        java["spec"]["strategy"]["dockerStrategy"]["from"]["name"],
        "ubi:latest"
    );
    assert_eq!(
        java["spec"]["strategy"]["dockerStrategy"]["buildArgs"],
        serde_json::json!([{"name": "JDK", "value": "17"}])
    );

    // The deployment follows its ImageStreamTag, starts on the known digest, probes its health.
    let wordpress = document(&out, "wordpress-deployment.json");
    let triggers: Value = serde_json::from_str(
        wordpress["metadata"]["annotations"]["image.openshift.io/triggers"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(triggers[0]["from"]["name"], "wordpress:latest");
    assert_eq!(triggers[0]["paused"], "false");
    let container = &wordpress["spec"]["template"]["spec"]["containers"][0];
    assert!(container["image"].as_str().unwrap().ends_with(
        "/acme/wordpress@sha256:2222222222222222222222222222222222222222222222222222222222222222"
    ));
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], 8080);
    assert_eq!(container["startupProbe"]["failureThreshold"], 4);
    assert_eq!(
        wordpress["metadata"]["labels"]["strata.dev/owner"],
        "development"
    );
    let service = document(&out, "wordpress-service.json");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 8080);
    // A manual trigger is a paused one, and said so.
    let java_tool = document(&out, "java-tool-deployment.json");
    assert!(
        java_tool["metadata"]["annotations"]["image.openshift.io/triggers"]
            .as_str()
            .unwrap()
            .contains("\"paused\":\"true\"")
    );
    assert!(
        out.documents
            .iter()
            .all(|d| d.file != "java-tool-service.json")
    );
    assert!(
        out.unsupported
            .iter()
            .any(|u| u.subject == "java-tool" && u.what.contains("manual"))
    );
}

/// Python with jsonschema, or None (skipped) outside CI; under CI=true its absence fails.
fn python_with_jsonschema() -> Option<PathBuf> {
    let python = require_tool("python3")?;
    let ok = Command::new(&python)
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    assert!(!in_ci(), "python3's jsonschema is required under CI=true");
    eprintln!("skipping: python3 has no jsonschema");
    None
}

fn run(command: &mut Command) -> (bool, String) {
    let output = command.output().expect("the validator runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn every_document_validates_against_openshift_and_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path());
    let written = out.write(&dir.path().join("export")).unwrap();
    let kinds: Vec<(PathBuf, String)> = written
        .iter()
        .zip(&out.documents)
        .map(|(p, d)| (p.clone(), d.value["kind"].as_str().unwrap().to_string()))
        .collect();
    for kind in ["ImageStream", "BuildConfig", "Deployment", "Service"] {
        assert!(kinds.iter().any(|(_, k)| k == kind), "no {kind} exported");
    }
    let validate = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate.py");
    let schema = Path::new(SCHEMAS).join("openshift-openapi.json");

    if let Some(python) = python_with_jsonschema() {
        // Deployment is not in OpenShift's document: kubernetes-validate checks it below.
        let docs: Vec<&PathBuf> = kinds
            .iter()
            .filter(|(_, k)| k != "Deployment")
            .map(|(p, _)| p)
            .collect();
        let (ok, text) = run(Command::new(&python)
            .arg(&validate)
            .arg("--schema")
            .arg(&schema)
            .args(&docs));
        assert!(ok, "OpenShift schema errors:\n{text}");

        // The validator is strict: a misspelt field fails.
        let bad = dir.path().join("bad.json");
        let mut value = document(&out, "corebuild-buildconfig.json").clone();
        value["spec"]["runPolcy"] = "Serial".into();
        std::fs::write(&bad, value.to_string()).unwrap();
        let (ok, text) = run(Command::new(&python)
            .arg(&validate)
            .arg("--schema")
            .arg(&schema)
            .arg(&bad));
        assert!(
            !ok && text.contains("runPolcy"),
            "a misspelt field passed: {text}"
        );
    }

    if let Some(kv) = require_tool("kubernetes-validate") {
        let docs: Vec<&PathBuf> = kinds
            .iter()
            .filter(|(_, k)| k == "Deployment" || k == "Service")
            .map(|(p, _)| p)
            .collect();
        for version in [None, Some("1.25.0")] {
            let mut command = Command::new(&kv);
            command.arg("--strict");
            if let Some(version) = version {
                command.args(["-k", version]);
            }
            let (ok, text) = run(command.args(&docs));
            assert!(ok, "kubernetes-validate {version:?}:\n{text}");
        }
    }
}
