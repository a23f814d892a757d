//! `strata import ENGINE DIR` (issue 19): the example chain and a deploy file exported with
//! `strata export openshift|tekton`, imported back into a project, plan and graph exactly as the
//! original does; what the export did not carry is said on stderr; hostile exports and existing
//! files are refused in one line, nothing written.

use std::path::Path;

use serde_json::Value;

use crate::common::{ok, strata};

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

/// The example chain with a build arg, a deploy file and a placeholder base tarball, in `dir`.
fn example(dir: &Path) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/three-tier");
    copy_dir(&example, dir);
    std::fs::write(dir.join("base/rootfs.tar"), b"").unwrap();
    let path = dir.join("strata.toml");
    let toml = std::fs::read_to_string(&path).unwrap().replace(
        "context = \"httpd-php\"\n",
        "context = \"httpd-php\"\nargs = { PHP = \"8.3\" }\n",
    );
    std::fs::write(&path, toml).unwrap();
    std::fs::write(
        dir.join("deploy.toml"),
        "name = \"acme-web\"\n[[deployment]]\nname = \"wordpress\"\nimage = \"acme/wordpress\"\n\
         ports = [\"8080:80\"]\nenv = { WP_ENV = \"prod\" }\n\
         health = { http = \"/\", port = 80, timeout = \"20s\" }\n",
    )
    .unwrap();
}

/// `strata plan --json` and `strata graph --format json` of the project in `dir`; of the graph,
/// what an export carries (not the teams' descriptions and contacts, nor extra tags, which the
/// import says are lost).
fn plan_and_graph(dir: &Path) -> (Value, Value) {
    let plan = ok(strata(dir, &[]).args(["plan", "--json"]));
    let graph = ok(strata(dir, &[]).args(["graph", "--format", "json"]));
    let mut graph: Value = serde_json::from_str(&graph).unwrap();
    for team in graph["teams"].as_array_mut().unwrap() {
        let team = team.as_object_mut().unwrap();
        team.remove("description");
        team.remove("contact");
    }
    for image in graph["images"].as_array_mut().unwrap() {
        image.as_object_mut().unwrap().remove("tags");
    }
    (serde_json::from_str(&plan).unwrap(), graph)
}

#[test]
fn openshift_export_imports_back_into_the_same_plan_and_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original");
    example(&original);
    ok(strata(&original, &[])
        .args(["export", "openshift", "-o"])
        .arg(tmp.path().join("exp")));

    let imported = tmp.path().join("imported");
    let out = strata(&original, &[])
        .args(["import", "openshift"])
        .arg(tmp.path().join("exp"))
        .arg("-o")
        .arg(&imported)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for file in ["strata.toml", "deploy.toml", "corebuild/Dockerfile"] {
        assert!(
            stdout.contains(&imported.join(file).display().to_string()),
            "{stdout}"
        );
    }
    // The tarball and the contexts' files are not in an export: said, not guessed.
    assert!(
        stderr.contains("base: not carried by the export") && stderr.contains("base/rootfs.tar"),
        "{stderr}"
    );
    std::fs::create_dir_all(imported.join("base")).unwrap();
    std::fs::copy(
        original.join("base/rootfs.tar"),
        imported.join("base/rootfs.tar"),
    )
    .unwrap();
    let (plan, graph) = plan_and_graph(&imported);
    assert_eq!((plan, graph), plan_and_graph(&original));
    let deploy = std::fs::read_to_string(imported.join("deploy.toml")).unwrap();
    assert!(
        deploy.contains("image = \"acme/wordpress:latest\""),
        "{deploy}"
    );
    assert!(deploy.contains("ports = [\"8080:80\"]"), "{deploy}");

    // A second import refuses to overwrite, in one line, unless forced.
    let again = strata(&original, &[])
        .args(["import", "openshift"])
        .arg(tmp.path().join("exp"))
        .arg("-o")
        .arg(&imported)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(line.contains("exists (use --force"), "{err}");
    ok(strata(&original, &[])
        .args(["import", "openshift"])
        .arg(tmp.path().join("exp"))
        .arg("-o")
        .arg(&imported)
        .arg("--force"));
}

#[test]
fn tekton_export_imports_back_into_the_workspace_and_json_shows_the_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original");
    example(&original);
    ok(strata(&original, &[])
        .args(["export", "tekton", "-o"])
        .arg(tmp.path().join("exp")));

    let json = ok(strata(&original, &[])
        .args(["import", "tekton", "--json"])
        .arg(tmp.path().join("exp")));
    let json: Value = serde_json::from_str(&json).unwrap();
    let images = json["chain"]["images"].as_array().unwrap();
    let names: Vec<&str> = images.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["base", "corebuild", "httpd-php", "wordpress"]);
    let php = &images[2];
    assert_eq!(php["owner"], "middleware");
    assert_eq!(php["tier"], "middleware");
    assert_eq!(php["parents"], serde_json::json!(["corebuild"]));
    assert_eq!(php["args"], serde_json::json!({"PHP": "8.3"}));
    // --json alone writes nothing.
    assert!(!original.join("imported").exists());

    // The pipeline's workspace is the chain directory: import into a copy of it.
    let workspace = tmp.path().join("workspace");
    copy_dir(&original, &workspace);
    std::fs::remove_file(workspace.join("strata.toml")).unwrap();
    std::fs::remove_file(workspace.join("deploy.toml")).unwrap();
    ok(strata(&workspace, &[])
        .args(["import", "tekton"])
        .arg(tmp.path().join("exp")));
    assert_eq!(plan_and_graph(&workspace), plan_and_graph(&original));
}

