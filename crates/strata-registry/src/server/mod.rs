//! The OCI distribution server (spec v1.1) on a strata store.
//!
//! [`Registry`] holds the store, the auth rules, the events log and the open upload sessions;
//! [`Registry::router`] is an axum `Router` with one `/v2/{*rest}` handler that parses the path
//! itself ([`route::Route`]). [`serve`] runs it on a listener until a shutdown future resolves, and
//! [`RunningServer`] runs it on its own runtime thread (tests, embedding).
//!
//! Store operations are blocking file I/O run with `tokio::task::block_in_place`: the server needs
//! a multi-threaded tokio runtime.

mod handlers;
pub mod limits;
pub mod route;
pub mod tls;
mod uploads;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use strata_events::{Event, EventLog, Kind};
use strata_oci::Store;

use crate::auth::{Action, AuthConfig, Decision, Identity, TokenIssuer, parse_basic};
use crate::error::{ErrorCode, RegistryError, Result};
use route::Route;

/// Options of [`Registry::new`].
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Who may pull and push; None: everyone may do everything (keep such a server on loopback).
    pub auth: Option<AuthConfig>,
    /// The events log every push and delete (and refusal) is recorded in.
    pub events: Option<PathBuf>,
    /// Upload sessions idle this long are dropped and their temp files removed.
    pub upload_timeout: Duration,
    /// Serve HTTPS with this certificate and key (else plain HTTP).
    pub tls: Option<tls::TlsConfig>,
    /// Open upload sessions allowed in total; more are refused with 429 TOOMANYREQUESTS.
    pub max_uploads: usize,
    /// Open upload sessions allowed per user (anonymous callers count as one user).
    pub max_uploads_per_user: usize,
    /// Open connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// A connection that moves no byte either way this long is dropped (half-sent request
    /// heads included).
    pub idle_timeout: Duration,
    /// A request head (request line and headers) must arrive whole within this long of the
    /// connection starting to wait for it, however its bytes trickle in; else the connection is
    /// dropped. It also bounds how long a kept-alive connection waits for its next request.
    pub header_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            auth: None,
            events: None,
            upload_timeout: Duration::from_secs(15 * 60),
            tls: None,
            max_uploads: 1024,
            max_uploads_per_user: 64,
            max_connections: 512,
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// The registry: store, auth, events and upload sessions. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    state: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) auth: Option<AuthConfig>,
    pub(crate) tokens: TokenIssuer,
    pub(crate) events: Option<Mutex<EventLog>>,
    pub(crate) uploads: uploads::Uploads,
    pub(crate) upload_timeout: Duration,
    pub(crate) tls: Option<tls::TlsConfig>,
    pub(crate) max_connections: usize,
    /// One permit per connection slot; a connection (its TLS handshake included) holds one.
    pub(crate) connections: Arc<tokio::sync::Semaphore>,
    pub(crate) idle_timeout: Duration,
    pub(crate) header_timeout: Duration,
    /// Successful Basic logins, keyed by the sha256 of `user:password`: bcrypt is slow on purpose.
    basic_cache: Mutex<HashMap<[u8; 32], Identity>>,
    /// A lease held from the latest blob commit until the upload timeout has passed: a pushed
    /// blob is unreferenced until its manifest follows, and `gc` must not take it meanwhile.
    fresh_blobs: Mutex<Option<(strata_oci::Lease, std::time::Instant)>>,
    /// Who holds what (see `strata_oci::membership`), recomputed when the store changes.
    holdings: Mutex<HoldingsCache>,
    /// Bumped by every change this server makes to the index or a membership record.
    generation: std::sync::atomic::AtomicU64,
}

/// The last [`strata_oci::membership::Holdings`] computed, and the store state it was computed on.
#[derive(Default)]
struct HoldingsCache {
    nodes: strata_oci::membership::NodeCache,
    stamp: Option<Stamp>,
    current: Option<Arc<strata_oci::membership::Holdings>>,
}

/// `index.json`'s identity and the records directory's mtime, and this server's generation: any
/// change to the store's membership changes one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    index: Option<(u64, i64, i64, u64)>,
    records: Option<(i64, i64)>,
    generation: u64,
}

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    /// No credentials.
    Nobody,
    /// An anonymous bearer token from `/token`.
    Anonymous,
    /// An authenticated user.
    User(Identity),
}

impl Caller {
    pub(crate) fn identity(&self) -> Option<&Identity> {
        match self {
            Caller::User(who) => Some(who),
            _ => None,
        }
    }
}

