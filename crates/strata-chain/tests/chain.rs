//! The chain from files: the example's graph, a diamond, ARG-substituted FROMs, external roots,
//! Dockerfile and graph errors, plans and renderings.

use std::path::PathBuf;

use strata_chain::render;
use strata_chain::{
    Chain, ChainError, NothingBuilt, Reason, StaleReason, Status, StatusSource, UseKind,
};
use strata_scaffold::scaffold::{EXAMPLE_FILES, EXAMPLE_ROOTFS};

/// A chain directory written from (path, content) pairs.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for (rel, content) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        Fixture { dir }
    }

    /// The example chain; the rootfs is an empty file (the graph never reads it).
    fn example() -> Fixture {
        let f = Fixture::new(EXAMPLE_FILES);
        std::fs::write(f.dir.path().join(EXAMPLE_ROOTFS), b"").unwrap();
        f
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("strata.toml")
    }

    fn load(&self) -> Chain {
        Chain::load(&self.path()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The load error, one line, with the directory prefix removed.
    fn error(&self) -> String {
        let text = Chain::load(&self.path())
            .expect_err("invalid chain")
            .to_string();
        assert!(!text.contains('\n'), "one line: {text}");
        text.replace(&format!("{}/", self.dir.path().display()), "")
    }
}

fn names(chain: &Chain, v: &[usize]) -> Vec<String> {
    v.iter()
        .map(|&i| chain.graph().name(i).to_string())
        .collect()
}

fn never_built(chain: &Chain) -> strata_chain::Statuses {
    chain.statuses(&NothingBuilt).unwrap()
}

const TEAMS: &str =
    "name = \"acme\"\n[teams.operations]\n[teams.middleware]\n[teams.development]\n";

fn image(name: &str, owner: &str, extra: &str) -> String {
    format!("\n[[image]]\nname = \"{name}\"\nowner = \"{owner}\"\ncontext = \"{name}\"\n{extra}")
}

/// Two middleware images on one corebuild, an app FROM one and `COPY --from` the other.
fn diamond() -> Fixture {
    let toml = format!(
        "{TEAMS}{}{}{}{}",
        image("corebuild", "operations", "tier = \"corebuild\"\n"),
        image("php", "middleware", ""),
        image("jvm", "middleware", ""),
        image("app", "development", ""),
    );
    Fixture::new(&[
        ("strata.toml", &toml),
        (
            "corebuild/Dockerfile",
            "FROM docker.io/library/debian:12-slim\nRUN true\n",
        ),
        ("php/Dockerfile", "FROM acme/corebuild\n"),
        (
            "jvm/Dockerfile",
            "FROM localhost/acme/corebuild:latest AS jre\nRUN true\n",
        ),
        (
            "app/Dockerfile",
            "FROM acme/php:latest\nCOPY --from=acme/jvm /opt/java /opt/java\nRUN --mount=type=bind,from=docker.io/library/golang:1.22,target=/go true\n",
        ),
    ])
}

#[test]
fn the_example_chain_is_a_line_of_four_tiers() {
    let chain = Fixture::example().load();
    let g = chain.graph();
    assert_eq!(
        names(&chain, g.order()),
        ["base", "corebuild", "httpd-php", "wordpress"]
    );
    let i = |n| chain.index(n).unwrap();
    assert_eq!(names(&chain, &g.parents(i("corebuild"))), ["base"]);
    assert_eq!(names(&chain, &g.parents(i("wordpress"))), ["httpd-php"]);
    assert_eq!(
        g.uses(i("httpd-php"), i("wordpress"))[0].reference,
        "acme/httpd-php"
    );
    assert_eq!(
        chain.resolve("localhost/acme/corebuild:latest"),
        Some(i("corebuild"))
    );
    assert_eq!(chain.resolve("docker.io/library/busybox"), None);
    assert!(g.external().is_empty());
    assert_eq!(chain.file.teams.len(), 3);
    assert_eq!(chain.file.image("wordpress").unwrap().tags, ["6.4"]);

    let tree = render::tree(&chain, &never_built(&chain));
    assert_eq!(
        tree,
        "chain acme: 4 images, 3 teams\n\
         base                   operations   base         never built\n\
         └── corebuild          operations   corebuild    never built\n    \
             └── httpd-php      middleware   middleware   never built\n        \
                 └── wordpress  development  application  never built\n"
    );
}

#[test]
fn a_diamond_shows_the_shared_child_under_both_parents() {
    let chain = diamond().load();
    let g = chain.graph();
    let i = |n| chain.index(n).unwrap();
    assert_eq!(names(&chain, g.order()), ["corebuild", "jvm", "php", "app"]);
    assert_eq!(names(&chain, &g.parents(i("app"))), ["jvm", "php"]);
    assert_eq!(g.uses(i("jvm"), i("app"))[0].kind, UseKind::CopyFrom);
    assert_eq!(g.uses(i("jvm"), i("app"))[0].line, 2);
    let tree = render::tree(&chain, &never_built(&chain));
    let lines: Vec<&str> = tree.lines().map(str::trim_end).collect();
    assert_eq!(lines[0], "chain acme: 4 images, 3 teams");
    assert_eq!(lines[1], "docker.io/library/debian:12-slim (external)");
    assert!(lines[2].starts_with("└── corebuild "), "{tree}");
    assert!(lines[3].starts_with("    ├── jvm "), "{tree}");
    assert!(
        lines[4].starts_with("    │   └── app (via COPY --from) "),
        "{tree}"
    );
    assert!(lines[4].contains("development"), "{tree}");
    assert!(lines[5].starts_with("    └── php "), "{tree}");
    assert_eq!(lines[6], "        └── app (see above)");
    assert_eq!(lines[7], "docker.io/library/golang:1.22 (external)");
    assert_eq!(lines[8], "└── app (via RUN --mount) (see above)");
    assert_eq!(lines.len(), 9, "{tree}");

    let plan = chain
        .plan(&["corebuild".to_string()], &never_built(&chain))
        .unwrap();
    assert_eq!(
        plan.waves,
        [vec!["corebuild"], vec!["jvm", "php"], vec!["app"]]
    );
    let app = plan.steps.iter().find(|s| s.image == "app").unwrap();
    assert_eq!(
        app.reasons,
        [
            Reason::ParentRebuilt {
                parent: "jvm".into()
            },
            Reason::ParentRebuilt {
                parent: "php".into()
            }
        ]
    );
}

#[test]
fn external_roots_are_listed_with_their_users() {
    let chain = diamond().load();
    let ext = chain.graph().external();
    assert_eq!(
        ext.keys().collect::<Vec<_>>(),
        [
            "docker.io/library/debian:12-slim",
            "docker.io/library/golang:1.22"
        ]
    );
    let users = &ext["docker.io/library/golang:1.22"];
    assert_eq!(users.len(), 1);
    assert_eq!(chain.graph().name(users[0].0), "app");
    assert_eq!((users[0].1.kind, users[0].1.line), (UseKind::MountFrom, 3));
}

#[test]
fn args_are_substituted_in_from_lines() {
    let toml = format!(
        "{TEAMS}{}{}{}",
        image("corebuild", "operations", ""),
        image("corebuild-next", "operations", ""),
        image(
            "app",
            "development",
            "args = { TIER = \"corebuild-next\", TAG = \"7\" }\n"
        ),
    );
    let f = Fixture::new(&[
        ("strata.toml", &toml),
        ("corebuild/Dockerfile", "FROM scratch\n"),
        ("corebuild-next/Dockerfile", "FROM scratch\n"),
        (
            "app/Dockerfile",
            "ARG REGISTRY=localhost\nARG TIER=corebuild\nARG TAG=latest\nFROM ${REGISTRY}/acme/${TIER}:${TAG} AS build\nFROM build\n",
        ),
    ]);
    let chain = f.load();
    let app = chain.index("app").unwrap();
    // the build arg wins over the ARG default; the stage name `build` is not a reference
    assert_eq!(
        names(&chain, &chain.graph().parents(app)),
        ["corebuild-next"]
    );
    let site = &chain
        .graph()
        .uses(chain.index("corebuild-next").unwrap(), app)[0];
    assert_eq!(
        (site.reference.as_str(), site.line),
        ("localhost/acme/corebuild-next:7", 4)
    );
    assert!(chain.graph().external().is_empty());
}

#[test]
fn registry_prefixed_references_are_chain_images() {
    let toml = format!(
        "name = \"acme\"\nregistry = \"registry.example.com:5000\"\n[teams.operations]\n{}{}",
        image("corebuild", "operations", ""),
        image("app", "operations", ""),
    );
    let f = Fixture::new(&[
        ("strata.toml", &toml),
        ("corebuild/Dockerfile", "FROM scratch\n"),
        (
            "app/Dockerfile",
            "FROM registry.example.com:5000/acme/corebuild:2\n",
        ),
    ]);
    let chain = f.load();
    assert_eq!(
        names(&chain, &chain.graph().parents(chain.index("app").unwrap())),
        ["corebuild"]
    );
}

#[test]
fn dockerfile_errors_name_the_dockerfile_line() {
    let f = Fixture::example();
    std::fs::write(
        f.dir.path().join("httpd-php/Dockerfile"),
        "FROM acme/corebuild\nCOPY\n",
    )
    .unwrap();
    let err = f.error();
    assert!(err.starts_with("httpd-php/Dockerfile:2:1: COPY: "), "{err}");
    assert!(matches!(
        Chain::load(&f.path()),
        Err(ChainError::Dockerfile { .. })
    ));
}

/// Issue 15: a misspelt chain FROM (or COPY --from) was taken for an external image and failed
/// only at build time ("external image not in the store"); it is reported with the Dockerfile line.
#[test]
fn a_misspelt_chain_image_is_reported_at_its_dockerfile_line() {
    let f = Fixture::example();
    std::fs::write(
        f.dir.path().join("httpd-php/Dockerfile"),
        "FROM acme/corebuil\nRUN true\n",
    )
    .unwrap();
    assert_eq!(
        f.error(),
        "httpd-php/Dockerfile:1 FROM: acme/corebuil is not an image of chain \"acme\" (did you mean corebuild?)"
    );
    std::fs::write(
        f.dir.path().join("httpd-php/Dockerfile"),
        "FROM acme/corebuild\nCOPY --from=localhost/acme/tools:1 /x /x\n",
    )
    .unwrap();
    assert_eq!(
        f.error(),
        "httpd-php/Dockerfile:2 COPY --from: localhost/acme/tools:1 is not an image of chain \"acme\" (its images: base, corebuild, httpd-php, wordpress)"
    );
    // Outside the chain's namespace a name is an external image, as before.
    std::fs::write(
        f.dir.path().join("httpd-php/Dockerfile"),
        "FROM acme/corebuild\nCOPY --from=other/tools:1 /x /x\n",
    )
    .unwrap();
    let chain = f.load();
    assert!(chain.graph().external().contains_key("other/tools:1"));
}

#[test]
fn a_self_reference_is_rejected() {
    let f = Fixture::example();
    std::fs::write(
        f.dir.path().join("httpd-php/Dockerfile"),
        "FROM acme/corebuild\nCOPY --from=acme/httpd-php:old /var/www /var/www\n",
    )
    .unwrap();
    assert_eq!(
        f.error(),
        "strata.toml:33:8: image \"httpd-php\" refers to itself: httpd-php/Dockerfile:2 COPY --from acme/httpd-php:old"
    );
}

#[test]
fn a_cycle_is_rejected_and_printed() {
    let f = Fixture::example();
    std::fs::write(
        f.dir.path().join("corebuild/Dockerfile"),
        "FROM acme/base\nCOPY --from=wordpress / /\n",
    )
    .unwrap();
    assert_eq!(
        f.error(),
        "strata.toml:27:8: image \"corebuild\": the image graph has a cycle: corebuild → httpd-php → wordpress → corebuild"
    );
    let f = Fixture::example();
    std::fs::write(
        f.dir.path().join("corebuild/Dockerfile"),
        "FROM acme/httpd-php\n",
    )
    .unwrap();
    assert_eq!(
        f.error(),
        "strata.toml:27:8: image \"corebuild\": the image graph has a cycle: corebuild → httpd-php → corebuild"
    );
}

#[test]
fn a_change_plans_its_descendants_in_order() {
    let chain = Fixture::example().load();
    let st = never_built(&chain);
    let plan = chain.plan(&["corebuild".to_string()], &st).unwrap();
    let order: Vec<&str> = plan.steps.iter().map(|s| s.image.as_str()).collect();
    assert_eq!(order, ["corebuild", "httpd-php", "wordpress"]);
    assert_eq!(plan.steps[0].reasons, [Reason::Changed]);
    assert_eq!(
        plan.steps[2].reasons,
        [Reason::ParentRebuilt {
            parent: "httpd-php".into()
        }]
    );
    assert_eq!(plan.teams, ["operations", "middleware", "development"]);
    assert_eq!(plan.waves.len(), 3);
    assert_eq!(
        render::headline(&plan),
        "corebuild changed (operations) → rebuild httpd-php (middleware), wordpress (development)"
    );

    let plan = chain.plan(&["wordpress".to_string()], &st).unwrap();
    assert_eq!(
        render::headline(&plan),
        "wordpress changed (development) → nothing downstream to rebuild"
    );

    let err = chain.plan(&["nginx".to_string()], &st).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown image \"nginx\" (the chain has: base, corebuild, httpd-php, wordpress)"
    );
}

