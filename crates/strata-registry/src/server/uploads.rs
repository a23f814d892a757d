//! Upload sessions: a blob being pushed, streamed into a temp file in the store.
//!
//! Each session owns a [`BlobWriter`] (temp file under the store's `.strata/tmp`, hashed while
//! written, holding a lease so `gc` keeps away). Nothing is visible until the final `PUT` commits
//! the writer with the client's digest; a mismatch, a cancel, an expiry or a server stop drops the
//! writer, which removes the temp file. A client that disconnects mid-chunk keeps what reached the
//! file: `GET` on the session tells it where to resume.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use http_body_util::BodyExt;
use strata_oci::{BlobInfo, BlobWriter, Digest, Store};

use super::{ApiError, ApiResult, blocking};
use crate::error::ErrorCode;

/// An upload in progress.
pub(crate) struct Upload {
    /// The repository it was started for.
    pub(crate) name: String,
    writer: Option<BlobWriter>,
    last_used: Instant,
}

impl Upload {
    /// Bytes received so far.
    pub(crate) fn offset(&self) -> u64 {
        self.writer.as_ref().map_or(0, BlobWriter::size)
    }

    /// Append a request body; returns the new offset. A body that breaks off keeps what arrived.
    pub(crate) async fn append(&mut self, body: Body) -> ApiResult<u64> {
        self.last_used = Instant::now();
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| ApiError::new(404, ErrorCode::BlobUploadUnknown, "upload is closed"))?;
        let result = stream_into(writer, body).await;
        self.last_used = Instant::now();
        result?;
        Ok(self.offset())
    }

    /// Commit the blob under `digest` (checked). The session is finished either way.
    pub(crate) fn commit(&mut self, digest: &Digest) -> ApiResult<BlobInfo> {
        let writer = self
            .writer
            .take()
            .ok_or_else(|| ApiError::new(404, ErrorCode::BlobUploadUnknown, "upload is closed"))?;
        Ok(blocking(|| writer.commit(Some(digest)))?)
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

/// The open sessions, by id.
#[derive(Default)]
pub(crate) struct Uploads {
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Upload>>>>,
}

impl Uploads {
    /// Start a session for `name`; returns its id.
    pub(crate) fn start(&self, store: &Store, name: &str) -> ApiResult<String> {
        let writer = blocking(|| store.blob_writer())?;
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(ApiError::internal)?;
        let id = hex::encode(raw);
        let upload = Upload {
            name: name.to_string(),
            writer: Some(writer),
            last_used: Instant::now(),
        };
        self.sessions
            .lock()
            .map_err(ApiError::internal)?
            .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(upload)));
        Ok(id)
    }

    /// The session `id`, if open.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<Upload>>> {
        self.sessions.lock().ok()?.get(id).cloned()
    }

    /// Close the session `id` (its temp file goes with the writer, if not committed).
    pub(crate) fn remove(&self, id: &str) -> bool {
        self.sessions
            .lock()
            .map(|mut s| s.remove(id).is_some())
            .unwrap_or(false)
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
                .map(|(id, s)| (id.clone(), s.clone()))
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
