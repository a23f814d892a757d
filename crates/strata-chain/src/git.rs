//! Git contexts: `context = { git = "URL", rev = "main", dir = "httpd-php" }`.
//!
//! A git context is resolved to one commit (a branch or tag through `git ls-remote`, a full commit
//! id as it is), and that commit is fetched shallow into a per-commit cache inside the store's
//! state directory: `<state>/git/<hash of the URL>/<commit>/`, the checkout's files without `.git`.
//! A fetch happens in a temporary directory beside the cache and is renamed into place only once
//! complete, so a killed fetch never leaves an entry that a later run would use; what it leaves
//! under `git/tmp/` is removed by [`sweep_killed_fetches`] (`strata store gc`). Every fetch holds
//! `git/tmp.lock` shared while its temporary directory exists, and the sweep holds it exclusive,
//! so a fetch still running is never swept.
//!
//! strata runs the `git` command rather than linking gix: it keeps gix's compile cost out of the
//! build, and credential helpers, `insteadOf` rewrites, SSH configuration and proxies come free,
//! as the user already set them up for git.
//!
//! Security: the URL comes from `strata.toml`, which a team member writes. It must not be able to
//! run commands: only the `https`, `http`, `ssh`, `git` and `file` transports are accepted (never
//! `ext::` or another `<transport>::` form, nor a local path or anything starting with `-`), git
//! is run with `protocol.allow=never` plus those five allowed, and `--` comes before every user
//! value. `dir` is a relative path without `..` that must be a real directory of the checkout (no
//! symlink on the way); the context walk then refuses any symlink leaving it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// The transports a git context may use.
pub const ALLOWED_SCHEMES: &[&str] = &["https", "http", "ssh", "git", "file"];

/// A git context as written in `strata.toml`, with the commit it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitContext {
    /// The repository URL.
    pub url: String,
    /// The revision asked for: a branch, a tag or a commit id.
    pub rev: String,
    /// The context directory inside the repository (`.` for its root).
    pub dir: PathBuf,
    /// The commit `rev` resolved to (hex).
    pub commit: String,
}

/// A commit checked out in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The commit (hex).
    pub commit: String,
    /// The checkout's root directory.
    pub root: PathBuf,
}

/// Resolves and checks out git contexts while a chain file is read.
pub trait GitCheckouts {
    /// The checkout of `url` at `rev` (resolved to a commit as the implementation decides).
    fn checkout(&mut self, url: &str, rev: &str) -> Result<Checkout, GitError>;
}

/// Refuses every git context: for readers that have no store to fetch into.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGit;

impl GitCheckouts for NoGit {
    fn checkout(&mut self, _url: &str, _rev: &str) -> Result<Checkout, GitError> {
        Err(GitError::NoCache)
    }
}

/// Why a git context could not be resolved or fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// The URL is refused.
    #[error("git URL {url:?} is refused: {why}")]
    Url {
        /// The URL.
        url: String,
        /// Why (one line).
        why: &'static str,
    },
    /// The revision is not a plausible branch, tag or commit name.
    #[error("git rev {rev:?} is refused: {why}")]
    Rev {
        /// The revision.
        rev: String,
        /// Why.
        why: &'static str,
    },
    /// The repository has no such branch or tag.
    #[error("{url} has no branch or tag {rev:?}")]
    NoSuchRev {
        /// The URL.
        url: String,
        /// The revision.
        rev: String,
    },
    /// `--locked` and the lock has no commit for this context.
    #[error("{url} rev {rev} is not locked in strata.lock: run `strata update`")]
    NotLocked {
        /// The URL.
        url: String,
        /// The revision.
        rev: String,
    },
    /// A git command failed.
    #[error("git {what} {url} failed: {stderr}")]
    Command {
        /// What was run (`ls-remote`, `fetch`).
        what: &'static str,
        /// The URL.
        url: String,
        /// git's last error line.
        stderr: String,
    },
    /// The `git` command could not be started.
    #[error("cannot run git (install git)")]
    Spawn(#[source] std::io::Error),
    /// The cache could not be written.
    #[error("git cache {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Git contexts need a store to fetch into, and this command has none.
    #[error("git contexts are fetched into the store; this command reads none")]
    NoCache,
    /// An offline reader (the web pages) met a context whose commit is not checked out yet.
    #[error("{url} commit {commit} is not fetched yet (a build fetches it)")]
    NotFetched {
        /// The URL.
        url: String,
        /// The commit.
        commit: String,
    },
}

