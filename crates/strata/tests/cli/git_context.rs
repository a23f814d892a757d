//! Git contexts: `context = { git = "URL", rev = "main", dir = "web" }`. The branch resolves to a
//! commit locked in strata.lock (`[[git]]`); a commit pushed to the branch changes nothing until
//! `strata update` moves the lock, then the image is stale; `--locked` builds the locked commit;
//! the provenance names `git+URL@commit`. Hostile URLs and dirs are refused naming strata.toml's
//! line. The repositories are local bare ones made with the git command (`file://`).

use std::path::Path;
use std::process::Command;

use crate::common::project::{fails, json, ok};
use serde_json::Value;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A bare repository `repo.git` under `dir` whose `main` holds `web/Dockerfile` and
/// `web/index.html` = `page`, and a work tree `work` pushing to it; the file URL and the commit.
fn repository(dir: &Path, page: &str) -> (String, String) {
    let bare = dir.join("repo.git");
    git(dir, &["init", "-q", "--bare", "-b", "main", "repo.git"]);
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("web")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(
        work.join("web/Dockerfile"),
        "FROM scratch\nCOPY index.html /srv/index.html\n",
    )
    .unwrap();
    std::fs::write(work.join("web/index.html"), page).unwrap();
    std::fs::write(work.join("README"), "outside the context\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "first"]);
    let url = format!("file://{}", bare.display());
    git(&work, &["push", "-q", &url, "main"]);
    (url, git(&work, &["rev-parse", "HEAD"]))
}

/// Commit `page` as the new index.html on `main`; the new commit.
fn push_page(dir: &Path, url: &str, page: &str) -> String {
    let work = dir.join("work");
    std::fs::write(work.join("web/index.html"), page).unwrap();
    git(&work, &["commit", "-qam", "next"]);
    git(&work, &["push", "-q", url, "main"]);
    git(&work, &["rev-parse", "HEAD"])
}

fn chain(dir: &Path, context: &str) {
    std::fs::write(
        dir.join("strata.toml"),
        format!(
            "name = \"acme\"\n[teams.web]\n\n[[image]]\nname = \"app\"\nowner = \"web\"\n\
             context = {context}\n"
        ),
    )
    .unwrap();
}

fn result_of(summary: &Value) -> String {
    summary["images"][0]["result"].as_str().unwrap().to_string()
}

fn plan_steps(dir: &Path) -> Vec<Value> {
    json(dir, &["plan", "--json"])["steps"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_git_context_builds_locked_and_a_moved_branch_is_stale_only_after_update() {
    if strata_testutil::require_tool("git").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (url, first) = repository(tmp.path(), "v1\n");
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    chain(
        &project,
        &format!("{{ git = \"{url}\", rev = \"main\", dir = \"web\" }}"),
    );

    let summary = json(&project, &["build", "--json"]);
    assert_eq!(result_of(&summary), "built", "{summary}");
    let lock = std::fs::read_to_string(project.join("strata.lock")).unwrap();
    assert!(lock.contains("[[git]]"), "{lock}");
    assert!(lock.contains(&format!("commit = \"{first}\"")), "{lock}");
    assert!(lock.contains("rev = \"main\""), "{lock}");
    // The cache lives in the store's state directory, one checkout per commit, without .git.
    let cache = project.join(".strata/git");
    let checkouts: Vec<_> = walk_dirs(&cache)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == first.as_str()))
        .collect();
    assert_eq!(checkouts.len(), 1, "{checkouts:?}");
    assert!(checkouts[0].join("web/index.html").is_file());
    assert!(!checkouts[0].join(".git").exists());

    // The branch moves: the lock holds, nothing is stale, --locked builds the locked commit.
    let second = push_page(tmp.path(), &url, "v2\n");
    assert!(plan_steps(&project).is_empty(), "locked: nothing to do");
    let summary = json(&project, &["build", "--locked", "--json"]);
    assert_eq!(result_of(&summary), "up-to-date", "{summary}");

    // `strata update` moves the lock and says so; then the image is stale, and builds.
    let out = ok(&project, &["update"]);
    assert!(
        out.contains(&format!("{url} main: {} → {}", &first[..12], &second[..12])),
        "{out}"
    );
    let lock = std::fs::read_to_string(project.join("strata.lock")).unwrap();
    assert!(lock.contains(&format!("commit = \"{second}\"")), "{lock}");
    let steps = plan_steps(&project);
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["image"], "app");
    let summary = json(&project, &["build", "--json"]);
    assert_eq!(result_of(&summary), "built", "{summary}");

    // `--pull always` follows the branch and moves the lock itself.
    let third = push_page(tmp.path(), &url, "v3\n");
    let summary = json(&project, &["build", "--pull", "always", "--json"]);
    assert_eq!(result_of(&summary), "built", "{summary}");
    let lock = std::fs::read_to_string(project.join("strata.lock")).unwrap();
    assert!(lock.contains(&format!("commit = \"{third}\"")), "{lock}");
}

