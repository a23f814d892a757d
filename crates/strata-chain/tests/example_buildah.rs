//! The example chain is a real chain: buildah (an independent builder) builds its four tiers in
//! the order strata plans, from the rootfs strata writes.

use std::path::Path;
use std::process::Command;

use strata_chain::{Build, Chain, NothingBuilt};
use strata_scaffold::rootfs::{DEFAULT_BUSYBOX, write_busybox_rootfs};
use strata_scaffold::scaffold::{EXAMPLE_FILES, EXAMPLE_ROOTFS};
use strata_testutil::{require_tool, run_ok};

#[test]
fn buildah_builds_the_example_in_planned_order() {
    let (Some(buildah), Some(podman)) = (require_tool("buildah"), require_tool("podman")) else {
        return;
    };
    if !Path::new(DEFAULT_BUSYBOX).is_file() && require_tool("busybox").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("chain");
    for (rel, content) in EXAMPLE_FILES {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    write_busybox_rootfs(Path::new(DEFAULT_BUSYBOX), &dir.join(EXAMPLE_ROOTFS)).unwrap();
    let chain = Chain::load(&dir.join("strata.toml")).unwrap();
    let plan = chain
        .plan(&[], &chain.statuses(&NothingBuilt).unwrap())
        .unwrap();

    // a private container storage, so the test touches nothing else on the machine
    let root = tmp.path().join("storage");
    let runroot = tmp.path().join("run");
    let storage = |tool: &Path| {
        let mut c = Command::new(tool);
        c.arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(["--storage-driver", "vfs"]);
        c
    };
    for step in &plan.steps {
        let image = chain.file.image(&step.image).unwrap();
        let tag = format!("localhost/{}/{}:latest", chain.file.name, image.name);
        match &image.build {
            Build::Rootfs { path } => {
                run_ok(storage(&podman).arg("import").arg(path).arg(&tag));
            }
            Build::Dockerfile {
                context,
                dockerfile,
            } => {
                run_ok(
                    storage(&buildah)
                        .args([
                            "bud",
                            "--isolation",
                            "chroot",
                            "-q",
                            "--pull=never",
                            "-t",
                            &tag,
                            "-f",
                        ])
                        .arg(dockerfile)
                        .arg(context),
                );
            }
            Build::Image { .. } => unreachable!("the example has no pinned external image"),
        }
    }
    let user = run_ok(
        storage(&podman)
            .args([
                "image",
                "inspect",
                "--format",
                "{{.Config.User}} {{.Config.ExposedPorts}}",
            ])
            .arg("localhost/acme/wordpress:latest"),
    );
    assert!(user.starts_with("www-data map[8080/tcp:"), "{user}");
}
