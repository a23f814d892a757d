//! A blocking registry client: references, credentials, the bearer-token dance, manifests,
//! blobs (chunked, resumable, mounted) and the referrers API.
//!
//! Credentials come from [`ClientOptions::credentials`] (`--creds user:pass`), else from
//! `~/.docker/config.json` and its credential helpers (the `docker_credential` crate), then
//! podman's `auth.json`, asked only when a registry challenges. HTTPS is verified against the
//! public roots or [`ClientOptions::ca_certs`]; loopback registries (`localhost`, `127.0.0.1`,
//! `::1`) are probed for HTTPS and otherwise spoken to over plain HTTP, as is every registry with
//! [`ClientOptions::insecure`]. Requests that fail with a temporary error
//! ([`RegistryError::is_temporary`]) are retried with backoff.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use strata_oci::{Descriptor, Digest};
use ureq::http::Response;

use crate::auth::{Credentials, basic_header};
use crate::error::{ErrorCode, RegistryError, Result};
use crate::media;

/// Options of [`Client::new`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Credentials for every registry; None: look them up in the Docker config.
    pub credentials: Option<Credentials>,
    /// Use plain HTTP for every registry (it is always used for loopback hosts).
    pub insecure: bool,
    /// Blobs larger than this are uploaded in chunks of this size (PATCH); smaller ones in one PUT.
    pub chunk_size: u64,
    /// How many times a request failing with a temporary error is retried.
    pub retries: u32,
    /// Read credentials from `~/.docker/config.json` and credential helpers.
    pub docker_config: bool,
    /// PEM files of the CAs to trust for HTTPS instead of the public web PKI roots (for a
    /// registry with a private CA or a self-signed certificate).
    pub ca_certs: Vec<std::path::PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            credentials: None,
            insecure: false,
            chunk_size: 64 << 20,
            retries: 3,
            docker_config: true,
            ca_certs: Vec::new(),
        }
    }
}

impl ClientOptions {
    /// Check the options (go-containerregistry style: refuse bad values up front).
    pub fn validate(&self) -> Result<()> {
        if self.chunk_size == 0 {
            return Err(RegistryError::Invalid(
                "chunk size must be greater than zero".into(),
            ));
        }
        Ok(())
    }
}

/// A repository on a registry, with a tag or digest: `host[:port]/name[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    /// The registry host as written (`127.0.0.1:5000`, `docker.io`).
    pub registry: String,
    /// The repository (`acme/corebuild`).
    pub repository: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The digest, if any.
    pub digest: Option<Digest>,
}

impl RemoteRef {
    /// Parse a reference that names its registry (`[docker://]host[:port]/name[:tag][@digest]`)
    /// by strata's one grammar (`strata_reference`): `docker.io/busybox` is
    /// `docker.io/library/busybox`, and a reference with neither tag nor digest is at `latest`.
    pub fn parse(input: &str) -> Result<RemoteRef> {
        let input = input.strip_prefix("docker://").unwrap_or(input);
        let parsed = strata_reference::parse(input).map_err(|source| RegistryError::Reference {
            input: input.to_string(),
            source,
        })?;
        let Some(registry) = parsed.domain() else {
            return Err(RegistryError::Invalid(format!(
                "{input:?} names no registry: write HOST[:PORT]/NAME[:TAG]"
            )));
        };
        let digest = parsed
            .digest()
            .map(str::parse::<Digest>)
            .transpose()
            .map_err(|e| {
                RegistryError::Invalid(format!("invalid image reference {input:?}: {e}"))
            })?;
        let tag = match (parsed.tag(), &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(RemoteRef {
            registry: registry.to_string(),
            repository: parsed.path().to_string(),
            tag,
            digest,
        })
    }

    /// The same repository at another tag or digest.
    pub fn with_reference(&self, reference: &str) -> RemoteRef {
        let mut r = self.clone();
        match reference.parse::<Digest>() {
            Ok(d) => {
                r.tag = None;
                r.digest = Some(d);
            }
            Err(_) => {
                r.tag = Some(reference.to_string());
                r.digest = None;
            }
        }
        r
    }

    /// The digest if there is one, else the tag (`latest` when neither).
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }
}

