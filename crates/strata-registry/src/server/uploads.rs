//! Upload sessions: a blob being pushed, streamed into a temp file in the store.
//!
//! Each session keeps a [`ParkedBlob`] (temp file under the store's `.strata/tmp`, the hash state
//! so far): between requests it holds no file descriptor; a request reopens the file, appends,
//! and parks it again. While any session is open the sessions hold one store lease, so `gc`
//! keeps away from their temp files. Nothing is visible until the final `PUT` commits the blob
//! with the client's digest; a mismatch, a cancel, an expiry or a server stop drops the session,
//! which removes the temp file. A client that disconnects mid-chunk keeps what reached the file:
//! `GET` on the session tells it where to resume.
//!
//! A session belongs to the repository and the user that opened it: any other caller is told it
//! does not exist. Sessions are capped in total and per user (429 TOOMANYREQUESTS).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use http_body_util::BodyExt;
use strata_oci::{Algorithm, BlobInfo, BlobWriter, Digest, ParkedBlob, Store};

use super::{ApiError, ApiResult, blocking};
use crate::error::ErrorCode;

/// An upload in progress.
pub(crate) struct Upload {
    /// The repository it was started for.
    pub(crate) name: String,
    /// The user who started it (None: anonymous).
    pub(crate) user: Option<String>,
    blob: Option<ParkedBlob>,
    last_used: Instant,
}

impl Upload {
    /// Bytes received so far.
    pub(crate) fn offset(&self) -> u64 {
        self.blob.as_ref().map_or(0, ParkedBlob::size)
    }

    /// Append a request body; returns the new offset. A body that breaks off keeps what arrived.
    pub(crate) async fn append(&mut self, store: &Store, body: Body) -> ApiResult<u64> {
        self.last_used = Instant::now();
        let parked = self
            .blob
            .take()
            .ok_or_else(|| ApiError::new(404, ErrorCode::BlobUploadUnknown, "upload is closed"))?;
        let mut writer = blocking(|| parked.resume(store))?;
        let result = stream_into(&mut writer, body).await;
        self.blob = Some(blocking(|| writer.park())?);
        self.last_used = Instant::now();
        result?;
        Ok(self.offset())
    }

    /// Commit the blob under `digest` (checked). The session is finished either way.
    pub(crate) fn commit(&mut self, store: &Store, digest: &Digest) -> ApiResult<BlobInfo> {
        let parked = self
            .blob
            .take()
            .ok_or_else(|| ApiError::new(404, ErrorCode::BlobUploadUnknown, "upload is closed"))?;
        Ok(blocking(|| parked.resume(store)?.commit(Some(digest)))?)
    }
}

/// Stream a body into a blob writer, in batches of up to 1 MiB per blocking write.
pub(crate) async fn stream_into(writer: &mut BlobWriter, mut body: Body) -> ApiResult<()> {
    const BATCH: usize = 1 << 20;
    let mut batch: Vec<u8> = Vec::with_capacity(BATCH);
    let flush = |writer: &mut BlobWriter, batch: &mut Vec<u8>| -> ApiResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        blocking(|| writer.write_all(batch)).map_err(ApiError::internal)?;
        batch.clear();
        Ok(())
    };
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                // Keep what arrived, so the client can resume from the session's offset.
                flush(writer, &mut batch)?;
                return Err(ApiError::new(
                    400,
                    ErrorCode::BlobUploadInvalid,
                    format!("request body broke off: {error}"),
                ));
            }
        };
        if let Ok(data) = frame.into_data() {
            if batch.is_empty() && data.len() >= BATCH {
                blocking(|| writer.write_all(&data)).map_err(ApiError::internal)?;
                continue;
            }
            batch.extend_from_slice(&data);
            if batch.len() >= BATCH {
                flush(writer, &mut batch)?;
            }
        }
    }
    flush(writer, &mut batch)
}

/// One open session, shared by the requests on it.
pub(crate) type Session = Arc<tokio::sync::Mutex<Upload>>;

