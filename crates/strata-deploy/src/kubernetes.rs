//! `target = "kubernetes"`: the deployment's `Deployment` and `Service` applied to a cluster by
//! server-side apply, the image by digest, and the rollout followed as `kubectl rollout status`
//! follows it.
//!
//! ```toml
//! target = "kubernetes"
//! kubernetes = { namespace = "prod", context = "prod", image = "registry.example.com/acme/wordpress" }
//! ```
//!
//! - **Credentials** come from the kubeconfig as kubectl finds it (`KUBECONFIG`, else
//!   `~/.kube/config`; `kubeconfig = "FILE"` names one), at `context` (default: its current one).
//! - **What is applied**: the documents [`documents`] builds (the ones `strata export kubernetes`
//!   writes for the deployment), with `image = REPOSITORY@DIGEST`. `image` is the repository the
//!   cluster pulls from: a `registry` image source's own repository by default; for a chain or
//!   `oci:` image it must be given, and the image must reach it (`strata push`, or `strata watch`'s
//!   pushes). Applied with `PATCH ...?fieldManager=strata&force=true`, content type
//!   `application/apply-patch+yaml`: strata owns the fields it sets, and takes them back from
//!   another manager that changed them.
//! - **Rollout status** as kubectl reads it: once `status.observedGeneration >= metadata.generation`,
//!   a `Progressing` condition with reason `ProgressDeadlineExceeded` is a failure; otherwise it
//!   waits until `updatedReplicas == replicas == availableReplicas` (and `updatedReplicas` reaches
//!   `spec.replicas`). A failed rollout is marked bad by the deployer, which applies the previous
//!   digest again. strata stops waiting itself after the deployment's progress deadline plus a
//!   minute, for a cluster whose controller reports nothing.
//!
//! The deploy code is synchronous: each call runs the `kube` client on a current-thread tokio
//! runtime of its own.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment as KubeDeployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::config::{Deployment, Health, Probe};
use crate::error::DeployError;
use crate::handoff::{Applied, Change, Handoff};

/// The field manager strata applies as.
pub const FIELD_MANAGER: &str = "strata";
/// How often a probe runs, in seconds; a health timeout is spread over this period.
pub const PROBE_PERIOD_SECONDS: u64 = 5;
/// Kubernetes' default `progressDeadlineSeconds`.
const DEFAULT_PROGRESS_DEADLINE: u64 = 600;

/// A parsed `kubernetes = { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesTarget {
    /// The namespace applied to.
    pub namespace: String,
    /// The kubeconfig context (none: its current context).
    pub context: Option<String>,
    /// A kubeconfig file (none: as kubectl finds it).
    pub kubeconfig: Option<PathBuf>,
    /// The repository the cluster pulls the image from; the reference applied is
    /// `REPOSITORY@DIGEST`.
    pub repository: String,
    /// Replicas of the Deployment.
    pub replicas: u32,
    /// How often the rollout status is read.
    pub poll: Duration,
}

/// A health check as probes: the startup probe allows the whole health timeout (that many failed
/// periods); readiness and liveness run the same check once the container has started.
pub fn probes(health: &Health) -> (Value, Value) {
    let mut probe = match &health.probe {
        Probe::Http { path, port } => json!({ "httpGet": { "path": path, "port": port } }),
        Probe::Tcp { port } => json!({ "tcpSocket": { "port": port } }),
        Probe::Exec { command } => json!({ "exec": { "command": ["sh", "-c", command] } }),
    };
    probe["periodSeconds"] = json!(PROBE_PERIOD_SECONDS);
    let mut startup = probe.clone();
    startup["failureThreshold"] = json!(
        health
            .timeout
            .as_secs()
            .div_ceil(PROBE_PERIOD_SECONDS)
            .max(1)
    );
    (startup, probe)
}

/// The labels that select a deployment's pods.
pub fn selector(deployment: &Deployment) -> Value {
    json!({ "app.kubernetes.io/name": deployment.name })
}

