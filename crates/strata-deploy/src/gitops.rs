//! `target = "gitops"`: the deployment's digest is written into manifests in a git repository, for
//! Argo CD or Flux to apply, and committed with a message naming the chain change that caused it.
//!
//! ```toml
//! target = "gitops"
//! gitops = { repo = "../deploy-repo", path = "overlays/prod/kustomization.yaml", branch = "main" }
//! ```
//!
//! The edit is one scalar of the user's file ([`crate::yamledit`]): the kustomization's `images:`
//! entry (`name`, optional `newName`, `digest`) or the scalar at `yaml_path`. The file is written
//! atomically and committed alone (`git commit --only -- PATH`), then pushed when the repository
//! has a remote. Writing the digest the file already holds commits nothing, and strata's trigger
//! is the store, never the repository, so a commit by strata cannot trigger another.
//!
//! `repo` is a directory (a working clone: strata commits on its checked-out `branch`, which must
//! be the one named, and refuses to touch a file with uncommitted changes) or a URL (strata keeps
//! its own clone beside the deployment state and pushes to it). The `git` command is run as
//! `strata-chain`'s git contexts run it: an argument vector, `--` before paths, URLs checked
//! against the allowed transports.

use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::DeployError;
use crate::handoff::{Applied, Change, Handoff};
use crate::yamledit::{self, Step};

/// Where the repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repo {
    /// A working clone on this machine (joined to the deploy file's directory).
    Dir(PathBuf),
    /// A URL strata clones (https, ssh, git, file).
    Url(String),
}

/// Which scalar carries the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// The kustomization's `images:` entry with this `name`: its `digest` (and `newName`).
    Kustomize {
        /// The entry's `name`.
        name: String,
        /// Its `newName`, written when given.
        new_name: Option<String>,
    },
    /// The scalar at a path, set to `REPOSITORY@DIGEST`.
    YamlPath {
        /// The path as written.
        text: String,
        /// Its steps.
        steps: Vec<Step>,
        /// The repository part of the reference written.
        repository: String,
    },
}

/// A parsed `gitops = { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitopsTarget {
    /// The repository.
    pub repo: Repo,
    /// The manifest, relative to the repository's root.
    pub path: PathBuf,
    /// The branch committed to.
    pub branch: String,
    /// What is edited.
    pub edit: Edit,
}

/// A gitops hand-over for one deployment.
#[derive(Debug, Clone)]
pub struct Gitops {
    /// The deployment (for error messages).
    pub deployment: String,
    /// Its target.
    pub target: GitopsTarget,
    /// Where a URL repository is cloned (inside the deployment state directory).
    pub clone_dir: PathBuf,
}

/// The repository part of an image reference: `acme/web:1` → `acme/web`, `localhost/acme/web` →
/// `acme/web`, `r.example:5000/a/b@sha256:…` → `r.example:5000/a/b`.
pub fn repository_of(reference: &str) -> String {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    let no_tag = match no_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => no_digest,
    };
    no_tag
        .strip_prefix("localhost/")
        .unwrap_or(no_tag)
        .to_string()
}

impl Gitops {
    fn err(&self, message: impl Into<String>) -> DeployError {
        DeployError::Gitops {
            deployment: self.deployment.clone(),
            message: message.into(),
        }
    }

