//! `strata_export::import`: the example chain (with a bought base, a git context, build args,
//! tier tests, a platform) and a deploy file are exported for each engine, written, imported
//! back and loaded again as strata loads them: the graph, owners, tiers, parents, build args
//! and deployments are the same, as far as each engine carries them. Then hostile exports, one
//! refusal each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use strata_chain::git::{Checkout, GitCheckouts, GitError};
use strata_chain::{Build, Chain};
use strata_deploy::DeployFile;
use strata_deploy::config::ImageSource;
use strata_export::import::{Engine, ImportError, import};
use strata_export::{ExportOptions, kubernetes, openshift, tekton};

const REGISTRY: &str = "registry.example.com:5000";
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

const DEPLOY: &str = "name = \"acme-web\"\n\n\
[[deployment]]\nname = \"wordpress\"\nimage = \"acme/wordpress:latest\"\n\
ports = [\"8080:80\"]\nenv = { WP_ENV = \"prod\", LANG = \"C.UTF-8\" }\n\
health = { http = \"/healthz\", port = 80, timeout = \"20s\" }\nstop_grace = \"20s\"\n\n\
[[deployment]]\nname = \"java-tool\"\nimage = \"acme/java\"\ntrigger = \"manual\"\n\
health = { exec = \"test -e /etc/motd\" }\n\n\
[[deployment]]\nname = \"edge\"\nimage = \"registry.example.com/vendor/nginx@sha256:3333333333333333333333333333333333333333333333333333333333333333\"\n\
ports = [\"443:8443\"]\nhealth = { tcp = true, timeout = \"10s\" }\n";

/// The example chain in `dir` (with a registry, tier tests, a build arg and a platform), a
/// bought base and an image built from a git context on it; and the deploy file.
fn fixture(dir: &Path) -> (Chain, DeployFile, PathBuf) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/three-tier");
    copy_dir(&example, dir);
    std::fs::write(dir.join("base/rootfs.tar"), b"not read by the export").unwrap();
    std::fs::write(
        dir.join("corebuild/test.yaml"),
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: no wget\n    command: sh\n    args: [\"-c\", \"! test -e /bin/wget\"]\n",
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
    toml = toml.replacen(
        "name = \"acme\"\n",
        &format!("name = \"acme\"\nregistry = \"{REGISTRY}\"\n"),
        1,
    );
    toml = toml.replace(
        "context = \"corebuild\"\n",
        "context = \"corebuild\"\ntest = \"corebuild/test.yaml\"\nargs = { MOTD = \"hello world\" }\n",
    );
    toml = toml.replace(
        "context = \"httpd-php\"\n",
        "context = \"httpd-php\"\nplatform = \"linux/amd64\"\n",
    );
    toml.push_str(&format!(
        "\n[[image]]\nname = \"ubi\"\nowner = \"operations\"\ntier = \"base\"\nsource = {{ image = \"{PINNED}\" }}\n\n\
         [[image]]\nname = \"java\"\nowner = \"middleware\"\ntier = \"middleware\"\n\
         context = {{ git = \"https://git.example.com/acme/java.git\", rev = \"{COMMIT}\", dir = \"java\" }}\n\
         args = {{ JDK = \"17\" }}\n"
    ));
    let path = dir.join("strata.toml");
    std::fs::write(&path, &toml).unwrap();
    let chain =
        Chain::load_with(&path, &mut FakeGit(checkout.clone())).expect("the fixture chain loads");
    let deploy_path = dir.join("deploy.toml");
    std::fs::write(&deploy_path, DEPLOY).unwrap();
    let deploy = DeployFile::load(&deploy_path).expect("the fixture deploy file loads");
    (chain, deploy, checkout)
}

fn digests() -> BTreeMap<String, String> {
    ["base", "corebuild", "httpd-php", "wordpress", "java"]
        .iter()
        .enumerate()
        .map(|(n, name)| {
            (
                name.to_string(),
                format!("sha256:{}", format!("{:02x}", n + 0x40).repeat(32)),
            )
        })
        .collect()
}

fn options() -> ExportOptions {
    ExportOptions {
        namespace: "acme".into(),
    }
}

/// What the round trip must keep of each image: owner, tier, parents, build args, how it is
/// made (and, with `tests`, its tier test, squash and platform).
fn graph(chain: &Chain, everything: bool) -> BTreeMap<String, String> {
    let g = chain.graph();
    chain
        .file
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let mut parents: Vec<&str> = g.parents(i).iter().map(|&p| g.name(p)).collect();
            parents.sort();
            let how = match (&image.build, &image.git) {
                (Build::Dockerfile { .. }, Some(git)) => {
                    format!("git {} {} {}", git.url, git.commit, git.dir.display())
                }
                (Build::Dockerfile { dockerfile, .. }, None) => {
                    format!("dockerfile {}", chain.file.relative(dockerfile).display())
                }
                (Build::Rootfs { path }, _) => {
                    format!("rootfs {}", chain.file.relative(path).display())
                }
                (Build::Image { reference, .. }, _) => format!("image {reference}"),
            };
            let mut text = format!(
                "owner={} tier={:?} parents={parents:?} args={:?} {how}",
                image.owner, image.tier, image.args
            );
            if everything {
                text.push_str(&format!(
                    " test={:?} squash={:?} platform={:?}",
                    image
                        .test
                        .as_ref()
                        .map(|t| chain.file.relative(t).to_path_buf()),
                    image.squash,
                    image.platform
                ));
            }
            (image.name.clone(), text)
        })
        .collect()
}