/// The `apps/v1 Deployment` and (when it publishes ports) the `v1 Service` of `deployment`,
/// running `image`, with `labels` and `annotations` on both.
pub fn documents(
    deployment: &Deployment,
    image: &str,
    namespace: &str,
    replicas: u32,
    labels: &Value,
    annotations: &Value,
) -> (Value, Option<Value>) {
    let mut container = json!({ "name": deployment.name, "image": image });
    if !deployment.ports.is_empty() {
        let mut seen = std::collections::BTreeSet::new();
        let ports: Vec<Value> = deployment
            .ports
            .iter()
            .filter(|p| seen.insert(p.container_port))
            .map(|p| json!({ "containerPort": p.container_port, "protocol": "TCP" }))
            .collect();
        container["ports"] = json!(ports);
    }
    if !deployment.env.is_empty() {
        let env: Vec<Value> = deployment
            .env
            .iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect();
        container["env"] = json!(env);
    }
    if let Some(health) = &deployment.health {
        let (startup, mut probe) = probes(health);
        probe["failureThreshold"] = json!(3);
        container["startupProbe"] = startup;
        container["readinessProbe"] = probe.clone();
        container["livenessProbe"] = probe;
    }
    let d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment.name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": selector(deployment) },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "terminationGracePeriodSeconds": deployment.stop_grace.as_secs(),
                    "containers": [container],
                },
            },
        },
    });
    if deployment.ports.is_empty() {
        return (d, None);
    }
    let mut seen = std::collections::BTreeSet::new();
    let ports: Vec<Value> = deployment
        .ports
        .iter()
        .filter(|p| seen.insert(p.host_port))
        .map(|p| {
            json!({
                "name": format!("port-{}", p.host_port),
                "port": p.host_port,
                "targetPort": p.container_port,
                "protocol": "TCP",
            })
        })
        .collect();
    let s = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": deployment.name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": { "selector": selector(deployment), "ports": ports },
    });
    (d, Some(s))
}

/// A Kubernetes hand-over for one deployment.
#[derive(Debug, Clone)]
pub struct Kubernetes {
    /// The deployment.
    pub deployment: Deployment,
    /// Its target.
    pub target: KubernetesTarget,
    /// The deploy file's owner, put on the documents as an annotation.
    pub owner: Option<String>,
}

/// What the rollout status says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Not there yet, in words (`1 of 2 updated replicas are available`).
    Waiting(String),
    /// Every replica runs the new template and is available.
    Complete,
    /// The deployment exceeded its progress deadline.
    Failed(String),
}

