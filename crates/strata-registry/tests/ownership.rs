//! Issue 14: a team may change, and read through its repository, only what its repository holds.
//! Two teams on one registry: operations owns acme/corebuild, middleware owns acme/httpd-php.

use std::net::SocketAddr;
use std::path::Path;

use strata_oci::{Digest, Store};
use strata_registry::{AuthConfig, RunningServer, ServerOptions};
use strata_remote::auth::basic_header;
use strata_remote::copy::Location;
use strata_remote::{Client, ClientOptions, Credentials, RemoteRef};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

struct Fixture {
    dir: tempfile::TempDir,
    server: RunningServer,
}

fn auth(dir: &Path, unknown: &str, extra_owners: &str) -> AuthConfig {
    let ops = bcrypt::hash("ops-pass", 4).unwrap();
    let mid = bcrypt::hash("mid-pass", 4).unwrap();
    let text = format!(
        r#"
pull = "authenticated"
unknown_repositories = "{unknown}"
registry = "registry.example.com"
[users.olga]
password = "{ops}"
team = "operations"
[users.max]
password = "{mid}"
team = "middleware"
[owners]
"acme/corebuild" = "operations"
"acme/httpd-php" = "middleware"
{extra_owners}
"#
    );
    let path = dir.join("auth.toml");
    std::fs::write(&path, text).unwrap();
    AuthConfig::load(&path).unwrap()
}

impl Fixture {
    fn new(unknown: &str, extra_owners: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Self::serving(dir, unknown, extra_owners)
    }

    fn serving(dir: tempfile::TempDir, unknown: &str, extra_owners: &str) -> Fixture {
        let served = Store::init(dir.path().join("served")).unwrap();
        let options = ServerOptions {
            auth: Some(auth(dir.path(), unknown, extra_owners)),
            ..ServerOptions::default()
        };
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = RunningServer::start(served, options, addr).unwrap();
        Fixture { dir, server }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr())
    }

    fn served(&self) -> Store {
        Store::open(self.dir.path().join("served")).unwrap()
    }

    fn remote(&self, rest: &str) -> RemoteRef {
        RemoteRef::parse(&format!("{}/{rest}", self.server.addr())).unwrap()
    }

    /// A fresh random image in a source layout, tagged `name`, pushed by `who` to `remote`.
    fn push_image(&self, who: &str, name: &str, remote: &str) -> strata_oci::Image {
        let src = self
            .dir
            .path()
            .join(format!("src-{}", name.replace(['/', ':'], "-")));
        let store = Store::init(&src).unwrap();
        let image = strata_oci::random::image(&store, 1, 3000).unwrap();
        store.refs().tag(name, image.descriptor()).unwrap();
        strata_remote::copy(
            &client(who),
            &Location::Layout {
                dir: src,
                reference: name.into(),
            },
            &Location::Remote(self.remote(remote)),
        )
        .unwrap();
        image
    }
}

fn client(creds: &str) -> Client {
    Client::new(ClientOptions {
        credentials: Some(Credentials::parse(creds).unwrap()),
        docker_config: false,
        ..ClientOptions::default()
    })
    .unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    )
}

fn olga() -> String {
    basic_header("olga", "ops-pass")
}

fn max() -> String {
    basic_header("max", "mid-pass")
}

fn body_of(r: &mut ureq::http::Response<ureq::Body>) -> String {
    r.body_mut().read_to_string().unwrap()
}