/// What the round trip must keep of each deployment; a chain image is compared as the chain
/// image it resolves to.
fn deployments(deploy: &DeployFile, chain: &Chain) -> BTreeMap<String, String> {
    deploy
        .deployments
        .iter()
        .map(|d| {
            let image = match &d.image {
                ImageSource::Chain { reference } => format!(
                    "chain image {}",
                    chain
                        .resolve(reference)
                        .map(|i| chain.file.images[i].name.clone())
                        .unwrap_or_else(|| format!("unresolved {reference}"))
                ),
                other => other.to_string(),
            };
            let ports: Vec<(u16, u16)> = d
                .ports
                .iter()
                .map(|p| (p.host_port, p.container_port))
                .collect();
            (
                d.name.clone(),
                format!(
                    "{image} {:?} ports={ports:?} env={:?} health={:?} grace={:?}",
                    d.trigger, d.env, d.health, d.stop_grace
                ),
            )
        })
        .collect()
}

fn write_export(export: &strata_export::Export, dir: &Path) {
    export.write(dir).expect("the export is written");
}

#[test]
fn openshift_round_trip_keeps_the_graph_owners_tiers_args_and_deployments() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, deploy, checkout) = fixture(&dir.path().join("chain"));
    let export = openshift::export(&chain, Some(&deploy), &digests(), &options()).unwrap();
    write_export(&export, &dir.path().join("export"));

    let imported = import(Engine::Openshift, &dir.path().join("export")).expect("the import");
    let out = dir.path().join("imported");
    let written = imported.write(&out, false).expect("the project is written");
    assert!(written.contains(&out.join("strata.toml")), "{written:?}");
    assert!(written.contains(&out.join("wordpress/Dockerfile")));
    assert!(written.contains(&out.join("deploy.toml")));
    // The tarball is not in an export: the import says where it goes.
    assert!(
        imported
            .lost
            .iter()
            .any(|l| l.subject == "base" && l.what.contains("base/rootfs.tar")),
        "{:?}",
        imported.lost
    );
    std::fs::create_dir_all(out.join("base")).unwrap();
    std::fs::write(out.join("base/rootfs.tar"), b"").unwrap();

    let back = Chain::load_with(&out.join("strata.toml"), &mut FakeGit(checkout))
        .expect("the imported chain loads");
    assert_eq!(graph(&back, false), graph(&chain, false));
    assert_eq!(back.graph().order().len(), chain.graph().order().len());
    let back_deploy = DeployFile::load(&out.join("deploy.toml")).expect("deploy.toml loads");
    assert_eq!(
        deployments(&back_deploy, &back),
        deployments(&deploy, &chain)
    );
    // The inline Dockerfile is the original, byte for byte.
    assert_eq!(
        std::fs::read_to_string(out.join("httpd-php/Dockerfile")).unwrap(),
        std::fs::read_to_string(dir.path().join("chain/httpd-php/Dockerfile")).unwrap()
    );
}