impl Registry {
    /// A registry serving `store`.
    pub fn new(store: Store, options: ServerOptions) -> Result<Registry> {
        let ttl = options
            .auth
            .as_ref()
            .map(|a| a.token_ttl_seconds)
            .unwrap_or(300);
        let events = match &options.events {
            Some(path) => Some(Mutex::new(EventLog::open(path).map_err(|e| {
                RegistryError::Invalid(format!(
                    "cannot open the events log: {}",
                    strata_oci::report(&e)
                ))
            })?)),
            None => None,
        };
        Ok(Registry {
            state: Arc::new(Shared {
                store,
                auth: options.auth,
                tokens: TokenIssuer::new(ttl)?,
                events,
                uploads: uploads::Uploads::new(options.max_uploads, options.max_uploads_per_user),
                upload_timeout: options.upload_timeout,
                tls: options.tls,
                max_connections: options.max_connections.max(1),
                connections: Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1))),
                idle_timeout: options.idle_timeout,
                header_timeout: options.header_timeout,
                basic_cache: Mutex::new(HashMap::new()),
                fresh_blobs: Mutex::new(None),
                holdings: Mutex::new(HoldingsCache::default()),
                generation: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// The axum router: `/v2/`, `/v2/{*rest}` and `/token`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v2", any(dispatch_base))
            .route("/v2/", any(dispatch_base))
            .route("/v2/{*rest}", any(dispatch))
            .route("/token", get(token))
            .with_state(self.state.clone())
    }

    /// Drop upload sessions idle longer than the timeout; returns how many were dropped.
    ///
    /// Also lets go of the store lease taken for freshly committed blobs once they are older than
    /// the timeout (from then on `strata store gc` may run and take blobs no manifest uses).
    pub async fn expire_uploads(&self) -> usize {
        if let Ok(mut fresh) = self.state.fresh_blobs.lock()
            && fresh
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() >= self.state.upload_timeout)
        {
            *fresh = None;
        }
        self.state.uploads.expire(self.state.upload_timeout).await
    }

    /// The number of open upload sessions.
    pub fn open_uploads(&self) -> usize {
        self.state.uploads.len()
    }

    /// May the sender of `headers` read the store through a read-only view beside the registry
    /// (the web pages of `strata serve`)? The registry's own rule: anyone when pulls are open
    /// (or there is no auth file), else only its users, by the same credentials (HTTP Basic,
    /// a static token or a bearer token from `/token`). Refused: a 401 whose challenge lets a
    /// browser ask for a user name and password.
    pub async fn authorize_read(&self, headers: &HeaderMap) -> std::result::Result<(), Response> {
        let Some(auth) = &self.state.auth else {
            return Ok(());
        };
        let basic = |why: &str| {
            let mut response = ApiError::new(
                401,
                ErrorCode::Unauthorized,
                format!("authentication required: {why}"),
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"strata\", charset=\"UTF-8\""),
            );
            response
        };
        let caller = match self.state.caller(headers, "").await {
            Ok(caller) => caller,
            Err(_) => return Err(basic("invalid credentials")),
        };
        // Pull is registry-wide (`pull = open | authenticated`): any repository name asks it.
        match auth.decide(caller.identity(), "", Action::Pull) {
            Decision::Allow => Ok(()),
            Decision::Unauthenticated => Err(basic("credentials needed")),
            Decision::Deny(reason) => {
                Err(ApiError::new(403, ErrorCode::Denied, reason).into_response())
            }
        }
    }

    /// The number of connection slots in use (TLS handshakes in progress included).
    pub fn open_connections(&self) -> usize {
        self.state.max_connections - self.state.connections.available_permits()
    }
}

/// Serve `registry` on `listener` (over TLS when the options had a certificate) until `shutdown`
/// resolves; idle uploads are expired every minute (or every upload timeout, when shorter).
pub async fn serve(
    registry: Registry,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(registry, Router::new(), listener, shutdown).await
}