/// Judge a Deployment's status as `kubectl rollout status` does.
pub fn rollout_status(d: &KubeDeployment) -> Rollout {
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = &d.status else {
        return Rollout::Waiting("no status yet".into());
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Waiting("waiting for the rollout to be observed".into());
    }
    if let Some(c) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return Rollout::Failed(format!(
            "deployment {} exceeded its progress deadline{}",
            d.metadata.name.as_deref().unwrap_or_default(),
            c.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        Rollout::Waiting(format!("{updated} of {want} new replicas updated"))
    } else if replicas > updated {
        Rollout::Waiting(format!(
            "{} old replicas pending termination",
            replicas - updated
        ))
    } else if available < updated {
        Rollout::Waiting(format!(
            "{available} of {updated} updated replicas available"
        ))
    } else {
        Rollout::Complete
    }
}

impl Kubernetes {
    fn fail(
        &self,
        action: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> DeployError {
        DeployError::Kubernetes {
            deployment: self.deployment.name.clone(),
            action: action.to_string(),
            source: Box::new(source),
        }
    }

    fn runtime(&self) -> Result<tokio::runtime::Runtime, DeployError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| self.fail("start its client", e))
    }

    async fn client(&self) -> Result<kube::Client, DeployError> {
        let options = kube::config::KubeConfigOptions {
            context: self.target.context.clone(),
            ..Default::default()
        };
        let config = match &self.target.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| self.fail("read the kubeconfig", e))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            None => kube::Config::from_kubeconfig(&options).await,
        }
        .map_err(|e| self.fail("read the kubeconfig", e))?;
        kube::Client::try_from(config).map_err(|e| self.fail("connect", e))
    }

    fn deployments(&self, client: kube::Client) -> Api<KubeDeployment> {
        Api::namespaced(client, &self.target.namespace)
    }

    fn labels(&self) -> Value {
        json!({
            "app.kubernetes.io/name": self.deployment.name,
            "app.kubernetes.io/managed-by": FIELD_MANAGER,
        })
    }

    /// The container image the cluster's Deployment names, if it exists.
    async fn image_now(&self, client: kube::Client) -> Result<Option<String>, DeployError> {
        let d = self
            .deployments(client)
            .get_opt(&self.deployment.name)
            .await
            .map_err(|e| self.fail("read its Deployment", e))?;
        Ok(d.and_then(|d| {
            d.spec?
                .template
                .spec?
                .containers
                .into_iter()
                .find(|c| c.name == self.deployment.name)?
                .image
        }))
    }

    async fn apply_async(&self, digest: &str, change: &Change<'_>) -> Result<Applied, DeployError> {
        let client = self.client().await?;
        let image = format!("{}@{digest}", self.target.repository);
        let mut annotations = json!({ "strata.dev/deployment": change.deployment });
        if let Some(c) = change.cause {
            annotations["strata.dev/cause"] = json!(c);
        }
        if let Some(o) = &self.owner {
            annotations["strata.dev/deploy-owner"] = json!(o);
        }
        let (deployment, service) = documents(
            &self.deployment,
            &image,
            &self.target.namespace,
            self.target.replicas,
            &self.labels(),
            &annotations,
        );
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let api = self.deployments(client.clone());
        let before = api
            .get_opt(&self.deployment.name)
            .await
            .map_err(|e| self.fail("read its Deployment", e))?
            .and_then(|d| d.metadata.generation);
        let applied = api
            .patch(&self.deployment.name, &params, &Patch::Apply(&deployment))
            .await
            .map_err(|e| self.fail("apply its Deployment", e))?;
        if let Some(service) = service {
            Api::<Service>::namespaced(client.clone(), &self.target.namespace)
                .patch(&self.deployment.name, &params, &Patch::Apply(&service))
                .await
                .map_err(|e| self.fail("apply its Service", e))?;
        }
        let generation = applied.metadata.generation.unwrap_or(0);
        let deadline = applied
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE);
        let give_up = Instant::now() + Duration::from_secs(deadline + 60);
        let mut seen = applied;
        loop {
            match rollout_status(&seen) {
                Rollout::Complete => break,
                Rollout::Failed(reason) => return Ok(Applied::Failed { reason }),
                Rollout::Waiting(what) => {
                    if Instant::now() > give_up {
                        return Ok(Applied::Failed {
                            reason: format!(
                                "no rollout progress reported within {}s ({what})",
                                deadline + 60
                            ),
                        });
                    }
                    tracing::info!("{}: {what}", self.deployment.name);
                }
            }
            tokio::time::sleep(self.target.poll).await;
            seen = api
                .get(&self.deployment.name)
                .await
                .map_err(|e| self.fail("read its rollout status", e))?;
        }
        Ok(Applied::Done {
            at: format!(
                "{}, deployment {} generation {generation}",
                self.place(),
                self.deployment.name
            ),
            changed: before != Some(generation),
        })
    }
}

impl Handoff for Kubernetes {
    fn place(&self) -> String {
        format!(
            "cluster {} namespace {}",
            self.target
                .context
                .as_deref()
                .unwrap_or("(current context)"),
            self.target.namespace
        )
    }

    fn current(&self) -> Result<Option<String>, DeployError> {
        self.runtime()?.block_on(async {
            let client = self.client().await?;
            Ok(self
                .image_now(client)
                .await?
                .and_then(|i| i.rsplit_once('@').map(|(_, d)| d.to_string())))
        })
    }

    fn apply(&self, digest: &str, change: &Change<'_>) -> Result<Applied, DeployError> {
        self.runtime()?.block_on(self.apply_async(digest, change))
    }
}

#[cfg(test)]
mod tests {
    //! The apply / rollout / rollback logic against a mock API server that answers as the real one
    //! does ([`strata_testutil::kube_mock`]); each scenario asserts the exact conversation.

    use strata_oci::Store;
    use strata_testutil::kube_mock::MockCluster;

    use crate::reconcile::{Deployer, RollbackTo};
    use crate::state::StateDir;
    use crate::target::Podman;
    use crate::{Actor, DeployFile};

