//! The kubernetes export of the example chain and a deploy file, checked by tools we did not
//! write: `kubernetes-validate --strict` (the oldest and newest Kubernetes it ships) for the
//! Deployments and Services, `kubectl kustomize` for the kustomization.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_chain::Chain;
use strata_deploy::DeployFile;
use strata_export::{Export, ExportError, ExportOptions, kubernetes};

const REGISTRY: &str = "registry.example.com:5000";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// The example chain (`examples/three-tier`), pushed to [`REGISTRY`], in a temp directory.
fn example_chain(dir: &Path) -> Chain {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/three-tier");
    copy_dir(&example, dir);
    std::fs::write(dir.join("base/rootfs.tar"), b"").unwrap();
    let path = dir.join("strata.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "name = \"acme\"\n",
        &format!("name = \"acme\"\nregistry = \"{REGISTRY}\"\n"),
        1,
    );
    std::fs::write(&path, text).unwrap();
    Chain::load(&path).expect("the example chain loads")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

const DEPLOY: &str = r#"
name = "acme-prod"
owner = "development"

[[deployment]]
name = "wordpress"
image = "acme/wordpress:latest"
ports = ["8080:80", "127.0.0.1:8443:80"]
env = { WORDPRESS_DB_HOST = "db", LANG = "C.UTF-8" }
health = { http = "/healthz", port = 80, timeout = "12s" }
stop_grace = "20s"

[[deployment]]
name = "php"
image = "registry.example.com:5000/acme/httpd-php:2"
ports = ["9000"]
trigger = "manual"
health = { tcp = true }

[[deployment]]
name = "core"
image = "acme/corebuild"
health = { exec = "test -e /etc/motd", timeout = "500ms" }
network = "none"
require = { verified = true }
"#;

fn deploy_file(dir: &Path, text: &str) -> DeployFile {
    let path = dir.join("deploy.toml");
    std::fs::write(&path, text).unwrap();
    DeployFile::load(&path).expect("the deploy file parses")
}

fn digests() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("base".to_string(), digest(1)),
        ("corebuild".to_string(), digest(2)),
        ("httpd-php".to_string(), digest(3)),
        ("wordpress".to_string(), digest(4)),
    ])
}

fn options() -> ExportOptions {
    ExportOptions {
        namespace: "acme-prod".to_string(),
    }
}

fn export_example(dir: &Path) -> Export {
    let chain = example_chain(&dir.join("chain"));
    let deploy = deploy_file(dir, DEPLOY);
    kubernetes::export(&chain, Some(&deploy), &digests(), &options()).expect("the export")
}

fn document<'a>(export: &'a Export, file: &str) -> &'a serde_json::Value {
    &export
        .documents
        .iter()
        .find(|d| d.file == file)
        .unwrap_or_else(|| panic!("no document {file}"))
        .value
}

/// The oldest and the newest Kubernetes version `kubernetes-validate` ships schemas for.
fn kubernetes_versions() -> (String, String) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import kubernetes_validate.utils as u\n\
             v = sorted(set(u.all_versions()), key=lambda s: tuple(int(x) for x in s.split('.')))\n\
             print(v[0], v[-1])",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut words = text.split_whitespace().map(str::to_string);
    (words.next().unwrap(), words.next().unwrap())
}

