//! Targets that run a deployment somewhere else: strata hands the digest over (a commit in a
//! gitops repository, a server-side apply to a cluster) instead of starting containers itself.
//!
//! The decision stays in one place: [`crate::decide()`] judges holds, approvals, known-bad digests,
//! rollbacks and `require.verified` for every target alike, and [`crate::Deployer`] records every
//! outcome in the state, the history and the events log as it does for local deployments. A
//! [`Handoff`] only answers two questions: "make this deployment run DIGEST, because of CAUSE"
//! and "what does it run now".

use crate::error::DeployError;

/// Why a digest is handed over: what the commit message or the change cause says.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The deploy file's name and the deployment: `acme-prod/wordpress`.
    pub deployment: &'a str,
    /// `deploy`, `rollback`, `restore`, `hold`.
    pub why: &'a str,
    /// The chain change that made the digest (`corebuild Dockerfile changed by operations →
    /// httpd-php → wordpress`), when the build events know it.
    pub cause: Option<&'a str>,
    /// The digest it replaces, if any.
    pub replacing: Option<&'a str>,
}

impl Change<'_> {
    /// One line: `deploy acme-prod/wordpress sha256:… (CAUSE)`.
    pub fn summary(&self, digest: &str) -> String {
        let mut s = format!("{} {} {digest}", self.why, self.deployment);
        if let Some(c) = self.cause {
            s.push_str(&format!(" ({c})"));
        }
        s
    }
}

/// What came of a hand-over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The target runs the digest now (or will, for gitops: the commit is what Argo CD or Flux
    /// applies).
    Done {
        /// Where, in words: `git commit 1a2b3c4 of DIR (overlays/prod/kustomization.yaml)`.
        at: String,
        /// Whether anything changed (false: the target already had the digest).
        changed: bool,
    },
    /// The target tried and the rollout failed (a deadline passed): the digest is marked bad.
    Failed {
        /// Why, one line.
        reason: String,
    },
}

/// A target that runs a deployment elsewhere.
pub trait Handoff {
    /// Where it runs, in words (`git DIR (PATH) on BRANCH`, `cluster CONTEXT namespace NS`).
    fn place(&self) -> String;
    /// The digest the target runs now (none: it names none yet).
    fn current(&self) -> Result<Option<String>, DeployError>;
    /// Make the deployment run `digest`, because of `change`.
    fn apply(&self, digest: &str, change: &Change<'_>) -> Result<Applied, DeployError>;
    /// Put a hold or a release on the target's own record (a gitops commit); nothing by default.
    fn note(&self, message: &str) -> Result<(), DeployError> {
        let _ = message;
        Ok(())
    }
}