    struct World {
        dir: tempfile::TempDir,
        store: Store,
        file: DeployFile,
        cluster: MockCluster,
        trust: strata_attest::TrustConfig,
        key: strata_attest::PrivateKey,
    }

    impl World {
        fn new() -> World {
            let dir = tempfile::tempdir().unwrap();
            let cluster = MockCluster::start();
            std::fs::write(dir.path().join("kubeconfig"), cluster.kubeconfig("mock")).unwrap();
            let text = r#"
name = "prod"
owner = "development"
[[deployment]]
name = "web"
image = "acme/web"
target = "kubernetes"
ports = ["80:8080"]
health = { http = "/", port = 8080, timeout = "30s" }
kubernetes = { namespace = "shop", context = "mock", kubeconfig = "kubeconfig", image = "registry.example.com/acme/web", poll = "10ms" }
"#;
            let file = DeployFile::parse(&dir.path().join("deploy.toml"), text).unwrap();
            let key =
                strata_attest::PrivateKey::generate(strata_attest::keys::KeyKind::Ed25519).unwrap();
            let mut trust = strata_attest::TrustConfig::new();
            trust.add_key("development", key.public_key().clone());
            World {
                store: Store::init(dir.path().join("store")).unwrap(),
                dir,
                file,
                cluster,
                trust,
                key,
            }
        }

        fn push(&self) -> String {
            let image = strata_oci::random::image(&self.store, 1, 64).unwrap();
            self.store
                .refs()
                .tag("localhost/acme/web:latest", image.descriptor())
                .unwrap();
            image.digest().to_string()
        }

        fn deployer<'a>(&'a self, podman: &'a Podman) -> Deployer<'a> {
            Deployer {
                file: &self.file,
                store: &self.store,
                states: StateDir::new(self.dir.path(), "prod"),
                target: podman,
                events: None,
                trust: Some(&self.trust),
                client: None,
                upstream: None,
                proxy_program: None,
            }
        }

        /// The requests since the last call.
        fn conversation(&self) -> Vec<String> {
            self.cluster.conversation()
        }

        fn actor(&self) -> Actor {
            let pem = self.key.to_pem(None).unwrap().to_string();
            Actor::prove("development", &self.trust, |v: &str| {
                (v == "STRATA_KEY_DEVELOPMENT").then(|| pem.clone())
            })
            .unwrap()
        }
    }

    const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/web";
    const SERVICE: &str = "/api/v1/namespaces/shop/services/web";
    const APPLY: &str = "?&force=true&fieldManager=strata [application/apply-patch+yaml]";

    fn apply(path: &str, digest: Option<&str>) -> String {
        let mut s = format!("PATCH {path}{APPLY}");
        if let Some(d) = digest {
            s.push_str(&format!(" image=registry.example.com/acme/web@{d}"));
        }
        s
    }

    fn get_deployment() -> String {
        format!("GET {DEPLOYMENT}")
    }