/// `kubernetes-validate --strict -k VERSION FILES`: (success, output).
fn kubernetes_validate(tool: &Path, version: &str, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(tool)
        .args(["--strict", "--no-warn", "-k", version])
        .args(files)
        .output()
        .expect("kubernetes-validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn deployments_and_services_pass_kubernetes_validate_strict_oldest_and_newest() {
    let Some(tool) = strata_testutil::require_tool("kubernetes-validate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let export = export_example(dir.path());
    let out = dir.path().join("out");
    let written = export.write(&out).unwrap();
    let kinds: Vec<PathBuf> = written
        .iter()
        .filter(|p| p.file_name().unwrap() != "kustomization.yaml")
        .cloned()
        .collect();
    // three Deployments, two Services (core publishes no port)
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    let (oldest, newest) = kubernetes_versions();
    assert_ne!(oldest, newest);
    for version in [&oldest, &newest] {
        let (ok, text) = kubernetes_validate(&tool, version, &kinds);
        assert!(ok, "kubernetes {version}: {text}");
        assert!(!text.contains("INVALID"), "{text}");
    }

    // The validator is strict: an unknown field in a Deployment is an error, so the pass above
    // means something.
    let mut bad = document(&export, "wordpress-deployment.json").clone();
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always".into();
    let bad_path = dir.path().join("bad.json");
    std::fs::write(&bad_path, serde_json::to_string(&bad).unwrap()).unwrap();
    let (ok, text) = kubernetes_validate(&tool, &newest, &[bad_path]);
    assert!(!ok, "an unknown field passed: {text}");
}

#[test]
fn images_are_pinned_by_digest_with_probes_labels_and_ports() {
    let dir = tempfile::tempdir().unwrap();
    let export = export_example(dir.path());

    let wordpress = document(&export, "wordpress-deployment.json");
    let container = &wordpress["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        format!("{REGISTRY}/acme/wordpress@{}", digest(4))
    );
    assert_eq!(wordpress["metadata"]["namespace"], "acme-prod");
    assert_eq!(
        wordpress["metadata"]["labels"]["strata.dev/owner"],
        "development"
    );
    assert_eq!(
        wordpress["metadata"]["labels"]["strata.dev/tier"],
        "application"
    );
    assert_eq!(
        wordpress["metadata"]["annotations"]["strata.dev/deploy-owner"],
        "development"
    );
    assert_eq!(
        wordpress["spec"]["template"]["metadata"]["labels"]["strata.dev/owner"],
        "development"
    );
    // 12s to become healthy at a 5s period: 3 failures allowed to start
    let probe = serde_json::json!({
        "httpGet": { "path": "/healthz", "port": 80 },
        "periodSeconds": 5,
        "failureThreshold": 3,
    });
    assert_eq!(container["startupProbe"], probe);
    assert_eq!(container["readinessProbe"], probe);
    assert_eq!(container["livenessProbe"], probe);
    assert_eq!(
        container["ports"],
        serde_json::json!([{ "containerPort": 80, "protocol": "TCP" }])
    );
    assert_eq!(
        container["env"],
        serde_json::json!([
            { "name": "LANG", "value": "C.UTF-8" },
            { "name": "WORDPRESS_DB_HOST", "value": "db" },
        ])
    );
    assert_eq!(
        wordpress["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        20
    );
    let service = document(&export, "wordpress-service.json");
    assert_eq!(
        service["spec"]["ports"],
        serde_json::json!([{ "name": "port-8080", "port": 8080, "targetPort": 80, "protocol": "TCP" }])
            .as_array()
            .unwrap()
            .iter()
            .cloned()
            .chain([serde_json::json!({ "name": "port-8443", "port": 8443, "targetPort": 80, "protocol": "TCP" })])
            .collect::<serde_json::Value>()
    );
    assert_eq!(
        service["spec"]["selector"],
        wordpress["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        service["metadata"]["labels"]["strata.dev/tier"],
        "application"
    );

    // a registry reference to a chain image is the chain image, by digest
    let php = document(&export, "php-deployment.json");
    let container = &php["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        format!("{REGISTRY}/acme/httpd-php@{}", digest(3))
    );
    assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], 9000);
    assert_eq!(php["metadata"]["labels"]["strata.dev/tier"], "middleware");

    let core = document(&export, "core-deployment.json");
    let container = &core["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["livenessProbe"]["exec"]["command"],
        serde_json::json!(["sh", "-c", "test -e /etc/motd"])
    );
    assert_eq!(container["startupProbe"]["failureThreshold"], 1);
    assert_eq!(container["livenessProbe"]["failureThreshold"], 3);
    assert!(
        export
            .documents
            .iter()
            .all(|d| d.file != "core-service.json")
    );

    // no document names a mutable tag
    for d in &export.documents {
        let text = d.value.to_string();
        assert!(
            !text.contains(":latest") && !text.contains("httpd-php:2"),
            "{}: {text}",
            d.file
        );
    }
}

#[test]
fn what_kubernetes_cannot_carry_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let export = export_example(dir.path());
    let lost: Vec<String> = export
        .unsupported
        .iter()
        .map(|u| format!("{}: {}", u.subject, u.what))
        .collect();
    let has = |subject: &str, what: &str| {
        assert!(
            lost.iter()
                .any(|l| l.starts_with(subject) && l.contains(what)),
            "{subject} / {what} not in {lost:#?}"
        )
    };
    has("deployment acme-prod/php", "trigger = \"manual\"");
    has("deployment acme-prod/core", "require.verified");
    has("deployment acme-prod/core", "network = \"none\"");
    has("deployment acme-prod/wordpress", "127.0.0.1:8443:80");
    has("chain acme", "builds");
    assert_eq!(lost.len(), 5, "{lost:#?}");
}

#[test]
fn the_kustomization_carries_the_digests_and_kubectl_builds_it() {
    let dir = tempfile::tempdir().unwrap();
    let export = export_example(dir.path());
    let kustomization = document(&export, "kustomization.yaml");
    assert_eq!(kustomization["kind"], "Kustomization");
    assert_eq!(kustomization["namespace"], "acme-prod");
    assert_eq!(
        kustomization["images"],
        serde_json::json!([
            { "name": format!("{REGISTRY}/acme/corebuild"), "digest": digest(2) },
            { "name": format!("{REGISTRY}/acme/httpd-php"), "digest": digest(3) },
            { "name": format!("{REGISTRY}/acme/wordpress"), "digest": digest(4) },
        ])
    );
    assert_eq!(export.documents.last().unwrap().file, "kustomization.yaml");

    let Some(kubectl) = strata_testutil::require_tool("kubectl") else {
        return;
    };
    let out = dir.path().join("out");
    export.write(&out).unwrap();
    let built = Command::new(kubectl)
        .arg("kustomize")
        .arg(&out)
        .output()
        .expect("kubectl runs");
    let text = String::from_utf8_lossy(&built.stdout);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert_eq!(text.matches("kind: Deployment").count(), 3, "{text}");
    assert_eq!(text.matches("kind: Service").count(), 2, "{text}");
    assert!(
        text.contains(&format!("image: {REGISTRY}/acme/wordpress@{}", digest(4))),
        "{text}"
    );

    // The images: entries are the ones kustomize applies: a bump there (what a gitops commit
    // writes) changes the Deployment's image.
    let path = out.join("kustomization.yaml");
    let bumped = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&digest(4), &digest(7));
    std::fs::write(&path, bumped).unwrap();
    let built = Command::new(strata_testutil::which("kubectl").unwrap())
        .arg("kustomize")
        .arg(&out)
        .output()
        .expect("kubectl runs");
    assert!(built.status.success());
    let text = String::from_utf8_lossy(&built.stdout);
    assert!(
        text.contains(&format!("image: {REGISTRY}/acme/wordpress@{}", digest(7))),
        "{text}"
    );
    assert!(!text.contains(&digest(4)), "{text}");
}