    fn git(&self, dir: &Path, args: &[&str]) -> Result<String, DeployError> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "protocol.allow=never"])
            .args(
                strata_chain::git::ALLOWED_SCHEMES
                    .iter()
                    .flat_map(|s| ["-c".to_string(), format!("protocol.{s}.allow=always")]),
            )
            .args(args)
            .stdin(Stdio::null())
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|source| DeployError::Git { source })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("fatal") || l.starts_with("error"))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("no error output")
            .trim()
            .to_string();
        Err(self.err(format!("git {} in {}: {line}", args[0], dir.display())))
    }

    /// The working tree strata edits: the directory, or its own clone of the URL (cloned on first
    /// use, brought to the remote branch every time).
    fn work_tree(&self) -> Result<PathBuf, DeployError> {
        match &self.target.repo {
            Repo::Dir(dir) => {
                let top = self.git(dir, &["rev-parse", "--show-toplevel"])?;
                Ok(PathBuf::from(top))
            }
            Repo::Url(url) => {
                if !self.clone_dir.join(".git").is_dir() {
                    let parent = self.clone_dir.parent().unwrap_or(Path::new("."));
                    std::fs::create_dir_all(parent).map_err(|source| DeployError::State {
                        path: parent.to_path_buf(),
                        source,
                    })?;
                    let _ = std::fs::remove_dir_all(&self.clone_dir);
                    let target = self.clone_dir.to_string_lossy().into_owned();
                    self.git(
                        parent,
                        &[
                            "clone",
                            "--quiet",
                            "--branch",
                            &self.target.branch,
                            "--",
                            url,
                            &target,
                        ],
                    )?;
                }
                Ok(self.clone_dir.clone())
            }
        }
    }

    /// The remote to pull from and push to, if the repository has one.
    fn remote(&self, root: &Path) -> Result<Option<String>, DeployError> {
        let remotes = self.git(root, &["remote"])?;
        let names: Vec<&str> = remotes.lines().map(str::trim).collect();
        Ok(names
            .iter()
            .find(|r| **r == "origin")
            .or(names.first())
            .map(|r| r.to_string()))
    }

    /// The manifest inside `root`, refusing a path that leaves it (`..`, an absolute path, a
    /// symlink on the way).
    fn manifest(&self, root: &Path) -> Result<PathBuf, DeployError> {
        let mut at = root.to_path_buf();
        for c in self.target.path.components() {
            let Component::Normal(part) = c else {
                return Err(self.err(format!(
                    "path {} must be relative, without ..",
                    self.target.path.display()
                )));
            };
            at.push(part);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(self.err(format!(
                    "{} is a symbolic link; strata edits only files inside the repository",
                    at.display()
                )));
            }
        }
        Ok(at)
    }

    /// Check out, sync with the remote; the root, the manifest and the remote.
    fn prepare(&self) -> Result<(PathBuf, PathBuf, Option<String>), DeployError> {
        let root = self.work_tree()?;
        let branch = self
            .git(&root, &["symbolic-ref", "--quiet", "--short", "HEAD"])
            .ok();
        if branch.as_deref() != Some(self.target.branch.as_str()) {
            return Err(self.err(format!(
                "{} is on {}, not on branch {} (gitops.branch); strata commits only there",
                root.display(),
                branch.as_deref().unwrap_or("a detached HEAD"),
                self.target.branch
            )));
        }
        let remote = self.remote(&root)?;
        if let Some(r) = &remote {
            self.git(
                &root,
                &["pull", "--quiet", "--ff-only", "--", r, &self.target.branch],
            )?;
        }
        let file = self.manifest(&root)?;
        Ok((root, file, remote))
    }

    fn rel(&self) -> String {
        self.target.path.to_string_lossy().into_owned()
    }

    fn push(&self, root: &Path, remote: Option<&str>) -> Result<(), DeployError> {
        if let Some(r) = remote {
            self.git(root, &["push", "--quiet", "--", r, &self.target.branch])?;
        }
        Ok(())
    }

    fn commit(&self, root: &Path, message: &str, paths: &[&str]) -> Result<String, DeployError> {
        let mut args = vec!["-c", "user.useConfigOnly=false"];
        let has_identity = self.git(root, &["config", "user.email"]).is_ok();
        if !has_identity {
            args.extend([
                "-c",
                "user.name=strata",
                "-c",
                "user.email=strata@localhost",
            ]);
        }
        args.extend(["commit", "--quiet", "--no-verify", "-m", message]);
        if paths.is_empty() {
            args.push("--allow-empty");
            args.push("--only");
        } else {
            args.push("--only");
            args.push("--");
            args.extend(paths);
        }
        self.git(root, &args)?;
        self.git(root, &["rev-parse", "--short=12", "HEAD"])
    }

    fn place_at(&self, commit: &str) -> String {
        format!(
            "git commit {commit} of {} ({}, branch {})",
            match &self.target.repo {
                Repo::Dir(d) => d.display().to_string(),
                Repo::Url(u) => u.clone(),
            },
            self.rel(),
            self.target.branch
        )
    }

    fn digest_in(&self, text: &str) -> Option<String> {
        match &self.target.edit {
            Edit::Kustomize { name, .. } => yamledit::get_kustomize_digest(text, name),
            Edit::YamlPath { steps, .. } => yamledit::get_path(text, steps)
                .and_then(|v| v.rsplit_once('@').map(|(_, d)| d.to_string())),
        }
    }
}