#[test]
fn tekton_round_trip_keeps_the_graph_tests_squash_and_platform() {
    let dir = tempfile::tempdir().unwrap();
    let chain_dir = dir.path().join("chain");
    let (chain, deploy, checkout) = fixture(&chain_dir);
    let export = tekton::export(&chain, Some(&deploy), &digests(), &options()).unwrap();
    write_export(&export, &dir.path().join("export"));

    let imported = import(Engine::Tekton, &dir.path().join("export")).expect("the import");
    assert!(imported.deploy.is_none());
    assert!(imported.lost.iter().any(|l| l.subject == "deployments"));
    // The pipeline's workspace is the chain directory: the import goes back into a copy of it.
    let out = dir.path().join("workspace");
    copy_dir(&chain_dir, &out);
    std::fs::remove_file(out.join("strata.toml")).unwrap();
    imported.write(&out, false).expect("the project is written");
    let back = Chain::load_with(&out.join("strata.toml"), &mut FakeGit(checkout))
        .expect("the imported chain loads");
    assert_eq!(graph(&back, true), graph(&chain, true));
    assert_eq!(back.file.registry.as_deref(), Some(REGISTRY));
}

#[test]
fn kubernetes_round_trip_keeps_the_deployments_and_says_the_chain_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, deploy, _) = fixture(&dir.path().join("chain"));
    let export = kubernetes::export(&chain, Some(&deploy), &digests(), &options()).unwrap();
    write_export(&export, &dir.path().join("export"));

    let imported = import(Engine::Kubernetes, &dir.path().join("export")).expect("the import");
    assert!(imported.chain.is_none());
    assert!(
        imported.lost.iter().any(|l| l.subject == "chain"),
        "{:?}",
        imported.lost
    );
    let out = dir.path().join("imported");
    let written = imported.write(&out, false).unwrap();
    assert_eq!(written, vec![out.join("deploy.toml")]);
    let back = DeployFile::load(&out.join("deploy.toml")).expect("deploy.toml loads");
    assert_eq!(deployments(&back, &chain), deployments(&deploy, &chain));
    assert_eq!(back.owner, deploy.owner);
}

/// An export of the fixture for `engine`, in `dir/export`.
fn exported(dir: &Path, engine: Engine) -> PathBuf {
    let (chain, deploy, _) = fixture(&dir.join("chain"));
    let export = match engine {
        Engine::Openshift => openshift::export(&chain, Some(&deploy), &digests(), &options()),
        Engine::Tekton => tekton::export(&chain, Some(&deploy), &digests(), &options()),
        Engine::Kubernetes => kubernetes::export(&chain, Some(&deploy), &digests(), &options()),
    }
    .unwrap();
    let out = dir.join("export");
    write_export(&export, &out);
    out
}

fn edit(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut value);
    std::fs::write(path, serde_json::to_string(&value).unwrap()).unwrap();
}

fn refused(engine: Engine, dir: &Path) -> String {
    let err = import(engine, dir).expect_err("the import is refused");
    let text = err.to_string();
    eprintln!("refused: {text}");
    assert!(!text.contains('\n'), "one line: {text}");
    text
}

#[test]
fn a_name_with_dot_dot_or_slash_is_refused() {
    for bad in ["..", "a/../../x", "../evil"] {
        let dir = tempfile::tempdir().unwrap();
        let export = exported(dir.path(), Engine::Openshift);
        edit(&export.join("corebuild-imagestream.json"), |v| {
            v["metadata"]["name"] = bad.into();
        });
        let text = refused(Engine::Openshift, &export);
        assert!(
            text.contains("corebuild-imagestream.json") && text.contains("metadata.name"),
            "{text}"
        );
    }
}

