//! The events log: one SQLite database (`.strata/events.db`) recording every build, test, signature,
//! push and delete — who, what, when, old and new digest, and why.
//!
//! The main type is [`EventLog`]. The key decision: events are append-only rows, written in WAL mode
//! with a busy timeout, so concurrent builders and the registry server can all record into the
//! same file; readers ([`EventLog::query`]) never block writers. It is its own crate so the
//! registry can record pushes without depending on the chain and builder.

#![deny(missing_docs)]

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// What can go wrong with the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The database could not be opened or queried.
    #[error("events database {path}")]
    Db {
        /// The database file.
        path: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A directory for the database could not be created.
    #[error("events database {path}")]
    Io {
        /// The database file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An image was built (or found up to date).
    Build,
    /// An image's tier tests ran.
    Test,
    /// Provenance was signed.
    Sign,
    /// A base was imported.
    Import,
    /// Something was pushed to a registry.
    Push,
    /// Something was pulled from a registry.
    Pull,
    /// A manifest, tag or blob was deleted.
    Delete,
    /// A deployment was triggered by a new image.
    Deploy,
    /// An upstream moved and `strata.lock` followed it (`strata watch`).
    Update,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Build => "build",
            Kind::Test => "test",
            Kind::Sign => "sign",
            Kind::Import => "import",
            Kind::Push => "push",
            Kind::Pull => "pull",
            Kind::Delete => "delete",
            Kind::Deploy => "deploy",
            Kind::Update => "update",
        }
    }

    /// The kind a name (`build`, `test`, `sign`, `import`, `push`, `pull`, `delete`, `deploy`,
    /// `update`) names, if any.
    pub fn from_name(name: &str) -> Option<Kind> {
        [
            Kind::Build,
            Kind::Test,
            Kind::Sign,
            Kind::Import,
            Kind::Push,
            Kind::Pull,
            Kind::Delete,
            Kind::Deploy,
            Kind::Update,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// A stored kind; an unknown name (a newer strata's) reads as a build.
    fn parse(s: &str) -> Kind {
        Kind::from_name(s).unwrap_or(Kind::Build)
    }
}

/// One recorded event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Row id (0 before it is recorded).
    pub id: i64,
    /// RFC 3339 UTC time it started.
    pub time: String,
    /// What happened.
    pub kind: Option<Kind>,
    /// The image (chain name) or repository.
    pub image: String,
    /// The owning team.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Who did it: the OS user, or the registry user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The digest before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_digest: Option<String>,
    /// The digest after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_digest: Option<String>,
    /// The build key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_key: Option<String>,
    /// Why, in words ("Dockerfile changed", "parent corebuild rebuilt").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The image whose change started a cascade this event belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Groups the events of one invocation (one `strata build`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// How long it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// `ok`, `failed`, `cached`, `skipped`, `refused`...
    pub result: String,
    /// Anything else, as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// Filters for [`EventLog::query`].
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only this image.
    pub image: Option<String>,
    /// Only events at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only these kinds (empty: all).
    pub kinds: Vec<Kind>,
    /// Only this invocation.
    pub run_id: Option<String>,
    /// At most this many, newest kept (0: no limit); with `after_id`, oldest kept.
    pub limit: usize,
    /// Only events recorded by this team.
    pub team: Option<String>,
    /// Only events whose row id is greater (a live feed resuming after the last row it sent).
    /// Rows are then taken in id order, oldest first, so `limit` keeps the oldest.
    pub after_id: Option<i64>,
    /// Only events whose row id is smaller (the next page of a timeline). Rows are then taken in
    /// id order, newest first, so pages never overlap or skip a row.
    pub before_id: Option<i64>,
}