fn error_code(r: &mut ureq::http::Response<ureq::Body>) -> String {
    let v: serde_json::Value = serde_json::from_str(&body_of(r)).unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

/// Upload `bytes` monolithically to `repo` as `who`; returns the digest.
fn upload(f: &Fixture, who: &str, repo: &str, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    let r = agent()
        .post(f.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
        .header("authorization", who)
        .send(bytes)
        .unwrap();
    assert_eq!(r.status(), 201, "upload to {repo}");
    d
}

/// An attestation-like referrer of `subject`, pushed by digest to `repo` as `who`.
fn push_referrer(f: &Fixture, who: &str, repo: &str, subject: &strata_oci::Image) -> Digest {
    let empty = upload(f, who, repo, b"{}");
    let referrer = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.in-toto+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest().to_string(), "size": subject.descriptor().size()},
    });
    let bytes = serde_json::to_vec(&referrer).unwrap();
    let d = Digest::of(&bytes);
    let r = agent()
        .put(f.url(&format!("/v2/{repo}/manifests/{d}")))
        .header("authorization", who)
        .header("content-type", OCI_MANIFEST)
        .send(&bytes[..])
        .unwrap();
    assert_eq!(r.status(), 201);
    d
}

fn status(f: &Fixture, method: &str, who: &str, path: &str) -> u16 {
    let a = agent();
    let url = f.url(path);
    let r = match method {
        "GET" => a.get(&url).header("authorization", who).call(),
        "HEAD" => a.head(&url).header("authorization", who).call(),
        "DELETE" => a.delete(&url).header("authorization", who).call(),
        "PATCH" => a
            .patch(&url)
            .header("authorization", who)
            .send(&b"evil"[..]),
        "PUT" => a.put(&url).header("authorization", who).send_empty(),
        other => panic!("{other}"),
    };
    r.unwrap().status().as_u16()
}

/// `index.json`, the blobs, and each membership record's file name and bytes.
type Snapshot = (Vec<u8>, Vec<Digest>, Vec<(String, Vec<u8>)>);