/// The open sessions, by id.
pub(crate) struct Uploads {
    /// Sessions by id, with the user who opened each.
    sessions: Mutex<HashMap<String, (Option<String>, Session)>>,
    /// Held while any session is open: keeps `gc` away from the parked temp files.
    lease: Mutex<Option<strata_oci::Lease>>,
    max_total: usize,
    max_per_user: usize,
}

impl Uploads {
    /// No sessions; at most `max_total` open at once, `max_per_user` per user.
    pub(crate) fn new(max_total: usize, max_per_user: usize) -> Uploads {
        Uploads {
            sessions: Mutex::new(HashMap::new()),
            lease: Mutex::new(None),
            max_total,
            max_per_user,
        }
    }

    /// Start a session for `name` on behalf of `user`, hashing with `algorithm` as bytes arrive
    /// (a final digest of another algorithm is checked by hashing the file again); returns its
    /// id. 429 over the caps.
    pub(crate) fn start(
        &self,
        store: &Store,
        name: &str,
        user: Option<&str>,
        algorithm: Algorithm,
    ) -> ApiResult<String> {
        let mut sessions = self.sessions.lock().map_err(ApiError::internal)?;
        if sessions.len() >= self.max_total {
            return Err(ApiError::new(
                429,
                ErrorCode::TooManyRequests,
                format!(
                    "{} upload sessions are open, the most this registry allows; finish or cancel some, or retry later",
                    sessions.len()
                ),
            ));
        }
        let mine = sessions
            .values()
            .filter(|(owner, _)| owner.as_deref() == user)
            .count();
        if mine >= self.max_per_user {
            return Err(ApiError::new(
                429,
                ErrorCode::TooManyRequests,
                format!(
                    "{} has {mine} upload sessions open, the most one user may; finish or cancel some first",
                    user.unwrap_or("anonymous")
                ),
            ));
        }
        {
            let mut lease = self.lease.lock().map_err(ApiError::internal)?;
            if lease.is_none() {
                *lease = Some(blocking(|| store.lease())?);
            }
        }
        let writer = blocking(|| {
            store
                .blobs()
                .writer_for(algorithm)
                .and_then(BlobWriter::park)
        })?;
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(ApiError::internal)?;
        let id = hex::encode(raw);
        let upload = Upload {
            name: name.to_string(),
            user: user.map(str::to_string),
            blob: Some(writer),
            last_used: Instant::now(),
        };
        sessions.insert(
            id.clone(),
            (
                user.map(str::to_string),
                Arc::new(tokio::sync::Mutex::new(upload)),
            ),
        );
        Ok(id)
    }

    /// The session `id`, if open.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<Upload>>> {
        self.sessions.lock().ok()?.get(id).map(|(_, s)| s.clone())
    }

    /// Close the session `id` (its temp file goes with the writer, if not committed).
    pub(crate) fn remove(&self, id: &str) -> bool {
        let Ok(mut sessions) = self.sessions.lock() else {
            return false;
        };
        let removed = sessions.remove(id).is_some();
        if sessions.is_empty()
            && let Ok(mut lease) = self.lease.lock()
        {
            *lease = None;
        }
        removed
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Drop sessions idle longer than `timeout` (sessions busy with a request are kept).
    pub(crate) async fn expire(&self, timeout: Duration) -> usize {
        let candidates: Vec<(String, Arc<tokio::sync::Mutex<Upload>>)> = match self.sessions.lock()
        {
            Ok(sessions) => sessions
                .iter()
                .map(|(id, (_, s))| (id.clone(), s.clone()))
                .collect(),
            Err(_) => return 0,
        };
        let mut dropped = 0;
        for (id, session) in candidates {
            let Ok(upload) = session.try_lock() else {
                continue;
            };
            if upload.last_used.elapsed() >= timeout {
                drop(upload);
                if self.remove(&id) {
                    dropped += 1;
                }
            }
        }
        dropped
    }
}
