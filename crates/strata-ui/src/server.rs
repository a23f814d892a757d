//! The routes under `/ui/`: every page checks the registry's read rule first, reads its data on
//! a blocking thread (at most [`MAX_RENDERS`] at once), and answers HTML or, with
//! `?format=json`, the same data as JSON. `/ui/events` is the live feed.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use strata_events::{EventLog, Kind};
use strata_registry::Registry;
use tokio::sync::Semaphore;

use crate::data::{self, UiConfig};
use crate::error::{UiError, report};
use crate::model::TimelineFilter;
use crate::pages;

/// Pages rendered at once; more wait their turn.
pub const MAX_RENDERS: usize = 4;
/// Live feeds open at once; more are answered 503.
pub const MAX_FEEDS: usize = 64;
/// How often a live feed looks for new rows (other processes write the log: a build started
/// from the command line records into the same SQLite file).
const POLL: Duration = Duration::from_millis(200);
/// At most this many rows are read per look.
const FEED_BATCH: usize = 100;

const CSS: &str = include_str!("../assets/ui.css");
const JS: &str = include_str!("../assets/live.js");

struct Ui {
    config: UiConfig,
    closing: tokio::sync::watch::Receiver<bool>,
    caches: Arc<data::Caches>,
    registry: Registry,
    renders: Semaphore,
    feeds: Arc<Semaphore>,
}

/// The `/ui/` routes, reading what `config` names, guarded by `registry`'s read rule. When
/// `closing` turns true (the server is shutting down) the live feeds end, so the connections
/// holding them close and a graceful shutdown does not wait on them forever.
pub fn router(
    config: UiConfig,
    registry: Registry,
    closing: tokio::sync::watch::Receiver<bool>,
) -> Router {
    let ui = Arc::new(Ui {
        config,
        closing,
        caches: Arc::new(data::Caches::default()),
        registry,
        renders: Semaphore::new(MAX_RENDERS),
        feeds: Arc::new(Semaphore::new(MAX_FEEDS)),
    });
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(chain))
        .route("/ui/api/chain", get(chain_json))
        .route("/ui/image/{*name}", get(image))
        .route("/ui/timeline", get(timeline))
        .route("/ui/deployments", get(deployments))
        .route("/ui/events", get(events))
        .route(
            "/ui/assets/ui.css",
            get(|| async { asset("text/css", CSS) }),
        )
        .route(
            "/ui/assets/live.js",
            get(|| async { asset("text/javascript", JS) }),
        )
        .with_state(ui)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Headers every page carries: no inline script may run (an escaping slip cannot become code),
/// no framing, no sniffing.
fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
             frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `?format=json` or not.
#[derive(Debug, Default, Deserialize)]
struct Format {
    format: Option<String>,
}

impl Format {
    fn json(&self) -> bool {
        self.format.as_deref() == Some("json")
    }
}

/// Run `work` on a blocking thread under the render limit; its error as a page or JSON.
async fn render<T, F>(ui: &Arc<Ui>, json: bool, work: F, html: fn(&T) -> maud::Markup) -> Response
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(&UiConfig) -> Result<T, UiError> + Send + 'static,
{
    let Ok(_permit) = ui.renders.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let config = ui.config.clone();
    let result = match tokio::task::spawn_blocking(move || work(&config)).await {
        Ok(result) => result,
        Err(_) => {
            return failure(json, StatusCode::INTERNAL_SERVER_ERROR, "the page failed");
        }
    };
    match result {
        Ok(view) if json => harden(json_response(StatusCode::OK, &view)),
        Ok(view) => harden(html_response(StatusCode::OK, html(&view))),
        Err(e) => {
            let status = match e {
                UiError::NotFound { .. } => StatusCode::NOT_FOUND,
                UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let message = report(&e);
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::error!(error = %message, "a page failed");
            }
            failure(json, status, &message)
        }
    }
}