/// The events database.
#[derive(Debug)]
pub struct EventLog {
    conn: Connection,
    path: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    image TEXT NOT NULL,
    team TEXT,
    user TEXT,
    old_digest TEXT,
    new_digest TEXT,
    build_key TEXT,
    reason TEXT,
    cause TEXT,
    run_id TEXT,
    duration_ms INTEGER,
    result TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS events_image_time ON events (image, time);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE INDEX IF NOT EXISTS events_image_run ON events (image, run_id);
";

/// How long a writer waits for another one before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether SQLite refused because another connection holds the lock.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl EventLog {
    /// Open (creating when missing) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, EventError> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| EventError::Io {
                path: name.clone(),
                source,
            })?;
        }
        let db = |source| EventError::Db {
            path: name.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        // Switching to WAL and creating the schema can meet SQLITE_BUSY without SQLite calling the
        // busy handler (a concurrent opener changing the journal mode holds an exclusive lock), so
        // setup is retried until the same deadline the busy handler uses.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match Self::setup(&conn) {
                Ok(()) => break,
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(db(e)),
            }
        }
        Ok(Self { conn, path: name })
    }

    /// WAL mode, relaxed fsync (WAL keeps it crash-safe) and the schema, in one write transaction.
    fn setup(conn: &Connection) -> Result<(), rusqlite::Error> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
            .inspect_err(|_| {
                let _ = conn.execute_batch("ROLLBACK");
            })
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> EventError + '_ {
        |source| EventError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Record an event (its `time` defaults to now); returns its id.
    pub fn record(&self, event: &Event) -> Result<i64, EventError> {
        insert(&self.conn, event).map_err(self.err())
    }

    /// Record `events` in one transaction (each `time` defaults to now), in order; returns their
    /// ids. One commit for all: recorded one by one, a cascade's thousands of up-to-date images
    /// cost one write transaction (and its locks and WAL frames) each. All or none are recorded.
    pub fn record_all(&self, events: &[Event]) -> Result<Vec<i64>, EventError> {
        let tx = self.conn.unchecked_transaction().map_err(self.err())?;
        let ids = events
            .iter()
            .map(|event| insert(&tx, event))
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(ids)
    }

    /// Events matching `query`, oldest first.
    pub fn query(&self, query: &Query) -> Result<Vec<Event>, EventError> {
        let mut sql = String::from(
            "SELECT id, time, kind, image, team, user, old_digest, new_digest, build_key, reason,
             cause, run_id, duration_ms, result, detail FROM events WHERE 1=1",
        );
        let mut args: Vec<String> = Vec::new();
        if let Some(image) = &query.image {
            args.push(image.clone());
            sql.push_str(&format!(" AND image = ?{}", args.len()));
        }
        if let Some(since) = &query.since {
            args.push(since.clone());
            sql.push_str(&format!(" AND time >= ?{}", args.len()));
        }
        if let Some(run) = &query.run_id {
            args.push(run.clone());
            sql.push_str(&format!(" AND run_id = ?{}", args.len()));
        }
        if let Some(team) = &query.team {
            args.push(team.clone());
            sql.push_str(&format!(" AND team = ?{}", args.len()));
        }
        if let Some(after) = query.after_id {
            sql.push_str(&format!(" AND id > {after}"));
        }
        if let Some(before) = query.before_id {
            sql.push_str(&format!(" AND id < {before}"));
        }
        if !query.kinds.is_empty() {
            let list: Vec<String> = query
                .kinds
                .iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect();
            sql.push_str(&format!(" AND kind IN ({})", list.join(",")));
        }
        // By time, so a build (stamped when it started) comes before the tests and signature it
        // recorded first; the id breaks ties.
        let ascending = query.after_id.is_some();
        if ascending {
            sql.push_str(" ORDER BY id ASC");
        } else if query.before_id.is_some() {
            sql.push_str(" ORDER BY id DESC");
        } else {
            sql.push_str(" ORDER BY time DESC, id DESC");
        }
        if query.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", query.limit));
        }
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), row_to_event)
            .map_err(self.err())?;
        let mut out: Vec<Event> = rows.collect::<Result<_, _>>().map_err(self.err())?;
        if !ascending {
            out.reverse();
        }
        Ok(out)
    }

    /// Mark the builds that were recorded as `started` and never finished (the process was killed
    /// or crashed) as `interrupted`: one `interrupted` event per such image and run, recorded now.
    /// Call it only while no build can be running on the store (under its build lock). Returns
    /// the events recorded.
    pub fn mark_interrupted(&self) -> Result<Vec<Event>, EventError> {
        // Asked of SQLite rather than by reading every build ever recorded: that read grew with
        // the log's whole history, and each cascade adds a row per image. A `started` row is open
        // when no later row of the same image and run says how the build ended.
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, time, kind, image, team, user, old_digest, new_digest, build_key,
                 reason, cause, run_id, duration_ms, result, detail FROM events s
                 WHERE s.kind = 'build' AND s.result = 'started' AND NOT EXISTS (
                     SELECT 1 FROM events e WHERE e.image = s.image AND e.run_id IS s.run_id
                     AND e.kind = 'build' AND e.result != 'started' AND e.id > s.id)
                 ORDER BY s.id",
            )
            .map_err(self.err())?;
        let open: Vec<Event> = stmt
            .query_map([], row_to_event)
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())?;
        let mut marked = Vec::new();
        for started in open {
            let event = Event {
                kind: Some(Kind::Build),
                image: started.image.clone(),
                team: started.team.clone(),
                user: started.user.clone(),
                run_id: started.run_id.clone(),
                result: "interrupted".into(),
                reason: Some(format!(
                    "the build started at {} never finished (the process was killed or crashed)",
                    started.time
                )),
                ..Event::default()
            };
            let id = self.record(&event)?;
            marked.push(Event { id, ..event });
        }
        Ok(marked)
    }

    /// The newest event of `kind` for `image` with result `ok`, if any.
    pub fn last_ok(&self, image: &str, kind: Kind) -> Result<Option<Event>, EventError> {
        self.conn
            .query_row(
                "SELECT id, time, kind, image, team, user, old_digest, new_digest, build_key, reason,
                 cause, run_id, duration_ms, result, detail FROM events
                 WHERE image = ?1 AND kind = ?2 AND result = 'ok' ORDER BY id DESC LIMIT 1",
                params![image, kind.as_str()],
                row_to_event,
            )
            .optional()
            .map_err(self.err())
    }

    /// The newest event of `kind` for `image`, whatever its result.
    pub fn last(&self, image: &str, kind: Kind) -> Result<Option<Event>, EventError> {
        self.conn
            .query_row(
                "SELECT id, time, kind, image, team, user, old_digest, new_digest, build_key, reason,
                 cause, run_id, duration_ms, result, detail FROM events
                 WHERE image = ?1 AND kind = ?2 ORDER BY id DESC LIMIT 1",
                params![image, kind.as_str()],
                row_to_event,
            )
            .optional()
            .map_err(self.err())
    }
}