/// [`serve`], with `extra` routes (outside `/v2/` and `/token`) served beside the registry's on
/// the same listener, under the same connection limits and timeouts (the web pages).
pub async fn serve_with(
    registry: Registry,
    extra: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = registry.clone();
    let period = sweeper
        .state
        .upload_timeout
        .min(Duration::from_secs(60))
        .max(Duration::from_millis(100));
    let sweep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let dropped = sweeper.expire_uploads().await;
            if dropped > 0 {
                tracing::info!(dropped, "expired idle upload sessions");
            }
        }
    });
    let router = registry.router().merge(extra);
    let state = &registry.state;
    let listener =
        limits::Guarded::with_permits(listener, state.connections.clone(), state.idle_timeout);
    let acceptor = state.tls.as_ref().map(tls::TlsConfig::acceptor);
    let result = serve_http1(listener, acceptor, router, state.header_timeout, shutdown).await;
    sweep.abort();
    result
}

/// Accept connections from `listener` and serve `router` on each over HTTP/1.1 with hyper (after
/// a TLS handshake, within its own timeout, when `acceptor` is given). hyper's
/// `header_read_timeout` drops a connection whose request head is not whole within
/// `header_timeout` (a client trickling a byte now and then never looks idle, so the listener's
/// idle timeout alone never ends it). When `shutdown` resolves no connection is accepted any
/// more, and the open ones finish their requests and close.
async fn serve_http1<L>(
    mut listener: L,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let io = tokio::select! {
            (io, _addr) = listener.accept() => io,
            () = &mut shutdown => break,
        };
        let (builder, router, acceptor) = (builder.clone(), router.clone(), acceptor.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                return serve_connection(&builder, watcher, io, router).await;
            };
            match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                Ok(Ok(io)) => serve_connection(&builder, watcher, io, router).await,
                Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
    // Stop accepting, then let the open connections finish.
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serve one connection until it closes (or the server stops).
async fn serve_connection<IO>(
    builder: &hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    io: IO,
    router: Router,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(router);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// A server on its own thread and runtime, stopped (gracefully) on drop.
pub struct RunningServer {
    addr: SocketAddr,
    registry: Registry,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl RunningServer {
    /// Bind `addr` (e.g. `127.0.0.1:0`) and serve `store` on it.
    pub fn start(store: Store, options: ServerOptions, addr: SocketAddr) -> Result<RunningServer> {
        let registry = Registry::new(store, options)?;
        let listener = std::net::TcpListener::bind(addr).map_err(|source| RegistryError::Io {
            path: PathBuf::from(addr.to_string()),
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| RegistryError::Io {
                path: PathBuf::from(addr.to_string()),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| RegistryError::Io {
            path: PathBuf::from(addr.to_string()),
            source,
        })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = registry.clone();
        let thread = std::thread::Builder::new()
            .name(format!("registry-{addr}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(4)
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    serve(served, listener, async move {
                        let _ = stopped.await;
                    })
                    .await
                })
            })
            .map_err(|source| RegistryError::Io {
                path: PathBuf::from(addr.to_string()),
                source,
            })?;
        Ok(RunningServer {
            addr,
            registry,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The registry being served.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Stop and wait for the server thread.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// An error answered with the spec's JSON body.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn with_header(mut self, name: header::HeaderName, value: String) -> ApiError {
        if let Ok(value) = HeaderValue::from_str(&value) {
            self.headers.push((name, value));
        }
        self
    }

    pub(crate) fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "registry request failed");
        ApiError::new(500, ErrorCode::Other("UNKNOWN".into()), error.to_string())
    }
}

impl From<strata_oci::Error> for ApiError {
    fn from(error: strata_oci::Error) -> ApiError {
        match error {
            strata_oci::Error::BlobNotFound(d) => {
                ApiError::new(404, ErrorCode::BlobUnknown, format!("blob {d} is unknown"))
            }
            strata_oci::Error::DigestMismatch { expected, actual } => ApiError::new(
                400,
                ErrorCode::DigestInvalid,
                format!("content hashes to {actual}, not {expected}"),
            ),
            strata_oci::Error::InvalidDigest { input, reason } => ApiError::new(
                400,
                ErrorCode::DigestInvalid,
                format!("invalid digest {input:?}: {reason}"),
            ),
            other => ApiError::internal(strata_oci::report(&other)),
        }
    }
}

impl From<ApiError> for RegistryError {
    fn from(e: ApiError) -> RegistryError {
        RegistryError::api(e.status.as_u16(), e.code, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "errors": [{ "code": self.code.as_str(), "message": self.message, "detail": null }]
        });
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

pub(crate) type ApiResult<T = Response> = std::result::Result<T, ApiError>;

/// Run blocking store work on this worker thread, letting the runtime move other tasks away.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl Shared {
    /// Who is asking, from the `Authorization` header. Bad credentials are a 401.
    pub(crate) async fn caller(&self, headers: &HeaderMap, scope: &str) -> ApiResult<Caller> {
        let Some(auth) = &self.auth else {
            return Ok(Caller::Nobody);
        };
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(Caller::Nobody);
        };
        if let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            let token = token.trim();
            return match self.tokens.verify(token) {
                Ok(Some(who)) => Ok(Caller::User(who)),
                Ok(None) => Ok(Caller::Anonymous),
                Err(reason) => match auth.check_static_token(token) {
                    Some(who) => Ok(Caller::User(who)),
                    None => Err(self.challenge(headers, scope, reason)),
                },
            };
        }
        if let Some((user, password)) = parse_basic(value) {
            return match self.check_basic(&user, &password) {
                Some(who) => Ok(Caller::User(who)),
                None => {
                    tracing::warn!(user, "refused: bad credentials");
                    Err(self.challenge(headers, scope, "invalid user name or password"))
                }
            };
        }
        Err(self.challenge(headers, scope, "unsupported Authorization scheme"))
    }

    fn check_basic(&self, user: &str, password: &str) -> Option<Identity> {
        use sha2::Digest as _;
        let auth = self.auth.as_ref()?;
        let key: [u8; 32] = sha2::Sha256::digest(format!("{user}:{password}")).into();
        if let Some(who) = self.basic_cache.lock().ok()?.get(&key) {
            return Some(who.clone());
        }
        let who = blocking(|| auth.check_password(user, password))?;
        if let Ok(mut cache) = self.basic_cache.lock() {
            cache.insert(key, who.clone());
        }
        Some(who)
    }

    /// A 401 with the bearer challenge for `scope` (e.g. `repository:acme/app:pull,push`).
    pub(crate) fn challenge(&self, headers: &HeaderMap, scope: &str, why: &str) -> ApiError {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut challenge = format!("Bearer realm=\"{scheme}://{host}/token\",service=\"strata\"");
        if !scope.is_empty() {
            challenge.push_str(&format!(",scope=\"{scope}\""));
        }
        ApiError::new(
            401,
            ErrorCode::Unauthorized,
            format!("authentication required: {why}"),
        )
        .with_header(header::WWW_AUTHENTICATE, challenge)
    }

    /// Check that `caller` may do `action` to `name`: 401 (with a challenge) or 403 otherwise.
    /// Refused pushes and deletes are logged and recorded in the events log.
    pub(crate) fn authorize(
        &self,
        headers: &HeaderMap,
        caller: &Caller,
        name: &str,
        action: Action,
    ) -> ApiResult<()> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        let actions = match action {
            Action::Pull => "pull",
            Action::Push => "pull,push",
            Action::Delete => "delete",
        };
        let scope = format!("repository:{name}:{actions}");
        match auth.decide(caller.identity(), name, action) {
            Decision::Allow => Ok(()),
            Decision::Unauthenticated => Err(self.challenge(headers, &scope, "credentials needed")),
            Decision::Deny(reason) => {
                let who = caller.identity();
                tracing::warn!(
                    repository = name,
                    action = action.as_str(),
                    user = who.map(|w| w.user.as_str()),
                    team = who.map(|w| w.team.as_str()),
                    "refused: {reason}"
                );
                if action != Action::Pull {
                    self.record(Event {
                        kind: Some(if action == Action::Push {
                            Kind::Push
                        } else {
                            Kind::Delete
                        }),
                        image: name.to_string(),
                        team: who.map(|w| w.team.clone()),
                        user: who.map(|w| w.user.clone()),
                        result: "refused".into(),
                        reason: Some(reason.clone()),
                        ..Event::default()
                    });
                }
                Err(ApiError::new(403, ErrorCode::Denied, reason))
            }
        }
    }

    /// Keep `gc` away from blobs just committed (see `fresh_blobs`).
    pub(crate) fn hold_fresh_blobs(&self) -> ApiResult<()> {
        let mut fresh = self.fresh_blobs.lock().map_err(ApiError::internal)?;
        match fresh.as_mut() {
            Some((_, at)) => *at = std::time::Instant::now(),
            None => {
                let lease = blocking(|| self.store.lease())?;
                *fresh = Some((lease, std::time::Instant::now()));
            }
        }
        Ok(())
    }

    fn stamp(&self) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let index = std::fs::metadata(self.store.refs().path())
            .ok()
            .map(|m| (m.ino(), m.mtime(), m.mtime_nsec(), m.len()));
        let records = std::fs::metadata(self.store.repos().dir())
            .ok()
            .map(|m| (m.mtime(), m.mtime_nsec()));
        Stamp {
            index,
            records,
            generation: self.generation.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    /// Who holds what, now (cached until the store changes).
    pub(crate) fn holdings(&self) -> ApiResult<Arc<strata_oci::membership::Holdings>> {
        blocking(|| {
            let mut cache = self.holdings.lock().map_err(ApiError::internal)?;
            let stamp = self.stamp();
            if cache.stamp.as_ref() == Some(&stamp)
                && let Some(current) = &cache.current
            {
                return Ok(current.clone());
            }
            let holdings = Arc::new(self.store.repos().holdings(&mut cache.nodes)?);
            cache.stamp = Some(stamp);
            cache.current = Some(holdings.clone());
            Ok(holdings)
        })
    }

    /// Edit `index.json` and `repository`'s membership record together (see
    /// `Repos::update`).
    pub(crate) fn update_repository<T>(
        &self,
        repository: &str,
        update: impl FnOnce(
            &mut strata_oci::ImageIndex,
            &mut strata_oci::membership::RepoRecord,
            &strata_oci::membership::Holdings,
        ) -> strata_oci::Result<(bool, T)>,
    ) -> ApiResult<T> {
        blocking(|| {
            let mut cache = self.holdings.lock().map_err(ApiError::internal)?;
            let result = self
                .store
                .repos()
                .update(repository, &mut cache.nodes, update);
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            cache.current = None;
            Ok(result?)
        })
    }

    /// The owner team of a repository, when the auth file names one.
    pub(crate) fn owner(&self, name: &str) -> Option<String> {
        self.auth.as_ref()?.owner_of(name)
    }

    /// Record an event (time filled in); failures are logged, never fatal to the request.
    pub(crate) fn record(&self, mut event: Event) {
        let Some(events) = &self.events else {
            return;
        };
        if event.time.is_empty() {
            event.time = strata_events::now();
        }
        let result = blocking(|| {
            events
                .lock()
                .map_err(|_| "events log lock poisoned".to_string())
                .and_then(|log| log.record(&event).map_err(|e| strata_oci::report(&e)))
        });
        if let Err(error) = result {
            tracing::error!(%error, "could not record a registry event");
        }
    }
}

async fn dispatch_base(
    State(state): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    base(&state, &method, &headers)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn base(state: &Shared, method: &Method, headers: &HeaderMap) -> ApiResult {
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::new(
            405,
            ErrorCode::Unsupported,
            "GET or HEAD only",
        ));
    }
    let caller = state.caller(headers, "").await?;
    if state.auth.is_some() && caller == Caller::Nobody {
        return Err(state.challenge(headers, "", "credentials or a token needed"));
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::HeaderName::from_static("docker-distribution-api-version"),
                "registry/2.0",
            ),
        ],
        "{}",
    )
        .into_response())
}