/// Check that `url` names a repository through an allowed transport.
pub fn check_url(url: &str) -> Result<(), GitError> {
    let bad = |why| {
        Err(GitError::Url {
            url: url.to_string(),
            why,
        })
    };
    if url.is_empty() {
        return bad("empty");
    }
    // `-oProxyCommand=...` as a host would be an ssh option (git refuses it too; twice is cheap).
    if url.starts_with('-') || url.contains("://-") || url.contains("@-") {
        return bad("a host or URL starting with '-' would be read as an option");
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("contains a space or a control character");
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if !ALLOWED_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
            return bad("only https, http, ssh, git and file URLs are accepted");
        }
        return Ok(());
    }
    let before_slash = url.split('/').next().unwrap_or("");
    if before_slash.contains("::") {
        return bad("a <transport>:: URL can run commands; use https, http, ssh, git or file");
    }
    // scp-like `[user@]host:path`, which git reads as ssh.
    match before_slash.split_once(':') {
        Some((host, _))
            if !host.is_empty() && !host.rsplit('@').next().unwrap_or("").is_empty() =>
        {
            Ok(())
        }
        _ => bad("not a URL (a local repository is file:///path)"),
    }
}

/// Check that `rev` is a plausible branch, tag or commit name.
pub fn check_rev(rev: &str) -> Result<(), GitError> {
    let bad = |why| {
        Err(GitError::Rev {
            rev: rev.to_string(),
            why,
        })
    };
    if rev.is_empty() {
        return bad("empty");
    }
    if rev.starts_with('-') {
        return bad("starts with '-'");
    }
    if rev
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
        || rev.contains("..")
    {
        return bad("not a valid branch, tag or commit name");
    }
    Ok(())
}

/// Check that `dir` is a relative path that stays inside the repository; returns it normalised.
pub fn check_dir(dir: &str) -> Result<PathBuf, &'static str> {
    let path = Path::new(dir);
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => return Err("must stay inside the repository (no ..)"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("must be relative to the repository's root");
            }
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    Ok(out)
}

/// True when `rev` is a full commit id (SHA-1 or SHA-256, lowercase hex).
pub fn is_commit_id(rev: &str) -> bool {
    (rev.len() == 40 || rev.len() == 64)
        && rev
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// How a [`GitCache`] chooses each context's commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GitMode {
    /// The locked commit when there is one, else resolve the rev (`strata build`, `plan`).
    #[default]
    Lock,
    /// The locked commit only; a context the lock lacks is an error (`--locked`).
    Frozen,
    /// Resolve every rev again (`strata update`).
    Follow,
}

/// The per-commit cache of git checkouts under a store's state directory, resolving each
/// context's commit from the lock (`locked`: (url, rev) → commit) as `mode` says. What it
/// resolved is in [`GitCache::resolved`].
#[derive(Debug)]
pub struct GitCache {
    dir: PathBuf,
    mode: GitMode,
    locked: BTreeMap<(String, String), String>,
    resolved: BTreeMap<(String, String), String>,
    only: Option<Vec<String>>,
    offline: bool,
}

impl GitCache {
    /// A cache in `state_dir/git`, with the commits `locked` by the lock.
    pub fn new(
        state_dir: &Path,
        mode: GitMode,
        locked: BTreeMap<(String, String), String>,
    ) -> GitCache {
        GitCache {
            dir: state_dir.join("git"),
            mode,
            locked,
            resolved: BTreeMap::new(),
            only: None,
            offline: false,
        }
    }

    /// Never run git: a context resolves only to the commit the lock names, and only when that
    /// commit is already checked out (a reader serving requests, such as the web pages, must not
    /// reach the network or write the cache on a visitor's behalf).
    pub fn offline(mut self) -> GitCache {
        self.offline = true;
        self
    }

