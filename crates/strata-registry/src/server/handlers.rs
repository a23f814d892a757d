//! The spec's endpoints: manifests, blobs, uploads, tags, referrers, catalog.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::SeekFrom;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use strata_events::{Event, Kind};
use strata_oci::index::ref_name;
use strata_oci::{Descriptor, Digest, MediaType, Reference};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::route::{ManifestRef, Route, canonical_name, served_name, store_ref, valid_name};
use super::{ApiError, ApiResult, Caller, Shared, blocking, empty};
use crate::auth::Action;
use crate::error::ErrorCode;
use crate::media;

/// The largest manifest accepted (distribution's limit is 4 MiB too).
const MAX_MANIFEST: usize = 4 << 20;

/// The most `?tag=` parameters one manifest push may carry (the spec asks for at least 10).
const MAX_TAG_PARAMS: usize = 64;

pub(crate) async fn handle(
    state: &Shared,
    route: Route,
    method: &Method,
    query: &HashMap<String, String>,
    tags: &[&str],
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    if matches!(route, Route::Catalog) {
        let caller = state.caller(headers, "registry:catalog:*").await?;
        if state.auth.is_some() && caller == Caller::Nobody {
            return Err(state.challenge(headers, "registry:catalog:*", "credentials needed"));
        }
        return catalog(state, query);
    }
    let Some(raw_name) = route.name().map(str::to_string) else {
        return Err(ApiError::new(
            404,
            ErrorCode::NameUnknown,
            "no such endpoint",
        ));
    };
    let raw_name = raw_name.as_str();
    if !valid_name(raw_name) {
        return Err(ApiError::new(
            400,
            ErrorCode::NameInvalid,
            format!("invalid repository name {raw_name:?}"),
        ));
    }
    let name = canonical_name(raw_name).ok_or_else(|| {
        ApiError::new(
            400,
            ErrorCode::NameInvalid,
            format!("invalid repository name {raw_name:?}"),
        )
    })?;
    let action = match *method {
        Method::GET | Method::HEAD => Action::Pull,
        Method::DELETE if !matches!(route, Route::Upload { .. }) => Action::Delete,
        _ => Action::Push,
    };
    let scope_actions = if action == Action::Push {
        "pull,push"
    } else {
        action.as_str()
    };
    let caller = state
        .caller(headers, &format!("repository:{name}:{scope_actions}"))
        .await?;
    state.authorize(headers, &caller, &name, action)?;
    let key = strata_oci::membership::repository_key(&name).map_err(|_| {
        ApiError::new(
            400,
            ErrorCode::NameInvalid,
            format!("invalid repository name {raw_name:?}"),
        )
    })?;
    let ctx = Ctx {
        state,
        name: &name,
        key: &key,
        raw_name,
        caller: &caller,
    };
    match (route, method.clone()) {
        (Route::Manifest { reference, .. }, Method::GET) => ctx.get_manifest(&reference, true),
        (Route::Manifest { reference, .. }, Method::HEAD) => ctx.get_manifest(&reference, false),
        (Route::Manifest { reference, .. }, Method::PUT) => {
            ctx.put_manifest(&reference, tags, headers, body).await
        }
        (Route::Manifest { reference, .. }, Method::DELETE) => ctx.delete_manifest(&reference),
        (Route::Blob { digest, .. }, Method::GET) => ctx.get_blob(&digest, headers, true).await,
        (Route::Blob { digest, .. }, Method::HEAD) => ctx.get_blob(&digest, headers, false).await,
        (Route::Blob { digest, .. }, Method::DELETE) => ctx.delete_blob(&digest),
        (Route::UploadStart { .. }, Method::POST) => ctx.start_upload(query, headers, body).await,
        (Route::Upload { id, .. }, Method::PATCH) => ctx.patch_upload(&id, headers, body).await,
        (Route::Upload { id, .. }, Method::PUT) => {
            ctx.finish_upload(&id, query, headers, body).await
        }
        (Route::Upload { id, .. }, Method::GET) => ctx.upload_status(&id).await,
        (Route::Upload { id, .. }, Method::DELETE) => ctx.cancel_upload(&id).await,
        (Route::Tags { .. }, Method::GET) => ctx.tags(query),
        (Route::Referrers { digest, .. }, Method::GET) => ctx.referrers(&digest, query),
        (_, method) => Err(ApiError::new(
            405,
            ErrorCode::Unsupported,
            format!("{method} is not supported here"),
        )),
    }
}

struct Ctx<'a> {
    state: &'a Shared,
    /// The canonical repository name (`acme/app`).
    name: &'a str,
    /// Its full name in the store's membership records (`localhost/acme/app`).
    key: &'a str,
    /// The name as requested (for Location headers).
    raw_name: &'a str,
    caller: &'a Caller,
}

