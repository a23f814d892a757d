//! The deploy error type: each variant one line naming the file, deployment or image at fault; a
//! message holds its own text, the cause is chained through `source()`.

use std::path::PathBuf;

use strata_chain::Location;

/// What can go wrong while deploying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// The deploy file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The deploy file is not valid.
    #[error("{location}: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// No deployment has this name.
    #[error("{file}: no deployment named \"{name}\" (it has: {known})")]
    UnknownDeployment {
        /// The deploy file.
        file: String,
        /// The name asked for.
        name: String,
        /// The names it has.
        known: String,
    },
    /// Reading or writing deployment state failed.
    #[error("deployment state {}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The deployment state file is not what this strata writes.
    #[error("deployment state {} is damaged", path.display())]
    StateFormat {
        /// The file.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
    /// The image a deployment follows cannot be resolved to a digest.
    #[error("deployment {deployment}: cannot resolve image {image}")]
    Resolve {
        /// The deployment.
        deployment: String,
        /// The image as written.
        image: String,
        /// Why.
        source: ResolveError,
    },
    /// Exporting the image for podman failed.
    #[error("deployment {deployment}: cannot export {digest} for podman")]
    Export {
        /// The deployment.
        deployment: String,
        /// The digest.
        digest: String,
        /// The error.
        source: Box<strata_oci::archive::ExportError>,
    },
    /// The container engine refused or failed.
    #[error("deployment {deployment}: podman {action} failed: {message}")]
    Target {
        /// The deployment.
        deployment: String,
        /// What was asked (`run`, `stop`, `pull`...).
        action: String,
        /// podman's last line of error output.
        message: String,
    },
    /// The container engine could not be started.
    #[error("cannot run podman")]
    Spawn {
        /// The error.
        source: std::io::Error,
    },
    /// The front listener for a published port could not be started.
    #[error("deployment {deployment}: front listener on {listen}: {message}")]
    Proxy {
        /// The deployment.
        deployment: String,
        /// The address.
        listen: String,
        /// What went wrong.
        message: String,
    },
    /// Nothing to roll back to, or an unknown revision.
    #[error("deployment {deployment}: {message}")]
    Rollback {
        /// The deployment.
        deployment: String,
        /// What is missing.
        message: String,
    },
    /// Nothing waits for approval, or a different digest does.
    #[error("deployment {deployment}: {message}")]
    Approve {
        /// The deployment.
        deployment: String,
        /// What is wrong.
        message: String,
    },
    /// A team other than the deploy file's owner tried to approve, hold, release or roll back.
    #[error(
        "deployment {deployment}: team {team} may not {action} it: only its owner, {owner}, may (owner in {file})"
    )]
    NotOwner {
        /// The deployment.
        deployment: String,
        /// The team that tried.
        team: String,
        /// What it tried (`approve`, `hold`, `release`, `roll back`).
        action: String,
        /// The owner team.
        owner: String,
        /// The deploy file.
        file: String,
    },
    /// The caller could not prove it acts as the team it named.
    #[error("cannot act as team {team}: {message}")]
    Identity {
        /// The team named.
        team: String,
        /// What is missing.
        message: String,
    },
    /// The team's signing key could not be read.
    #[error("cannot act as team {team}: its signing key")]
    TeamKey {
        /// The team named.
        team: String,
        /// Why.
        source: Box<strata_attest::KeyError>,
    },
    /// The digests a deployment runs or may roll back to could not be recorded as gc roots.
    #[error("deployment {deployment}: cannot record what it runs as gc roots")]
    Roots {
        /// The deployment.
        deployment: String,
        /// The store's error.
        source: Box<strata_oci::Error>,
    },
    /// A gitops hand-over failed: git refused, or the manifest cannot be edited.
    #[error("deployment {deployment}: gitops: {message}")]
    Gitops {
        /// The deployment.
        deployment: String,
        /// What went wrong, naming the repository or file.
        message: String,
    },
    /// The cluster could not be reached or refused a request.
    #[error("deployment {deployment}: kubernetes: cannot {action}")]
    Kubernetes {
        /// The deployment.
        deployment: String,
        /// What was asked (`apply its Deployment`, `read the kubeconfig`...).
        action: String,
        /// The client's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The `git` command could not be started.
    #[error("cannot run git")]
    Git {
        /// The error.
        source: std::io::Error,
    },
    /// The command does not apply to the deployment's target.
    #[error("deployment {deployment}: {message}")]
    Unsupported {
        /// The deployment.
        deployment: String,
        /// What is not supported, and why.
        message: String,
    },
    /// The events log failed.
    #[error("events log")]
    Events(#[from] strata_events::EventError),
}

/// Why an image reference did not resolve to a digest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The store or layout could not resolve it.
    #[error("store")]
    Store(#[source] Box<strata_oci::Error>),
    /// The registry could not.
    #[error("registry")]
    Registry(#[source] Box<strata_remote::RegistryError>),
    /// A registry reference, and no client to ask.
    #[error("no registry client configured")]
    NoClient,
    /// The registry answered that it has no such manifest.
    #[error("the registry has no such manifest")]
    NoManifest,
}