/// Insert one event (its `time` defaults to now); returns its id.
fn insert(conn: &Connection, event: &Event) -> rusqlite::Result<i64> {
    let time = if event.time.is_empty() {
        now()
    } else {
        event.time.clone()
    };
    conn.prepare_cached(
        "INSERT INTO events (time, kind, image, team, user, old_digest, new_digest, build_key,
         reason, cause, run_id, duration_ms, result, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        time,
        event.kind.unwrap_or(Kind::Build).as_str(),
        event.image,
        event.team,
        event.user,
        event.old_digest,
        event.new_digest,
        event.build_key,
        event.reason,
        event.cause,
        event.run_id,
        event.duration_ms,
        event.result,
        event.detail.as_ref().map(|d| d.to_string()),
    ])?;
    Ok(conn.last_insert_rowid())
}

fn row_to_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let kind: String = row.get(2)?;
    let detail: Option<String> = row.get(14)?;
    Ok(Event {
        id: row.get(0)?,
        time: row.get(1)?,
        kind: Some(Kind::parse(&kind)),
        image: row.get(3)?,
        team: row.get(4)?,
        user: row.get(5)?,
        old_digest: row.get(6)?,
        new_digest: row.get(7)?,
        build_key: row.get(8)?,
        reason: row.get(9)?,
        cause: row.get(10)?,
        run_id: row.get(11)?,
        duration_ms: row.get(12)?,
        result: row.get(13)?,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
    })
}

/// The current time, RFC 3339 UTC with milliseconds (sorts as text).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The name of the user running strata (`SUDO_USER`, `USER`, else the passwd name of the uid).
/// Found once per process: every recorded event asks, and without `USER` each answer read the
/// passwd database (a few percent of a large no-op cascade).
pub fn current_user() -> String {
    static USER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    USER.get_or_init(find_user).clone()
}

fn find_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            let uid = nix::unistd::getuid();
            nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|u| u.name)
                .or_else(|| Some(format!("uid {uid}")))
        })
        .unwrap_or_default()
}