    #[test]
    fn a_rollout_is_applied_server_side_and_followed_until_available() {
        let w = World::new();
        let podman = Podman::default();
        let a = w.push();
        let out = w.deployer(&podman).reconcile(&[]).unwrap().remove(0);
        assert_eq!(out.result, "deployed", "{out:?}");
        assert_eq!(
            w.conversation(),
            [
                get_deployment(), // what runs now: nothing
                get_deployment(), // the generation before the apply
                apply(DEPLOYMENT, Some(&a)),
                apply(SERVICE, None),
                get_deployment(), // not observed yet
                get_deployment(), // observed, 0 of 1 available
                get_deployment(), // complete
            ]
        );
        let obj = w.cluster.object("deployments/shop/web").unwrap();
        assert_eq!(obj["metadata"]["managedFields"][0]["manager"], "strata");
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["httpGet"]["port"],
            8080
        );
        let state = w.deployer(&podman).states.load("web").unwrap();
        let running = state.running.unwrap();
        assert_eq!(running.digest, a);
        assert_eq!(
            running.container,
            "cluster mock namespace shop, deployment web generation 1"
        );
        // Reconciling again: the cluster runs it; nothing is applied.
        let out = w.deployer(&podman).reconcile(&[]).unwrap().remove(0);
        assert_eq!(out.result, "up-to-date");
        assert_eq!(w.conversation(), [get_deployment()]);
    }

    #[test]
    fn a_rollout_stuck_past_its_deadline_is_marked_bad_and_the_previous_digest_reapplied() {
        let w = World::new();
        let podman = Podman::default();
        let good = w.push();
        w.deployer(&podman).reconcile(&[]).unwrap();
        w.conversation();
        let bad = w.push();
        w.cluster.mark_bad(&bad);
        let out = w.deployer(&podman).reconcile(&[]).unwrap().remove(0);
        assert_eq!(out.result, "rolled-back", "{out:?}");
        assert!(
            out.message.contains("exceeded its progress deadline"),
            "{}",
            out.message
        );
        assert_eq!(
            w.conversation(),
            [
                get_deployment(),
                get_deployment(),
                apply(DEPLOYMENT, Some(&bad)),
                apply(SERVICE, None),
                get_deployment(), // generation 2 not observed yet
                get_deployment(), // observed, the new pod never available
                get_deployment(), // Progressing: ProgressDeadlineExceeded
                // the rollback: the previous digest applied again, followed to the end
                get_deployment(),
                apply(DEPLOYMENT, Some(&good)),
                apply(SERVICE, None),
                get_deployment(),
                get_deployment(),
                get_deployment(),
            ]
        );
        let state = w.deployer(&podman).states.load("web").unwrap();
        assert!(state.bad.contains(&bad));
        assert_eq!(state.running.unwrap().digest, good);
        let h: Vec<(&str, &str)> = state
            .history
            .iter()
            .map(|r| (r.action.as_str(), r.result.as_str()))
            .collect();
        assert_eq!(
            h,
            [("deploy", "ok"), ("deploy", "failed"), ("rollback", "ok")]
        );
        // The bad digest is not applied again.
        let out = w.deployer(&podman).reconcile(&[]).unwrap().remove(0);
        assert_eq!(out.result, "known-bad");
        assert_eq!(w.conversation(), [get_deployment()]);
    }

    #[test]
    fn an_image_changed_in_the_cluster_by_hand_is_applied_back() {
        let w = World::new();
        let podman = Podman::default();
        let a = w.push();
        w.deployer(&podman).reconcile(&[]).unwrap();
        w.cluster.set_image(
            "deployments/shop/web",
            "registry.example.com/acme/web:latest",
        );
        w.conversation();
        let out = w.deployer(&podman).reconcile(&[]).unwrap().remove(0);
        assert_eq!(out.result, "deployed", "{out:?}");
        let talk = w.conversation();
        assert_eq!(
            talk.iter()
                .filter(|r| r.starts_with("PATCH"))
                .cloned()
                .collect::<Vec<_>>(),
            [apply(DEPLOYMENT, Some(&a)), apply(SERVICE, None)]
        );
        let obj = w.cluster.object("deployments/shop/web").unwrap();
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("registry.example.com/acme/web@{a}")
        );
        assert_eq!(obj["metadata"]["generation"], 3);
    }

    #[test]
    fn a_manual_rollback_reapplies_the_previous_digest_and_holds_it() {
        let w = World::new();
        let podman = Podman::default();
        let first = w.push();
        w.deployer(&podman).reconcile(&[]).unwrap();
        let second = w.push();
        w.deployer(&podman).reconcile(&[]).unwrap();
        w.conversation();
        let out = w
            .deployer(&podman)
            .rollback("web", &RollbackTo::Previous, &w.actor())
            .unwrap();
        assert_eq!(out.result, "deployed", "{out:?}");
        let talk = w.conversation();
        assert_eq!(
            talk.iter()
                .filter(|r| r.starts_with("PATCH"))
                .cloned()
                .collect::<Vec<_>>(),
            [apply(DEPLOYMENT, Some(&first)), apply(SERVICE, None)]
        );
        w.push();
        let out = w.deployer(&podman).reconcile(&[]).unwrap().remove(0);
        assert_eq!(out.result, "held");
        assert_eq!(w.conversation(), [get_deployment()]);
        let state = w.deployer(&podman).states.load("web").unwrap();
        assert_eq!(state.running.unwrap().digest, first);
        assert_ne!(first, second);
    }
}