fn parse_digest(text: &str) -> ApiResult<Digest> {
    text.parse::<Digest>()
        .map_err(|e| ApiError::new(400, ErrorCode::DigestInvalid, e.to_string()))
}

impl Ctx<'_> {
    fn user(&self) -> Option<String> {
        self.caller.identity().map(|w| w.user.clone())
    }

    fn team(&self) -> Option<String> {
        self.caller
            .identity()
            .map(|w| w.team.clone())
            .or_else(|| self.state.owner(self.name))
    }

    /// Find the manifest a tag or digest names in this repository: 404 MANIFEST_UNKNOWN when
    /// the repository does not hold it (whatever else the store holds), or when the reference is
    /// neither a tag nor a digest (nothing can be found under it).
    fn find_manifest(&self, reference: &str) -> ApiResult<(Digest, Option<MediaType>)> {
        let unknown = || {
            ApiError::new(
                404,
                ErrorCode::ManifestUnknown,
                format!("manifest {}:{reference} is unknown", self.name),
            )
        };
        match ManifestRef::parse(reference).map_err(|_| unknown())? {
            ManifestRef::Digest(digest) => {
                let holdings = self.state.holdings()?;
                // A manifest no repository holds (its tag moved or went in the store itself,
                // e.g. a rebuild) stays readable by digest until gc, as distribution keeps old
                // revisions; one another repository holds is not this one's.
                let orphan = || holdings.holders(&digest).is_empty();
                if !(holdings.holds_manifest(self.key, &digest) || orphan())
                    || !blocking(|| self.state.store.blobs().has(&digest))
                {
                    return Err(unknown());
                }
                let media_type = holdings
                    .get(self.key)
                    .and_then(|h| h.roots.get(&digest).cloned());
                Ok((digest, media_type))
            }
            ManifestRef::Tag(tag) => {
                let descriptor =
                    blocking(|| self.state.store.refs().resolve(&store_ref(self.name, &tag)))
                        .map_err(|e| match e {
                            strata_oci::Error::ImageNotFound(_)
                            | strata_oci::Error::InvalidReference { .. } => unknown(),
                            other => ApiError::from(other),
                        })?;
                let digest = Digest::from_oci(descriptor.digest())?;
                Ok((digest, Some(descriptor.media_type().clone())))
            }
        }
    }

    /// The holders of `digest` other than this repository, with their owners, for a refusal.
    fn other_holders(&self, holders: &[&str]) -> String {
        let named: Vec<String> = holders
            .iter()
            .filter(|h| **h != self.key)
            .map(|h| {
                let name = h.strip_prefix("localhost/").unwrap_or(h);
                match self.state.owner(name) {
                    Some(team) => format!("{name} (team {team})"),
                    None => name.to_string(),
                }
            })
            .collect();
        named.join(", ")
    }

    fn get_manifest(&self, reference: &str, with_body: bool) -> ApiResult {
        let (digest, indexed_type) = self.find_manifest(reference)?;
        // A layer asked for as a manifest is not read into memory.
        let size = blocking(|| self.state.store.blobs().size(&digest))?;
        if size > MAX_MANIFEST as u64 {
            return Err(ApiError::new(
                404,
                ErrorCode::ManifestUnknown,
                format!("{digest} is not a manifest ({size} bytes)"),
            ));
        }
        let bytes = blocking(|| self.state.store.blobs().read(&digest))?;
        let media_type = media::media_type_of(&bytes)
            .or_else(|| indexed_type.map(|m| m.to_string()))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    ErrorCode::ManifestUnknown,
                    format!("{digest} is not a manifest"),
                )
            })?;
        if !media::is_manifest_type(&media_type) {
            return Err(ApiError::new(
                404,
                ErrorCode::ManifestUnknown,
                format!("{digest} is a {media_type}, not a manifest"),
            ));
        }
        let mut response = Response::new(if with_body {
            Body::from(bytes.clone())
        } else {
            Body::empty()
        });
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            media_type.parse().map_err(ApiError::internal)?,
        );
        headers.insert(header::CONTENT_LENGTH, bytes.len().into());
        headers.insert(
            "docker-content-digest",
            digest.to_string().parse().map_err(ApiError::internal)?,
        );
        headers.insert(
            header::ETAG,
            format!("\"{digest}\"")
                .parse()
                .map_err(ApiError::internal)?,
        );
        Ok(response)
    }

    /// `PUT /v2/<name>/manifests/<tag or digest>`; by digest, `?tag=` parameters (each repeated
    /// one a tag) tag it too, each answered with an `OCI-Tag` header.
    async fn put_manifest(
        &self,
        reference: &str,
        tag_params: &[&str],
        headers: &HeaderMap,
        body: Body,
    ) -> ApiResult {
        let target = ManifestRef::parse(reference)
            .map_err(|e| ApiError::new(400, ErrorCode::ManifestInvalid, strata_oci::report(&e)))?;
        // Tags given as parameters count only with a digest reference (as the spec has them).
        let mut tags: Vec<String> = Vec::new();
        if matches!(target, ManifestRef::Digest(_)) {
            if tag_params.len() > MAX_TAG_PARAMS {
                return Err(ApiError::new(
                    414,
                    ErrorCode::Unsupported,
                    format!(
                        "{} tags in one request; at most {MAX_TAG_PARAMS} are accepted",
                        tag_params.len()
                    ),
                ));
            }
            for tag in tag_params {
                match ManifestRef::parse(tag) {
                    Ok(ManifestRef::Tag(tag)) => {
                        if !tags.contains(&tag) {
                            tags.push(tag);
                        }
                    }
                    _ => {
                        return Err(ApiError::new(
                            400,
                            ErrorCode::ManifestInvalid,
                            format!("invalid tag parameter {tag:?}"),
                        ));
                    }
                }
            }
        }
        let bytes = read_limited(body, MAX_MANIFEST).await?;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let parsed = media::ParsedManifest::parse(&bytes, content_type.as_deref())
            .map_err(|e| ApiError::new(400, ErrorCode::ManifestInvalid, strata_oci::report(&e)))?;
        // A manifest pushed by digest is stored under that digest's algorithm (sha256 or
        // sha512); by tag, under sha256, unless the repository already holds these very bytes
        // under their sha512 digest (pushed by digest first, as clients of sha512 content do):
        // the tag then names that digest, so `Docker-Content-Digest` is the one the client has.
        let algorithm = match &target {
            ManifestRef::Digest(wanted) => wanted.algorithm(),
            ManifestRef::Tag(_) => {
                let sha512 = Digest::of_with(strata_oci::Algorithm::Sha512, &bytes);
                if self.state.holdings()?.holds_manifest(self.key, &sha512) {
                    strata_oci::Algorithm::Sha512
                } else {
                    strata_oci::Algorithm::Sha256
                }
            }
        };
        let digest = Digest::of_with(algorithm, &bytes);
        if let ManifestRef::Digest(wanted) = &target
            && *wanted != digest
        {
            return Err(ApiError::new(
                400,
                ErrorCode::DigestInvalid,
                format!("manifest hashes to {digest}, not {wanted}"),
            ));
        }
        let store = &self.state.store;
        let mut descriptor = Descriptor::new(
            MediaType::from(parsed.media_type.as_str()),
            bytes.len() as u64,
            digest.to_oci(),
        );
        if let Some(artifact_type) = &parsed.artifact_type {
            descriptor.set_artifact_type(Some(MediaType::from(artifact_type.as_str())));
        }
        blocking(|| store.blobs().put_as(&bytes, algorithm))?;
        let tag_entry = match &target {
            ManifestRef::Tag(tag) => Some(blocking(|| {
                store
                    .refs()
                    .tag_entry(&store_ref(self.name, tag), &descriptor)
            })?),
            ManifestRef::Digest(_) => None,
        };
        let param_entries = tags
            .iter()
            .map(|tag| {
                blocking(|| {
                    store
                        .refs()
                        .tag_entry(&store_ref(self.name, tag), &descriptor)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Under the index lock, with the repository's record: every blob and child manifest must
        // be this repository's (uploaded, mounted or pushed to it), as distribution links them;
        // a digest known only to another repository is unknown here. A blob no repository holds
        // is readable here (see `get_blob`), so it may be referenced too: a server killed between
        // storing an upload and linking it leaves such a blob, which the client's HEAD then
        // finds and does not upload again.
        let (image, old) =
            self.state
                .update_repository(self.key, |index, record, holdings| {
                    if let Some(missing) = parsed.references.iter().find(|d| {
                        !store.blobs().has(d)
                            || (!holdings.holds_blob(self.key, d)
                                && !holdings.holders(d).is_empty())
                    }) {
                        return Ok((
                            false,
                            Err(ApiError::new(
                                400,
                                ErrorCode::ManifestBlobUnknown,
                                format!(
                                    "manifest references {missing}, which is not in repository {}",
                                    self.name
                                ),
                            )),
                        ));
                    }
                    record
                        .manifests
                        .insert(digest.clone(), parsed.media_type.clone());
                    for child in &parsed.references {
                        record.blobs.remove(child);
                    }
                    let (image, old) = match (&target, tag_entry) {
                        (ManifestRef::Tag(tag), Some((parsed_ref, entry))) => {
                            let old = index
                                .manifests()
                                .iter()
                                .find(|d| {
                                    ref_name(d).is_some_and(|n| {
                                        Reference::parse(n).is_ok_and(|r| r == parsed_ref)
                                    })
                                })
                                .map(|d| d.digest().to_string());
                            strata_oci::index::set_tag_entry(index, &parsed_ref, entry);
                            if parsed.subject.is_some() {
                                strata_oci::index::add_root_entry(index, descriptor.clone());
                            }
                            (format!("{}:{tag}", self.name), old)
                        }
                        _ if !param_entries.is_empty() => {
                            for (parsed_ref, entry) in &param_entries {
                                strata_oci::index::set_tag_entry(index, parsed_ref, entry.clone());
                            }
                            if parsed.subject.is_some() {
                                strata_oci::index::add_root_entry(index, descriptor.clone());
                            }
                            (format!("{}@{digest}", self.name), None)
                        }
                        _ => {
                            strata_oci::index::add_root_entry(index, descriptor.clone());
                            (format!("{}@{digest}", self.name), None)
                        }
                    };
                    Ok((true, Ok((image, old))))
                })??;
        tracing::info!(
            image,
            %digest,
            user = self.user(),
            "pushed manifest"
        );
        self.state.record(Event {
            kind: Some(Kind::Push),
            image,
            team: self.team(),
            user: self.user(),
            old_digest: old,
            new_digest: Some(digest.to_string()),
            result: "ok".into(),
            detail: Some(if tags.is_empty() {
                serde_json::json!({ "mediaType": parsed.media_type })
            } else {
                serde_json::json!({ "mediaType": parsed.media_type, "tags": tags })
            }),
            ..Event::default()
        });
        let mut extra = vec![
            (
                "location",
                format!("/v2/{}/manifests/{digest}", self.raw_name),
            ),
            ("docker-content-digest", digest.to_string()),
        ];
        if let Some(subject) = &parsed.subject {
            extra.push(("oci-subject", subject.to_string()));
        }
        extra.extend(tags.iter().map(|tag| ("oci-tag", tag.clone())));
        Ok(empty(StatusCode::CREATED, &extra))
    }

    fn delete_manifest(&self, reference: &str) -> ApiResult {
        let unknown = || {
            ApiError::new(
                404,
                ErrorCode::ManifestUnknown,
                format!("manifest {}:{reference} is unknown", self.name),
            )
        };
        let target = ManifestRef::parse(reference).map_err(|_| unknown())?;
        let (removed, digest) = self.state.update_repository(self.key, |index, record, holdings| {
            match &target {
                ManifestRef::Tag(tag) => {
                    // The tag goes; the manifest stays readable by digest until deleted by digest.
                    let reference = store_ref(self.name, tag);
                    let parsed = Reference::parse(&reference)?;
                    let digest = index
                        .manifests()
                        .iter()
                        .find(|d| {
                            ref_name(d)
                                .is_some_and(|n| Reference::parse(n).is_ok_and(|r| r == parsed))
                        })
                        .map(|d| d.digest().to_string());
                    let removed =
                        strata_oci::index::remove_tag_entry(index, &reference, &parsed);
                    Ok((removed, Ok((removed, digest))))
                }
                ManifestRef::Digest(digest) => {
                    let held = holdings.get(self.key);
                    if !held.is_some_and(|h| h.roots.contains_key(digest)) {
                        // Not this repository's (another's, or part of one of its images).
                        return Ok((false, Ok((false, None))));
                    }
                    let derived = held.is_some_and(|h| h.derived.contains(digest));
                    let others: Vec<&str> = holdings
                        .repositories()
                        .filter(|r| {
                            *r != self.key
                                && holdings
                                    .get(r)
                                    .is_some_and(|h| h.roots.contains_key(digest))
                        })
                        .collect();
                    if derived && !others.is_empty() {
                        // A referrer attached in the store to an image several repositories
                        // hold: deleting it here would take it from them too.
                        return Ok((
                            false,
                            Err(ApiError::new(
                                403,
                                ErrorCode::Denied,
                                format!(
                                    "{digest} is also held by {}; it is not {}'s alone to delete",
                                    self.other_holders(&others),
                                    self.name
                                ),
                            )),
                        ));
                    }
                    // This repository's tags on it, its record's link, and the untagged root
                    // when no other repository links it.
                    let tags: Vec<(String, Reference)> = index
                        .manifests()
                        .iter()
                        .filter(|d| d.digest() == &digest.to_oci())
                        .filter_map(|d| ref_name(d).map(str::to_string))
                        .filter_map(|n| Reference::parse(&n).ok().map(|r| (n, r)))
                        .filter(|(_, r)| r.name() == self.key)
                        .collect();
                    let mut changed = false;
                    for (name, parsed) in &tags {
                        changed |= strata_oci::index::remove_tag_entry(index, name, parsed);
                    }
                    record.manifests.remove(digest);
                    let linked_elsewhere = others.iter().any(|r| {
                        holdings
                            .get(r)
                            .is_some_and(|h| !h.derived.contains(digest))
                    });
                    if !linked_elsewhere {
                        changed |= strata_oci::index::remove_root_entry(index, digest);
                    }
                    Ok((changed, Ok((true, Some(digest.to_string())))))
                }
            }
        })??;
        if removed && let ManifestRef::Digest(digest) = &target {
            self.drop_if_unheld(digest)?;
        }
        if !removed {
            return Err(ApiError::new(
                404,
                ErrorCode::ManifestUnknown,
                format!("manifest {}:{reference} is unknown", self.name),
            ));
        }
        tracing::info!(
            repository = self.name,
            reference,
            user = self.user(),
            "deleted manifest"
        );
        self.state.record(Event {
            kind: Some(Kind::Delete),
            image: match &target {
                ManifestRef::Tag(tag) => format!("{}:{tag}", self.name),
                ManifestRef::Digest(d) => format!("{}@{d}", self.name),
            },
            team: self.team(),
            user: self.user(),
            old_digest: digest,
            result: "ok".into(),
            ..Event::default()
        });
        Ok(empty(StatusCode::ACCEPTED, &[]))
    }

    async fn get_blob(&self, digest: &str, headers: &HeaderMap, with_body: bool) -> ApiResult {
        let digest = parse_digest(digest)?;
        let path = self.state.store.blobs().path(&digest);
        let unknown = || {
            ApiError::new(
                404,
                ErrorCode::BlobUnknown,
                format!("blob {digest} is unknown"),
            )
        };
        // As for manifests: a blob no repository holds (left by a tag that moved in the store)
        // stays readable until gc; one another repository holds is not this one's.
        let holdings = self.state.holdings()?;
        if !holdings.holds_blob(self.key, &digest) && !holdings.holders(&digest).is_empty() {
            return Err(unknown());
        }
        let mut file = tokio::fs::File::open(&path).await.map_err(|_| unknown())?;
        let size = file.metadata().await.map_err(ApiError::internal)?.len();
        let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            Some(value) => Some(parse_range(value, size).ok_or_else(|| {
                ApiError::new(
                    416,
                    ErrorCode::BlobUnknown,
                    format!("unsatisfiable range {value}"),
                )
                .with_header(header::CONTENT_RANGE, format!("bytes */{size}"))
            })?),
            None => None,
        };
        let (status, start, len) = match range {
            Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
            None => (StatusCode::OK, 0, size),
        };
        let body = if with_body && len > 0 {
            if start > 0 {
                file.seek(SeekFrom::Start(start))
                    .await
                    .map_err(ApiError::internal)?;
            }
            let reader = file.take(len);
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                reader,
                256 * 1024,
            ))
        } else {
            Body::empty()
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let h = response.headers_mut();
        h.insert(header::CONTENT_LENGTH, len.into());
        h.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(
            header::ACCEPT_RANGES,
            header::HeaderValue::from_static("bytes"),
        );
        h.insert(
            "docker-content-digest",
            digest.to_string().parse().map_err(ApiError::internal)?,
        );
        if status == StatusCode::PARTIAL_CONTENT {
            h.insert(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{size}", start + len - 1)
                    .parse()
                    .map_err(ApiError::internal)?,
            );
        }
        Ok(response)
    }

    fn delete_blob(&self, digest: &str) -> ApiResult {
        let digest = parse_digest(digest)?;
        let store = &self.state.store;
        // Under the index lock: no tag can start using the blob while it goes. Only this
        // repository's link goes; the file only when no repository and no image holds it.
        let unlink = self.state.update_repository(self.key, |index, record, holdings| {
            if !holdings.holds_blob(self.key, &digest) || !store.blobs().has(&digest) {
                return Ok((
                    false,
                    Err(ApiError::new(
                        404,
                        ErrorCode::BlobUnknown,
                        format!("blob {digest} is unknown"),
                    )),
                ));
            }
            if !record.blobs.contains(&digest) {
                return Ok((
                    false,
                    Err(ApiError::new(
                        405,
                        ErrorCode::Unsupported,
                        format!(
                            "blob {digest} is used by an image of {}; delete that manifest first",
                            self.name
                        ),
                    )),
                ));
            }
            record.blobs.remove(&digest);
            let others = holdings.holders(&digest).into_iter().any(|r| r != self.key);
            let unlink = !others && blob_user(store, index.manifests(), &digest)?.is_none();
            if unlink {
                let path = store.blobs().path(&digest);
                std::fs::remove_file(&path).map_err(|source| strata_oci::Error::Io {
                    path: path.clone(),
                    source,
                })?;
            }
            Ok((false, Ok(unlink)))
        })??;
        tracing::debug!(%digest, unlink, "blob link removed");
        tracing::info!(repository = self.name, %digest, user = self.user(), "deleted blob");
        self.state.record(Event {
            kind: Some(Kind::Delete),
            image: format!("{}@{digest}", self.name),
            team: self.team(),
            user: self.user(),
            old_digest: Some(digest.to_string()),
            result: "ok".into(),
            detail: Some(serde_json::json!({ "what": "blob" })),
            ..Event::default()
        });
        Ok(empty(StatusCode::ACCEPTED, &[]))
    }

    fn upload_location(&self, id: &str) -> String {
        format!("/v2/{}/blobs/uploads/{id}", self.raw_name)
    }

    fn blob_created(&self, digest: &Digest) -> Response {
        empty(
            StatusCode::CREATED,
            &[
                ("location", format!("/v2/{}/blobs/{digest}", self.raw_name)),
                ("docker-content-digest", digest.to_string()),
            ],
        )
    }

    fn upload_accepted(&self, status: StatusCode, id: &str, offset: u64) -> Response {
        let mut headers = vec![
            ("location", self.upload_location(id)),
            ("docker-upload-uuid", id.to_string()),
            ("content-length", "0".to_string()),
        ];
        // `Range: 0-0` for an empty session, as distribution sends.
        headers.push(("range", format!("0-{}", offset.saturating_sub(1))));
        empty(status, &headers)
    }

    async fn start_upload(
        &self,
        query: &HashMap<String, String>,
        headers: &HeaderMap,
        body: Body,
    ) -> ApiResult {
        let store = &self.state.store;
        if let Some(mount) = query.get("mount") {
            let digest = parse_digest(mount)?;
            // A mount needs a `from` the caller may read that holds the blob; otherwise an upload
            // session starts, as the spec says.
            let from = query
                .get("from")
                .and_then(|f| canonical_name(f))
                .filter(|from| {
                    self.state
                        .authorize(headers, self.caller, from, Action::Pull)
                        .is_ok()
                })
                .and_then(|from| strata_oci::membership::repository_key(&from).ok());
            if let Some(from) = from
                && self.state.holdings()?.holds_blob(&from, &digest)
                && blocking(|| store.blobs().has(&digest))
            {
                self.link_blob(&digest)?;
                return Ok(self.blob_created(&digest));
            }
        }
        if let Some(digest) = query.get("digest") {
            // Monolithic upload: the body is the whole blob.
            let digest = parse_digest(digest)?;
            let mut writer = blocking(|| store.blobs().writer_for(digest.algorithm()))?;
            super::uploads::stream_into(&mut writer, body).await?;
            // The fresh-blob lease is taken while the writer still holds its own: no gap for gc.
            self.state.hold_fresh_blobs()?;
            blocking(|| writer.commit(Some(&digest)))?;
            self.link_blob(&digest)?;
            return Ok(self.blob_created(&digest));
        }
        // `?digest-algorithm=sha512` (distribution-spec 1.2): hash the chunks as they arrive with
        // the algorithm the final digest will use.
        let algorithm = match query.get("digest-algorithm") {
            None => strata_oci::Algorithm::Sha256,
            Some(name) => strata_oci::Algorithm::from_name(name).ok_or_else(|| {
                ApiError::new(
                    400,
                    ErrorCode::DigestInvalid,
                    format!("digest algorithm {name:?} is not supported (sha256, sha512)"),
                )
            })?,
        };
        let user = self.user();
        let id = self
            .state
            .uploads
            .start(store, self.name, user.as_deref(), algorithm)?;
        Ok(self.upload_accepted(StatusCode::ACCEPTED, &id, 0))
    }

    /// After a delete by digest: remove the manifest's blob when nothing holds it any more (no
    /// repository, no `index.json` entry), so it is not readable as an unheld revision.
    fn drop_if_unheld(&self, digest: &Digest) -> ApiResult<()> {
        let store = &self.state.store;
        self.state
            .update_repository(self.key, |index, _, holdings| {
                if holdings.holders(digest).is_empty()
                    && blob_user(store, index.manifests(), digest)?.is_none()
                {
                    let path = store.blobs().path(digest);
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(source) => return Err(strata_oci::Error::Io { path, source }),
                    }
                }
                Ok((false, ()))
            })
    }

    /// Record the blob as this repository's (unless it holds it already).
    fn link_blob(&self, digest: &Digest) -> ApiResult<()> {
        if self.state.holdings()?.holds_blob(self.key, digest) {
            return Ok(());
        }
        self.state
            .update_repository(self.key, |_, record, holdings| {
                if !holdings.holds_blob(self.key, digest) {
                    record.blobs.insert(digest.clone());
                }
                Ok((false, ()))
            })
    }

    fn session(
        &self,
        id: &str,
    ) -> ApiResult<std::sync::Arc<tokio::sync::Mutex<super::uploads::Upload>>> {
        self.state.uploads.get(id).ok_or_else(|| {
            ApiError::new(
                404,
                ErrorCode::BlobUploadUnknown,
                format!("upload {id} is unknown (finished, cancelled or expired)"),
            )
        })
    }

    async fn patch_upload(&self, id: &str, headers: &HeaderMap, body: Body) -> ApiResult {
        let session = self.session(id)?;
        let mut upload = session.lock().await;
        self.check_session(&upload, id)?;
        check_content_range(headers, upload.offset(), id, self)?;
        let offset = upload.append(&self.state.store, body).await?;
        Ok(self.upload_accepted(StatusCode::ACCEPTED, id, offset))
    }

    /// A session is answered only to the repository and the user that opened it; to anyone
    /// else it does not exist.
    fn check_session(&self, upload: &super::uploads::Upload, id: &str) -> ApiResult<()> {
        if upload.name != self.name || upload.user != self.user() {
            return Err(ApiError::new(
                404,
                ErrorCode::BlobUploadUnknown,
                format!("upload {id} is unknown (finished, cancelled or expired)"),
            ));
        }
        Ok(())
    }

    async fn finish_upload(
        &self,
        id: &str,
        query: &HashMap<String, String>,
        headers: &HeaderMap,
        body: Body,
    ) -> ApiResult {
        let digest = parse_digest(query.get("digest").map(String::as_str).ok_or_else(|| {
            ApiError::new(
                400,
                ErrorCode::DigestInvalid,
                "the final PUT needs ?digest=",
            )
        })?)?;
        let session = self.session(id)?;
        let mut upload = session.lock().await;
        self.check_session(&upload, id)?;
        check_content_range(headers, upload.offset(), id, self)?;
        let store = &self.state.store;
        let appended = upload.append(store, body).await;
        let committed = appended
            .and_then(|_| self.state.hold_fresh_blobs())
            .and_then(|_| upload.commit(store, &digest));
        drop(upload);
        self.state.uploads.remove(id);
        committed?;
        self.link_blob(&digest)?;
        Ok(self.blob_created(&digest))
    }

    async fn upload_status(&self, id: &str) -> ApiResult {
        let session = self.session(id)?;
        let upload = session.lock().await;
        self.check_session(&upload, id)?;
        Ok(self.upload_accepted(StatusCode::NO_CONTENT, id, upload.offset()))
    }

    async fn cancel_upload(&self, id: &str) -> ApiResult {
        let session = self.session(id)?;
        self.check_session(&*session.lock().await, id)?;
        self.state.uploads.remove(id);
        Ok(empty(StatusCode::NO_CONTENT, &[]))
    }

    fn tags(&self, query: &HashMap<String, String>) -> ApiResult {
        let tags = blocking(|| self.state.store.refs().list())?;
        let all: BTreeSet<String> = tags
            .iter()
            .filter_map(|t| Reference::parse(&t.name).ok())
            .filter(|r| served_name(r) == self.name)
            .filter_map(|r| r.tag().map(str::to_string))
            .collect();
        if all.is_empty() {
            return Err(ApiError::new(
                404,
                ErrorCode::NameUnknown,
                format!("repository {} is unknown", self.name),
            ));
        }
        let (page, next) = paginate(&all, query)?;
        let body = serde_json::json!({ "name": self.raw_name, "tags": page });
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some((n, last)) = next {
            let link = format!(
                "</v2/{}/tags/list?n={n}&last={last}>; rel=\"next\"",
                self.raw_name
            );
            response
                .headers_mut()
                .insert(header::LINK, link.parse().map_err(ApiError::internal)?);
        }
        Ok(response)
    }

    fn referrers(&self, digest: &str, query: &HashMap<String, String>) -> ApiResult {
        let digest = parse_digest(digest)?;
        // Media types hold no spaces: a space here is a `+` sent unescaped
        // (`application/vnd.in-toto+json`), which form decoding turned into a space.
        let artifact_type = query
            .get("artifactType")
            .filter(|s| !s.is_empty())
            .map(|s| s.replace(' ', "+"));
        let holdings = self.state.holdings()?;
        let found: Vec<Descriptor> = blocking(|| {
            self.state
                .store
                .referrers(&digest, artifact_type.as_deref())
        })?
        .into_iter()
        .filter(|d| {
            Digest::from_oci(d.digest()).is_ok_and(|d| holdings.holds_manifest(self.key, &d))
        })
        .collect();
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": found,
        });
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, media::OCI_INDEX)],
            body.to_string(),
        )
            .into_response();
        if artifact_type.is_some() {
            response.headers_mut().insert(
                "oci-filters-applied",
                header::HeaderValue::from_static("artifactType"),
            );
        }
        Ok(response)
    }
}