impl Handoff for Gitops {
    fn place(&self) -> String {
        format!(
            "git {} ({}, branch {})",
            match &self.target.repo {
                Repo::Dir(d) => d.display().to_string(),
                Repo::Url(u) => u.clone(),
            },
            self.rel(),
            self.target.branch
        )
    }

    fn current(&self) -> Result<Option<String>, DeployError> {
        let root = self.work_tree()?;
        let file = self.manifest(&root)?;
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(self.digest_in(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DeployError::State { path: file, source }),
        }
    }

    fn apply(&self, digest: &str, change: &Change<'_>) -> Result<Applied, DeployError> {
        let (root, file, remote) = self.prepare()?;
        let rel = self.rel();
        let dirty = self.git(&root, &["status", "--porcelain", "--", &rel])?;
        if !dirty.is_empty() {
            return Err(self.err(format!(
                "{} has uncommitted changes; strata commits only its own edit",
                file.display()
            )));
        }
        let text = std::fs::read_to_string(&file).map_err(|source| DeployError::State {
            path: file.clone(),
            source,
        })?;
        let edited = match &self.target.edit {
            Edit::Kustomize { name, new_name } => {
                yamledit::set_kustomize_image(&text, name, new_name.as_deref(), digest)
            }
            Edit::YamlPath {
                steps, repository, ..
            } => yamledit::set_path(&text, steps, &format!("{repository}@{digest}")),
        }
        .map_err(|e| self.err(format!("{}: {e}", file.display())))?;
        if edited == text {
            // Nothing to commit; a commit made by an earlier pass may still wait for its push.
            self.push(&root, remote.as_deref())?;
            let head = self.git(&root, &["rev-parse", "--short=12", "HEAD"])?;
            return Ok(Applied::Done {
                at: self.place_at(&head),
                changed: false,
            });
        }
        write_atomic(&file, edited.as_bytes()).map_err(|source| DeployError::State {
            path: file.clone(),
            source,
        })?;
        let mut message = change.summary(digest);
        message.push_str("\n\n");
        if let Some(old) = change.replacing {
            message.push_str(&format!("Replacing {old}.\n"));
        }
        message.push_str(&format!(
            "Strata-Deployment: {}\nStrata-Digest: {digest}\n",
            change.deployment
        ));
        let commit = self.commit(&root, &message, &[&rel])?;
        self.push(&root, remote.as_deref())?;
        Ok(Applied::Done {
            at: self.place_at(&commit),
            changed: true,
        })
    }