    /// In [`GitMode::Follow`], resolve again only the repositories in `urls`; the others keep
    /// their locked commits (`strata update URL`).
    pub fn follow_only(mut self, urls: Vec<String>) -> GitCache {
        self.only = Some(urls);
        self
    }

    /// Every context met: (url, rev) → the commit used.
    pub fn resolved(&self) -> &BTreeMap<(String, String), String> {
        &self.resolved
    }

    fn commit_of(&self, url: &str, rev: &str) -> Result<String, GitError> {
        if is_commit_id(rev) {
            return Ok(rev.to_string());
        }
        let key = (url.to_string(), rev.to_string());
        if let Some(done) = self.resolved.get(&key) {
            return Ok(done.clone());
        }
        let mode = match &self.only {
            Some(urls) if self.mode == GitMode::Follow && !urls.iter().any(|u| u == url) => {
                GitMode::Lock
            }
            _ => self.mode,
        };
        match (mode, self.locked.get(&key)) {
            (GitMode::Lock | GitMode::Frozen, Some(commit)) => Ok(commit.clone()),
            (GitMode::Frozen, None) => Err(GitError::NotLocked {
                url: url.to_string(),
                rev: rev.to_string(),
            }),
            _ if self.offline => Err(GitError::NotLocked {
                url: url.to_string(),
                rev: rev.to_string(),
            }),
            _ => ls_remote(url, rev),
        }
    }

    /// Fetch `commit` of `url` into the cache unless it is there; its root.
    fn fetch(&self, url: &str, commit: &str) -> Result<PathBuf, GitError> {
        let repo = strata_oci::Digest::of(url.as_bytes()).hex()[..32].to_string();
        let target = self.dir.join(repo).join(commit);
        if target.is_dir() {
            return Ok(target);
        }
        if self.offline {
            return Err(GitError::NotFetched {
                url: url.to_string(),
                commit: commit.to_string(),
            });
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| GitError::Io { path, source }
        };
        let parent = target.parent().expect("the target has a parent");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let tmp_root = self.dir.join("tmp");
        std::fs::create_dir_all(&tmp_root).map_err(io(&tmp_root))?;
        // Held (shared) until the temporary directory is gone: dropped after it.
        let lock_path = self.dir.join(TMP_LOCK);
        let running = open_tmp_lock(&lock_path)?;
        running.lock_shared().map_err(io(&lock_path))?;
        let tmp = tempfile::Builder::new()
            .prefix("fetch-")
            .tempdir_in(&tmp_root)
            .map_err(io(&tmp_root))?;
        let tree = tmp.path().join("tree");
        run_git(
            "init",
            url,
            git(None).args(["init", "-q", "--template="]).arg(&tree),
        )?;
        run_git(
            "fetch",
            url,
            git(Some(&tree)).args([
                "fetch",
                "-q",
                "--depth",
                "1",
                "--no-tags",
                "--no-recurse-submodules",
                "--",
                url,
                commit,
            ]),
        )?;
        run_git(
            "checkout",
            url,
            git(Some(&tree)).args(["checkout", "-q", "--detach", commit]),
        )?;
        let dotgit = tree.join(".git");
        std::fs::remove_dir_all(&dotgit).map_err(io(&dotgit))?;
        match std::fs::rename(&tree, &target) {
            Ok(()) => Ok(target),
            // Another run put the same commit in place first: the same files.
            Err(_) if target.is_dir() => Ok(target),
            Err(e) => Err(io(&target)(e)),
        }
    }
}

impl GitCheckouts for GitCache {
    fn checkout(&mut self, url: &str, rev: &str) -> Result<Checkout, GitError> {
        check_url(url)?;
        check_rev(rev)?;
        let commit = self.commit_of(url, rev)?;
        let root = self.fetch(url, &commit)?;
        self.resolved
            .insert((url.to_string(), rev.to_string()), commit.clone());
        Ok(Checkout { commit, root })
    }
}