#[test]
fn a_tekton_path_leaving_the_chain_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let export = exported(dir.path(), Engine::Tekton);
    edit(&export.join("acme-pipeline.json"), |v| {
        for task in v["spec"]["tasks"].as_array_mut().unwrap() {
            if task["name"] == "build-wordpress" {
                task["params"][2]["value"] = "../../etc".into();
            }
        }
    });
    let text = refused(Engine::Tekton, &export);
    assert!(
        text.contains("acme-pipeline.json")
            && text.contains("Pipeline/acme")
            && text.contains("build-wordpress.params.CONTEXT"),
        "{text}"
    );
}

#[test]
fn an_inline_dockerfile_never_lands_outside_the_output_directory() {
    // The Dockerfile goes to <image>/Dockerfile: an image name that is a path is refused
    // before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let export = exported(dir.path(), Engine::Openshift);
    for file in ["wordpress-imagestream.json", "wordpress-buildconfig.json"] {
        edit(&export.join(file), |v| {
            v["metadata"]["name"] = "../outside".into();
        });
    }
    refused(Engine::Openshift, &export);
    assert!(!dir.path().join("outside").exists());
}

#[test]
fn a_yaml_bomb_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().enumerate() {
        let prev = ["a", "b", "c", "d", "e", "f", "g", "h"][i];
        bomb.push_str(&format!(
            "{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    bomb.push_str("kind: ImageStream\n");
    std::fs::write(dir.path().join("bomb.yaml"), bomb).unwrap();
    let text = refused(Engine::Openshift, dir.path());
    assert!(text.contains("bomb.yaml"), "{text}");
}

#[test]
fn yaml_aliases_are_refused_even_small() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        "apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: &m\n  name: base\nspec: *m\n",
    )
    .unwrap();
    let text = refused(Engine::Openshift, dir.path());
    assert!(text.contains("stream.yaml"), "{text}");
}

#[test]
fn a_huge_document_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("huge.json")).unwrap();
    file.set_len(strata_export::import::MAX_FILE_BYTES + 1)
        .unwrap();
    let text = refused(Engine::Openshift, dir.path());
    assert!(
        text.contains("huge.json") && text.contains("bytes"),
        "{text}"
    );
}

#[test]
fn a_symlinked_document_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let export = exported(dir.path(), Engine::Openshift);
    std::os::unix::fs::symlink("/etc/passwd", export.join("zz.yaml")).unwrap();
    let text = refused(Engine::Openshift, &export);
    assert!(
        text.contains("zz.yaml") && text.contains("symlink"),
        "{text}"
    );
}

#[test]
fn a_hostile_git_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let export = exported(dir.path(), Engine::Openshift);
    edit(&export.join("java-buildconfig.json"), |v| {
        v["spec"]["source"]["git"]["uri"] = "ext::sh -c touch% /tmp/pwned".into();
    });
    let text = refused(Engine::Openshift, &export);
    assert!(
        text.contains("BuildConfig/java") && text.contains("spec.source.git.uri"),
        "{text}"
    );
}

#[test]
fn a_team_name_that_would_forge_lines_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let export = exported(dir.path(), Engine::Tekton);
    edit(&export.join("acme-pipeline.json"), |v| {
        v["metadata"]["annotations"]["strata.dev/owner"] =
            r#"{"base":"ops\nforged","corebuild":"operations"}"#.into();
    });
    let text = refused(Engine::Tekton, &export);
    assert!(text.contains("strata.dev/owner"), "{text}");
}