fn html_response(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn failure(json: bool, status: StatusCode, message: &str) -> Response {
    harden(if json {
        json_response(status, &serde_json::json!({ "error": message }))
    } else {
        html_response(status, pages::error_page(status.as_u16(), message))
    })
}

/// The registry's read rule, or its refusal.
async fn gate(ui: &Ui, headers: &HeaderMap) -> Result<(), Response> {
    ui.registry.authorize_read(headers).await
}

#[derive(Debug, Default, Deserialize)]
struct ChainQuery {
    format: Option<String>,
    team: Option<String>,
}

async fn chain(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(q): Query<ChainQuery>,
) -> Response {
    if let Err(refused) = gate(&ui, &headers).await {
        return refused;
    }
    let json = q.format.as_deref() == Some("json");
    let team = nonempty(q.team);
    let cache = ui.caches.clone();
    render(
        &ui,
        json,
        move |config| {
            Ok(TeamChain {
                view: Shared(cache.chain.get(config)?),
                team,
            })
        },
        |t: &TeamChain| pages::chain_page(&t.view.0, t.team.as_deref()),
    )
    .await
}

/// The chain page's data and the team it was narrowed to (`?team=`).
#[derive(serde::Serialize)]
struct TeamChain {
    #[serde(flatten)]
    view: Shared<crate::model::ChainView>,
    team: Option<String>,
}

/// A view shared with the cache, serialized as itself.
struct Shared<T>(Arc<T>);

impl<T: serde::Serialize> serde::Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

async fn chain_json(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    if let Err(refused) = gate(&ui, &headers).await {
        return refused;
    }
    let cache = ui.caches.clone();
    render(
        &ui,
        true,
        move |config| cache.chain.get(config).map(Shared),
        |v| pages::chain_page(&v.0, None),
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
struct ImageQuery {
    format: Option<String>,
    a: Option<String>,
    b: Option<String>,
}

async fn image(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<ImageQuery>,
) -> Response {
    if let Err(refused) = gate(&ui, &headers).await {
        return refused;
    }
    let json = q.format.as_deref() == Some("json");
    // The name is looked up among the chain's images and the store's tags, never used as a
    // path; still, refuse what no image name can be.
    if name.is_empty()
        || name.len() > 255
        || name.contains("..")
        || name.starts_with('/')
        || name.chars().any(|c| c.is_control() || c == '\\')
    {
        return failure(
            json,
            StatusCode::BAD_REQUEST,
            &format!("invalid image name {name:?}"),
        );
    }
    let diff = match (q.a.filter(|a| !a.is_empty()), q.b.filter(|b| !b.is_empty())) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    let cache = ui.caches.clone();
    render(
        &ui,
        json,
        move |config| {
            data::image_view(
                config,
                &cache,
                &name,
                diff.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
            )
        },
        pages::image_page,
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
struct TimelineQuery {
    format: Option<String>,
    team: Option<String>,
    image: Option<String>,
    kind: Option<String>,
    before: Option<i64>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

async fn timeline(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(q): Query<TimelineQuery>,
) -> Response {
    if let Err(refused) = gate(&ui, &headers).await {
        return refused;
    }
    let json = q.format.as_deref() == Some("json");
    let filter = TimelineFilter {
        team: nonempty(q.team),
        image: nonempty(q.image),
        kind: nonempty(q.kind),
        before: q.before,
    };
    render(
        &ui,
        json,
        move |config| data::timeline_view(config, &filter),
        pages::timeline_page,
    )
    .await
}

async fn deployments(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(f): Query<Format>,
) -> Response {
    if let Err(refused) = gate(&ui, &headers).await {
        return refused;
    }
    render(
        &ui,
        f.json(),
        data::deployments_view,
        pages::deployments_page,
    )
    .await
}

#[derive(Debug, Default, Deserialize, Clone)]
struct FeedQuery {
    after: Option<i64>,
    team: Option<String>,
    image: Option<String>,
    kind: Option<String>,
}

/// What a feed keeps between looks.
struct Feed {
    log: Option<EventLog>,
    config: UiConfig,
    after: i64,
    query: strata_events::Query,
    ready: VecDeque<strata_events::Event>,
    closing: tokio::sync::watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// The live feed: Server-Sent Events, one per new row of the events log, each `id:` the row id,
/// so a reconnecting browser's `Last-Event-ID` resumes right after the last row it saw.
async fn events(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Response {
    if let Err(refused) = gate(&ui, &headers).await {
        return refused;
    }
    let Ok(permit) = ui.feeds.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many live feeds").into_response();
    };
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let kinds = match nonempty(q.kind.clone()) {
        Some(k) => match Kind::from_name(&k) {
            Some(kind) => vec![kind],
            None => {
                return (StatusCode::BAD_REQUEST, format!("unknown event kind {k:?}"))
                    .into_response();
            }
        },
        None => Vec::new(),
    };
    let config = ui.config.clone();
    // Where to start: after the browser's last event, else after what the page showed, else now.
    let start = match last_event_id.or(q.after) {
        Some(id) => id.max(0),
        None => {
            let config = config.clone();
            tokio::task::spawn_blocking(move || {
                config
                    .events()
                    .ok()
                    .flatten()
                    .and_then(|log| data::last_id(&log).ok())
                    .unwrap_or(0)
            })
            .await
            .unwrap_or(0)
        }
    };
    let feed = Feed {
        log: None,
        config,
        after: start,
        query: strata_events::Query {
            team: nonempty(q.team),
            image: nonempty(q.image),
            kinds,
            limit: FEED_BATCH,
            ..strata_events::Query::default()
        },
        ready: VecDeque::new(),
        closing: ui.closing.clone(),
        _permit: permit,
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        loop {
            if *feed.closing.borrow() {
                return None;
            }
            if let Some(event) = feed.ready.pop_front() {
                let sse = SseEvent::default()
                    .id(event.id.to_string())
                    .event("strata")
                    .data(serde_json::to_string(&event).unwrap_or_default());
                return Some((Ok::<_, Infallible>(sse), feed));
            }
            let Feed {
                log,
                config,
                after,
                query,
                ..
            } = &mut feed;
            let (taken, query_now, after_now, config_now) =
                (log.take(), query.clone(), *after, config.clone());
            let looked = tokio::task::spawn_blocking(move || {
                let log = match taken {
                    Some(log) => Some(log),
                    None => config_now.events().ok().flatten(),
                };
                let rows = match &log {
                    Some(log) => log
                        .query(&strata_events::Query {
                            after_id: Some(after_now),
                            ..query_now
                        })
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                (log, rows)
            })
            .await;
            let (log_back, rows) = looked.unwrap_or((None, Vec::new()));
            feed.log = log_back;
            if let Some(last) = rows.last() {
                feed.after = last.id;
            }
            if rows.is_empty() {
                // Wait for the next look, or for the server to close (then end the feed).
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    changed = feed.closing.changed() => {
                        // The sender gone: nobody can tell the feed to end any more; end it now.
                        if changed.is_err() {
                            return None;
                        }
                    }
                }
            }
            feed.ready.extend(rows);
        }
    });
    harden(
        Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
    )
}
