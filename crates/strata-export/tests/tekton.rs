//! The Tekton export of the example chain (examples/three-tier, with a tier test and a deploy
//! file), checked by tools strata did not write: Tekton's v1 swagger through Python's jsonschema
//! (strict: unknown fields are errors) and `tekton-lint` from npm.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata_export::{Export, ExportOptions, tekton};

/// Where the engines' schema documents are: the project's `../shared/schemas` (the workspace
/// root's sibling); `STRATA_SCHEMAS` overrides it.
const SCHEMAS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/schemas");

fn schemas() -> Option<PathBuf> {
    let dir = std::env::var_os("STRATA_SCHEMAS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SCHEMAS));
    if dir.join("tekton-pipeline-v1-swagger.json").is_file() {
        return Some(dir);
    }
    if strata_testutil::in_ci() {
        panic!(
            "the schemas are required under CI=true: none in {}",
            dir.display()
        );
    }
    eprintln!(
        "skipping: no schemas in {} (set STRATA_SCHEMAS)",
        dir.display()
    );
    None
}

/// Run tests/validate_tekton.py on `docs`.
fn validate(schemas: &Path, docs: &[PathBuf]) -> std::process::Output {
    Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate_tekton.py"))
        .arg("--schema")
        .arg(schemas.join("tekton-pipeline-v1-swagger.json"))
        .arg("--openshift")
        .arg(schemas.join("openshift-openapi.json"))
        .args(docs)
        .output()
        .expect("python3 runs")
}

/// The interface (params, workspaces, results) of the Tekton catalog's `buildah` task 0.10,
/// written from its documentation: what tekton-lint checks the pipeline's references against.
const BUILDAH_INTERFACE: &str = "\
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: buildah
spec:
  description: The catalog buildah task's interface (0.10)
  params:
    - {name: IMAGE, type: string, description: The image reference to push}
    - {name: BUILDER_IMAGE, type: string, default: quay.io/buildah/stable:v1, description: buildah's image}
    - {name: STORAGE_DRIVER, type: string, default: overlay, description: buildah's storage driver}
    - {name: DOCKERFILE, type: string, default: ./Dockerfile, description: The Dockerfile}
    - {name: CONTEXT, type: string, default: ., description: The build context}
    - {name: TLSVERIFY, type: string, default: 'true', description: Verify registry TLS}
    - {name: FORMAT, type: string, default: oci, description: oci or docker}
    - {name: BUILD_EXTRA_ARGS, type: string, default: '', description: Extra build flags}
    - {name: PUSH_EXTRA_ARGS, type: string, default: '', description: Extra push flags}
    - {name: SKIP_PUSH, type: string, default: 'false', description: Do not push}
    - {name: BUILD_ARGS, type: array, default: [''], description: KEY=VALUE build args}
    - {name: MANIFEST_LIST, type: string, default: 'false', description: Push a manifest list}
  workspaces:
    - {name: source}
    - {name: sslcertdir, optional: true}
    - {name: dockerconfig, optional: true}
  results:
    - {name: IMAGE_DIGEST, description: The pushed digest}
    - {name: IMAGE_URL, description: The pushed reference}
    - {name: MANIFEST_LIST_DIGEST, description: The manifest list's digest}
  steps:
    - name: build-and-push
      image: $(params.BUILDER_IMAGE)
      workingDir: $(workspaces.source.path)
      args: ['$(params.BUILD_ARGS[*])']
      script: |
        #!/bin/sh
        echo $(params.IMAGE) $(params.STORAGE_DRIVER) $(params.DOCKERFILE) $(params.CONTEXT) \\
          $(params.TLSVERIFY) $(params.FORMAT) $(params.BUILD_EXTRA_ARGS) \\
          $(params.PUSH_EXTRA_ARGS) $(params.SKIP_PUSH) $(params.MANIFEST_LIST) \\
          $(workspaces.sslcertdir.path) $(workspaces.dockerconfig.path) \\
          > $(results.IMAGE_DIGEST.path) > $(results.IMAGE_URL.path) \\
          > $(results.MANIFEST_LIST_DIGEST.path)
";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Copy examples/three-tier into `dir`, give httpd-php a tier test and the chain a registry.
fn example_chain(dir: &Path) -> strata_chain::Chain {
    let example = repo_root().join("examples/three-tier");
    for entry in walk(&example) {
        let relative = entry.strip_prefix(&example).unwrap();
        let dest = dir.join(relative);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &dest).unwrap();
    }
    std::fs::write(dir.join("base/rootfs.tar"), b"").unwrap();
    std::fs::write(
        dir.join("httpd-php/structure-test.yaml"),
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: conf\n    path: /etc/httpd.conf\n    shouldExist: true\n",
    )
    .unwrap();
    let toml = std::fs::read_to_string(dir.join("strata.toml")).unwrap();
    let toml = toml
        .replace(
            "name = \"acme\"",
            "name = \"acme\"\nregistry = \"registry.acme.example:5000\"",
        )
        .replace(
            "context = \"httpd-php\"",
            "context = \"httpd-php\"\ntest = \"httpd-php/structure-test.yaml\"",
        )
        .replace(
            "context = \"wordpress\"",
            "context = \"wordpress\"\nargs = { GREETING = \"hi --volume /:/host\" }",
        );
    std::fs::write(dir.join("strata.toml"), toml).unwrap();
    strata_chain::Chain::load(&dir.join("strata.toml")).expect("the example chain loads")
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn deploy_file(dir: &Path) -> strata_deploy::DeployFile {
    let path = dir.join("deploy.toml");
    std::fs::write(
        &path,
        "name = \"acme-prod\"\n[[deployment]]\nname = \"wordpress\"\nimage = \"acme/wordpress:latest\"\nports = [\"8080:8080\"]\nhealth = { http = \"/\", port = 8080 }\n",
    )
    .unwrap();
    strata_deploy::DeployFile::load(&path).expect("the deploy file loads")
}

fn export_example(dir: &Path) -> Export {
    let chain = example_chain(dir);
    let deploy = deploy_file(dir);
    let digests = BTreeMap::from([("base".to_string(), format!("sha256:{}", "b".repeat(64)))]);
    tekton::export(
        &chain,
        Some(&deploy),
        &digests,
        &ExportOptions {
            namespace: "acme-builds".to_string(),
        },
    )
    .expect("the example chain exports")
}

fn document<'a>(export: &'a Export, kind: &str) -> &'a Value {
    &export
        .documents
        .iter()
        .find(|d| d.value["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
        .value
}

fn task<'a>(pipeline: &'a Value, name: &str) -> &'a Value {
    pipeline["spec"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no task {name}"))
}

fn param<'a>(task: &'a Value, name: &str) -> &'a str {
    task["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
        .unwrap_or_else(|| panic!("no param {name}"))
}

#[test]
fn pipeline_builds_each_image_from_its_parents_digest() {
    let dir = tempfile::tempdir().unwrap();
    let export = export_example(dir.path());
    let pipeline = document(&export, "Pipeline");
    assert_eq!(pipeline["apiVersion"], "tekton.dev/v1");
    assert_eq!(pipeline["metadata"]["namespace"], "acme-builds");

    let names: Vec<&str> = pipeline["spec"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "build-corebuild",
            "build-httpd-php",
            "test-httpd-php",
            "build-wordpress"
        ]
    );

    // The rootfs base is not built by Tekton: corebuild starts from the digest strata pushed.
    let corebuild = task(pipeline, "build-corebuild");
    assert_eq!(corebuild["taskRef"]["name"], "buildah");
    assert!(corebuild.get("runAfter").is_none());
    let base = format!("$(params.registry)/acme/base@sha256:{}", "b".repeat(64));
    assert_eq!(
        param(corebuild, "BUILD_EXTRA_ARGS"),
        format!("--from={base}")
    );
    assert_eq!(
        corebuild["params"][4],
        serde_json::json!({ "name": "BUILD_ARGS", "value": [format!("STRATA_BASE_IMAGE={base}")] })
    );
    assert_eq!(param(corebuild, "CONTEXT"), "corebuild");
    assert_eq!(param(corebuild, "DOCKERFILE"), "./corebuild/Dockerfile");
    assert_eq!(
        param(corebuild, "IMAGE"),
        "$(params.registry)/acme/corebuild:latest"
    );

    // httpd-php waits for corebuild and builds from its IMAGE_DIGEST result.
    let httpd = task(pipeline, "build-httpd-php");
    assert_eq!(httpd["runAfter"], serde_json::json!(["build-corebuild"]));
    assert_eq!(
        param(httpd, "BUILD_EXTRA_ARGS"),
        "--from=$(params.registry)/acme/corebuild@$(tasks.build-corebuild.results.IMAGE_DIGEST)"
    );

    // The tier test runs on httpd-php's digest; wordpress waits for the test, as strata's cascade.
    let test = task(pipeline, "test-httpd-php");
    assert_eq!(test["runAfter"], serde_json::json!(["build-httpd-php"]));
    assert_eq!(
        param(test, "IMAGE"),
        "$(params.registry)/acme/httpd-php@$(tasks.build-httpd-php.results.IMAGE_DIGEST)"
    );
    assert_eq!(param(test, "CONFIG"), "httpd-php/structure-test.yaml");
    let wordpress = task(pipeline, "build-wordpress");
    assert_eq!(wordpress["runAfter"], serde_json::json!(["test-httpd-php"]));

    // A build arg is one BUILD_ARGS item: its blanks never reach the shell-split
    // BUILD_EXTRA_ARGS, where `--volume /:/host` would become a buildah flag.
    assert!(!param(wordpress, "BUILD_EXTRA_ARGS").contains("volume"));
    let build_args = wordpress["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "BUILD_ARGS")
        .unwrap();
    assert!(
        build_args["value"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("GREETING=hi --volume /:/host")),
        "{build_args}"
    );

    // Owners and tiers travel on the pipeline.
    let owners: BTreeMap<String, String> = serde_json::from_str(
        pipeline["metadata"]["annotations"]["strata.dev/owner"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(owners["httpd-php"], "middleware");
    assert_eq!(owners["base"], "operations");
    let tiers: BTreeMap<String, String> = serde_json::from_str(
        pipeline["metadata"]["annotations"]["strata.dev/tier"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(tiers["wordpress"], "application");

    // What Tekton cannot carry is said, not dropped.
    let said = |subject: &str, words: &str| {
        export
            .unsupported
            .iter()
            .any(|u| u.subject == subject && u.what.contains(words))
    };
    assert!(
        said("base", "root filesystem tarball"),
        "{:?}",
        export.unsupported
    );
    assert!(said("wordpress", "extra tag 6.4"));
    assert!(!said("base", "digest is not known"));
    assert!(said("wordpress", "deployment is not a Tekton object"));
    assert!(said("httpd-php", "commandTests"));
}

#[test]
fn a_push_of_the_base_starts_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let export = export_example(dir.path());
    let template = document(&export, "TriggerTemplate");
    assert_eq!(template["apiVersion"], "triggers.tekton.dev/v1beta1");
    let run = &template["spec"]["resourcetemplates"][0];
    assert_eq!(run["kind"], "PipelineRun");
    assert_eq!(run["spec"]["pipelineRef"]["name"], "acme");

    let listener = document(&export, "EventListener");
    let trigger = &listener["spec"]["triggers"][0];
    assert_eq!(trigger["template"]["ref"], template["metadata"]["name"]);
    let filter = trigger["interceptors"][0]["params"][0]["value"]
        .as_str()
        .unwrap();
    assert!(filter.contains("e.action == 'push'"), "{filter}");
    assert!(filter.contains("'acme/base'"), "{filter}");
    // The pipeline's own pushes never start it again.
    assert!(!filter.contains("acme/corebuild"), "{filter}");
}

#[test]
fn a_task_name_that_is_not_a_kubernetes_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let chain = example_chain(dir.path());
    let mut chain = chain;
    chain.file.name = "ACME".to_string();
    let err = tekton::export(
        &chain,
        None,
        &BTreeMap::new(),
        &ExportOptions {
            namespace: "x".to_string(),
        },
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("ACME: "), "{err}");
}

/// The documents validate against Tekton's v1 swagger (strict) and pass tekton-lint.
#[test]
fn export_validates_with_tektons_schema_and_tekton_lint() {
    let dir = tempfile::tempdir().unwrap();
    let export = export_example(dir.path());
    let out = dir.path().join("out");
    let written = export.write(&out).unwrap();
    assert_eq!(written.len(), 3);

    if strata_testutil::require_tool("python3").is_none() {
        return;
    }
    let Some(schemas) = schemas() else { return };
    let output = validate(&schemas, &written);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schema errors:\n{}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The triggers API is not in the swagger: the script says which documents it left unchecked.
    assert!(stdout.contains("TriggerTemplate") && stdout.contains("EventListener"));
    assert!(!stdout.contains(" Pipeline\n"), "{stdout}");

    // A misspelt field is an error: the check is strict.
    let mut bad = document(&export, "Pipeline").clone();
    bad["spec"]["tasks"][0]["runAftr"] = serde_json::json!([]);
    let bad_path = dir.path().join("bad.json");
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    let output = validate(&schemas, &[bad_path]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("runAftr"));

    let Some(lint) = strata_testutil::require_tool("tekton-lint") else {
        return;
    };
    // tekton-lint reads YAML; JSON is YAML. It checks the Pipeline and the triggers documents
    // together (references between them, params passed to a task it does not declare, results
    // that do not exist), with the catalog buildah task's interface beside them.
    let catalog = dir.path().join("catalog");
    std::fs::create_dir_all(&catalog).unwrap();
    std::fs::write(catalog.join("buildah.yaml"), BUILDAH_INTERFACE).unwrap();
    let output = Command::new(lint)
        .current_dir(dir.path())
        .args(["--format", "json", "--color=false"])
        .arg(out.join("*.json"))
        .arg(catalog.join("*.yaml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "tekton-lint errors:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A git checkout the test made, served as any URL's.
struct FakeGit(PathBuf);

impl strata_chain::GitCheckouts for FakeGit {
    fn checkout(
        &mut self,
        _url: &str,
        _rev: &str,
    ) -> Result<strata_chain::git::Checkout, strata_chain::GitError> {
        Ok(strata_chain::git::Checkout {
            commit: "c".repeat(40),
            root: self.0.clone(),
        })
    }
}

#[test]
fn a_git_context_is_cloned_at_its_commit_before_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let checkout = dir.path().join("checkout");
    std::fs::create_dir_all(checkout.join("apps/site")).unwrap();
    std::fs::write(
        checkout.join("apps/site/Dockerfile"),
        "FROM acme/corebuild\n",
    )
    .unwrap();
    std::fs::write(checkout.join("Dockerfile"), "FROM acme/corebuild\n").unwrap();
    let chain_dir = dir.path().join("chain");
    std::fs::create_dir_all(chain_dir.join("corebuild")).unwrap();
    std::fs::write(
        chain_dir.join("corebuild/Dockerfile"),
        "FROM registry.example/os@sha256:0000000000000000000000000000000000000000000000000000000000000000\n",
    )
    .unwrap();
    std::fs::write(
        chain_dir.join("strata.toml"),
        "name = \"acme\"\nregistry = \"r.example\"\n\
         [teams.ops]\n\
         [[image]]\nname = \"corebuild\"\nowner = \"ops\"\ncontext = \"corebuild\"\n\
         [[image]]\nname = \"site\"\nowner = \"ops\"\n\
         context = { git = \"https://git.example/site.git\", rev = \"main\", dir = \"apps/site\" }\n\
         [[image]]\nname = \"root\"\nowner = \"ops\"\n\
         context = { git = \"https://git.example/site.git\", rev = \"main\" }\n",
    )
    .unwrap();
    let chain =
        strata_chain::Chain::load_with(&chain_dir.join("strata.toml"), &mut FakeGit(checkout))
            .expect("the chain loads");
    let export = tekton::export(
        &chain,
        None,
        &BTreeMap::new(),
        &ExportOptions {
            namespace: "x".to_string(),
        },
    )
    .unwrap();
    let pipeline = document(&export, "Pipeline");
    let clone = task(pipeline, "git-site");
    assert_eq!(clone["taskRef"]["name"], "git-clone");
    assert_eq!(param(clone, "revision"), "c".repeat(40));
    assert_eq!(param(clone, "url"), "https://git.example/site.git");
    let site = task(pipeline, "build-site");
    assert_eq!(
        site["runAfter"],
        serde_json::json!(["build-corebuild", "git-site"])
    );
    assert_eq!(param(site, "CONTEXT"), "git/site/apps/site");
    assert_eq!(param(site, "DOCKERFILE"), "./git/site/apps/site/Dockerfile");
    // A context at the repository's root (dir = ".").
    let root = task(pipeline, "build-root");
    assert_eq!(param(root, "CONTEXT"), "git/root");
    assert_eq!(param(root, "DOCKERFILE"), "./git/root/Dockerfile");

    if strata_testutil::require_tool("python3").is_none() {
        return;
    }
    let Some(schemas) = schemas() else { return };
    let written = export.write(&dir.path().join("out")).unwrap();
    let output = validate(&schemas, &written);
    assert!(
        output.status.success(),
        "schema errors:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