/// The timeline as people read it: a build's `started` row is left out once the same run recorded
/// how that build ended (the ending row carries the start time, so both would stand at the same
/// moment, the start listed after the end); a `started` row with no end (a build still running, or
/// one killed before the next run marked it interrupted) stays.
pub fn readable_timeline(events: Vec<Event>) -> Vec<Event> {
    let ended: std::collections::HashSet<(String, Option<String>)> = events
        .iter()
        .filter(|e| e.kind == Some(Kind::Build) && e.result != "started")
        .map(|e| (e.image.clone(), e.run_id.clone()))
        .collect();
    events
        .into_iter()
        .filter(|e| {
            !(e.kind == Some(Kind::Build)
                && e.result == "started"
                && ended.contains(&(e.image.clone(), e.run_id.clone())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Issue 14: a SIGKILLed build left no trace in `strata log`.
    // Issue 21: the web timeline pages by row id and the live feed resumes after a row id.
    #[test]
    fn rows_are_paged_by_id_filtered_by_team_and_resumed_after_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(&dir.path().join("events.db")).unwrap();
        let mut ids = Vec::new();
        for (i, team) in ["ops", "dev", "ops", "dev", "ops"].iter().enumerate() {
            ids.push(
                log.record(&Event {
                    kind: Some(Kind::Build),
                    image: format!("image{i}"),
                    team: Some(team.to_string()),
                    // Times out of id order: paging must still follow the ids.
                    time: format!("2026-01-0{}T00:00:00.000Z", 5 - i),
                    result: "ok".into(),
                    ..Event::default()
                })
                .unwrap(),
            );
        }
        let images = |q: Query| -> Vec<String> {
            log.query(&q)
                .unwrap()
                .into_iter()
                .map(|e| e.image)
                .collect()
        };
        let after = images(Query {
            after_id: Some(ids[1]),
            limit: 2,
            ..Query::default()
        });
        assert_eq!(after, ["image2", "image3"]);
        let page = images(Query {
            before_id: Some(ids[4]),
            limit: 2,
            ..Query::default()
        });
        assert_eq!(page, ["image2", "image3"]);
        let ops = images(Query {
            team: Some("ops".into()),
            ..Query::default()
        });
        assert_eq!(ops.len(), 3);
        assert!(
            ops.iter()
                .all(|i| ["image0", "image2", "image4"].contains(&i.as_str()))
        );
    }

    #[test]
    fn started_builds_that_never_finished_are_marked_interrupted_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(&dir.path().join("events.db")).unwrap();
        let ev = |image: &str, run: &str, result: &str| Event {
            kind: Some(Kind::Build),
            image: image.into(),
            run_id: Some(run.into()),
            result: result.into(),
            ..Event::default()
        };
        log.record(&ev("base", "r1", "started")).unwrap();
        log.record(&ev("base", "r1", "ok")).unwrap();
        log.record(&ev("corebuild", "r1", "started")).unwrap(); // killed here
        log.record(&ev("base", "r2", "started")).unwrap();
        log.record(&ev("base", "r2", "failed")).unwrap();
        let marked = log.mark_interrupted().unwrap();
        assert_eq!(marked.len(), 1);
        assert_eq!(marked[0].image, "corebuild");
        assert_eq!(marked[0].run_id.as_deref(), Some("r1"));
        let last = log.last("corebuild", Kind::Build).unwrap().unwrap();
        assert_eq!(last.result, "interrupted");
        assert!(last.reason.unwrap().contains("never finished"));
        // Marked once: the next run finds nothing more.
        assert!(log.mark_interrupted().unwrap().is_empty());
    }

    // Issue 22: a no-op cascade of 5,000 images spent a write transaction per up-to-date image.
    #[test]
    fn record_all_writes_in_order_in_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(&dir.path().join("events.db")).unwrap();
        let first = log
            .record(&Event {
                image: "base".into(),
                result: "ok".into(),
                ..Event::default()
            })
            .unwrap();
        let batch: Vec<Event> = (0..3)
            .map(|i| Event {
                kind: Some(Kind::Build),
                image: format!("app{i}"),
                result: "up-to-date".into(),
                ..Event::default()
            })
            .collect();
        let ids = log.record_all(&batch).unwrap();
        assert_eq!(ids, [first + 1, first + 2, first + 3]);
        let images: Vec<String> = log
            .query(&Query::default())
            .unwrap()
            .into_iter()
            .map(|e| e.image)
            .collect();
        assert_eq!(images, ["base", "app0", "app1", "app2"]);
        assert!(log.record_all(&[]).unwrap().is_empty());
        // The connection is back in autocommit: a later single record is not left uncommitted.
        log.record(&Event {
            image: "late".into(),
            result: "ok".into(),
            ..Event::default()
        })
        .unwrap();
        let other = EventLog::open(&dir.path().join("events.db")).unwrap();
        assert_eq!(other.query(&Query::default()).unwrap().len(), 5);
    }

    #[test]
    fn started_builds_end_only_by_a_later_row_of_the_same_image_and_run() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(&dir.path().join("events.db")).unwrap();
        let ev = |image: &str, run: Option<&str>, result: &str| Event {
            kind: Some(Kind::Build),
            image: image.into(),
            run_id: run.map(str::to_string),
            result: result.into(),
            ..Event::default()
        };
        // An ending row recorded before the start (another build's) does not close it.
        log.record(&ev("app", Some("r1"), "up-to-date")).unwrap();
        log.record(&ev("app", Some("r1"), "started")).unwrap();
        // Runs without an id pair with each other, as before.
        log.record(&ev("core", None, "started")).unwrap();
        log.record(&ev("core", None, "ok")).unwrap();
        // Another image's or another run's end does not close it either.
        log.record(&ev("mw", Some("r2"), "started")).unwrap();
        log.record(&ev("mw", Some("r3"), "ok")).unwrap();
        log.record(&ev("other", Some("r2"), "ok")).unwrap();
        let marked: Vec<(String, Option<String>)> = log
            .mark_interrupted()
            .unwrap()
            .into_iter()
            .map(|e| (e.image, e.run_id))
            .collect();
        assert_eq!(
            marked,
            [
                ("app".to_string(), Some("r1".to_string())),
                ("mw".to_string(), Some("r2".to_string())),
            ]
        );
    }

    #[test]
    fn the_readable_timeline_drops_starts_of_builds_that_ended() {
        let ev = |image: &str, run: &str, result: &str| Event {
            kind: Some(Kind::Build),
            image: image.into(),
            run_id: Some(run.into()),
            result: result.into(),
            ..Event::default()
        };
        let shown: Vec<(String, String)> = readable_timeline(vec![
            ev("base", "r1", "ok"),
            ev("base", "r1", "started"),
            ev("corebuild", "r1", "started"),
            ev("base", "r2", "started"),
        ])
        .into_iter()
        .map(|e| (e.image, e.result))
        .collect();
        assert_eq!(
            shown,
            [
                ("base".to_string(), "ok".to_string()),
                ("corebuild".to_string(), "started".to_string()),
                ("base".to_string(), "started".to_string()),
            ]
        );
    }

    #[test]
    fn record_and_query_in_order_with_filters() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(&dir.path().join("sub/events.db")).unwrap();
        for (image, result) in [
            ("corebuild", "ok"),
            ("httpd-php", "ok"),
            ("corebuild", "failed"),
        ] {
            log.record(&Event {
                kind: Some(Kind::Build),
                image: image.into(),
                team: Some("operations".into()),
                result: result.into(),
                detail: Some(serde_json::json!({"steps": 3})),
                ..Event::default()
            })
            .unwrap();
        }
        let all = log.query(&Query::default()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].image, "corebuild");
        assert_eq!(all[0].detail.as_ref().unwrap()["steps"], 3);
        let core = log
            .query(&Query {
                image: Some("corebuild".into()),
                ..Query::default()
            })
            .unwrap();
        assert_eq!(core.len(), 2);
        assert_eq!(
            log.last_ok("corebuild", Kind::Build).unwrap().unwrap().id,
            1
        );
        assert_eq!(
            log.last("corebuild", Kind::Build).unwrap().unwrap().result,
            "failed"
        );
        let newest = log
            .query(&Query {
                limit: 1,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(newest[0].result, "failed");
        let later = log
            .query(&Query {
                since: Some("2999-01-01T00:00:00Z".into()),
                ..Query::default()
            })
            .unwrap();
        assert!(later.is_empty());
    }

    #[test]
    fn two_connections_write_concurrently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        // Every thread opens the fresh database at the same moment: creating it, switching it to
        // WAL and writing the schema must all survive the collision.
        let start = std::sync::Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    let log = EventLog::open(&path).unwrap();
                    for i in 0..25 {
                        log.record(&Event {
                            image: format!("img{t}-{i}"),
                            result: "ok".into(),
                            ..Event::default()
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let log = EventLog::open(&path).unwrap();
        assert_eq!(log.query(&Query::default()).unwrap().len(), 100);
    }
}