async fn dispatch(
    State(state): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rest = uri.path().strip_prefix("/v2/").unwrap_or_default();
    let Some(route) = Route::parse(rest) else {
        return ApiError::new(
            404,
            ErrorCode::NameUnknown,
            format!("no such endpoint {}", uri.path()),
        )
        .into_response();
    };
    // `?tag=` may repeat (a manifest pushed by digest with tags), which the map cannot hold.
    let tags: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("tag="))
        .collect();
    let response = handlers::handle(&state, route, &method, &query, &tags, &headers, body).await;
    let mut response = response.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().insert(
        header::HeaderName::from_static("docker-distribution-api-version"),
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// `GET /token`: a bearer token for the Basic credentials given (or an anonymous one).
async fn token(State(state): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let who = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        None => None,
        Some(value) => match parse_basic(value) {
            Some((user, password)) => match state.check_basic(&user, &password) {
                Some(who) => Some(who),
                None => {
                    tracing::warn!(user, "refused token: bad credentials");
                    return ApiError::new(
                        401,
                        ErrorCode::Unauthorized,
                        "invalid user name or password",
                    )
                    .into_response();
                }
            },
            None => {
                return ApiError::new(401, ErrorCode::Unauthorized, "Basic credentials expected")
                    .into_response();
            }
        },
    };
    let token = state.tokens.issue(who.as_ref());
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": state.tokens.ttl(),
        "issued_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A response with no body and the given headers.
pub(crate) fn empty(status: StatusCode, headers: &[(&str, String)]) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