#[test]
fn a_chain_image_without_a_digest_is_an_error_never_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let chain = example_chain(&dir.path().join("chain"));
    let deploy = deploy_file(dir.path(), DEPLOY);
    let mut digests = digests();
    digests.remove("httpd-php");
    let err = kubernetes::export(&chain, Some(&deploy), &digests, &options()).unwrap_err();
    assert!(matches!(err, ExportError::Invalid { .. }));
    let text = err.to_string();
    assert!(text.starts_with("deployment php: "), "{text}");
    assert!(
        text.contains("no digest is known for chain image httpd-php"),
        "{text}"
    );
}

#[test]
fn an_image_outside_the_chain_must_be_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let chain = example_chain(&dir.path().join("chain"));
    let tagged = deploy_file(
        dir.path(),
        "name = \"x\"\n[[deployment]]\nname = \"db\"\nimage = \"docker.io/library/mariadb:11\"\n",
    );
    let err = kubernetes::export(&chain, Some(&tagged), &digests(), &options()).unwrap_err();
    assert!(err.to_string().contains("not pinned by digest"), "{err}");

    let pinned = deploy_file(
        dir.path(),
        &format!(
            "name = \"x\"\n[[deployment]]\nname = \"db\"\nimage = \"docker.io/library/mariadb:11@{}\"\n",
            digest(9)
        ),
    );
    let export = kubernetes::export(&chain, Some(&pinned), &digests(), &options()).unwrap();
    let db = document(&export, "db-deployment.json");
    assert_eq!(
        db["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("docker.io/library/mariadb@{}", digest(9))
    );
    assert!(db["metadata"]["labels"].get("strata.dev/owner").is_none());
}