#[test]
fn forced_images_join_the_plan_the_statuses_give() {
    let chain = Fixture::example().load();
    /// Only httpd-php's Dockerfile changed.
    struct PhpStale;
    impl StatusSource for PhpStale {
        type Error = std::convert::Infallible;
        fn status(&self, chain: &Chain, image: usize) -> Result<Status, Self::Error> {
            Ok(if chain.file.images[image].name == "httpd-php" {
                Status::Stale {
                    reasons: vec![StaleReason::DockerfileChanged],
                }
            } else {
                Status::UpToDate
            })
        }
    }
    let st = chain.statuses(&PhpStale).unwrap();
    let plan = strata_chain::plan_forced(&chain, &["base".to_string()], &st).unwrap();
    let reasons: Vec<(&str, Vec<String>)> = plan
        .steps
        .iter()
        .map(|s| {
            (
                s.image.as_str(),
                s.reasons.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("base", vec!["forced".to_string()]),
            ("corebuild", vec!["parent base rebuilt".to_string()]),
            ("httpd-php", vec!["stale (Dockerfile changed)".to_string()]),
            ("wordpress", vec!["parent httpd-php rebuilt".to_string()]),
        ]
    );
    // Without forced images it is the plan the statuses give.
    assert_eq!(
        strata_chain::plan_forced(&chain, &[], &st).unwrap(),
        chain.plan(&[], &st).unwrap()
    );
    assert!(strata_chain::plan_forced(&chain, &["nginx".to_string()], &st).is_err());
}

#[test]
fn without_changes_the_plan_follows_the_statuses() {
    let chain = Fixture::example().load();
    let plan = chain.plan(&[], &never_built(&chain)).unwrap();
    assert_eq!(plan.steps.len(), 4);
    assert!(plan.steps.iter().all(|s| s.reasons == [Reason::NeverBuilt]));
    assert_eq!(
        render::headline(&plan),
        "4 images never built: base (operations), corebuild (operations), httpd-php (middleware), wordpress (development)"
    );

    /// corebuild's Dockerfile changed since its build; everything else is up to date.
    struct OneStale;
    impl StatusSource for OneStale {
        type Error = std::convert::Infallible;
        fn status(&self, chain: &Chain, image: usize) -> Result<Status, Self::Error> {
            Ok(if chain.file.images[image].name == "corebuild" {
                Status::Stale {
                    reasons: vec![StaleReason::DockerfileChanged],
                }
            } else {
                Status::UpToDate
            })
        }
    }
    let st = chain.statuses(&OneStale).unwrap();
    let plan = chain.plan(&[], &st).unwrap();
    let order: Vec<&str> = plan.steps.iter().map(|s| s.image.as_str()).collect();
    assert_eq!(order, ["corebuild", "httpd-php", "wordpress"]);
    assert_eq!(
        render::headline(&plan),
        "corebuild stale (Dockerfile changed) (operations) → rebuild httpd-php (middleware), wordpress (development)"
    );
    let tree = render::tree(&chain, &st);
    assert!(tree.contains("stale (Dockerfile changed)"), "{tree}");
    assert!(tree.contains("up to date"), "{tree}");

    /// A failed RUN's message carries its last output lines: the tree keeps one line per image.
    struct RunFailed;
    impl StatusSource for RunFailed {
        type Error = std::convert::Infallible;
        fn status(&self, chain: &Chain, image: usize) -> Result<Status, Self::Error> {
            Ok(if chain.file.images[image].name == "corebuild" {
                Status::Failed {
                    message: "corebuild/Dockerfile:3: RUN make: exited with code 2; last output:\nmake: *** no rule\n".into(),
                }
            } else {
                Status::UpToDate
            })
        }
    }
    let tree = render::tree(&chain, &chain.statuses(&RunFailed).unwrap());
    assert_eq!(tree.lines().count(), 1 + chain.file.images.len(), "{tree}");
    assert!(
        tree.lines()
            .any(|l| l.ends_with("failed: corebuild/Dockerfile:3: RUN make: exited with code 2")),
        "{tree}"
    );

    struct AllUpToDate;
    impl StatusSource for AllUpToDate {
        type Error = std::convert::Infallible;
        fn status(&self, _: &Chain, _: usize) -> Result<Status, Self::Error> {
            Ok(Status::UpToDate)
        }
    }
    let plan = chain
        .plan(&[], &chain.statuses(&AllUpToDate).unwrap())
        .unwrap();
    assert!(plan.is_empty());
    assert_eq!(
        render::plan_text(&plan),
        "nothing to build: every image is up to date\n"
    );
}

#[test]
fn plan_text_lists_order_reasons_and_waves() {
    let chain = diamond().load();
    let plan = chain
        .plan(&["corebuild".to_string()], &never_built(&chain))
        .unwrap();
    assert_eq!(
        render::plan_text(&plan),
        "corebuild changed (operations) → rebuild jvm (middleware), php (middleware), app (development)\n\
         teams affected: operations, middleware, development\n\
         \n\
         build order:\n  \
           1. corebuild  operations   wave 1  changed\n  \
           2. jvm        middleware   wave 2  parent corebuild rebuilt\n  \
           3. php        middleware   wave 2  parent corebuild rebuilt\n  \
           4. app        development  wave 3  parent jvm rebuilt, parent php rebuilt\n\
         \n\
         waves (the images of one wave can build in parallel):\n  \
           1: corebuild\n  \
           2: jvm, php\n  \
           3: app\n"
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["steps"][3]["reasons"][0],
        serde_json::json!({"kind": "parent-rebuilt", "parent": "jvm"})
    );
    assert_eq!(json["steps"][0]["reasons"][0]["kind"], "changed");
    assert_eq!(json["waves"][1], serde_json::json!(["jvm", "php"]));
}

#[test]
fn json_dot_and_mermaid_views() {
    let chain = diamond().load();
    let json = render::json(&chain, &never_built(&chain));
    assert_eq!(json["schema"], "strata.chain/v1");
    assert_eq!(
        json["order"],
        serde_json::json!(["corebuild", "jvm", "php", "app"])
    );
    let app = &json["images"][3];
    assert_eq!(app["name"], "app");
    assert_eq!(app["owner"], "development");
    assert_eq!(app["parents"], serde_json::json!(["jvm", "php"]));
    assert_eq!(
        app["external"],
        serde_json::json!(["docker.io/library/golang:1.22"])
    );
    assert_eq!(app["wave"], 3);
    assert_eq!(app["status"], serde_json::json!({"state": "never-built"}));
    assert_eq!(
        app["build"],
        serde_json::json!({"kind": "dockerfile", "context": "app", "dockerfile": "app/Dockerfile"})
    );
    assert_eq!(
        app["uses"][1],
        serde_json::json!({"kind": "copy-from", "line": 2, "reference": "acme/jvm", "image": "jvm"})
    );
    assert_eq!(
        json["images"][0]["children"],
        serde_json::json!(["jvm", "php"])
    );
    assert_eq!(json["teams"][0]["name"], "development");
    assert_eq!(json["teams"][0]["images"], serde_json::json!(["app"]));
    assert_eq!(
        json["external"][0]["used_by"][0],
        serde_json::json!({"image": "corebuild", "kind": "from", "line": 1})
    );

    let dot = render::dot(&chain);
    assert!(dot.starts_with("digraph \"acme\" {\n"), "{dot}");
    assert!(dot.contains("label=\"middleware\""), "{dot}");
    assert!(
        dot.contains("\"image:corebuild\" -> \"image:php\";"),
        "{dot}"
    );
    assert!(
        dot.contains("\"image:jvm\" -> \"image:app\" [style=dashed, label=\"COPY --from\"];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"external:docker.io/library/debian:12-slim\" -> \"image:corebuild\";"),
        "{dot}"
    );

    let mermaid = render::mermaid(&chain);
    assert!(mermaid.starts_with("graph TD\n"), "{mermaid}");
    assert!(mermaid.contains("  i2 -.->|COPY --from| i3\n"), "{mermaid}");
    assert!(mermaid.contains("  i0 --> i1\n"), "{mermaid}");
}

#[test]
fn bought_images_are_roots() {
    let digest = "sha256:".to_string() + &"ab".repeat(32);
    let toml = format!(
        "name = \"acme\"\n[teams.operations]\n\n[[image]]\nname = \"rhel\"\nowner = \"operations\"\nsource = {{ image = \"registry.example.com/rhel7:7.9@{digest}\" }}\n{}",
        image("corebuild", "operations", ""),
    );
    let f = Fixture::new(&[
        ("strata.toml", &toml),
        ("corebuild/Dockerfile", "FROM acme/rhel\n"),
    ]);
    let chain = f.load();
    assert_eq!(names(&chain, chain.graph().order()), ["rhel", "corebuild"]);
    let json = render::json(&chain, &never_built(&chain));
    assert_eq!(json["images"][0]["build"]["kind"], "image");
    assert_eq!(
        json["images"][0]["build"]["image"],
        format!("registry.example.com/rhel7:7.9@{digest}")
    );

    // the pinned reference itself names the bought image; the same repository by tag does not
    std::fs::write(
        f.dir.path().join("corebuild/Dockerfile"),
        format!("FROM registry.example.com/rhel7:7.9@{digest}\nCOPY --from=registry.example.com/rhel7:7.9 /etc /etc\n"),
    )
    .unwrap();
    let chain = f.load();
    let corebuild = chain.index("corebuild").unwrap();
    assert_eq!(names(&chain, &chain.graph().parents(corebuild)), ["rhel"]);
    assert_eq!(
        chain.graph().external_of(corebuild),
        ["registry.example.com/rhel7:7.9"]
    );
}

#[test]
fn diamond_dot_with_external_roots_renders() {
    let Some(dot) = strata_testutil::require_tool("dot") else {
        return;
    };
    let chain = diamond().load();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chain.dot");
    std::fs::write(&file, render::dot(&chain)).unwrap();
    let svg = strata_testutil::run_ok(std::process::Command::new(dot).arg("-Tsvg").arg(&file));
    let svg = svg.replace("&#45;", "-");
    for text in [
        "docker.io/library/golang:1.22",
        "COPY --from",
        "RUN --mount",
        "jvm",
        "php",
    ] {
        assert!(svg.contains(text), "{text} not in the SVG");
    }
}