#[test]
fn a_hostile_export_is_refused_in_one_line_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original");
    example(&original);
    let exp = tmp.path().join("exp");
    ok(strata(&original, &[])
        .args(["export", "openshift", "-o"])
        .arg(&exp));
    let file = exp.join("wordpress-buildconfig.json");
    let text = std::fs::read_to_string(&file).unwrap().replacen(
        "\"name\": \"wordpress\"",
        "\"name\": \"../../escaped\"",
        1,
    );
    std::fs::write(&file, text).unwrap();
    let out_dir = tmp.path().join("out");
    let out = strata(&original, &[])
        .args(["import", "openshift"])
        .arg(&exp)
        .arg("-o")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("wordpress-buildconfig.json")
            && errors[0].contains("metadata.name")
            && !err.contains("panicked"),
        "{err}"
    );
    assert!(!out_dir.exists());
    assert!(!tmp.path().join("escaped").exists());

    // A YAML bomb: one line too.
    let bomb = tmp.path().join("bomb");
    std::fs::create_dir_all(&bomb).unwrap();
    std::fs::write(
        bomb.join("a.yaml"),
        "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b]\n",
    )
    .unwrap();
    let out = strata(&original, &[])
        .args(["import", "kubernetes"])
        .arg(&bomb)
        .arg("--json")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("a.yaml"), "{err}");
}

#[test]
fn kubernetes_export_imports_back_into_the_same_deployments() {
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original");
    example(&original);
    let pinned = format!(
        "registry.example.com/vendor/ubi:9@sha256:{}",
        "1".repeat(64)
    );
    let nginx = format!(
        "registry.example.com/vendor/nginx@sha256:{}",
        "3".repeat(64)
    );
    let path = original.join("strata.toml");
    let toml = std::fs::read_to_string(&path).unwrap().replacen(
        "name = \"acme\"\n",
        "name = \"acme\"\nregistry = \"registry.example.com:5000\"\n",
        1,
    ) + &format!(
        "\n[[image]]\nname = \"ubi\"\nowner = \"operations\"\ntier = \"base\"\nsource = {{ image = \"{pinned}\" }}\n"
    );
    std::fs::write(&path, toml).unwrap();
    // Images a cluster can pull without a build here: a bought one and one pinned outside.
    let deploy = format!(
        "name = \"acme-prod\"\nowner = \"operations\"\n\
         [[deployment]]\nname = \"ubi-shell\"\nimage = \"acme/ubi\"\ntrigger = \"manual\"\n\
         health = {{ exec = \"true\", timeout = \"30s\" }}\nstop_grace = \"15s\"\n\
         [[deployment]]\nname = \"edge\"\nimage = \"{nginx}\"\nports = [\"443:8443\"]\n\
         env = {{ MODE = \"edge\" }}\nhealth = {{ tcp = true, timeout = \"10s\" }}\n"
    );
    std::fs::write(original.join("deploy.toml"), &deploy).unwrap();
    ok(strata(&original, &[])
        .args(["export", "kubernetes", "-o"])
        .arg(tmp.path().join("exp")));
    let imported = tmp.path().join("imported");
    let out = strata(&original, &[])
        .args(["import", "kubernetes"])
        .arg(tmp.path().join("exp"))
        .arg("-o")
        .arg(&imported)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("chain: not carried by the export"),
        "{stderr}"
    );
    assert!(!imported.join("strata.toml").exists());
    let back: toml::Table =
        toml::from_str(&std::fs::read_to_string(imported.join("deploy.toml")).unwrap()).unwrap();
    let original: toml::Table = toml::from_str(&deploy).unwrap();
    assert_eq!(back["owner"], original["owner"]);
    let back = back["deployment"].as_array().unwrap();
    let original = original["deployment"].as_array().unwrap();
    assert_eq!(back.len(), 2);
    for (back, original) in back.iter().zip(original) {
        let mut back = back.clone();
        // The export names the probed port that deploy.toml let default to the only one.
        if original["health"].get("port").is_none()
            && let Some(ports) = original.get("ports")
        {
            let port = back["health"].as_table_mut().unwrap().remove("port");
            let only = ports[0].as_str().unwrap().rsplit(':').next().unwrap();
            assert_eq!(port.map(|p| p.to_string()), Some(only.to_string()));
        }
        for key in ["name", "trigger", "ports", "env", "health", "stop_grace"] {
            let want = original.get(key).cloned().or_else(|| match key {
                "stop_grace" => Some(toml::Value::from("10s")),
                _ => None,
            });
            assert_eq!(back.get(key), want.as_ref(), "{key} of {back:?}");
        }
    }
    // A bought image comes back as the chain image it is; the outside image by its digest.
    assert_eq!(back[0]["image"].as_str(), Some("acme/ubi"));
    assert_eq!(back[1]["image"].as_str(), Some(nginx.as_str()));
}
