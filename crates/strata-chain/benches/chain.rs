//! Benchmark: load, graph and plan a generated chain of 5,000 images (target: under 200 ms).
//!
//! The chain: one bought base (a rootfs), 20 corebuilds on it, 400 middleware images on the
//! corebuilds (some through an ARG in FROM), and application images on the middleware, a third of
//! them multi-stage with a `COPY --from` of a second middleware image and an external builder.
//! Prints the time of each phase (median of several runs), with and without file I/O.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use strata_chain::chain::dockerfile_uses;
use strata_chain::{Chain, ChainFile, NothingBuilt, render};

const IMAGES: usize = 5_000;
const COREBUILDS: usize = 20;
const MIDDLEWARE: usize = 400;
const RUNS: usize = 7;

/// A small deterministic generator (no dependency, same chain every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn generate(dir: &Path) {
    let mut rng = Lcg(42);
    let mut toml = String::from("name = \"acme\"\nregistry = \"registry.example.com\"\n");
    for team in ["operations", "middleware", "development"] {
        toml.push_str(&format!(
            "[teams.{team}]\ndescription = \"the {team} team\"\n"
        ));
    }
    std::fs::write(dir.join("base.tar"), b"").unwrap();
    toml.push_str("\n[[image]]\nname = \"base\"\nowner = \"operations\"\ntier = \"base\"\nsource = { rootfs = \"base.tar\" }\n");
    for i in 1..IMAGES {
        let (name, owner, tier, dockerfile, args) = if i <= COREBUILDS {
            (
                format!("corebuild-{i}"),
                "operations",
                "corebuild",
                "FROM acme/base\nCOPY motd /etc/motd\nRUN chmod 0600 /etc/shadow\n".to_string(),
                String::new(),
            )
        } else if i <= COREBUILDS + MIDDLEWARE {
            let parent = 1 + rng.below(COREBUILDS);
            if i % 2 == 0 {
                (
                    format!("mw-{i}"),
                    "middleware",
                    "middleware",
                    "ARG COREBUILD=corebuild-1\nFROM registry.example.com/acme/${COREBUILD}:latest\nRUN mkdir -p /var/www\nUSER www-data\nEXPOSE 8080\n".to_string(),
                    format!("args = {{ COREBUILD = \"corebuild-{parent}\" }}\n"),
                )
            } else {
                (
                    format!("mw-{i}"),
                    "middleware",
                    "middleware",
                    format!("FROM acme/corebuild-{parent}\nRUN mkdir -p /var/www\nUSER www-data\n"),
                    String::new(),
                )
            }
        } else {
            let a = COREBUILDS + 1 + rng.below(MIDDLEWARE);
            let b = COREBUILDS + 1 + rng.below(MIDDLEWARE);
            let text = if i % 3 == 0 && a != b {
                format!(
                    "FROM docker.io/library/golang:1.22 AS build\nRUN go build -o /app .\n\nFROM acme/mw-{a}:latest\nCOPY --from=build /app /usr/bin/app\nCOPY --from=mw-{b} /etc/httpd.conf /etc/httpd.conf\nCMD [\"app\"]\n"
                )
            } else {
                format!("FROM mw-{a}\nCOPY index.php /var/www/\nCMD [\"httpd\", \"-f\"]\n")
            };
            (
                format!("app-{i}"),
                "development",
                "application",
                text,
                String::new(),
            )
        };
        let ctx = dir.join(&name);
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        toml.push_str(&format!(
            "\n[[image]]\nname = \"{name}\"\nowner = \"{owner}\"\ntier = \"{tier}\"\ncontext = \"{name}\"\n{args}"
        ));
    }
    std::fs::write(dir.join("strata.toml"), toml).unwrap();
}

/// The median time of `RUNS` runs of `f`, and its last result.
fn time<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        last = Some(f());
        times.push(start.elapsed());
    }
    times.sort();
    (times[RUNS / 2], last.expect("at least one run"))
}

fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let path = dir.path().join("strata.toml");

    // everything, as `strata graph` does it: read and check strata.toml, read and parse 4,999
    // Dockerfiles, resolve references, build the graph
    let (load, chain) = time(|| Chain::load(&path).unwrap());
    assert_eq!(chain.file.images.len(), IMAGES);

    // the same without reading files: text already in memory (strata.toml's checks still stat
    // the contexts and Dockerfiles)
    let toml = std::fs::read_to_string(&path).unwrap();
    let texts: Vec<(usize, String, BTreeMap<String, String>)> = chain
        .file
        .images
        .iter()
        .enumerate()
        .filter_map(|(i, image)| match &image.build {
            strata_chain::Build::Dockerfile { dockerfile, .. } => Some((
                i,
                std::fs::read_to_string(dockerfile).unwrap(),
                image.args.clone(),
            )),
            _ => None,
        })
        .collect();
    let (manifest, file) = time(|| ChainFile::parse(&path, &toml).unwrap());
    let (parse, uses) = time(|| {
        texts
            .iter()
            .flat_map(|(i, text, args)| dockerfile_uses(*i, text, args).unwrap())
            .collect::<Vec<_>>()
    });
    let (graph, chain2) = time(|| Chain::from_uses(file.clone(), uses.clone()).unwrap());
    assert_eq!(chain2.graph().order().len(), IMAGES);

    let statuses = chain.statuses(&NothingBuilt).unwrap();
    let (plan_change, plan) = time(|| chain.plan(&["corebuild-1".to_string()], &statuses).unwrap());
    let (plan_all, all) = time(|| chain.plan(&[], &statuses).unwrap());
    let (plan_base, base) = time(|| chain.plan(&["base".to_string()], &statuses).unwrap());
    let (tree, text) = time(|| render::tree(&chain, &statuses));
    let (json, _) = time(|| serde_json::to_string(&render::document(&chain, &statuses)).unwrap());
    let (dot, _) = time(|| render::dot(&chain));

    println!(
        "chain of {IMAGES} images ({} edges to chain images, {} external references), median of {RUNS} runs:",
        chain
            .graph()
            .order()
            .iter()
            .map(|&i| chain.graph().parents(i).len())
            .sum::<usize>(),
        chain.graph().external().len()
    );
    println!(
        "  load + graph (Chain::load, all I/O)          {}",
        ms(load)
    );
    println!(
        "    strata.toml parse + checks (stats files)   {}",
        ms(manifest)
    );
    println!(
        "    Dockerfiles parsed from memory (no I/O)    {}",
        ms(parse)
    );
    println!(
        "    references resolved + graph + order        {}",
        ms(graph)
    );
    println!(
        "  load + graph without reading files           {}",
        ms(manifest + parse + graph)
    );
    println!(
        "  plan --changed corebuild-1 ({:4} steps)      {}",
        plan.steps.len(),
        ms(plan_change)
    );
    println!(
        "  plan --changed base        ({:4} steps)      {}",
        base.steps.len(),
        ms(plan_base)
    );
    println!(
        "  plan from statuses         ({:4} steps)      {}",
        all.steps.len(),
        ms(plan_all)
    );
    println!(
        "  graph text tree            ({:4} lines)      {}",
        text.lines().count(),
        ms(tree)
    );
    println!(
        "  graph json                                   {}",
        ms(json)
    );
    println!("  graph dot                                    {}", ms(dot));
    println!(
        "  load + graph + plan (target < 200 ms)        {}",
        ms(load + plan_base)
    );
}
