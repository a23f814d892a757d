//! Build triggers (issue 18) for git contexts: `strata watch` follows a chain image whose context
//! is a git branch (`context = { git = "file://…/repo.git", rev = "main", dir = "web" }`). A
//! commit pushed to the branch, and no other command: the watch moves the `[[git]]` entry of
//! strata.lock (committed with `--commit`, naming "URL main: old → new"), rebuilds the image at
//! the new commit and pushes it to the chain's registry (`strata serve`, read with skopeo); the
//! events log has the move as an `update`; a restarted watch does nothing.

use std::path::Path;

use crate::common::{Serve, Watch, git, ok, strata};
use crate::watch_upstream::{pushed, registry_digest, stored};

/// A bare repository `repo.git` under `dir` whose `main` holds `web/Dockerfile` and
/// `web/index.html` = `page`, pushed from the work tree `dir/work`; its URL and the commit.
fn repository(dir: &Path, page: &str) -> (String, String) {
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
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "first"]);
    let url = format!("file://{}", dir.join("repo.git").display());
    git(&work, &["push", "-q", &url, "main"]);
    (url, git(&work, &["rev-parse", "HEAD"]).trim().to_string())
}

/// Commit `page` as the new index.html on `main` and push it; the new commit.
fn push_page(dir: &Path, url: &str, page: &str) -> String {
    let work = dir.join("work");
    std::fs::write(work.join("web/index.html"), page).unwrap();
    git(&work, &["commit", "-qam", "next"]);
    git(&work, &["push", "-q", url, "main"]);
    git(&work, &["rev-parse", "HEAD"]).trim().to_string()
}

/// `srv/index.html` in the (one, gzip) layer of `reference` in the project's store.
fn page_in(project: &Path, reference: &str) -> String {
    use std::io::Read as _;
    let layout = project.join(".strata/store");
    let image = strata_oci::Store::open(&layout)
        .unwrap()
        .image(reference)
        .unwrap();
    let [layer] = image.layers() else {
        panic!("{image:?}")
    };
    let digest = layer.digest().to_string();
    let (algorithm, hex) = digest.split_once(':').unwrap();
    let blob = std::fs::File::open(layout.join("blobs").join(algorithm).join(hex)).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().ends_with("srv/index.html") {
            let mut page = String::new();
            entry.read_to_string(&mut page).unwrap();
            return page;
        }
    }
    panic!("no srv/index.html in {reference}")
}

#[test]
fn watch_follows_a_moved_git_branch_moves_the_lock_rebuilds_and_pushes() {
    if strata_testutil::require_tool("git").is_none()
        || strata_testutil::require_tool("skopeo").is_none()
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    strata_oci::Store::init(&registry).unwrap();
    let server = Serve::start(&registry, &[]);
    let host = server.host.clone();
    let (url, first) = repository(tmp.path(), "v1\n");
    // The project: one image on the git context, in a git repository of its own (--commit).
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("strata.toml"),
        format!(
            "name = \"acme\"\nregistry = \"{host}\"\n[teams.web]\n\n[[image]]\nname = \"app\"\n\
             owner = \"web\"\ncontext = {{ git = \"{url}\", rev = \"main\", dir = \"web\" }}\n"
        ),
    )
    .unwrap();
    std::fs::write(project.join(".gitignore"), ".strata/\n").unwrap();
    git(&project, &["init", "-q"]);
    git(&project, &["config", "user.name", "web bot"]);
    git(&project, &["config", "user.email", "web@localhost"]);
    git(&project, &["add", "."]);
    git(&project, &["commit", "-qm", "app"]);
    let app = format!("{host}/acme/app");

    // The watch locks the branch, builds the image and pushes it.
    let mut watch = Watch::start("acme", strata(&project, &[]));
    let said = watch.until("first push", |l| pushed(l, &app).is_some());
    assert!(
        said.iter()
            .any(|l| l.contains(&format!("{url} main: locked at {}", &first[..12]))),
        "{said:#?}"
    );
    watch.until("idle pass", |l| l.starts_with("watch: up to date"));
    let before = registry_digest(&format!("{app}:latest"));
    assert_eq!(before, stored(&project, &format!("{app}:latest")));

    // A commit to the branch; nothing else is run.
    let second = push_page(tmp.path(), &url, "v2: patched\n");
    let said = watch.until("push of the rebuilt app", |l| pushed(l, &app).is_some());
    let moved = format!("{url} main: {} → {}", &first[..12], &second[..12]);
    assert!(
        said.iter()
            .any(|l| l.starts_with("watch: ") && l.ends_with(&format!("strata.lock: {moved}"))),
        "{said:#?}"
    );
    assert!(
        said.iter()
            .any(|l| l.starts_with("watch: cascading from app")),
        "{said:#?}"
    );
    let after = stored(&project, &format!("{app}:latest"));
    assert_ne!(after, before, "rebuilt at the new commit");
    assert_eq!(pushed(said.last().unwrap(), &app), Some(after.as_str()));
    // The registry has it, as skopeo reads it.
    assert_eq!(registry_digest(&format!("{app}:latest")), after);
    // The image holds the page of the new commit.
    assert_eq!(page_in(&project, &format!("{app}:latest")), "v2: patched\n");
    let lock = std::fs::read_to_string(project.join("strata.lock")).unwrap();
    assert!(
        lock.contains(&format!("commit = \"{second}\"")) && !lock.contains(&first),
        "{lock}"
    );
    // The lock move was committed, naming the branch's move.
    let subject = git(&project, &["log", "-1", "--format=%s"]);
    assert_eq!(subject.trim(), format!("strata.lock: {moved}"));
    assert_eq!(git(&project, &["status", "--porcelain"]).trim(), "");
    // The events log tells it as an update, naming the repository, the branch and the commits.
    let log = ok(strata(&project, &[]).args(["log", "--kind", "update"]));
    assert!(
        log.contains(&format!(
            "web {url}: strata.lock moved: rev main: {} → {}",
            &first[..12],
            &second[..12]
        )),
        "{log}"
    );
    watch.until("idle pass", |l| l.starts_with("watch: up to date"));
    watch.stop();

    // A restarted watch finds everything done: no move, no build, no push.
    let mut again = Watch::start("acme again", strata(&project, &[]));
    let said = again.until("idle pass", |l| l.starts_with("watch: up to date"));
    assert_eq!(
        said,
        [
            "watch: following the upstreams (0) and git contexts (1) of chain acme every 1s",
            "watch: up to date: upstreams locked: 0, git contexts locked: 1, images on them built \
             and pushed: 1"
        ],
        "nothing but the start and the idle line"
    );
    again.stop();
    assert_eq!(registry_digest(&format!("{app}:latest")), after);
    assert_eq!(
        std::fs::read_to_string(project.join("strata.lock")).unwrap(),
        lock
    );
}