/// Who uses `digest` (a root's name or digest), walking every `index.json` entry down.
fn blob_user(
    store: &strata_oci::Store,
    roots: &[Descriptor],
    digest: &Digest,
) -> strata_oci::Result<Option<String>> {
    let mut seen = HashSet::new();
    for root in roots {
        let label = ref_name(root)
            .map(str::to_string)
            .unwrap_or_else(|| root.digest().to_string());
        let mut pending = vec![Digest::from_oci(root.digest())?];
        while let Some(next) = pending.pop() {
            if next == *digest {
                return Ok(Some(label));
            }
            // Layers are never manifests: skip anything too big to be one unread.
            if !seen.insert(next.clone())
                || !store
                    .blobs()
                    .size(&next)
                    .is_ok_and(|size| size <= MAX_MANIFEST as u64)
            {
                continue;
            }
            let bytes = store.blobs().read(&next)?;
            if let Ok(parsed) = media::ParsedManifest::parse(&bytes, None) {
                pending.extend(parsed.references);
            }
        }
    }
    Ok(None)
}

fn check_content_range(headers: &HeaderMap, offset: u64, id: &str, ctx: &Ctx<'_>) -> ApiResult<()> {
    let Some(value) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let value = value
        .trim()
        .trim_start_matches("bytes ")
        .trim_start_matches("bytes=");
    let start = value
        .split('-')
        .next()
        .and_then(|s| s.trim().parse::<u64>().ok());
    if start != Some(offset) {
        return Err(ApiError::new(
            416,
            ErrorCode::BlobUploadInvalid,
            format!("chunk starts at {value}, the upload is at {offset}"),
        )
        .with_header(header::LOCATION, ctx.upload_location(id))
        .with_header(header::RANGE, format!("0-{}", offset.saturating_sub(1)))
        .with_header(
            header::HeaderName::from_static("docker-upload-uuid"),
            id.to_string(),
        ));
    }
    Ok(())
}