#[test]
fn locked_builds_the_locked_commit_after_the_branch_moved() {
    if strata_testutil::require_tool("git").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (url, first) = repository(tmp.path(), "v1\n");
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    chain(
        &project,
        &format!("{{ git = \"{url}\", rev = \"main\", dir = \"web\" }}"),
    );
    // Lock without building, move the branch, then build fresh with --locked: the locked commit.
    ok(&project, &["update"]);
    let second = push_page(tmp.path(), &url, "v2\n");
    ok(
        &project,
        &["key", "generate", "--team", "web", "--out", "keys"],
    );
    let summary = json(
        &project,
        &["build", "--locked", "--json", "--key", "web=keys/web.key"],
    );
    assert_eq!(result_of(&summary), "built", "{summary}");

    // Its provenance names git+URL@first, not the branch's new head.
    let store = strata_oci::Store::open(project.join(".strata/store")).unwrap();
    let digest: strata_oci::Digest = store
        .refs()
        .resolve("acme/app:latest")
        .unwrap()
        .digest()
        .to_string()
        .parse()
        .unwrap();
    let envelopes = strata_attest::find(&store, &digest).unwrap();
    // The SBOMs are attested beside the provenance: take the provenance.
    let provenance = envelopes
        .iter()
        .find_map(|e| e.statement_unverified().ok()?.provenance().ok())
        .unwrap();
    let sources: Vec<_> = provenance.dependencies("source").collect();
    assert_eq!(sources.len(), 1, "{provenance:?}");
    assert_eq!(
        sources[0].uri.as_deref(),
        Some(format!("git+{url}@{first}").as_str())
    );
    assert_eq!(sources[0].digest["gitCommit"], first);
    assert_ne!(first, second);
}

fn walk_dirs(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                out.push(path.clone());
                if path.file_name().is_some_and(|n| n != "tmp") && out.len() < 1000 {
                    todo.push(path);
                }
            }
        }
    }
    out
}

#[test]
fn hostile_git_contexts_are_refused_naming_the_chain_file_line() {
    if strata_testutil::require_tool("git").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (url, _) = repository(tmp.path(), "v1\n");
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let pwned = tmp.path().join("pwned");

    // A transport that runs a command: refused before git is asked, nothing runs.
    chain(
        &project,
        &format!(
            "{{ git = \"ext::sh -c touch% {}\", rev = \"main\" }}",
            pwned.display()
        ),
    );
    let err = fails(&project, &["plan"]);
    assert!(
        err.starts_with("error: strata.toml:7:11: field `image[1].context`"),
        "{err}"
    );
    assert!(err.contains("is refused"), "{err}");
    assert!(!pwned.exists());
    for hostile in ["--upload-pack=touch /tmp/x", "/srv/repo.git", "fd::3/x"] {
        chain(
            &project,
            &format!("{{ git = \"{hostile}\", rev = \"main\" }}"),
        );
        let err = fails(&project, &["plan"]);
        assert!(
            err.starts_with("error: strata.toml:7:11:"),
            "{hostile}: {err}"
        );
    }

    // A rev that would be an option.
    chain(
        &project,
        &format!("{{ git = \"{url}\", rev = \"--upload-pack=x\" }}"),
    );
    let err = fails(&project, &["plan"]);
    assert!(err.contains("rev \"--upload-pack=x\" is refused"), "{err}");

    // A dir leaving the checkout, lexically or through a symlink in the repository.
    chain(
        &project,
        &format!("{{ git = \"{url}\", rev = \"main\", dir = \"../x\" }}"),
    );
    let err = fails(&project, &["plan"]);
    assert!(
        err.starts_with("error: strata.toml:7:11: field `image[1].context`"),
        "{err}"
    );
    assert!(err.contains("no .."), "{err}");
    let work = tmp.path().join("work");
    std::os::unix::fs::symlink("/etc", work.join("escape")).unwrap();
    git(&work, &["add", "escape"]);
    git(&work, &["commit", "-qm", "escape"]);
    git(&work, &["push", "-q", &url, "main"]);
    chain(
        &project,
        &format!("{{ git = \"{url}\", rev = \"main\", dir = \"escape\" }}"),
    );
    let err = fails(&project, &["plan"]);
    assert!(err.starts_with("error: strata.toml:7:11:"), "{err}");
    assert!(err.contains("not a directory"), "{err}");

    // A branch that does not exist names the URL and the rev.
    chain(&project, &format!("{{ git = \"{url}\", rev = \"nope\" }}"));
    let err = fails(&project, &["plan"]);
    assert!(err.contains("has no branch or tag \"nope\""), "{err}");
}

/// What a fetch killed half way leaves (`.strata/git/tmp/fetch-*`) is removed by `strata store
/// gc` (and only listed by `--dry-run`); the complete checkout stays and the image stays up to
/// date.
#[test]
fn store_gc_sweeps_what_a_killed_git_fetch_left_and_keeps_the_checkouts() {
    if strata_testutil::require_tool("git").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (url, first) = repository(tmp.path(), "v1\n");
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    chain(
        &project,
        &format!("{{ git = \"{url}\", rev = \"main\", dir = \"web\" }}"),
    );
    assert_eq!(result_of(&json(&project, &["build", "--json"])), "built");
    let killed = project.join(".strata/git/tmp/fetch-k1lled");
    std::fs::create_dir_all(killed.join("tree/web")).unwrap();
    std::fs::write(killed.join("tree/web/index.html"), "half\n").unwrap();

    let out = ok(&project, &["store", "gc", "--dry-run"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("would remove killed git fetch ")
                && l.ends_with("git/tmp/fetch-k1lled")),
        "{out}"
    );
    assert!(killed.is_dir());
    let report = json(&project, &["store", "gc", "--json"]);
    assert_eq!(
        report["git_fetches"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert!(!killed.exists(), "swept");
    let checkouts: Vec<_> = walk_dirs(&project.join(".strata/git"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == first.as_str()))
        .collect();
    assert_eq!(checkouts.len(), 1, "the checkout is kept: {checkouts:?}");
    assert!(checkouts[0].join("web/index.html").is_file());
    let summary = json(&project, &["build", "--locked", "--json"]);
    assert_eq!(result_of(&summary), "up-to-date", "{summary}");
}