impl std::fmt::Display for RemoteRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// How a registry wants to be authenticated (from its `/v2/` challenge).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Challenge {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// A blocking registry client. Share one per process: it caches tokens and challenges.
pub struct Client {
    agent: ureq::Agent,
    options: ClientOptions,
    challenges: Mutex<HashMap<String, Challenge>>,
    /// The scheme found for loopback registries.
    schemes: Mutex<HashMap<String, &'static str>>,
    /// Authorization header per (registry, scope).
    tokens: Mutex<HashMap<(String, String), String>>,
}

/// A manifest fetched from a registry.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// Its bytes, as served (digest checked).
    pub bytes: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
}

/// Where a blob push ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobPush {
    /// The registry had it already.
    Present,
    /// The registry mounted it from another repository.
    Mounted,
    /// It was uploaded.
    Uploaded,
}

/// Reopens a blob's content from an offset (for retries and resumed uploads).
pub trait BlobSource {
    /// The content from byte `offset` on.
    fn open_at(&self, offset: u64) -> Result<Box<dyn Read + '_>>;
}

fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map(|(h, _)| h)
        .unwrap_or_else(|| host.rsplit_once(':').map_or(host, |(h, _)| h));
    matches!(bare, "localhost" | "127.0.0.1" | "::1") || bare.starts_with("127.")
}

fn api_host(registry: &str) -> &str {
    if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    }
}

fn www_authenticate_params(value: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = value;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_lowercase();
        let after = &rest[eq + 1..];
        let (val, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, val.to_string());
        rest = next;
    }
    params
}

type HttpResponse = Response<ureq::Body>;

/// Read a JSON body (at most 4 MiB).
fn read_json<T: serde::de::DeserializeOwned>(response: &mut HttpResponse, what: &str) -> Result<T> {
    let bytes = response
        .body_mut()
        .with_config()
        .limit(4 << 20)
        .read_to_vec()
        .map_err(|source| RegistryError::Transport {
            what: what.to_string(),
            source: Box::new(source),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
        what: what.to_string(),
        reason: format!("invalid JSON: {e}"),
    })
}

impl Client {
    /// A client with these options.
    pub fn new(options: ClientOptions) -> Result<Client> {
        options.validate()?;
        let mut tls = ureq::tls::TlsConfig::builder();
        if !options.ca_certs.is_empty() {
            let mut roots = Vec::new();
            for path in &options.ca_certs {
                let pem = std::fs::read(path).map_err(|source| RegistryError::Io {
                    path: path.clone(),
                    source,
                })?;
                for item in ureq::tls::parse_pem(&pem) {
                    match item {
                        Ok(ureq::tls::PemItem::Certificate(cert)) => roots.push(cert),
                        Ok(_) => {}
                        Err(e) => {
                            return Err(RegistryError::Invalid(format!(
                                "{}: invalid PEM: {e}",
                                path.display()
                            )));
                        }
                    }
                }
            }
            if roots.is_empty() {
                return Err(RegistryError::Invalid(format!(
                    "no certificate in {}",
                    options
                        .ca_certs
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
        }
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .max_idle_connections_per_host(16)
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            options,
            challenges: Mutex::new(HashMap::new()),
            schemes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// `http(s)://host` for a registry.
    ///
    /// HTTPS, except with [`ClientOptions::insecure`], and for loopback hosts, which are probed
    /// once (HTTPS first, as Docker does) and otherwise spoken to over HTTP.
    pub fn base_url(&self, registry: &str) -> String {
        let probed = self
            .schemes
            .lock()
            .ok()
            .and_then(|s| s.get(registry).copied());
        let scheme = match probed {
            Some(scheme) => scheme,
            None if self.options.insecure || is_loopback(registry) => "http",
            None => "https",
        };
        format!("{scheme}://{}", api_host(registry))
    }

    /// The base URL, after probing a loopback registry's scheme.
    fn url(&self, registry: &str) -> String {
        self.probe_scheme(registry);
        self.base_url(registry)
    }

    /// For a loopback registry, find out once whether it speaks HTTPS.
    fn probe_scheme(&self, registry: &str) {
        if self.options.insecure || !is_loopback(registry) {
            return;
        }
        if self
            .schemes
            .lock()
            .map(|s| s.contains_key(registry))
            .unwrap_or(true)
        {
            return;
        }
        let https = format!("https://{}/v2/", api_host(registry));
        let probe = self
            .agent
            .get(&https)
            .config()
            .timeout_global(Some(Duration::from_secs(5)))
            .build();
        let scheme = match probe.call() {
            Ok(_) => "https",
            Err(e) => {
                tracing::debug!(registry, error = %strata_oci::report(&e), "no HTTPS on a loopback registry; using HTTP");
                "http"
            }
        };
        if let Ok(mut schemes) = self.schemes.lock() {
            schemes.insert(registry.to_string(), scheme);
        }
    }

    fn credentials(&self, registry: &str) -> Option<Credentials> {
        if let Some(c) = &self.options.credentials {
            return Some(c.clone());
        }
        if !self.options.docker_config {
            return None;
        }
        let keys = if registry == "docker.io" {
            vec![
                "https://index.docker.io/v1/".to_string(),
                "docker.io".to_string(),
            ]
        } else {
            vec![registry.to_string()]
        };
        for key in keys {
            match docker_credential::get_credential(&key) {
                Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
                    return Some(Credentials::Basic { user, password });
                }
                Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
                    return Some(Credentials::Token(token));
                }
                Err(e) => {
                    tracing::debug!(registry = key, error = %strata_oci::report(&e), "no docker credentials")
                }
            }
        }
        // podman's and skopeo's auth.json (`podman login`), when Docker has nothing.
        match docker_credential::get_podman_credential(registry) {
            Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
                Some(Credentials::Basic { user, password })
            }
            Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
                Some(Credentials::Token(token))
            }
            Err(_) => None,
        }
    }

    fn transport(what: &str) -> impl FnOnce(ureq::Error) -> RegistryError + '_ {
        move |source| RegistryError::Transport {
            what: what.to_string(),
            source: Box::new(source),
        }
    }