/// The lock file of the fetches' temporary directories, in the cache's directory.
const TMP_LOCK: &str = "tmp.lock";

fn open_tmp_lock(path: &Path) -> Result<std::fs::File, GitError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| GitError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The temporary directories that fetches killed half way left under `state_dir/git/tmp/`
/// (`fetch-*`), removed unless `dry_run`. None while a fetch is running (it holds the lock that
/// the sweep needs exclusive): the next sweep takes them. The complete checkouts are kept.
pub fn sweep_killed_fetches(state_dir: &Path, dry_run: bool) -> Result<Vec<PathBuf>, GitError> {
    let dir = state_dir.join("git");
    let tmp_root = dir.join("tmp");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GitError::Io { path, source }
    };
    let entries = match std::fs::read_dir(&tmp_root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&tmp_root)(e)),
    };
    let lock_path = dir.join(TMP_LOCK);
    let lock = open_tmp_lock(&lock_path)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(Vec::new()),
        Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
    }
    let mut killed: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("fetch-"))
        .map(|e| e.path())
        .collect();
    killed.sort();
    if !dry_run {
        for path in &killed {
            match std::fs::remove_dir_all(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(path)(e)),
            }
        }
    }
    Ok(killed)
}

/// A git command hardened against hostile URLs: only the allowed transports, no terminal prompt
/// hidden behind our output, no repository of the environment.
fn git(dir: Option<&Path>) -> Command {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    cmd.args(["-c", "protocol.allow=never"]);
    for scheme in ALLOWED_SCHEMES {
        cmd.args(["-c", &format!("protocol.{scheme}.allow=always")]);
    }
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run_git(what: &'static str, url: &str, cmd: &mut Command) -> Result<String, GitError> {
    let out = cmd.output().map_err(GitError::Spawn)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .trim()
            .to_string();
        return Err(GitError::Command {
            what,
            url: url.to_string(),
            stderr: line,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The commit `rev` (a branch or a tag; annotated tags peeled) names on `url`.
pub fn ls_remote(url: &str, rev: &str) -> Result<String, GitError> {
    check_url(url)?;
    check_rev(rev)?;
    let listing = run_git("ls-remote", url, git(None).args(["ls-remote", "--", url]))?;
    let refs: BTreeMap<&str, &str> = listing
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(commit, name)| (name.trim(), commit.trim()))
        .collect();
    let wanted = [
        format!("refs/heads/{rev}"),
        format!("refs/tags/{rev}^{{}}"),
        format!("refs/tags/{rev}"),
        rev.to_string(),
    ];
    wanted
        .iter()
        .find_map(|name| refs.get(name.as_str()))
        .map(|c| c.to_string())
        .ok_or_else(|| GitError::NoSuchRev {
            url: url.to_string(),
            rev: rev.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowed_transports_pass() {
        for good in [
            "https://git.example/acme/chain.git",
            "ssh://git@git.example/acme/chain",
            "git@git.example:acme/chain.git",
            "file:///srv/git/chain.git",
            "git://git.example/chain",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in [
            "ext::sh -c touch% /tmp/pwned",
            "ext::sh",
            "fd::17",
            "-uhelp",
            "--upload-pack=touch /tmp/x",
            "ssh://-oProxyCommand=touch%20x/repo",
            "git@-oProxyCommand=x:repo",
            "/srv/git/chain.git",
            "ftp://git.example/x",
            "",
            "https://x/a b",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    fn run(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A fetch killed half way leaves only a directory under `git/tmp/`, which is never used; a
    /// complete checkout is used again without asking the repository.
    // Issue 21: the web pages read the chain on a visitor's request: never git, never the cache.
    #[test]
    fn an_offline_cache_uses_only_locked_commits_already_checked_out_and_never_runs_git() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        // Nothing answers at this URL: running git would fail with a Command error instead.
        let url = "https://git.example.invalid/app.git";
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let locked: BTreeMap<(String, String), String> =
            [((url.to_string(), "main".to_string()), commit.to_string())].into();
        let mut cache = GitCache::new(&state, GitMode::Lock, locked.clone()).offline();
        assert!(matches!(
            cache.checkout(url, "main"),
            Err(GitError::NotFetched { .. })
        ));
        assert!(matches!(
            cache.checkout(url, "other-branch"),
            Err(GitError::NotLocked { .. })
        ));
        assert!(!state.join("git").exists(), "the offline cache wrote");
        let repo_key = strata_oci::Digest::of(url.as_bytes()).hex()[..32].to_string();
        let root = state.join("git").join(repo_key).join(commit);
        std::fs::create_dir_all(&root).unwrap();
        let mut cache = GitCache::new(&state, GitMode::Lock, locked).offline();
        assert_eq!(cache.checkout(url, "main").unwrap().root, root);
    }

    #[test]
    fn only_complete_checkouts_are_used_and_they_are_kept_per_commit() {
        if strata_testutil::require_tool("git").is_none() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        run(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("f"), "one\n").unwrap();
        run(&work, &["add", "f"]);
        run(&work, &["commit", "-qm", "one"]);
        let commit = run(&work, &["rev-parse", "HEAD"]);
        let url = format!("file://{}", work.display());
        let state = tmp.path().join("state");
        let repo_key = strata_oci::Digest::of(url.as_bytes()).hex()[..32].to_string();
        // What a killed fetch leaves behind: a partial tree in tmp/, no entry under the key.
        let partial = state.join("git/tmp/fetch-killed/tree");
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::write(partial.join("f"), "half\n").unwrap();

        let mut cache = GitCache::new(&state, GitMode::Lock, BTreeMap::new());
        let checkout = cache.checkout(&url, "main").unwrap();
        assert_eq!(checkout.commit, commit);
        assert_eq!(
            checkout.root,
            state.join("git").join(&repo_key).join(&commit)
        );
        assert_eq!(
            std::fs::read_to_string(checkout.root.join("f")).unwrap(),
            "one\n"
        );
        assert!(!checkout.root.join(".git").exists());
        assert_eq!(cache.resolved()[&(url.clone(), "main".to_string())], commit);

        // Locked at that commit, the checkout is read from the cache: the repository is gone.
        std::fs::remove_dir_all(&work).unwrap();
        let locked = BTreeMap::from([((url.clone(), "main".to_string()), commit.clone())]);
        let mut again = GitCache::new(&state, GitMode::Frozen, locked);
        assert_eq!(again.checkout(&url, "main").unwrap(), checkout);
        let mut frozen = GitCache::new(&state, GitMode::Frozen, BTreeMap::new());
        assert!(matches!(
            frozen.checkout(&url, "main"),
            Err(GitError::NotLocked { .. })
        ));

        // The killed fetch's leftover is swept, not while a fetch runs, never a checkout.
        let killed = state.join("git/tmp/fetch-killed");
        let running = open_tmp_lock(&state.join("git").join(TMP_LOCK)).unwrap();
        running.lock_shared().unwrap();
        assert_eq!(
            sweep_killed_fetches(&state, false).unwrap(),
            Vec::<PathBuf>::new()
        );
        assert!(killed.is_dir(), "a fetch is running: kept");
        drop(running);
        assert_eq!(
            sweep_killed_fetches(&state, true).unwrap(),
            std::slice::from_ref(&killed)
        );
        assert!(killed.is_dir(), "a dry run removes nothing");
        assert_eq!(
            sweep_killed_fetches(&state, false).unwrap(),
            std::slice::from_ref(&killed)
        );
        assert!(!killed.exists());
        assert!(checkout.root.join("f").is_file());
        assert_eq!(
            sweep_killed_fetches(&tmp.path().join("none"), false).unwrap(),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn dir_stays_inside() {
        assert_eq!(check_dir("a/./b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(check_dir("").unwrap(), PathBuf::from("."));
        assert!(check_dir("../x").is_err());
        assert!(check_dir("a/../../x").is_err());
        assert!(check_dir("/etc").is_err());
        assert!(check_rev("--upload-pack=x").is_err());
        assert!(check_rev("main").is_ok());
    }
}