    fn note(&self, message: &str) -> Result<(), DeployError> {
        let (root, _, remote) = self.prepare()?;
        self.commit(&root, message, &[])?;
        self.push(&root, remote.as_deref())
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory, keeping its mode.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use strata_attest::keys::KeyKind;
    use strata_attest::{PrivateKey, TrustConfig};
    use strata_events::{Event, EventLog, Kind};
    use strata_oci::Store;

    use crate::reconcile::{Deployer, RollbackTo};
    use crate::state::StateDir;
    use crate::target::Podman;
    use crate::{Actor, DeployFile};

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    const KUSTOMIZATION: &str = "\
# the production overlay
resources:
  - deployment.yaml
images:
  - name: acme/web      # follows the chain
    digest: sha256:0000000000000000000000000000000000000000000000000000000000000000
  - name: acme/api
    newName: registry.example.com/acme/api
";

    struct World {
        dir: tempfile::TempDir,
        store: Store,
        file: DeployFile,
        events: EventLog,
        trust: TrustConfig,
        key: PrivateKey,
    }

    impl World {
        fn new() -> World {
            let dir = tempfile::tempdir().unwrap();
            let repo = dir.path().join("deploy-repo");
            std::fs::create_dir_all(repo.join("overlays/prod")).unwrap();
            git(&repo, &["init", "-q", "-b", "main"]);
            std::fs::write(repo.join("overlays/prod/kustomization.yaml"), KUSTOMIZATION).unwrap();
            git(&repo, &["add", "."]);
            git(&repo, &["commit", "-q", "-m", "the overlay"]);
            let store = Store::init(dir.path().join("store")).unwrap();
            let text = r#"
name = "prod"
owner = "development"
[[deployment]]
name = "web"
image = "acme/web"
target = "gitops"
gitops = { repo = "deploy-repo", path = "overlays/prod/kustomization.yaml" }
[[deployment]]
name = "api"
image = "acme/api"
target = "gitops"
gitops = { repo = "deploy-repo", path = "overlays/prod/kustomization.yaml", branch = "main" }
"#;
            let file = DeployFile::parse(&dir.path().join("deploy.toml"), text).unwrap();
            let events = EventLog::open(&dir.path().join("events.db")).unwrap();
            let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
            let mut trust = TrustConfig::new();
            trust.add_key("development", key.public_key().clone());
            World {
                dir,
                store,
                file,
                events,
                trust,
                key,
            }
        }

        fn repo(&self) -> std::path::PathBuf {
            self.dir.path().join("deploy-repo")
        }

        fn overlay(&self) -> String {
            std::fs::read_to_string(self.repo().join("overlays/prod/kustomization.yaml")).unwrap()
        }

        fn commits(&self) -> Vec<String> {
            git(&self.repo(), &["log", "--format=%B%x00"])
                .split('\0')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect()
        }

        /// A cascade: operations changed corebuild's Dockerfile, httpd-php and `image` were
        /// rebuilt on it; `image` is tagged with the new digest.
        fn cascade(&self, image: &str) -> String {
            let built = strata_oci::random::image(&self.store, 1, 64).unwrap();
            let tag = format!("localhost/{image}:latest");
            self.store.refs().tag(&tag, built.descriptor()).unwrap();
            let digest = built.digest().to_string();
            let run = format!("run-{digest}");
            for (name, cause, reason, team, new) in [
                (
                    "corebuild",
                    None,
                    Some("Dockerfile changed"),
                    Some("operations"),
                    None,
                ),
                (
                    "httpd-php",
                    Some("corebuild"),
                    Some("parent changed"),
                    None,
                    None,
                ),
                (
                    image,
                    Some("httpd-php"),
                    Some("parent changed"),
                    None,
                    Some(&digest),
                ),
            ] {
                self.events
                    .record(&Event {
                        kind: Some(Kind::Build),
                        image: name.to_string(),
                        team: team.map(str::to_string),
                        cause: cause.map(str::to_string),
                        reason: reason.map(str::to_string),
                        new_digest: new.cloned(),
                        run_id: Some(run.clone()),
                        result: "ok".into(),
                        ..Default::default()
                    })
                    .unwrap();
            }
            digest
        }

        fn deployer<'a>(&'a self, podman: &'a Podman) -> Deployer<'a> {
            Deployer {
                file: &self.file,
                store: &self.store,
                states: StateDir::new(self.dir.path(), "prod"),
                target: podman,
                events: Some(&self.events),
                trust: Some(&self.trust),
                client: None,
                upstream: None,
                proxy_program: None,
            }
        }

        fn actor(&self) -> Actor {
            let pem = self.key.to_pem(None).unwrap().to_string();
            Actor::prove("development", &self.trust, |v: &str| {
                (v == "STRATA_KEY_DEVELOPMENT").then(|| pem.clone())
            })
            .unwrap()
        }
    }

    /// podman is never asked: a program that does not exist makes any call fail.
    fn no_podman() -> Podman {
        Podman {
            program: "/nonexistent/podman".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_cascade_commits_one_bump_per_deployment_naming_its_cause() {
        let w = World::new();
        let podman = no_podman();
        let web = w.cascade("acme/web");
        let api = w.cascade("acme/api");
        let outcomes = w.deployer(&podman).reconcile(&[]).unwrap();
        assert!(
            outcomes.iter().all(|o| o.result == "deployed"),
            "{outcomes:?}"
        );
        let commits = w.commits();
        assert_eq!(commits.len(), 3, "{commits:#?}");
        assert!(
            commits[1].starts_with(&format!(
                "deploy prod/web {web} (corebuild Dockerfile changed by operations → httpd-php → \
                 acme/web)"
            )),
            "{}",
            commits[1]
        );
        assert!(
            commits[0].starts_with(&format!("deploy prod/api {api} (corebuild")),
            "{}",
            commits[0]
        );
        // One scalar moved, one key added under its name: every other line as it was.
        let expected = KUSTOMIZATION
            .replace(
                "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                &web,
            )
            .replace(
                "  - name: acme/api\n",
                &format!("  - name: acme/api\n    digest: {api}\n"),
            );
        assert_eq!(w.overlay(), expected);
        // The same digests again: nothing to commit.
        let again = w.deployer(&podman).reconcile(&[]).unwrap();
        assert!(again.iter().all(|o| o.result == "up-to-date"), "{again:?}");
        assert_eq!(w.commits().len(), 3);
        // Status says where it runs: the commit.
        let status = w.deployer(&podman).status(&["web".into()]).unwrap();
        let at = &status[0].state.running.as_ref().unwrap().container;
        let head = git(&w.repo(), &["rev-parse", "--short=12", "HEAD~1"]);
        assert!(
            at.starts_with(&format!("git commit {}", head.trim())),
            "{at}"
        );
        assert!(
            status[0]
                .place
                .as_deref()
                .unwrap()
                .contains("overlays/prod/kustomization.yaml")
        );
    }

    #[test]
    fn a_hold_commits_nothing_and_a_rollback_commit_is_not_undone_by_the_next_bump() {
        let w = World::new();
        let podman = no_podman();
        let d = w.deployer(&podman);
        let first = w.cascade("acme/web");
        d.reconcile(&["web".into()]).unwrap();
        let second = w.cascade("acme/web");
        d.reconcile(&["web".into()]).unwrap();
        assert!(w.overlay().contains(&second));
        // A hold is one (empty) commit on record; the bumps under it commit nothing.
        d.hold("web", &w.actor()).unwrap();
        let held = w.commits().len();
        assert!(w.commits()[0].starts_with(&format!("hold prod/web at {second}")));
        for _ in 0..2 {
            w.cascade("acme/web");
            let o = d.reconcile(&["web".into()]).unwrap().remove(0);
            assert_eq!(o.result, "held", "{o:?}");
        }
        assert_eq!(w.commits().len(), held);
        assert!(w.overlay().contains(&second));
        d.release("web", &w.actor()).unwrap();
        // A rollback writes the previous digest back, in a commit that says so.
        let out = d
            .rollback("web", &RollbackTo::Digest(first.clone()), &w.actor())
            .unwrap();
        assert_eq!(out.result, "deployed", "{out:?}");
        assert!(w.overlay().contains(&first), "{}", w.overlay());
        assert!(
            w.commits()[0].starts_with(&format!("rollback prod/web {first}")),
            "{}",
            w.commits()[0]
        );
        let after_rollback = w.commits().len();
        // The next bump does not undo it.
        let newer = w.cascade("acme/web");
        let o = d.reconcile(&["web".into()]).unwrap().remove(0);
        assert_eq!(o.result, "held", "{o:?}");
        assert_eq!(w.commits().len(), after_rollback);
        assert!(w.overlay().contains(&first) && !w.overlay().contains(&newer));
        // History and events carry it all, as for a local deployment.
        let state = d.states.load("web").unwrap();
        let actions: Vec<&str> = state.history.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["deploy", "deploy", "rollback"]);
        // `down` is for local containers; a gitops deployment is taken down in its repository.
        let err = d.down("web").unwrap_err().to_string();
        assert!(
            err.starts_with("deployment web: it runs elsewhere (git "),
            "{err}"
        );
    }

    #[test]
    fn a_repository_with_a_remote_is_pulled_and_pushed_and_a_url_is_cloned() {
        let w = World::new();
        let podman = no_podman();
        // The repository becomes the remote (bare) of a URL target.
        let bare = w.dir.path().join("remote.git");
        git(
            w.dir.path(),
            &["clone", "-q", "--bare", "deploy-repo", "remote.git"],
        );
        let text = format!(
            "name = \"prod\"\n[[deployment]]\nname = \"web\"\nimage = \"acme/web\"\ntarget = \
             \"gitops\"\ngitops = {{ repo = \"file://{}\", path = \
             \"overlays/prod/kustomization.yaml\" }}\n",
            bare.display()
        );
        let file = DeployFile::parse(&w.dir.path().join("deploy.toml"), &text).unwrap();
        let d = Deployer {
            file: &file,
            ..w.deployer(&podman)
        };
        let digest = w.cascade("acme/web");
        let o = d.reconcile(&[]).unwrap().remove(0);
        assert_eq!(o.result, "deployed", "{o:?}");
        let pushed = git(&bare, &["show", "main:overlays/prod/kustomization.yaml"]);
        assert!(pushed.contains(&digest), "{pushed}");
        let log = git(&bare, &["log", "-1", "--format=%s", "main"]);
        assert!(
            log.starts_with(&format!("deploy prod/web {digest}")),
            "{log}"
        );
    }

    #[test]
    fn hostile_gitops_settings_are_refused_naming_their_line() {
        let base = "name = \"p\"\n[[deployment]]\nname = \"web\"\nimage = \"acme/web\"\n";
        for (extra, wanted) in [
            (
                "target = \"gitops\"\ngitops = { repo = \"r\", path = \"../../etc/passwd\" }",
                "deploy.toml:6:",
            ),
            (
                "target = \"gitops\"\ngitops = { repo = \"ext::sh -c touch% /tmp/x\", path = \"a.yaml\" }",
                "repo: \"ext::sh -c touch% /tmp/x\" is not a directory or a URL",
            ),
            (
                "target = \"gitops\"\ngitops = { repo = \"r\", path = \"a.yaml\", branch = \"--upload-pack=x\" }",
                "gitops.branch",
            ),
            (
                "gitops = { repo = \"r\", path = \"a.yaml\" }",
                "gitops is set but target is not \"gitops\"",
            ),
            (
                "target = \"gitops\"\nports = [\"80\"]\ngitops = { repo = \"r\", path = \"a.yaml\" }",
                "ports belongs in the manifests of the repository",
            ),
            ("target = \"gitops\"", "needs gitops = {"),
        ] {
            let text = format!("{base}{extra}\n");
            let err = DeployFile::parse(Path::new("deploy.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("deploy.toml:"), "{err}");
            assert!(err.contains(wanted), "{extra}: {err}");
        }
        // An oci: image names no repository: the images: entry's name must be given.
        let text = "name = \"p\"\n[[deployment]]\nname = \"web\"\nimage = \"oci:layout:v1\"\n\
                    target = \"gitops\"\ngitops = { repo = \"r\", path = \"a.yaml\" }\n";
        let err = DeployFile::parse(Path::new("deploy.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("image: needed for an oci: image"), "{err}");
        let named = text.replace(
            "path = \"a.yaml\"",
            "path = \"a.yaml\", image = \"acme/web\"",
        );
        assert!(DeployFile::parse(Path::new("deploy.toml"), &named).is_ok());
    }

    #[test]
    fn a_symbolic_link_on_the_path_is_not_followed() {
        let w = World::new();
        let podman = no_podman();
        w.cascade("acme/web");
        let outside = w.dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("kustomization.yaml"), KUSTOMIZATION).unwrap();
        std::fs::remove_dir_all(w.repo().join("overlays/prod")).unwrap();
        std::os::unix::fs::symlink(&outside, w.repo().join("overlays/prod")).unwrap();
        git(&w.repo(), &["add", "-A"]);
        git(&w.repo(), &["commit", "-q", "-m", "a link"]);
        let err = w.deployer(&podman).reconcile(&["web".into()]).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert_eq!(
            std::fs::read_to_string(outside.join("kustomization.yaml")).unwrap(),
            KUSTOMIZATION
        );
    }

    #[test]
    fn a_dirty_manifest_or_another_branch_is_refused_and_nothing_is_committed() {
        let w = World::new();
        let podman = no_podman();
        w.cascade("acme/web");
        let overlay = w.repo().join("overlays/prod/kustomization.yaml");
        std::fs::write(&overlay, format!("{KUSTOMIZATION}# a change in progress\n")).unwrap();
        let err = w.deployer(&podman).reconcile(&["web".into()]).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("has uncommitted changes; strata commits only its own edit"),
            "{err}"
        );
        git(&w.repo(), &["checkout", "-q", "--", "."]);
        git(&w.repo(), &["checkout", "-q", "-b", "feature"]);
        let err = w.deployer(&podman).reconcile(&["web".into()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("is on feature, not on branch main (gitops.branch)"),
            "{err}"
        );
        assert_eq!(w.commits().len(), 1);
    }
}