/// The store's index and membership records, to show a refusal changed nothing.
fn snapshot(store: &Store) -> Snapshot {
    let mut records: Vec<(String, Vec<u8>)> = match std::fs::read_dir(store.repos().dir()) {
        Ok(entries) => entries
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    records.sort();
    (
        std::fs::read(store.refs().path()).unwrap(),
        store.blobs().list().unwrap().0,
        records,
    )
}

#[test]
fn another_teams_attestation_image_and_blobs_cannot_be_deleted_or_read_through_ones_own_repository()
{
    let f = Fixture::new("deny", "");
    let core = f.push_image(
        "olga:ops-pass",
        "acme/corebuild:latest",
        "acme/corebuild:latest",
    );
    let attestation = push_referrer(&f, &olga(), "acme/corebuild", &core);
    let php = f.push_image("max:mid-pass", "acme/httpd-php:1", "acme/httpd-php:1");
    // operations' loose blob (uploaded, no manifest yet).
    let loose = upload(&f, &olga(), "acme/corebuild", b"operations' loose blob");
    let before = snapshot(&f.served());

    // As middleware, through its own repository: the attestation, the image, the loose blob
    // and a layer of corebuild are not there (404, as distribution answers for content the
    // repository does not hold), and deleting them changes nothing.
    let layer = core.layers()[0].digest().to_string();
    for path in [
        format!("/v2/acme/httpd-php/manifests/{attestation}"),
        format!("/v2/acme/httpd-php/manifests/{}", core.digest()),
    ] {
        assert_eq!(status(&f, "DELETE", &max(), &path), 404, "{path}");
        assert_eq!(status(&f, "GET", &max(), &path), 404, "{path}");
        assert_eq!(status(&f, "HEAD", &max(), &path), 404, "{path}");
    }
    for path in [
        format!("/v2/acme/httpd-php/blobs/{loose}"),
        format!("/v2/acme/httpd-php/blobs/{layer}"),
    ] {
        assert_eq!(status(&f, "DELETE", &max(), &path), 404, "{path}");
        assert_eq!(status(&f, "GET", &max(), &path), 404, "{path}");
    }
    // Through operations' repository, middleware is refused outright (403 naming the owner).
    let mut r = agent()
        .delete(f.url(&format!("/v2/acme/corebuild/manifests/{attestation}")))
        .header("authorization", max())
        .call()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(body_of(&mut r).contains("owned by team operations"));
    assert_eq!(snapshot(&f.served()), before);

    // operations' upload session cannot be read, continued or cancelled by middleware.
    let r = agent()
        .post(f.url("/v2/acme/corebuild/blobs/uploads/"))
        .header("authorization", olga())
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let id = location.rsplit('/').next().unwrap().to_string();
    for method in ["GET", "PATCH", "DELETE", "PUT"] {
        let path = format!("/v2/acme/httpd-php/blobs/uploads/{id}?digest={loose}");
        assert_eq!(status(&f, method, &max(), &path), 404, "{method}");
    }
    for method in ["PATCH", "DELETE", "PUT"] {
        let path = format!("/v2/acme/corebuild/blobs/uploads/{id}?digest={loose}");
        assert_eq!(status(&f, method, &max(), &path), 403, "{method}");
    }
    assert_eq!(status(&f, "GET", &olga(), &location), 204);
    assert_eq!(f.server.registry().open_uploads(), 1);

    // Everything operations owns is still there and verifies: tag, attestation, blobs.
    assert_eq!(snapshot(&f.served()), before);
    let ops = client("olga:ops-pass");
    let found = ops
        .referrers(&f.remote("acme/corebuild"), &core.digest())
        .unwrap()
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digest().to_string(), attestation.to_string());
    assert!(ops.get_manifest(&f.remote("acme/corebuild:latest")).is_ok());
    assert_eq!(
        status(
            &f,
            "GET",
            &olga(),
            &format!("/v2/acme/corebuild/blobs/{loose}")
        ),
        200
    );
    assert!(f.served().maintenance().fsck().unwrap().is_ok());
    // middleware's own image is readable through its own repository.
    assert_eq!(
        status(
            &f,
            "GET",
            &max(),
            &format!("/v2/acme/httpd-php/manifests/{}", php.digest())
        ),
        200
    );

    // operations deletes its attestation by digest: 202, then 404 on GET and HEAD (it was
    // 200 by digest forever before); the image itself stays.
    let path = format!("/v2/acme/corebuild/manifests/{attestation}");
    assert_eq!(status(&f, "DELETE", &olga(), &path), 202);
    assert_eq!(status(&f, "GET", &olga(), &path), 404);
    assert_eq!(status(&f, "HEAD", &olga(), &path), 404);
    assert!(ops.get_manifest(&f.remote("acme/corebuild:latest")).is_ok());
    // By tag, then by digest: the tag goes, the manifest by digest stays until deleted.
    let by_digest = format!("/v2/acme/corebuild/manifests/{}", core.digest());
    assert_eq!(
        status(&f, "DELETE", &olga(), "/v2/acme/corebuild/manifests/latest"),
        202
    );
    assert_eq!(status(&f, "GET", &olga(), &by_digest), 200);
    assert_eq!(status(&f, "DELETE", &olga(), &by_digest), 202);
    assert_eq!(status(&f, "GET", &olga(), &by_digest), 404);
    assert_eq!(status(&f, "HEAD", &olga(), &by_digest), 404);
    assert!(f.served().maintenance().fsck().unwrap().is_ok());
}

#[test]
fn a_blob_two_repositories_hold_is_unlinked_from_one_only() {
    let f = Fixture::new("deny", "");
    let shared = upload(&f, &olga(), "acme/corebuild", b"the same bytes");
    assert_eq!(
        upload(&f, &max(), "acme/httpd-php", b"the same bytes"),
        shared
    );
    let path = |repo: &str| format!("/v2/{repo}/blobs/{shared}");
    assert_eq!(status(&f, "DELETE", &max(), &path("acme/httpd-php")), 202);
    assert_eq!(status(&f, "GET", &max(), &path("acme/httpd-php")), 404);
    // operations still has it, byte for byte.
    assert_eq!(status(&f, "GET", &olga(), &path("acme/corebuild")), 200);
    assert!(f.served().blobs().has(&shared));
    // gc keeps a blob while a repository holds it.
    let report = f
        .served()
        .maintenance()
        .gc(&strata_oci::GcOptions::default());
    if let Ok(report) = report {
        assert!(report.removed.iter().all(|b| b.digest != shared));
    }
    assert!(f.served().blobs().has(&shared));
    assert_eq!(status(&f, "DELETE", &olga(), &path("acme/corebuild")), 202);
    assert!(!f.served().blobs().has(&shared));
}