/// `bytes=START-END`, `bytes=START-` or `bytes=-SUFFIX` within `size`: inclusive bounds.
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.checked_sub(n.min(size))?, size - 1)
        }
        (start, "") => (start.parse().ok()?, size - 1),
        (start, end) => (start.parse().ok()?, end.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

/// A page of names, and the next page's `n` and `last` when there is more.
type Page = (Vec<String>, Option<(usize, String)>);

/// The `n`/`last` page of a sorted list, and the next page's (n, last) when there is more.
fn paginate(all: &BTreeSet<String>, query: &HashMap<String, String>) -> ApiResult<Page> {
    let after: Vec<&String> = match query.get("last") {
        Some(last) => all
            .range::<String, _>((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded))
            .collect(),
        None => all.iter().collect(),
    };
    let n = match query.get("n") {
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| ApiError::new(400, ErrorCode::Unsupported, format!("invalid n={n}")))?,
        None => usize::MAX,
    };
    let page: Vec<String> = after.iter().take(n).map(|s| s.to_string()).collect();
    let next = (after.len() > page.len() && n > 0)
        .then(|| page.last().map(|last| (n, last.clone())))
        .flatten();
    Ok((page, next))
}

fn catalog(state: &Shared, query: &HashMap<String, String>) -> ApiResult {
    let tags = blocking(|| state.store.refs().list())?;
    let all: BTreeSet<String> = tags
        .iter()
        .filter_map(|t| Reference::parse(&t.name).ok())
        .map(|r| served_name(&r))
        .filter(|n| valid_name(n))
        .collect();
    let (page, next) = paginate(&all, query)?;
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "repositories": page }).to_string(),
    )
        .into_response();
    if let Some((n, last)) = next {
        let link = format!("</v2/_catalog?n={n}&last={last}>; rel=\"next\"");
        response
            .headers_mut()
            .insert(header::LINK, link.parse().map_err(ApiError::internal)?);
    }
    Ok(response)
}

async fn read_limited(mut body: Body, limit: usize) -> ApiResult<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                400,
                ErrorCode::ManifestInvalid,
                format!("reading the body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(ApiError::new(
                    413,
                    ErrorCode::SizeInvalid,
                    format!("manifest larger than {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,4-5", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn pages() {
        let all: BTreeSet<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let (page, next) = paginate(&all, &q(&[("n", "2")])).unwrap();
        assert_eq!(page, ["a", "b"]);
        assert_eq!(next, Some((2, "b".to_string())));
        let (page, next) = paginate(&all, &q(&[("n", "2"), ("last", "b")])).unwrap();
        assert_eq!(page, ["c", "d"]);
        assert_eq!(next, None);
        let (page, _) = paginate(&all, &q(&[("last", "bb")])).unwrap();
        assert_eq!(page, ["c", "d"]);
        let (page, next) = paginate(&all, &q(&[("n", "0")])).unwrap();
        assert!(page.is_empty() && next.is_none());
    }
}