    /// Turn an error status into a [`RegistryError::Api`], reading the spec's error body.
    fn api_error(what: &str, mut response: HttpResponse) -> RegistryError {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let (code, message) = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let first = v.get("errors")?.get(0)?.clone();
                Some((
                    first.get("code")?.as_str().map(ErrorCode::parse),
                    first
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or_default()
                        .to_string(),
                ))
            })
            .unwrap_or((None, body.chars().take(200).collect()));
        RegistryError::Api {
            what: Some(what.to_string()),
            status,
            code,
            message,
        }
    }

    fn challenge(&self, registry: &str) -> Result<Challenge> {
        if let Some(c) = self
            .challenges
            .lock()
            .ok()
            .and_then(|c| c.get(registry).cloned())
        {
            return Ok(c);
        }
        self.probe_scheme(registry);
        let url = format!("{}/v2/", self.url(registry));
        let what = format!("GET {url}");
        // Not retried here: callers run inside `send`'s retries (or `ping`'s), and retrying at both
        // levels multiplied the attempts against a registry that is down.
        let response = self
            .agent
            .get(&url)
            .call()
            .map_err(Self::transport(&what))?;
        let challenge = match response.status().as_u16() {
            200..=299 => Challenge::None,
            401 => {
                let header = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if header.to_lowercase().starts_with("bearer") {
                    let params = www_authenticate_params(&header["bearer".len()..]);
                    Challenge::Bearer {
                        realm: params.get("realm").cloned().ok_or_else(|| {
                            RegistryError::Protocol {
                                what: what.clone(),
                                reason: format!("bearer challenge without realm: {header}"),
                            }
                        })?,
                        service: params.get("service").cloned(),
                    }
                } else {
                    Challenge::Basic
                }
            }
            _ => return Err(Self::api_error(&what, response)),
        };
        if let Ok(mut c) = self.challenges.lock() {
            c.insert(registry.to_string(), challenge.clone());
        }
        Ok(challenge)
    }

    /// The Authorization header for `scope` on `registry` (None: anonymous access).
    fn authorization(&self, registry: &str, scope: &str, refresh: bool) -> Result<Option<String>> {
        let key = (registry.to_string(), scope.to_string());
        if !refresh && let Some(h) = self.tokens.lock().ok().and_then(|t| t.get(&key).cloned()) {
            return Ok(Some(h));
        }
        let header = match self.challenge(registry)? {
            Challenge::None => None,
            Challenge::Basic => match self.credentials(registry) {
                Some(Credentials::Basic { user, password }) => Some(basic_header(&user, &password)),
                Some(Credentials::Token(t)) => Some(format!("Bearer {t}")),
                None => None,
            },
            Challenge::Bearer { realm, service } => {
                let what = format!("GET {realm}");
                let mut request = self.agent.get(&realm).query("scope", scope);
                if let Some(service) = &service {
                    request = request.query("service", service);
                }
                let credentials = self.credentials(registry);
                match &credentials {
                    Some(Credentials::Basic { user, password }) => {
                        request = request
                            .header("authorization", basic_header(user, password))
                            .query("account", user);
                    }
                    Some(Credentials::Token(t)) => {
                        request = request.header("authorization", format!("Bearer {t}"));
                    }
                    None => {}
                }
                let mut response = request.call().map_err(Self::transport(&what))?;
                if !response.status().is_success() {
                    return Err(Self::api_error(&what, response));
                }
                let value: serde_json::Value = read_json(&mut response, &what)?;
                let token = value
                    .get("token")
                    .or_else(|| value.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| RegistryError::Protocol {
                        what,
                        reason: "the token answer has no token".into(),
                    })?;
                Some(format!("Bearer {token}"))
            }
        };
        if let (Some(h), Ok(mut tokens)) = (&header, self.tokens.lock()) {
            tokens.insert(key, h.clone());
        }
        Ok(header)
    }

    fn with_retries<T>(&self, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f() {
                Err(e) if e.is_temporary() && attempt < self.options.retries => {
                    attempt += 1;
                    tracing::warn!(error = %strata_oci::report(&e), attempt, "temporary failure, retrying");
                    std::thread::sleep(Duration::from_millis(200 * (1 << attempt)));
                }
                other => return other,
            }
        }
    }

    /// Send a request built by `build` with auth for `scope`; on 401 refresh the token once.
    /// Error statuses are returned as responses (the caller decides).
    fn send(
        &self,
        registry: &str,
        scope: &str,
        what: &str,
        build: &dyn Fn(Option<&str>) -> std::result::Result<HttpResponse, ureq::Error>,
    ) -> Result<HttpResponse> {
        self.with_retries(|| {
            let auth = self.authorization(registry, scope, false)?;
            let response = build(auth.as_deref()).map_err(Self::transport(what))?;
            if response.status().as_u16() == 401 {
                let auth = self.authorization(registry, scope, true)?;
                return build(auth.as_deref()).map_err(Self::transport(what));
            }
            let status = response.status().as_u16();
            if matches!(status, 408 | 429 | 500 | 502 | 503 | 504) {
                return Err(Self::api_error(what, response));
            }
            Ok(response)
        })
    }

    fn scope(repository: &str, push: bool) -> String {
        format!(
            "repository:{repository}:{}",
            if push { "pull,push" } else { "pull" }
        )
    }

    /// Send a request without a body to `r`'s repository with pull scope: `request` builds it
    /// afresh for each try, and the credentials the registry asks for are added to it.
    fn read(
        &self,
        r: &RemoteRef,
        what: &str,
        request: &dyn Fn() -> ureq::RequestBuilder<ureq::typestate::WithoutBody>,
    ) -> Result<HttpResponse> {
        self.send(
            &r.registry,
            &Self::scope(&r.repository, false),
            what,
            &|auth| with_auth(request(), auth).call(),
        )
    }

    /// Check that the registry answers (and that credentials, when asked for, work).
    pub fn ping(&self, registry: &str) -> Result<()> {
        self.with_retries(|| self.challenge(registry)).map(|_| ())
    }

    /// The URL of `path` (`manifests/<ref>`, `blobs/<digest>`, ...) in `r`'s repository.
    fn api_url(&self, r: &RemoteRef, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.url(&r.registry), r.repository)
    }

    /// Fetch a manifest by tag or digest; its digest is checked when the reference has one.
    pub fn get_manifest(&self, r: &RemoteRef) -> Result<Manifest> {
        let url = self.api_url(r, &format!("manifests/{}", r.reference()));
        let what = format!("GET {url}");
        let mut response = self.read(r, &what, &|| {
            self.agent.get(&url).header("accept", media::ACCEPT)
        })?;
        if !response.status().is_success() {
            return Err(Self::api_error(&what, response));
        }
        let header_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let bytes = response
            .body_mut()
            .with_config()
            .limit(8 << 20)
            .read_to_vec()
            .map_err(Self::transport(&what))?;
        // Checked under the algorithm the reference names (sha256 or sha512).
        let digest = match &r.digest {
            Some(want) => Digest::of_with(want.algorithm(), &bytes),
            None => Digest::of(&bytes),
        };
        if let Some(want) = &r.digest
            && *want != digest
        {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: want.to_string(),
                actual: digest.to_string(),
            });
        }
        let media_type = media::media_type_of(&bytes)
            .filter(|_| {
                // The body's own mediaType wins; the inferred one only when the header is unusable.
                header_type
                    .as_deref()
                    .is_none_or(|h| !media::is_manifest_type(h))
                    || serde_json::from_slice::<serde_json::Value>(&bytes)
                        .ok()
                        .is_some_and(|v| v.get("mediaType").is_some())
            })
            .or(header_type)
            .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Fetch a plain web resource that is not a registry API (a lookaside signature store's
    /// `signature-N`): its bytes (at most `limit`), or None on 404. No credentials are sent.
    pub fn get_plain(&self, url: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let what = format!("GET {url}");
        let mut response =
            self.with_retries(|| self.agent.get(url).call().map_err(Self::transport(&what)))?;
        match response.status().as_u16() {
            200 => Ok(Some(
                response
                    .body_mut()
                    .with_config()
                    .limit(limit)
                    .read_to_vec()
                    .map_err(Self::transport(&what))?,
            )),
            404 => Ok(None),
            _ => Err(Self::api_error(&what, response)),
        }
    }

    /// HEAD a manifest: its digest, or None when the registry does not have it.
    pub fn head_manifest(&self, r: &RemoteRef) -> Result<Option<Digest>> {
        let url = self.api_url(r, &format!("manifests/{}", r.reference()));
        let what = format!("HEAD {url}");
        let response = self.read(r, &what, &|| {
            self.agent.head(&url).header("accept", media::ACCEPT)
        })?;
        match response.status().as_u16() {
            200..=299 => Ok(response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            404 => Ok(None),
            _ => Err(Self::api_error(&what, response)),
        }
    }

    /// Upload a manifest under `r`'s tag (or digest). Returns its digest and whether the
    /// registry answered with `OCI-Subject` (it processed the subject: it has a referrers API).
    pub fn put_manifest(
        &self,
        r: &RemoteRef,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(Digest, bool)> {
        let url = self.api_url(r, &format!("manifests/{}", r.reference()));
        let what = format!("PUT {url}");
        let response = self.send(
            &r.registry,
            &Self::scope(&r.repository, true),
            &what,
            &|auth| {
                let req = with_auth(
                    self.agent.put(&url).header("content-type", media_type),
                    auth,
                );
                req.send(bytes)
            },
        )?;
        if !response.status().is_success() {
            return Err(Self::api_error(&what, response));
        }
        let has_subject = response.headers().contains_key("oci-subject");
        let digest = match &r.digest {
            Some(pushed) => Digest::of_with(pushed.algorithm(), bytes),
            None => Digest::of(bytes),
        };
        Ok((digest, has_subject))
    }

    /// Delete a manifest or tag.
    pub fn delete_manifest(&self, r: &RemoteRef) -> Result<()> {
        let url = self.api_url(r, &format!("manifests/{}", r.reference()));
        let what = format!("DELETE {url}");
        let scope = format!("repository:{}:delete", r.repository);
        let response = self.send(&r.registry, &scope, &what, &|auth| {
            let req = with_auth(self.agent.delete(&url), auth);
            req.call()
        })?;
        if !response.status().is_success() {
            return Err(Self::api_error(&what, response));
        }
        Ok(())
    }

    /// Does the repository have the blob?
    pub fn has_blob(&self, r: &RemoteRef, digest: &Digest) -> Result<bool> {
        let url = self.api_url(r, &format!("blobs/{digest}"));
        let what = format!("HEAD {url}");
        let response = self.read(r, &what, &|| self.agent.head(&url))?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(Self::api_error(&what, response)),
        }
    }

    /// Stream a blob from byte `offset` on (a Range request when `offset > 0`). The caller checks
    /// the digest (see `copy`, which wraps this in a verifying reader).
    pub fn get_blob(
        &self,
        r: &RemoteRef,
        digest: &Digest,
        offset: u64,
    ) -> Result<impl Read + use<>> {
        let url = self.api_url(r, &format!("blobs/{digest}"));
        let what = format!("GET {url}");
        let response = self.read(r, &what, &|| {
            let req = self.agent.get(&url);
            if offset > 0 {
                req.header("range", format!("bytes={offset}-"))
            } else {
                req
            }
        })?;
        let status = response.status().as_u16();
        if !(status == 200 && offset == 0 || status == 206) {
            return Err(Self::api_error(&what, response));
        }
        Ok(response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader())
    }

    fn absolute(&self, registry: &str, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.url(registry))
        }
    }

    fn location(what: &str, response: &HttpResponse) -> Result<String> {
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Protocol {
                what: what.to_string(),
                reason: format!("{} without a Location header", response.status()),
            })
    }

    /// Push a blob unless the repository has it: HEAD, then a cross-repository mount from
    /// `mount_from` (a repository on the same registry), then an upload (one PUT, or PATCH
    /// chunks of [`ClientOptions::chunk_size`] that resume from the registry's offset after a
    /// broken connection).
    pub fn push_blob(
        &self,
        r: &RemoteRef,
        digest: &Digest,
        size: u64,
        source: &dyn BlobSource,
        mount_from: Option<&str>,
    ) -> Result<BlobPush> {
        if self.has_blob(r, digest)? {
            return Ok(BlobPush::Present);
        }
        let uploads = self.api_url(r, "blobs/uploads/");
        let mut url = uploads.clone();
        let mut scope = Self::scope(&r.repository, true);
        if let Some(from) = mount_from.filter(|f| *f != r.repository) {
            url.push_str(&format!("?mount={digest}&from={from}"));
            scope.push_str(&format!(" repository:{from}:pull"));
        }
        let what = format!("POST {uploads}");
        let response = self.send(&r.registry, &scope, &what, &|auth| {
            let req = with_auth(self.agent.post(&url), auth);
            req.send_empty()
        })?;
        match response.status().as_u16() {
            201 => return Ok(BlobPush::Mounted),
            202 => {}
            _ => return Err(Self::api_error(&what, response)),
        }
        let mut location = self.absolute(&r.registry, &Self::location(&what, &response)?);
        let push_scope = Self::scope(&r.repository, true);
        let mut offset = 0u64;
        let mut failures = 0u32;
        while offset < size && size > self.options.chunk_size {
            let len = self.options.chunk_size.min(size - offset);
            let what = format!("PATCH {uploads}");
            let result = (|| -> Result<HttpResponse> {
                let mut reader = source.open_at(offset)?.take(len);
                let auth = self.authorization(&r.registry, &push_scope, false)?;
                let mut req = self
                    .agent
                    .patch(&location)
                    .header("content-type", "application/octet-stream")
                    .header("content-length", len.to_string())
                    .header("content-range", format!("{offset}-{}", offset + len - 1));
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                req.send(ureq::SendBody::from_reader(&mut reader))
                    .map_err(Self::transport(&what))
            })();
            match result {
                Ok(response) if response.status().as_u16() == 202 => {
                    location = self.absolute(&r.registry, &Self::location(&what, &response)?);
                    offset += len;
                }
                Ok(response) => return Err(Self::api_error(&what, response)),
                Err(e) if e.is_temporary() && failures < self.options.retries => {
                    failures += 1;
                    tracing::warn!(error = %strata_oci::report(&e), "chunk failed; asking the registry where to resume");
                    std::thread::sleep(Duration::from_millis(200 * (1 << failures)));
                    offset = self.upload_offset(&r.registry, &push_scope, &location)?;
                }
                Err(e) => return Err(e),
            }
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{sep}digest={digest}");
        let what = format!("PUT {uploads}");
        let remaining = size - offset;
        let auth = self.authorization(&r.registry, &push_scope, false)?;
        let mut req = self
            .agent
            .put(&put_url)
            .header("content-type", "application/octet-stream")
            .header("content-length", remaining.to_string());
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let response = if remaining > 0 {
            let mut reader = source.open_at(offset)?.take(remaining);
            req.send(ureq::SendBody::from_reader(&mut reader))
        } else {
            req.send_empty()
        }
        .map_err(Self::transport(&what))?;
        if response.status().as_u16() != 201 {
            return Err(Self::api_error(&what, response));
        }
        Ok(BlobPush::Uploaded)
    }

    /// Where an upload session is: the byte after the end of its `Range` header.
    fn upload_offset(&self, registry: &str, scope: &str, location: &str) -> Result<u64> {
        let what = format!("GET {location}");
        let response = self.send(registry, scope, &what, &|auth| {
            let req = with_auth(self.agent.get(location), auth);
            req.call()
        })?;
        if response.status().as_u16() != 204 {
            return Err(Self::api_error(&what, response));
        }
        let range = response
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("0-0");
        let end: u64 = range
            .rsplit('-')
            .next()
            .and_then(|e| e.parse().ok())
            .unwrap_or(0);
        // `0-0` is ambiguous (nothing, or one byte); distribution sends it for an empty session.
        Ok(if range == "0-0" { 0 } else { end + 1 })
    }

    /// The referrers of `digest` via the referrers API; None when the registry has no such API
    /// (404 without a spec body, or another error status), so the caller can try the tag scheme.
    pub fn referrers(&self, r: &RemoteRef, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        let url = self.api_url(r, &format!("referrers/{digest}"));
        let what = format!("GET {url}");
        let mut response = self.read(r, &what, &|| {
            self.agent.get(&url).header("accept", media::OCI_INDEX)
        })?;
        let is_index = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with(media::OCI_INDEX));
        if response.status().as_u16() != 200 || !is_index {
            return Ok(None);
        }
        let index: strata_oci::ImageIndex = read_json(&mut response, &what)?;
        Ok(Some(index.manifests().clone()))
    }

    /// The referrers of `digest`: the referrers API, or on a registry without it the index tagged
    /// `<algorithm>-<hex>` (distribution-spec's tag schema); none is an empty list.
    pub fn referrers_or_tag(&self, r: &RemoteRef, digest: &Digest) -> Result<Vec<Descriptor>> {
        if let Some(list) = self.referrers(r, digest)? {
            return Ok(list);
        }
        let tag = r.with_reference(&crate::copy::referrers_tag(digest));
        match self.get_manifest(&tag) {
            Ok(m) => {
                let index: strata_oci::ImageIndex =
                    serde_json::from_slice(&m.bytes).map_err(|e| RegistryError::Protocol {
                        what: tag.to_string(),
                        reason: format!("referrers tag is not an index: {e}"),
                    })?;
                Ok(index.manifests().clone())
            }
            Err(e) if e.status() == Some(404) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// A whole blob, at most `limit` bytes, checked against `digest`.
    pub fn get_blob_bytes(&self, r: &RemoteRef, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let what = format!("GET {}", self.api_url(r, &format!("blobs/{digest}")));
        let mut bytes = Vec::new();
        self.get_blob(r, digest, 0)?
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| RegistryError::Transport {
                what: what.clone(),
                source: Box::new(ureq::Error::Io(source)),
            })?;
        if bytes.len() as u64 > limit {
            return Err(RegistryError::Protocol {
                what,
                reason: format!("the blob is larger than {limit} bytes"),
            });
        }
        let actual = Digest::of_with(digest.algorithm(), &bytes);
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// The tags of a repository (following `Link` pages).
    pub fn tags(&self, r: &RemoteRef) -> Result<Vec<String>> {
        let mut url = self.api_url(r, "tags/list");
        let mut tags = Vec::new();
        loop {
            let what = format!("GET {url}");
            let mut response = self.read(r, &what, &|| self.agent.get(&url))?;
            if !response.status().is_success() {
                return Err(Self::api_error(&what, response));
            }
            let next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split_once('<'))
                .and_then(|(_, rest)| rest.split_once('>'))
                .map(|(link, _)| link.to_string());
            let value: serde_json::Value = read_json(&mut response, &what)?;
            tags.extend(
                value
                    .get("tags")
                    .and_then(|t| t.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string)),
            );
            match next {
                Some(link) => url = self.absolute(&r.registry, &link),
                None => return Ok(tags),
            }
        }
    }
}