#[test]
fn external_and_registry_prefixed_names_need_an_owner_rule() {
    let f = Fixture::new("any-authenticated", "");
    let max_client = client("max:mid-pass");
    let src = f.dir.path().join("src");
    let store = Store::init(&src).unwrap();
    let image = strata_oci::random::image(&store, 1, 100).unwrap();
    store.refs().tag("x:1", image.descriptor()).unwrap();
    let from = Location::Layout {
        dir: src.clone(),
        reference: "x:1".into(),
    };
    for target in [
        "docker.io/library/busybox:1.36",
        "registry.example.com/acme/corebuild:latest",
    ] {
        let err = strata_remote::copy(&max_client, &from, &Location::Remote(f.remote(target)))
            .unwrap_err();
        assert_eq!(err.status(), Some(403), "{target}: {err}");
    }
    assert!(f.served().refs().list().unwrap().is_empty());
    // An unowned local name is still open to any authenticated user.
    strata_remote::copy(
        &max_client,
        &from,
        &Location::Remote(f.remote("misc/tool:1")),
    )
    .unwrap();
    // The owning team may push the registry-prefixed name of its repository.
    strata_remote::copy(
        &client("olga:ops-pass"),
        &from,
        &Location::Remote(f.remote("registry.example.com/acme/corebuild:latest")),
    )
    .unwrap();
    drop(f);

    // An explicit rule opens docker.io/* to operations only.
    let g = Fixture::new("any-authenticated", r#""docker.io/*" = "operations""#);
    let store = Store::init(g.dir.path().join("src")).unwrap();
    store.refs().tag("x:1", image.descriptor()).ok();
    let image = strata_oci::random::image(&store, 1, 100).unwrap();
    store.refs().tag("x:1", image.descriptor()).unwrap();
    let from = Location::Layout {
        dir: g.dir.path().join("src"),
        reference: "x:1".into(),
    };
    let target = Location::Remote(g.remote("docker.io/library/busybox:1.36"));
    assert_eq!(
        strata_remote::copy(&max_client, &from, &target)
            .unwrap_err()
            .status(),
        Some(403)
    );
    strata_remote::copy(&client("olga:ops-pass"), &from, &target).unwrap();
}

#[test]
fn a_manifest_whose_content_type_contradicts_its_media_type_is_refused() {
    let f = Fixture::new("deny", "");
    let config = upload(&f, &olga(), "acme/corebuild", b"{}");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let mut r = agent()
        .put(f.url("/v2/acme/corebuild/manifests/latest"))
        .header("authorization", olga())
        .header("content-type", OCI_INDEX)
        .send(&bytes[..])
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&mut r), "MANIFEST_INVALID");
    assert!(f.served().refs().list().unwrap().is_empty());
    let r = agent()
        .put(f.url("/v2/acme/corebuild/manifests/latest"))
        .header("authorization", olga())
        .header("content-type", OCI_MANIFEST)
        .send(&bytes[..])
        .unwrap();
    assert_eq!(r.status(), 201);
    // A reference that is neither a tag nor a digest names no manifest: 404 MANIFEST_UNKNOWN
    // (it was 400 MANIFEST_INVALID), as the distribution spec's conformance suite expects.
    for reference in ["-not-a-tag", "sha256:short"] {
        for method in ["GET", "HEAD"] {
            let path = format!("/v2/acme/corebuild/manifests/{reference}");
            assert_eq!(
                status(&f, method, &olga(), &path),
                404,
                "{method} {reference}"
            );
        }
        let mut r = agent()
            .get(f.url(&format!("/v2/acme/corebuild/manifests/{reference}")))
            .header("authorization", olga())
            .call()
            .unwrap();
        assert_eq!(error_code(&mut r), "MANIFEST_UNKNOWN");
    }
}