#[test]
fn names_a_cluster_rejects_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let chain = example_chain(&dir.path().join("chain"));
    let deploy = deploy_file(
        dir.path(),
        "name = \"x\"\n[[deployment]]\nname = \"word_press\"\nimage = \"acme/wordpress\"\n",
    );
    let err = kubernetes::export(&chain, Some(&deploy), &digests(), &options()).unwrap_err();
    assert!(
        err.to_string().starts_with("deployment word_press: "),
        "{err}"
    );

    let deploy = deploy_file(
        dir.path(),
        "name = \"x\"\n[[deployment]]\nname = \"w\"\nimage = \"acme/wordpress\"\nenv = { \"1 X\" = \"y\" }\n",
    );
    let err = kubernetes::export(&chain, Some(&deploy), &digests(), &options()).unwrap_err();
    assert!(
        err.to_string().contains("environment name \"1 X\""),
        "{err}"
    );

    let deploy = deploy_file(dir.path(), DEPLOY);
    let options = ExportOptions {
        namespace: "Acme/../prod".to_string(),
    };
    let err = kubernetes::export(&chain, Some(&deploy), &digests(), &options).unwrap_err();
    assert!(err.to_string().starts_with("namespace: "), "{err}");

    // a chain without a registry has nowhere a cluster could pull from
    let mut chain = chain;
    chain.file.registry = None;
    let err = kubernetes::export(&chain, Some(&deploy), &digests(), &self::options()).unwrap_err();
    assert!(err.to_string().contains("has no `registry`"), "{err}");
}

#[test]
fn a_hostile_digest_never_reaches_a_document() {
    let dir = tempfile::tempdir().unwrap();
    let chain = example_chain(&dir.path().join("chain"));
    let deploy = deploy_file(dir.path(), DEPLOY);
    let mut digests = digests();
    digests.insert("wordpress".into(), "sha256:../../x\nkind: Secret".into());
    let err = kubernetes::export(&chain, Some(&deploy), &digests, &options()).unwrap_err();
    assert!(err.to_string().contains("is not a sha256 digest"), "{err}");
}

#[test]
fn a_digest_written_in_the_deploy_file_is_kept_and_two_digests_of_one_image_stay_out_of_images() {
    let dir = tempfile::tempdir().unwrap();
    let chain = example_chain(&dir.path().join("chain"));
    let deploy = deploy_file(
        dir.path(),
        &format!(
            "name = \"x\"\n\
             [[deployment]]\nname = \"stable\"\nimage = \"{REGISTRY}/acme/wordpress@{}\"\n\
             [[deployment]]\nname = \"canary\"\nimage = \"acme/wordpress\"\n",
            digest(5)
        ),
    );
    let export = kubernetes::export(&chain, Some(&deploy), &digests(), &options()).unwrap();
    let image = |file: &str| {
        document(&export, file)["spec"]["template"]["spec"]["containers"][0]["image"].clone()
    };
    assert_eq!(
        image("stable-deployment.json"),
        format!("{REGISTRY}/acme/wordpress@{}", digest(5))
    );
    assert_eq!(
        image("canary-deployment.json"),
        format!("{REGISTRY}/acme/wordpress@{}", digest(4))
    );
    // kustomize's images: would set both to one digest
    assert_eq!(
        document(&export, "kustomization.yaml")["images"],
        serde_json::json!([])
    );
    let lost = &export.unsupported.last().unwrap();
    assert_eq!(lost.subject, format!("image {REGISTRY}/acme/wordpress"));
    assert!(lost.what.contains("canary at"), "{}", lost.what);
    assert!(lost.what.contains("stable at"), "{}", lost.what);
}

#[test]
fn a_bought_image_is_pulled_from_its_vendor_at_its_pin() {
    let dir = tempfile::tempdir().unwrap();
    let chain_dir = dir.path().join("chain");
    example_chain(&chain_dir);
    let path = chain_dir.join("strata.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[[image]]\nname = \"vendor-os\"\nowner = \"operations\"\ntier = \"base\"\n\
         source = {{ image = \"vendor.example/os:9@{}\" }}\n",
        digest(6)
    ));
    std::fs::write(&path, text).unwrap();
    let chain = Chain::load(&path).expect("the chain loads");
    let deploy = deploy_file(
        dir.path(),
        "name = \"x\"\n[[deployment]]\nname = \"os\"\nimage = \"vendor-os\"\n",
    );
    let export = kubernetes::export(&chain, Some(&deploy), &digests(), &options()).unwrap();
    let os = document(&export, "os-deployment.json");
    assert_eq!(
        os["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("vendor.example/os@{}", digest(6))
    );
    assert_eq!(os["metadata"]["labels"]["strata.dev/owner"], "operations");
}