/// `req` with the `authorization` header the auth flow chose, if any.
fn with_auth<B>(req: ureq::RequestBuilder<B>, auth: Option<&str>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(a) => req.header("authorization", a),
        None => req,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_refs() {
        let r = RemoteRef::parse("127.0.0.1:5000/acme/app:1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "acme/app");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/acme/app:1");
        let d = Digest::of(b"x");
        let r = RemoteRef::parse(&format!("localhost:5000/a@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.reference(), d.to_string());
        let r = RemoteRef::parse("docker.io/busybox").unwrap();
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(RemoteRef::parse("acme/app").is_err());
        assert!(RemoteRef::parse("busybox").is_err());
    }

    #[test]
    fn remote_refs_follow_the_one_grammar() {
        let r = RemoteRef::parse("index.docker.io/busybox:1").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:1");
        let r = RemoteRef::parse("docker://[::1]:5000/acme/app").unwrap();
        assert_eq!(r.registry, "[::1]:5000");
        for bad in [
            "host:/x",
            "-bad.example.com/x",
            "example.com/Acme",
            "example.com/x:-t",
        ] {
            let err = RemoteRef::parse(bad).unwrap_err();
            assert!(
                matches!(err, RegistryError::Reference { .. }),
                "{bad}: {err:?}"
            );
        }
        // The grammar takes sha512; the client takes the digests the store holds, and says so.
        let digest = format!("sha512:{}", "0123456789abcdef".repeat(8));
        let sha512 = format!("example.com/x@{digest}");
        match digest.parse::<Digest>() {
            Ok(_) => assert!(RemoteRef::parse(&sha512).is_ok()),
            Err(e) => {
                let err = RemoteRef::parse(&sha512).unwrap_err().to_string();
                assert!(err.contains(&e.to_string()), "{err}");
            }
        }
    }

    #[test]
    fn a_registry_that_drops_connections_is_tried_retries_plus_one_times() {
        // Accept and hang up at once: every request is a temporary transport failure.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        let client = Client::new(ClientOptions {
            retries: 2,
            docker_config: false,
            ..ClientOptions::default()
        })
        .unwrap();
        let r = RemoteRef::parse(&format!("{addr}/acme/app:1")).unwrap();
        assert!(client.get_manifest(&r).is_err());
        // One HTTPS probe (a loopback registry may speak either), then one level of retries:
        // not retries × retries (the challenge used to retry inside `send`'s retries).
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1 + 3);
    }

    #[test]
    fn loopback_hosts_use_http() {
        let c = Client::new(ClientOptions::default()).unwrap();
        assert_eq!(c.base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(c.base_url("localhost"), "http://localhost");
        assert_eq!(c.base_url("[::1]:80"), "http://[::1]:80");
        assert_eq!(c.base_url("quay.io"), "https://quay.io");
        assert_eq!(c.base_url("docker.io"), "https://registry-1.docker.io");
    }

    #[test]
    fn challenge_params() {
        let p = www_authenticate_params(
            r#" realm="http://h/token",service="strata",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(p["realm"], "http://h/token");
        assert_eq!(p["service"], "strata");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
    }

    #[test]
    fn options_are_checked() {
        let bad = ClientOptions {
            chunk_size: 0,
            ..ClientOptions::default()
        };
        assert!(Client::new(bad).is_err());
        assert!(Credentials::parse("nocolon").is_err());
        assert_eq!(
            format!("{:?}", Credentials::parse("u:p").unwrap()),
            "Basic(u:***)"
        );
    }
}