#[test]
fn a_store_without_membership_records_is_served_from_its_index() {
    // A store written by an older strata (or by builds): tags and a referrer attached in the
    // store, no records. Each repository holds what its tags reach, and the referrer goes with
    // its subject.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("served")).unwrap();
    let core = strata_oci::random::image(&store, 1, 500).unwrap();
    store
        .refs()
        .tag("acme/corebuild:latest", core.descriptor())
        .unwrap();
    let php = strata_oci::random::image(&store, 1, 500).unwrap();
    store
        .refs()
        .tag("acme/httpd-php:1", php.descriptor())
        .unwrap();
    let empty = store.blobs().put(b"{}").unwrap();
    let mut manifest = strata_oci::image::new_manifest(
        empty.descriptor(strata_oci::MediaType::from(
            "application/vnd.oci.empty.v1+json",
        )),
        Vec::new(),
    );
    manifest.set_artifact_type(Some(strata_oci::MediaType::from(
        "application/vnd.in-toto+json",
    )));
    manifest.set_subject(Some(core.descriptor().clone()));
    let attestation = store.put_referrer(&manifest).unwrap();
    assert!(!store.repos().dir().exists());
    let f = Fixture::serving(dir, "deny", "");
    let before = snapshot(&f.served());
    let path = |repo: &str| format!("/v2/{repo}/manifests/{}", attestation.digest());
    assert_eq!(status(&f, "GET", &max(), &path("acme/corebuild")), 200);
    assert_eq!(status(&f, "GET", &max(), &path("acme/httpd-php")), 404);
    assert_eq!(status(&f, "DELETE", &max(), &path("acme/httpd-php")), 404);
    assert_eq!(snapshot(&f.served()), before);
    let found = client("max:mid-pass")
        .referrers(&f.remote("acme/corebuild"), &core.digest())
        .unwrap()
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        client("max:mid-pass")
            .referrers(&f.remote("acme/httpd-php"), &core.digest())
            .unwrap()
            .unwrap()
            .is_empty()
    );
    // The owner deletes it through its repository.
    assert_eq!(status(&f, "DELETE", &olga(), &path("acme/corebuild")), 202);
    assert_eq!(status(&f, "GET", &olga(), &path("acme/corebuild")), 404);
    assert!(
        f.served()
            .referrers(&core.digest(), None)
            .unwrap()
            .is_empty()
    );
}

// Issue 14: one pusher opened ~10,000 unfinished sessions and exhausted file descriptors.
#[test]
fn a_session_flood_is_refused_with_429_while_another_user_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let served = Store::init(dir.path().join("served")).unwrap();
    let options = ServerOptions {
        auth: Some(auth(dir.path(), "deny", "")),
        max_uploads_per_user: 8,
        max_uploads: 12,
        ..ServerOptions::default()
    };
    let server = RunningServer::start(served, options, "127.0.0.1:0".parse().unwrap()).unwrap();
    let f = Fixture { dir, server };
    let mut refused = 0;
    for _ in 0..40 {
        let mut r = agent()
            .post(f.url("/v2/acme/corebuild/blobs/uploads/"))
            .header("authorization", olga())
            .send_empty()
            .unwrap();
        match r.status().as_u16() {
            202 => {}
            429 => {
                refused += 1;
                let body = body_of(&mut r);
                assert!(body.contains("TOOMANYREQUESTS"), "{body}");
                assert!(body.contains("olga has 8 upload sessions open"), "{body}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(refused, 32);
    assert_eq!(f.server.registry().open_uploads(), 8);
    // The sessions hold no temp file open between requests; another user pushes fine.
    f.push_image("max:mid-pass", "acme/httpd-php:1", "acme/httpd-php:1");
    assert!(f.served().refs().resolve("acme/httpd-php:1").is_ok());
}