#[test]
fn existing_files_are_kept_unless_forced_and_symlinks_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let export = exported(dir.path(), Engine::Openshift);
    let imported = import(Engine::Openshift, &export).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("deploy.toml"), "mine\n").unwrap();
    let err = imported.write(&out, false).unwrap_err();
    assert!(matches!(err, ImportError::Exists { .. }), "{err}");
    // Refused before anything was written.
    assert!(!out.join("strata.toml").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("deploy.toml")).unwrap(),
        "mine\n"
    );
    imported.write(&out, true).expect("--force overwrites");
    assert!(out.join("strata.toml").is_file());

    // A directory symlinked out of the output directory is not written through, even forced.
    let out2 = dir.path().join("out2");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&out2).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out2.join("wordpress")).unwrap();
    let err = imported.write(&out2, true).unwrap_err();
    assert!(matches!(err, ImportError::Symlink { .. }), "{err}");
    assert!(!elsewhere.join("Dockerfile").exists());
}

#[test]
fn an_export_for_another_engine_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let export = exported(dir.path(), Engine::Openshift);
    let text = refused(Engine::Kubernetes, &export);
    assert!(text.contains("no kustomization"), "{text}");
    let text = refused(Engine::Tekton, &export);
    assert!(text.contains("0 Pipelines"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let export = exported(dir.path(), Engine::Kubernetes);
    let text = refused(Engine::Openshift, &export);
    assert!(text.contains("no ImageStream"), "{text}");
}

#[test]
fn a_kubernetes_deployment_by_tag_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let export = exported(dir.path(), Engine::Kubernetes);
    edit(&export.join("wordpress-deployment.json"), |v| {
        v["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/wordpress:latest".into();
    });
    let text = refused(Engine::Kubernetes, &export);
    assert!(
        text.contains("wordpress-deployment.json")
            && text.contains("Deployment/wordpress")
            && text.contains("containers[0].image"),
        "{text}"
    );
}

/// The OpenShift export as `oc get -o yaml` gives it: written by PyYAML (a YAML writer strata
/// did not write), the ImageStreams as one `List`, the other objects as a multi-document stream.
/// It imports to exactly what the JSON files import to.
#[test]
fn yaml_as_oc_get_writes_it_imports_the_same() {
    let Some(python) = strata_testutil::require_tool("python3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let export = exported(dir.path(), Engine::Openshift);
    let yaml = dir.path().join("yaml");
    std::fs::create_dir_all(&yaml).unwrap();
    let script = r#"
import json, os, sys
try:
    import yaml
except ImportError:
    sys.exit(3)
src, dst = sys.argv[1], sys.argv[2]
docs = [json.load(open(os.path.join(src, f))) for f in sorted(os.listdir(src))]
streams = [d for d in docs if d["kind"] == "ImageStream"]
others = [d for d in docs if d["kind"] != "ImageStream"]
with open(os.path.join(dst, "imagestreams.yaml"), "w") as f:
    yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": streams}, f)
with open(os.path.join(dst, "others.yml"), "w") as f:
    yaml.safe_dump_all(others, f)
"#;
    let status = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&export)
        .arg(&yaml)
        .status()
        .unwrap();
    if status.code() == Some(3) {
        assert!(!strata_testutil::in_ci(), "PyYAML is required under CI");
        eprintln!("skipping: python3 has no yaml module");
        return;
    }
    assert!(status.success());
    let text = std::fs::read_to_string(yaml.join("others.yml")).unwrap();
    assert!(
        text.contains("\n---\n") && text.contains("kind: BuildConfig"),
        "{text}"
    );
    let from_yaml = import(Engine::Openshift, &yaml).expect("the YAML imports");
    let from_json = import(Engine::Openshift, &export).unwrap();
    assert_eq!(from_yaml, from_json);
}

#[test]
fn a_buildconfig_from_that_its_dockerfile_contradicts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let export = exported(dir.path(), Engine::Openshift);
    // OpenShift would build wordpress on corebuild; its Dockerfile (and so strata) on httpd-php.
    edit(&export.join("wordpress-buildconfig.json"), |v| {
        v["spec"]["strategy"]["dockerStrategy"]["from"]["name"] = "corebuild:latest".into();
    });
    let text = refused(Engine::Openshift, &export);
    assert!(
        text.contains("BuildConfig/wordpress")
            && text.contains("dockerStrategy.from")
            && text.contains("httpd-php"),
        "{text}"
    );
}
