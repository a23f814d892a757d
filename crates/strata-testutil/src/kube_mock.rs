//! A mock Kubernetes API server on 127.0.0.1 that answers as the real one does, for the tests of
//! `strata deploy`'s kubernetes target: server-side apply (`PATCH` with
//! `application/apply-patch+yaml` and a `fieldManager`, else 415 / 400 as the API server answers),
//! managedFields, `generation` bumped only when the spec changes, bearer-token authentication,
//! `NotFound` Status objects, and a Deployment controller scripted per digest: a good digest is
//! observed, updated, then available; a digest marked bad is observed and then exceeds its
//! progress deadline (`Progressing` False, reason `ProgressDeadlineExceeded`). Every request is
//! recorded (`METHOD PATH?QUERY [content type] image=...`) so a test asserts the conversation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The bearer token the mock accepts.
pub const TOKEN: &str = "t0ken";

#[derive(Default)]
struct Cluster {
    objects: BTreeMap<String, Value>,
    /// GETs of each Deployment since its generation changed: the controller's progress.
    progress: BTreeMap<String, u32>,
    bad: BTreeSet<String>,
    requests: Vec<String>,
    version: u64,
}

type Shared = Arc<Mutex<Cluster>>;

fn status_error(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn image_of(obj: &Value) -> Option<String> {
    obj.pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The Deployment controller, one step per read.
fn control(c: &mut Cluster, key: &str) {
    let step = {
        let p = c.progress.entry(key.to_string()).or_insert(0);
        *p += 1;
        *p
    };
    let obj = c.objects.get_mut(key).expect("exists");
    let generation = obj["metadata"]["generation"].as_i64().unwrap();
    let bad = image_of(obj)
        .and_then(|i| i.rsplit_once('@').map(|(_, d)| d.to_string()))
        .is_some_and(|d| c.bad.contains(&d));
    let first = generation == 1;
    let status = match (step, bad) {
        (1, _) if first => Value::Null,
        (1, _) => {
            let mut s = obj["status"].clone();
            s["observedGeneration"] = json!(generation - 1);
            s
        }
        (2, _) => json!({
            "observedGeneration": generation,
            "replicas": if first { 1 } else { 2 },
            "updatedReplicas": 1,
            "availableReplicas": if first || bad { 0 } else { 1 },
            "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}],
        }),
        (_, false) => json!({
            "observedGeneration": generation,
            "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }),
        (_, true) => json!({
            "observedGeneration": generation,
            "replicas": if first { 1 } else { 2 }, "updatedReplicas": 1,
            "availableReplicas": if first { 0 } else { 1 }, "unavailableReplicas": 1,
            "conditions": [{
                "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": format!("ReplicaSet \"{}\" has timed out progressing.", obj["metadata"]["name"].as_str().unwrap()),
            }],
        }),
    };
    obj["status"] = status;
}

async fn handle(
    State(cluster): State<Shared>,
    method: Method,
    uri: Uri,
    UrlPath((ns, kind, name)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut c = cluster.lock().unwrap();
    let path = uri.path().to_string();
    let query = query.unwrap_or_default();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let key = format!("{kind}/{ns}/{name}");
    let mut line = format!("{method} {path}");
    if !query.is_empty() {
        line.push_str(&format!("?{query}"));
    }
    if method == Method::PATCH {
        line.push_str(&format!(" [{content_type}]"));
    }
    // The kubeconfig's user, as the real server authenticates it.
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(format!("Bearer {TOKEN}").as_str())
    {
        c.requests.push(format!("{line} (unauthorized)"));
        return status_error(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    if method == Method::GET {
        c.requests.push(line);
        if !c.objects.contains_key(&key) {
            return status_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{kind}.apps \"{name}\" not found"),
            );
        }
        if kind == "deployments" {
            control(&mut c, &key);
        }
        return json_response(StatusCode::OK, &c.objects[&key]);
    }
    // Server-side apply.
    if content_type != "application/apply-patch+yaml" {
        return status_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "",
        );
    }
    let params: BTreeMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let Some(manager) = params.get("fieldManager").cloned() else {
        return status_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        );
    };
    let Ok(mut applied) = serde_json::from_slice::<Value>(&body) else {
        return status_error(StatusCode::BAD_REQUEST, "BadRequest", "not YAML");
    };
    if let Some(image) = image_of(&applied) {
        line.push_str(&format!(" image={image}"));
    }
    c.requests.push(line);
    c.version += 1;
    let version = c.version.to_string();
    // The API server's defaulting, before the spec is compared: a re-apply of the same
    // document is no spec change.
    if kind == "deployments" && applied["spec"]["progressDeadlineSeconds"].is_null() {
        applied["spec"]["progressDeadlineSeconds"] = json!(600);
    }
    let old = c.objects.get(&key).cloned();
    let generation = match &old {
        None => 1,
        Some(o) if o["spec"] == applied["spec"] => {
            o["metadata"]["generation"].as_i64().unwrap_or(1)
        }
        Some(o) => o["metadata"]["generation"].as_i64().unwrap_or(1) + 1,
    };
    if kind == "deployments"
        && old
            .as_ref()
            .is_none_or(|o| o["metadata"]["generation"] != json!(generation))
    {
        c.progress.insert(key.clone(), 0);
    }
    let api_version = applied["apiVersion"].clone();
    let meta = &mut applied["metadata"];
    meta["uid"] = old.as_ref().map_or(json!(format!("uid-{key}")), |o| {
        o["metadata"]["uid"].clone()
    });
    meta["resourceVersion"] = json!(version);
    if kind == "deployments" {
        meta["generation"] = json!(generation);
    }
    meta["creationTimestamp"] = json!("2026-12-06T00:00:00Z");
    meta["managedFields"] = json!([{
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": "2026-12-06T00:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {}, "f:metadata": {"f:labels": {}, "f:annotations": {}}},
    }]);
    if let Some(o) = &old {
        applied["status"] = o["status"].clone();
    }
    c.objects.insert(key, applied.clone());
    let code = if old.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    json_response(code, &applied)
}

/// Serve `cluster` on 127.0.0.1; its address.
fn serve(cluster: Shared) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route(
            "/apis/apps/v1/namespaces/{ns}/{kind}/{name}",
            get(handle).patch(handle),
        )
        .route(
            "/api/v1/namespaces/{ns}/{kind}/{name}",
            get(handle).patch(handle),
        )
        .with_state(cluster);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

/// A running mock API server (it lives as long as the test process).
#[derive(Clone)]
pub struct MockCluster {
    cluster: Shared,
    /// Its address: `http://127.0.0.1:PORT`.
    pub server: String,
}

impl MockCluster {
    /// Start one.
    pub fn start() -> MockCluster {
        let cluster: Shared = Arc::default();
        let server = serve(cluster.clone());
        MockCluster { cluster, server }
    }

    /// A kubeconfig whose context `context` reaches it with the token (its current context is
    /// another one, so a client must honour the context it is given).
    pub fn kubeconfig(&self, context: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: {}\n\
             users:\n- name: deployer\n  user:\n    token: {TOKEN}\ncontexts:\n- name: {context}\n  \
             context:\n    cluster: mock\n    user: deployer\ncurrent-context: elsewhere\n",
            self.server
        )
    }

    /// Make rollouts of `digest` exceed their progress deadline.
    pub fn mark_bad(&self, digest: &str) {
        self.cluster.lock().unwrap().bad.insert(digest.to_string());
    }

    /// The requests since the last call, oldest first.
    pub fn conversation(&self) -> Vec<String> {
        std::mem::take(&mut self.cluster.lock().unwrap().requests)
    }

    /// Change a Deployment's container image as `kubectl set image` does (a spec change: its
    /// generation moves), bypassing strata.
    pub fn set_image(&self, key: &str, image: &str) {
        let mut c = self.cluster.lock().unwrap();
        let obj = c.objects.get_mut(key).expect("the object exists");
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        obj["metadata"]["generation"] = json!(generation);
        c.progress.insert(key.to_string(), 0);
    }

    /// An object as stored: `deployments/NS/NAME`, `services/NS/NAME`.
    pub fn object(&self, key: &str) -> Option<Value> {
        self.cluster.lock().unwrap().objects.get(key).cloned()
    }
}
