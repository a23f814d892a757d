//! The server and the client against each other on 127.0.0.1:0, plus raw requests for the parts
//! of the spec the client does not exercise (out-of-order chunks, ranges, pagination, errors).

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use strata_oci::{Digest, Store};
use strata_registry::{AuthConfig, RunningServer, ServerOptions};
use strata_remote::copy::Location;
use strata_remote::{Client, ClientOptions, Credentials, RemoteRef};

fn any_addr() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    server: RunningServer,
}

impl Fixture {
    fn new(options: ServerOptions) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let served = Store::init(dir.path().join("served")).unwrap();
        let server = RunningServer::start(served, options, any_addr()).unwrap();
        Fixture { dir, server }
    }

    fn host(&self) -> String {
        self.server.addr().to_string()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host())
    }

    fn served(&self) -> Store {
        Store::open(self.dir.path().join("served")).unwrap()
    }

    /// A store with a random image tagged `acme/app:1`.
    fn source(&self, layers: usize, size: usize) -> (Store, strata_oci::Image) {
        let store = Store::init(self.dir.path().join("source")).unwrap();
        let image = strata_oci::random::image(&store, layers, size).unwrap();
        store.refs().tag("acme/app:1", image.descriptor()).unwrap();
        (store, image)
    }

    fn src(&self) -> Location {
        Location::Layout {
            dir: self.dir.path().join("source"),
            reference: "acme/app:1".into(),
        }
    }

    fn remote(&self, rest: &str) -> RemoteRef {
        RemoteRef::parse(&format!("{}/{rest}", self.host())).unwrap()
    }
}

fn client(creds: Option<&str>) -> Client {
    Client::new(ClientOptions {
        credentials: creds.map(|c| Credentials::parse(c).unwrap()),
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

fn error_code(response: &mut ureq::http::Response<ureq::Body>) -> String {
    let body = response.body_mut().read_to_string().unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

#[test]
fn push_then_pull_round_trips_with_verified_digests() {
    let f = Fixture::new(ServerOptions::default());
    let (_, image) = f.source(3, 300_000);
    let c = client(None);
    let report =
        strata_remote::copy(&c, &f.src(), &Location::Remote(f.remote("acme/app:1"))).unwrap();
    assert_eq!(report.digest, image.digest().to_string());
    assert_eq!(report.blobs_copied, 4);
    // The registry's store has it under localhost/acme/app:1.
    let served = f.served();
    assert_eq!(
        served
            .refs()
            .resolve("localhost/acme/app:1")
            .unwrap()
            .digest(),
        image.descriptor().digest()
    );
    // A second push skips every blob.
    let again =
        strata_remote::copy(&c, &f.src(), &Location::Remote(f.remote("acme/app:2"))).unwrap();
    assert_eq!((again.blobs_copied, again.blobs_skipped), (0, 4));
    // Pull into a third store: the same digest, every blob intact.
    let out = f.dir.path().join("pulled");
    let pulled = strata_remote::copy(
        &c,
        &Location::Remote(f.remote("acme/app:1")),
        &Location::Layout {
            dir: out.clone(),
            reference: "acme/app:1".into(),
        },
    )
    .unwrap();
    assert_eq!(pulled.digest, image.digest().to_string());
    let pulled_store = Store::open(&out).unwrap();
    let report = pulled_store.maintenance().fsck().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(c.tags(&f.remote("acme/app")).unwrap(), ["1", "2"]);
}

#[test]
fn chunked_uploads_and_out_of_order_chunks() {
    let f = Fixture::new(ServerOptions::default());
    let (_, image) = f.source(1, 50_000);
    // A 4 KiB chunk size: the layer goes up in many PATCHes.
    let c = Client::new(ClientOptions {
        chunk_size: 4096,
        docker_config: false,
        ..ClientOptions::default()
    })
    .unwrap();
    let report =
        strata_remote::copy(&c, &f.src(), &Location::Remote(f.remote("acme/app:1"))).unwrap();
    assert_eq!(report.digest, image.digest().to_string());
    assert!(f.served().maintenance().fsck().unwrap().problems.is_empty());

    // By hand: a chunk that does not start at the session's offset is a 416.
    let a = agent();
    let r = a
        .post(f.url("/v2/acme/raw/blobs/uploads/"))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = f.url(r.headers()["location"].to_str().unwrap());
    let r = a
        .patch(&location)
        .header("content-range", "0-4")
        .send(&b"hello"[..])
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-4");
    let mut r = a
        .patch(&location)
        .header("content-range", "10-14")
        .send(&b"world"[..])
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["range"], "0-4");
    assert_eq!(error_code(&mut r), "BLOB_UPLOAD_INVALID");
    let r = a
        .patch(&location)
        .header("content-range", "5-9")
        .send(&b"world"[..])
        .unwrap();
    assert_eq!(r.status(), 202);
    // Status of the session.
    let r = a.get(&location).call().unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-9");
    // A wrong digest: 400 DIGEST_INVALID and nothing visible.
    let wrong = Digest::of(b"something else");
    let mut r = a
        .put(format!("{location}?digest={wrong}"))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&mut r), "DIGEST_INVALID");
    assert!(!f.served().blobs().has(&wrong));
    assert!(!f.served().blobs().has(&Digest::of(b"helloworld")));
    // Monolithic POST ?digest=.
    let d = Digest::of(b"helloworld");
    let r = a
        .post(f.url(&format!("/v2/acme/raw/blobs/uploads/?digest={d}")))
        .send(&b"helloworld"[..])
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"], d.to_string().as_str());
    // Range reads.
    let mut r = a
        .get(f.url(&format!("/v2/acme/raw/blobs/{d}")))
        .header("range", "bytes=5-")
        .call()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 5-9/10");
    assert_eq!(r.body_mut().read_to_string().unwrap(), "world");
    let r = a
        .get(f.url(&format!("/v2/acme/raw/blobs/{d}")))
        .header("range", "bytes=20-")
        .call()
        .unwrap();
    assert_eq!(r.status(), 416);
    // Mount: the blob exists, so POST ?mount= is a 201 in another repository.
    let r = a
        .post(f.url(&format!(
            "/v2/other/repo/blobs/uploads/?mount={d}&from=acme/raw"
        )))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 201);
    // Unknown blobs and manifests have spec errors.
    let mut r = a
        .get(f.url(&format!("/v2/acme/raw/blobs/{}", Digest::of(b"nope"))))
        .call()
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(&mut r), "BLOB_UNKNOWN");
    let mut r = a.get(f.url("/v2/acme/raw/manifests/nope")).call().unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(&mut r), "MANIFEST_UNKNOWN");
    let mut r = a.get(f.url("/v2/Bad_Name/tags/list")).call().unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&mut r), "NAME_INVALID");
}

#[test]
fn abandoned_uploads_expire_and_leave_nothing() {
    let f = Fixture::new(ServerOptions {
        upload_timeout: Duration::from_millis(200),
        ..ServerOptions::default()
    });
    let a = agent();
    let r = a
        .post(f.url("/v2/acme/raw/blobs/uploads/"))
        .send_empty()
        .unwrap();
    let location = f.url(r.headers()["location"].to_str().unwrap());
    let r = a.patch(&location).send(&[7u8; 10_000][..]).unwrap();
    assert_eq!(r.status(), 202);
    let tmp = f.served().tmp_dir();
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 1);
    // Wait (bounded) for the sweeper to drop the idle session.
    let mut waited = 0;
    while f.server.registry().open_uploads() > 0 && waited < 100 {
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    assert_eq!(f.server.registry().open_uploads(), 0);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    let (blobs, _) = f.served().blobs().list().unwrap();
    assert!(blobs.is_empty());
    let r = a.get(&location).call().unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn tags_pagination_referrers_and_deletes() {
    let events = tempfile::tempdir().unwrap();
    let f = Fixture::new(ServerOptions {
        events: Some(events.path().join("events.db")),
        ..ServerOptions::default()
    });
    let (source, image) = f.source(1, 1000);
    for tag in ["a", "b", "c"] {
        source
            .refs()
            .tag(&format!("acme/app:{tag}"), image.descriptor())
            .unwrap();
    }
    let c = client(None);
    for tag in ["1", "a", "b", "c"] {
        strata_remote::copy(
            &c,
            &Location::Layout {
                dir: f.dir.path().join("source"),
                reference: format!("acme/app:{tag}"),
            },
            &Location::Remote(f.remote(&format!("acme/app:{tag}"))),
        )
        .unwrap();
    }
    let a = agent();
    let mut r = a.get(f.url("/v2/acme/app/tags/list?n=2")).call().unwrap();
    assert_eq!(
        r.headers()["link"],
        "</v2/acme/app/tags/list?n=2&last=a>; rel=\"next\""
    );
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["1", "a"]));
    let mut r = a
        .get(f.url("/v2/acme/app/tags/list?n=2&last=a"))
        .call()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["b", "c"]));
    assert!(r.headers().get("link").is_none());

    // A referrer (an attestation) pushed by digest, found through the referrers API.
    let empty = b"{}";
    let empty_digest = Digest::of(empty);
    a.post(f.url(&format!(
        "/v2/acme/app/blobs/uploads/?digest={empty_digest}"
    )))
    .send(&empty[..])
    .unwrap();
    let referrer = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.in-toto+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest.to_string(), "size": 2}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image.digest().to_string(), "size": image.descriptor().size()},
    });
    let bytes = serde_json::to_vec(&referrer).unwrap();
    let rd = Digest::of(&bytes);
    let r = a
        .put(f.url(&format!("/v2/acme/app/manifests/{rd}")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .send(&bytes[..])
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["oci-subject"],
        image.digest().to_string().as_str()
    );
    let found = c
        .referrers(&f.remote("acme/app"), &image.digest())
        .unwrap()
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digest().to_string(), rd.to_string());
    let referrers_of = |artifact_type: &str| {
        let mut r = a
            .get(f.url(&format!(
                "/v2/acme/app/referrers/{}?artifactType={artifact_type}",
                image.digest()
            )))
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
        assert_eq!(
            r.headers()["content-type"],
            "application/vnd.oci.image.index.v1+json"
        );
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        v["manifests"].as_array().unwrap().len()
    };
    assert_eq!(referrers_of("application/vnd.other"), 0);
    assert_eq!(referrers_of("application/vnd.in-toto%2Bjson"), 1);
    assert_eq!(referrers_of("application/vnd.in-toto+json"), 1);
    // Pulling the image brings the referrer along.
    let out = f.dir.path().join("pulled");
    let report = strata_remote::copy(
        &c,
        &Location::Remote(f.remote("acme/app:1")),
        &Location::Layout {
            dir: out.clone(),
            reference: "acme/app:1".into(),
        },
    )
    .unwrap();
    assert_eq!(report.referrers, 1);
    assert_eq!(
        Store::open(&out)
            .unwrap()
            .referrers(&image.digest(), None)
            .unwrap()
            .len(),
        1
    );

    // A layer or a config is not a manifest.
    let layer = image.layers()[0].digest().to_string();
    for digest in [
        layer.clone(),
        image.config_descriptor().digest().to_string(),
    ] {
        let mut r = a
            .get(f.url(&format!("/v2/acme/app/manifests/{digest}")))
            .call()
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(error_code(&mut r), "MANIFEST_UNKNOWN");
    }

    // Deletes: a blob in use is refused; a tag goes; the manifest by digest goes with its tags.
    let r = a
        .delete(f.url(&format!("/v2/acme/app/blobs/{layer}")))
        .call()
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = a.delete(f.url("/v2/acme/app/manifests/a")).call().unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(c.tags(&f.remote("acme/app")).unwrap(), ["1", "b", "c"]);
    let r = a
        .delete(f.url(&format!("/v2/acme/app/manifests/{}", image.digest())))
        .call()
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut r = a.get(f.url("/v2/acme/app/tags/list")).call().unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(&mut r), "NAME_UNKNOWN");
    // Both deletes are in the events log, with the digest that went.
    let log = strata_events::EventLog::open(&events.path().join("events.db")).unwrap();
    let deletes: Vec<_> = log
        .query(&strata_events::Query::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == Some(strata_events::Kind::Delete))
        .collect();
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    assert!(deletes.iter().any(|e| e.image == "acme/app:a"
        && e.old_digest.as_deref() == Some(image.digest().to_string().as_str())));
    assert!(
        deletes
            .iter()
            .any(|e| e.image == format!("acme/app@{}", image.digest()))
    );
}

fn auth_file(dir: &Path) -> AuthConfig {
    let hash = bcrypt::hash("ops-pass", 4).unwrap();
    let hash2 = bcrypt::hash("app-pass", 4).unwrap();
    let text = format!(
        r#"
pull = "authenticated"
unknown_repositories = "deny"
[users.olga]
password = "{hash}"
team = "operations"
[users.abe]
password = "{hash2}"
team = "apps"
[owners]
"acme/corebuild" = "operations"
"acme/app" = "apps"
"#
    );
    let path = dir.join("auth.toml");
    std::fs::write(&path, text).unwrap();
    AuthConfig::load(&path).unwrap()
}

#[test]
fn pushes_are_owned_by_teams_and_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let auth = auth_file(dir.path());
    let events = dir.path().join("events.db");
    let f = Fixture::new(ServerOptions {
        auth: Some(auth),
        events: Some(events.clone()),
        ..ServerOptions::default()
    });
    f.source(2, 2000);
    // Anonymous: 401 with a bearer challenge naming the token realm and scope.
    let a = agent();
    let mut r = a
        .post(f.url("/v2/acme/corebuild/blobs/uploads/"))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"http://{}/token\",service=\"strata\",scope=\"repository:acme/corebuild:pull,push\"",
            f.host()
        )
    );
    assert_eq!(error_code(&mut r), "UNAUTHORIZED");
    let r = a.get(f.url("/v2/")).call().unwrap();
    assert_eq!(r.status(), 401);
    // Bad password at the token endpoint: 401.
    let r = a
        .get(f.url("/token"))
        .header(
            "authorization",
            strata_remote::auth::basic_header("abe", "wrong"),
        )
        .call()
        .unwrap();
    assert_eq!(r.status(), 401);

    let before_index = std::fs::read(f.served().refs().path()).unwrap();
    let before_blobs = f.served().blobs().list().unwrap().0;
    // abe (apps) pushing acme/corebuild (operations): 403 DENIED, through the token flow.
    let abe = client(Some("abe:app-pass"));
    let err = strata_remote::copy(
        &abe,
        &f.src(),
        &Location::Remote(f.remote("acme/corebuild:latest")),
    )
    .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(
        err.code(),
        Some(&strata_registry::ErrorCode::Denied),
        "{err}"
    );
    assert!(
        err.to_string().contains("owned by team operations"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(f.served().refs().path()).unwrap(),
        before_index
    );
    assert_eq!(f.served().blobs().list().unwrap().0, before_blobs);
    // An unowned repository is denied too.
    let err =
        strata_remote::copy(&abe, &f.src(), &Location::Remote(f.remote("nobody/x:1"))).unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    // olga (operations) may.
    let olga = client(Some("olga:ops-pass"));
    strata_remote::copy(
        &olga,
        &f.src(),
        &Location::Remote(f.remote("acme/corebuild:latest")),
    )
    .unwrap();
    assert!(f.served().refs().resolve("acme/corebuild:latest").is_ok());
    // abe can pull it (pull = authenticated) but an anonymous client cannot.
    assert!(abe.get_manifest(&f.remote("acme/corebuild:latest")).is_ok());
    let err = client(None)
        .get_manifest(&f.remote("acme/corebuild:latest"))
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    // Everything is in the events log: the refusals and the push, with who.
    let log = strata_events::EventLog::open(&events).unwrap();
    let all = log.query(&strata_events::Query::default()).unwrap();
    let refused: Vec<_> = all.iter().filter(|e| e.result == "refused").collect();
    assert!(refused.len() >= 2, "{all:?}");
    assert!(refused.iter().any(|e| e.image == "acme/corebuild"
        && e.user.as_deref() == Some("abe")
        && e.team.as_deref() == Some("apps")));
    assert!(all.iter().any(|e| e.result == "ok"
        && e.image == "acme/corebuild:latest"
        && e.user.as_deref() == Some("olga")));
}

#[test]
fn disconnect_mid_upload_keeps_committed_blobs_and_resumes() {
    let f = Fixture::new(ServerOptions::default());
    let a = agent();
    let committed = b"already committed";
    let d = Digest::of(committed);
    a.post(f.url(&format!("/v2/acme/raw/blobs/uploads/?digest={d}")))
        .send(&committed[..])
        .unwrap();
    // Start a session and send a chunk whose connection breaks off after part of the body.
    let r = a
        .post(f.url("/v2/acme/raw/blobs/uploads/"))
        .send_empty()
        .unwrap();
    let path = r.headers()["location"].to_str().unwrap().to_string();
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(f.server.addr()).unwrap();
        write!(
            s,
            "PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        )
        .unwrap();
        s.write_all(&[1u8; 400]).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    // The committed blob is intact; the session tells where to resume.
    let mut r = a
        .get(f.url(&format!("/v2/acme/raw/blobs/{d}")))
        .call()
        .unwrap();
    assert_eq!(r.body_mut().read_to_vec().unwrap(), committed);
    let mut offset = 0;
    for _ in 0..50 {
        let r = a.get(f.url(&path)).call().unwrap();
        assert_eq!(r.status(), 204);
        let range = r.headers()["range"].to_str().unwrap().to_string();
        offset = range.rsplit('-').next().unwrap().parse::<u64>().unwrap() + 1;
        if offset == 400 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(offset, 400);
    let rest = [1u8; 600];
    let r = a
        .patch(f.url(&path))
        .header("content-range", "400-999")
        .send(&rest[..])
        .unwrap();
    assert_eq!(r.status(), 202);
    let whole = Digest::of(&[1u8; 1000]);
    let r = a
        .put(f.url(&format!("{path}?digest={whole}")))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut body = Vec::new();
    f.served()
        .blobs()
        .open(&whole)
        .unwrap()
        .read_to_end(&mut body)
        .unwrap();
    assert_eq!(body, [1u8; 1000]);
}

#[test]
fn pinned_bases_are_pulled_on_demand_and_checked() {
    let f = Fixture::new(ServerOptions::default());
    let (_, image) = f.source(1, 1000);
    let c = client(None);
    strata_remote::copy(&c, &f.src(), &Location::Remote(f.remote("vendor/base:1"))).unwrap();
    let local = Store::init(f.dir.path().join("local")).unwrap();
    let pinned = format!("{}/vendor/base:1@{}", f.host(), image.digest());
    let d = strata_remote::pull_pinned(&c, &local, &pinned).unwrap();
    assert_eq!(d.digest(), image.descriptor().digest());
    assert_eq!(
        local
            .refs()
            .resolve(&format!("{}/vendor/base:1", f.host()))
            .unwrap()
            .digest(),
        image.descriptor().digest()
    );
    // Present now: no second transfer, same answer.
    assert_eq!(
        strata_remote::pull_pinned(&c, &local, &pinned)
            .unwrap()
            .digest(),
        d.digest()
    );
    // A pin the registry's tag does not match fails on the digest, and nothing is tagged.
    let wrong = format!("{}/vendor/base:1@{}", f.host(), Digest::of(b"other"));
    let other = Store::init(f.dir.path().join("other")).unwrap();
    let err = strata_remote::pull_pinned(&c, &other, &wrong).unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    assert!(other.refs().list().unwrap().is_empty());
    // An unpinned reference is refused.
    let err =
        strata_remote::pull_pinned(&c, &other, &format!("{}/vendor/base:1", f.host())).unwrap_err();
    assert!(err.to_string().contains("not pinned"), "{err}");
}

#[test]
fn pulls_refuse_blobs_that_do_not_match_their_digest() {
    let f = Fixture::new(ServerOptions::default());
    let (_, image) = f.source(1, 5000);
    let c = client(None);
    strata_remote::copy(&c, &f.src(), &Location::Remote(f.remote("acme/app:1"))).unwrap();
    // Corrupt the layer in the served store (same size, other bytes): the server streams files
    // as they are, so only the client's check stands between the corruption and the pull.
    let layer = Digest::from_oci(image.layers()[0].digest()).unwrap();
    let path = f.served().blobs().path(&layer);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let out = f.dir.path().join("pulled");
    let err = strata_remote::copy(
        &c,
        &Location::Remote(f.remote("acme/app:1")),
        &Location::Layout {
            dir: out.clone(),
            reference: "acme/app:1".into(),
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains(&layer.to_string()), "{err}");
    let pulled = Store::open(&out).unwrap();
    assert!(!pulled.blobs().has(&layer));
    assert!(pulled.refs().list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(pulled.tmp_dir()).unwrap().count(), 0);
}

/// Yields `data[offset..]`, but the first read stream from offset 0 breaks after `fail_after`
/// bytes, as a dropped connection would.
struct Flaky {
    data: Vec<u8>,
    fail_after: usize,
    failed: std::sync::atomic::AtomicBool,
    opened_at: std::sync::Mutex<Vec<u64>>,
}

struct Breaking<'a> {
    data: &'a [u8],
    left: usize,
}

impl Read for Breaking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection dropped",
            ));
        }
        let n = buf.len().min(self.left).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.left -= n;
        Ok(n)
    }
}

impl strata_remote::client::BlobSource for Flaky {
    fn open_at(&self, offset: u64) -> strata_registry::Result<Box<dyn Read + '_>> {
        self.opened_at.lock().unwrap().push(offset);
        let rest = &self.data[offset as usize..];
        if offset == 0 && !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Ok(Box::new(Breaking {
                data: rest,
                left: self.fail_after,
            }));
        }
        Ok(Box::new(rest))
    }
}

#[test]
fn chunked_push_resumes_from_the_registrys_offset_after_a_broken_chunk() {
    let f = Fixture::new(ServerOptions::default());
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = Digest::of(&data);
    let source = Flaky {
        data: data.clone(),
        fail_after: 3000,
        failed: std::sync::atomic::AtomicBool::new(false),
        opened_at: std::sync::Mutex::new(Vec::new()),
    };
    let c = Client::new(ClientOptions {
        chunk_size: 4096,
        docker_config: false,
        ..ClientOptions::default()
    })
    .unwrap();
    let outcome = c
        .push_blob(
            &f.remote("acme/raw"),
            &digest,
            data.len() as u64,
            &source,
            None,
        )
        .unwrap();
    assert_eq!(outcome, strata_remote::client::BlobPush::Uploaded);
    assert!(source.failed.load(std::sync::atomic::Ordering::SeqCst));
    // After the break the client reopened the source where the registry said it was: the bytes
    // that arrived before the break (up to 3000) are kept, not sent again.
    let opened = source.opened_at.lock().unwrap().clone();
    assert_eq!(opened[..3], [0, 3000, 3000 + 4096], "{opened:?}");
    assert_eq!(f.served().blobs().read(&digest).unwrap(), data);
    assert_eq!(f.server.registry().open_uploads(), 0);
}

#[test]
fn copy_between_layouts_brings_referrers_and_skips_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let from = Store::init(dir.path().join("from")).unwrap();
    let image = strata_oci::random::image(&from, 2, 3000).unwrap();
    from.refs().tag("acme/app:1", image.descriptor()).unwrap();
    let empty = from.blobs().put(b"{}").unwrap();
    let referrer: strata_oci::ImageManifest = serde_json::from_value(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.digest.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.digest.to_string(), "size": 2}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image.digest().to_string(), "size": image.descriptor().size()},
    }))
    .unwrap();
    let referrer = from.put_referrer(&referrer).unwrap();
    let c = client(None);
    let src = Location::Layout {
        dir: from.root().to_path_buf(),
        reference: "acme/app:1".into(),
    };
    let dst = Location::Layout {
        dir: dir.path().join("to"),
        reference: "copied:v1".into(),
    };
    let report = strata_remote::copy(&c, &src, &dst).unwrap();
    assert_eq!(report.digest, image.digest().to_string());
    assert_eq!(report.referrers, 1);
    assert_eq!(report.blobs_copied, 4); // config, 2 layers, the empty blob
    let to = Store::open(dir.path().join("to")).unwrap();
    assert_eq!(
        to.refs().resolve("copied:v1").unwrap().digest(),
        image.descriptor().digest()
    );
    let found = to.referrers(&image.digest(), None).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digest(), referrer.digest());
    assert!(to.maintenance().fsck().unwrap().is_ok());
    let again = strata_remote::copy(&c, &src, &dst).unwrap();
    assert_eq!((again.blobs_copied, again.blobs_skipped), (0, 4));
}

#[test]
fn multi_platform_indexes_round_trip_and_the_catalog_lists_repositories() {
    let f = Fixture::new(ServerOptions::default());
    let store = Store::init(f.dir.path().join("source")).unwrap();
    let amd = strata_oci::random::image(&store, 1, 2000).unwrap();
    let arm = strata_oci::random::image(&store, 1, 2000).unwrap();
    let platform = |arch: &str| serde_json::json!({"architecture": arch, "os": "linux"});
    let index: strata_oci::ImageIndex = serde_json::from_value(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd.digest().to_string(), "size": amd.descriptor().size(), "platform": platform("amd64")},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm.digest().to_string(), "size": arm.descriptor().size(), "platform": platform("arm64")},
        ],
    }))
    .unwrap();
    let descriptor = store.blobs().put_index(&index).unwrap();
    store.refs().tag("acme/multi:1", &descriptor).unwrap();
    let c = client(None);
    let src = Location::Layout {
        dir: store.root().to_path_buf(),
        reference: "acme/multi:1".into(),
    };
    let report =
        strata_remote::copy(&c, &src, &Location::Remote(f.remote("acme/multi:1"))).unwrap();
    assert_eq!(report.digest, descriptor.digest().to_string());
    assert_eq!(report.manifests, 3);
    let fetched = c.get_manifest(&f.remote("acme/multi:1")).unwrap();
    assert_eq!(
        fetched.media_type,
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(fetched.digest.to_string(), descriptor.digest().to_string());
    // Both platforms' manifests are there by digest.
    for image in [&amd, &arm] {
        let child = c
            .get_manifest(&f.remote(&format!("acme/multi@{}", image.digest())))
            .unwrap();
        assert_eq!(child.digest, image.digest());
    }
    // An index whose child is missing is refused.
    let orphan = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": Digest::of(b"gone").to_string(), "size": 4}],
    });
    let mut r = agent()
        .put(f.url("/v2/acme/multi/manifests/orphan"))
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .send(&serde_json::to_vec(&orphan).unwrap()[..])
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&mut r), "MANIFEST_BLOB_UNKNOWN");
    // The catalog.
    strata_remote::copy(&c, &src, &Location::Remote(f.remote("acme/another:1"))).unwrap();
    let mut r = agent().get(f.url("/v2/_catalog?n=1")).call().unwrap();
    assert_eq!(
        r.headers()["link"],
        "</v2/_catalog?n=1&last=acme/another>; rel=\"next\""
    );
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["acme/another"]));
    let mut r = agent()
        .get(f.url("/v2/_catalog?last=acme/another"))
        .call()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["acme/multi"]));
}

#[test]
fn gc_keeps_away_from_freshly_pushed_blobs_until_the_upload_timeout() {
    let f = Fixture::new(ServerOptions {
        // Long enough that a loaded CI machine still reaches the first gc inside the lease.
        upload_timeout: Duration::from_millis(2000),
        ..ServerOptions::default()
    });
    let d = Digest::of(b"fresh blob");
    let r = agent()
        .post(f.url(&format!("/v2/acme/raw/blobs/uploads/?digest={d}")))
        .send(&b"fresh blob"[..])
        .unwrap();
    assert_eq!(r.status(), 201);
    // No manifest uses the blob yet: gc must not take it while its manifest may still come.
    let err = f
        .served()
        .maintenance()
        .gc(&strata_oci::GcOptions::default())
        .unwrap_err();
    assert!(matches!(err, strata_oci::Error::Busy { .. }), "{err}");
    assert!(f.served().blobs().has(&d));
    // Once the timeout has passed gc may run; the blob is acme/raw's (its membership record
    // holds it) and stays until acme/raw deletes it.
    let mut report = None;
    for _ in 0..150 {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(r) = f
            .served()
            .maintenance()
            .gc(&strata_oci::GcOptions::default())
        {
            report = Some(r);
            break;
        }
    }
    let report = report.expect("gc ran once the lease expired");
    assert!(report.removed.is_empty(), "{report:?}");
    assert!(f.served().blobs().has(&d));
    let r = agent()
        .delete(f.url(&format!("/v2/acme/raw/blobs/{d}")))
        .call()
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(!f.served().blobs().has(&d));
}

// Issue 14: connections that sent half a request were never timed out, and 19,990 of them
// starved a real client.
#[test]
fn slow_header_clients_are_dropped_within_the_idle_timeout_while_a_real_pull_succeeds() {
    use std::io::Write;
    let f = Fixture::new(ServerOptions {
        max_connections: 16,
        idle_timeout: Duration::from_secs(1),
        ..ServerOptions::default()
    });
    let (_, image) = f.source(1, 1000);
    let c = client(None);
    strata_remote::copy(&c, &f.src(), &Location::Remote(f.remote("acme/app:1"))).unwrap();
    // More half-open connections than the server serves at once.
    let slow: Vec<std::net::TcpStream> = (0..80)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(f.server.addr()).unwrap();
            s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // A real pull still gets through (the slow ones give up their slots as they time out).
    let out = f.dir.path().join("pulled");
    let pulled = strata_remote::copy(
        &c,
        &Location::Remote(f.remote("acme/app:1")),
        &Location::Layout {
            dir: out,
            reference: "acme/app:1".into(),
        },
    )
    .unwrap();
    assert_eq!(pulled.digest, image.digest().to_string());
    // Every slow connection is closed by the server (EOF or reset), not left hanging: a
    // generous bound, far above the 1 s timeout times the rounds the cap makes.
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut answer = Vec::new();
        match s.read_to_end(&mut answer) {
            Ok(_) => {}
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "a slow connection was not dropped: {e}"
            ),
        }
    }
}

/// A one-file uncompressed layer (`hello.txt`).
fn one_file_layer(content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_path("hello.txt").unwrap();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    builder.append(&header, content).unwrap();
    builder.into_inner().unwrap()
}

// Issue 14: sha512 digests were refused everywhere (400 DIGEST_INVALID on push, no
// `blobs/sha512/` in the store, `name@sha512:...` not a reference).
#[test]
fn sha512_blobs_and_manifests_round_trip_through_strata_and_skopeo() {
    use strata_oci::Algorithm::Sha512;
    let f = Fixture::new(ServerOptions::default());
    let a = agent();
    let layer = one_file_layer(b"hello from sha512\n");
    let layer_digest = Digest::of_with(Sha512, &layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(&layer).to_string()]},
    }))
    .unwrap();
    let config_digest = Digest::of_with(Sha512, &config);

    // The layer monolithically: POST ?digest=sha512:...
    let r = a
        .post(f.url(&format!(
            "/v2/acme/app/blobs/uploads/?digest={layer_digest}"
        )))
        .send(&layer[..])
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["docker-content-digest"],
        layer_digest.to_string().as_str()
    );
    // The config in two chunks, announced with ?digest-algorithm=sha512.
    let r = a
        .post(f.url("/v2/acme/app/blobs/uploads/?digest-algorithm=sha512"))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = f.url(r.headers()["location"].to_str().unwrap());
    let (head, tail) = config.split_at(10);
    let r = a
        .patch(&location)
        .header("content-range", format!("0-{}", head.len() - 1))
        .send(head)
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = a
        .put(format!("{location}?digest={config_digest}"))
        .send(tail)
        .unwrap();
    assert_eq!(r.status(), 201);
    // A chunked upload opened without the parameter is checked against a sha512 digest too:
    // the wrong content is refused, the right content lands under blobs/sha512.
    for (content, status) in [(&b"not it"[..], 400), (&b"extra blob"[..], 201)] {
        let r = a
            .post(f.url("/v2/acme/app/blobs/uploads/"))
            .send_empty()
            .unwrap();
        let location = f.url(r.headers()["location"].to_str().unwrap());
        let wanted = Digest::of_with(Sha512, b"extra blob");
        let r = a
            .put(format!("{location}?digest={wanted}"))
            .send(content)
            .unwrap();
        assert_eq!(r.status(), status);
    }
    // An algorithm strata does not know is refused when the session starts.
    let r = a
        .post(f.url("/v2/acme/app/blobs/uploads/?digest-algorithm=md5"))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 400);

    // A manifest referencing both, pushed by its sha512 digest and under a tag.
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest.to_string(),
            "size": layer.len(),
        }],
    }))
    .unwrap();
    let manifest_digest = Digest::of_with(Sha512, &manifest);
    let r = a
        .put(f.url(&format!("/v2/acme/app/manifests/{manifest_digest}")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .send(&manifest[..])
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["docker-content-digest"],
        manifest_digest.to_string().as_str()
    );
    // Pushed again by tag, the tag names the sha512 digest the repository holds it under.
    let r = a
        .put(f.url("/v2/acme/app/manifests/1"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .send(&manifest[..])
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["docker-content-digest"],
        manifest_digest.to_string().as_str()
    );
    let r = a.head(f.url("/v2/acme/app/manifests/1")).call().unwrap();
    assert_eq!(
        r.headers()["docker-content-digest"],
        manifest_digest.to_string().as_str()
    );
    // Read back by digest, with the digest header.
    let mut r = a
        .get(f.url(&format!("/v2/acme/app/manifests/{manifest_digest}")))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-content-digest"],
        manifest_digest.to_string().as_str()
    );
    assert_eq!(r.body_mut().read_to_vec().unwrap(), manifest);
    let r = a
        .head(f.url(&format!("/v2/acme/app/blobs/{layer_digest}")))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        layer.len().to_string().as_str()
    );
    let served = f.served();
    for d in [&layer_digest, &config_digest, &manifest_digest] {
        assert!(
            served
                .blobs()
                .path(d)
                .starts_with(served.root().join("blobs/sha512")),
            "{d}"
        );
        assert!(served.blobs().has(d), "{d}");
    }
    assert!(served.maintenance().fsck().unwrap().problems.is_empty());

    // strata's client pulls it by `name@sha512:...` into a layout that fsck finds whole.
    let c = client(None);
    let out = f.dir.path().join("pulled");
    let pulled = strata_remote::copy(
        &c,
        &Location::Remote(f.remote(&format!("acme/app@{manifest_digest}"))),
        &Location::Layout {
            dir: out.clone(),
            reference: "acme/app:sha512".into(),
        },
    )
    .unwrap();
    assert_eq!(pulled.digest, manifest_digest.to_string());
    let pulled_store = Store::open(&out).unwrap();
    assert!(pulled_store.blobs().has(&layer_digest));
    let report = pulled_store.maintenance().fsck().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(
        pulled_store
            .refs()
            .resolve(&format!("acme/app@{manifest_digest}"))
            .unwrap()
            .digest()
            .to_string(),
        manifest_digest.to_string()
    );

    // Pushed back from that layout under a tag, the tag keeps the sha512 digest.
    let pushed = strata_remote::copy(
        &c,
        &Location::Layout {
            dir: out.clone(),
            reference: "acme/app:sha512".into(),
        },
        &Location::Remote(f.remote("acme/copied:1")),
    )
    .unwrap();
    assert_eq!(pushed.digest, manifest_digest.to_string());
    let r = a.head(f.url("/v2/acme/copied/manifests/1")).call().unwrap();
    assert_eq!(
        r.headers()["docker-content-digest"],
        manifest_digest.to_string().as_str()
    );

    // Tools we did not write. skopeo reads the manifest back from the registry by its sha512
    // digest, and from the layout strata pulled into (finding it under blobs/sha512/).
    // (skopeo 1.9 and umoci 0.4 go no further with sha512 content: their destinations re-hash
    // blobs with sha256, and umoci refuses the algorithm.)
    let Some(skopeo) = strata_testutil::require_tool("skopeo") else {
        return;
    };
    let raw = strata_testutil::run_ok(
        std::process::Command::new(&skopeo)
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/acme/app@{manifest_digest}", f.host())),
    );
    assert_eq!(raw.as_bytes(), manifest);
    let raw = strata_testutil::run_ok(
        std::process::Command::new(&skopeo)
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:localhost/acme/app:sha512", out.display())),
    );
    assert_eq!(raw.as_bytes(), manifest);
    // coreutils' sha512sum agrees with every name under the pulled layout's blobs/sha512.
    let dir = out.join("blobs/sha512");
    let sums = strata_testutil::run_ok(
        std::process::Command::new("sha512sum")
            .current_dir(&dir)
            .arg("--")
            .args([&layer_digest, &config_digest, &manifest_digest].map(|d| d.hex())),
    );
    let lines: Vec<&str> = sums.lines().collect();
    assert_eq!(lines.len(), 3, "{sums}");
    for line in lines {
        let (sum, name) = line.split_once("  ").unwrap();
        assert_eq!(sum, name, "{line}");
    }
}

// Issue 14: a client that trickles its request head a byte at a time never looks idle, so the
// idle timeout alone kept it (and its connection slot) forever.
#[test]
fn trickling_header_clients_are_dropped_by_the_header_deadline_while_a_real_pull_succeeds() {
    use std::io::Write;
    let header_timeout = Duration::from_secs(1);
    let f = Fixture::new(ServerOptions {
        max_connections: 4,
        // Far longer than the gaps between trickled bytes: only the header deadline can act.
        idle_timeout: Duration::from_secs(30),
        header_timeout,
        ..ServerOptions::default()
    });
    let (_, image) = f.source(1, 1000);
    let c = client(None);
    strata_remote::copy(&c, &f.src(), &Location::Remote(f.remote("acme/app:1"))).unwrap();
    // Twice as many tricklers as the server serves at once; each reports whether the server
    // dropped it before it had trickled for 20 deadlines.
    let give_up = header_timeout * 20;
    let tricklers: Vec<std::thread::JoinHandle<bool>> = (0..8)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(f.server.addr()).unwrap();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                // The read timeout paces the trickle: one byte, then up to 100 ms for the
                // server's answer or close.
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let head = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter();
                for &byte in head.chain(std::iter::repeat(&b'a')) {
                    if started.elapsed() > give_up {
                        return false;
                    }
                    if s.write_all(&[byte]).is_err() {
                        return true;
                    }
                    let mut answer = [0u8; 64];
                    match s.read(&mut answer) {
                        // Closed, or answered (408) and closed.
                        Ok(_) => return true,
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return true,
                    }
                }
                unreachable!("the trickle is endless")
            })
        })
        .collect();
    // A real pull gets through while they trickle: their slots come free at the deadline.
    let out = f.dir.path().join("pulled");
    let pulled = strata_remote::copy(
        &c,
        &Location::Remote(f.remote("acme/app:1")),
        &Location::Layout {
            dir: out,
            reference: "acme/app:1".into(),
        },
    )
    .unwrap();
    assert_eq!(pulled.digest, image.digest().to_string());
    for trickler in tricklers {
        assert!(
            trickler.join().unwrap(),
            "a trickling client was still connected after {give_up:?}"
        );
    }
}

// distribution-spec: a registry that takes `?tag=` on a push by digest MUST answer an `OCI-Tag`
// header per accepted tag (the suite's "tag-param" and "tag-param-sha512" data sets).
#[test]
fn a_manifest_pushed_by_digest_with_tag_parameters_gets_each_tag() {
    let f = Fixture::new(ServerOptions::default());
    let a = agent();
    let empty = b"{}";
    let empty_digest = Digest::of(empty);
    let r = a
        .post(f.url(&format!(
            "/v2/acme/tagged/blobs/uploads/?digest={empty_digest}"
        )))
        .send(&empty[..])
        .unwrap();
    assert_eq!(r.status(), 201);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/x-note",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": empty_digest.to_string(), "size": 2},
        "layers": [],
    }))
    .unwrap();
    for algorithm in strata_oci::Algorithm::ALL {
        let digest = Digest::of_with(algorithm, &manifest);
        let (one, two) = (format!("{algorithm}-one"), format!("{algorithm}-two"));
        let r = a
            .put(f.url(&format!(
                "/v2/acme/tagged/manifests/{digest}?tag={one}&tag={two}"
            )))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .send(&manifest[..])
            .unwrap();
        assert_eq!(r.status(), 201);
        let answered: Vec<&str> = r
            .headers()
            .get_all("oci-tag")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(answered, [one.as_str(), two.as_str()]);
        for tag in [&one, &two] {
            let r = a
                .head(f.url(&format!("/v2/acme/tagged/manifests/{tag}")))
                .call()
                .unwrap();
            assert_eq!(r.status(), 200, "{tag}");
        }
    }
    let c = client(None);
    assert_eq!(
        c.tags(&f.remote("acme/tagged")).unwrap(),
        ["sha256-one", "sha256-two", "sha512-one", "sha512-two"]
    );
    // A tag parameter that is not a tag is refused, and nothing is tagged.
    let digest = Digest::of(&manifest);
    let mut r = a
        .put(f.url(&format!(
            "/v2/acme/tagged/manifests/{digest}?tag=good&tag=-bad"
        )))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .send(&manifest[..])
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&mut r), "MANIFEST_INVALID");
    assert_eq!(c.tags(&f.remote("acme/tagged")).unwrap().len(), 4);
}

// TLS handshakes ran in tasks of their own outside the connection cap: clients that opened TCP
// connections and never finished a handshake could hold any number of descriptors.
#[test]
fn tls_handshakes_hold_connection_slots_and_stalled_ones_are_dropped() {
    let Some(openssl) = strata_testutil::require_tool("openssl") else {
        return;
    };
    let Some(curl) = strata_testutil::require_tool("curl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    strata_testutil::run_ok(
        std::process::Command::new(&openssl)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    let max = 4;
    let f = Fixture::new(ServerOptions {
        tls: Some(strata_registry::TlsConfig::from_pem_files(&cert, &key).unwrap()),
        max_connections: max,
        idle_timeout: Duration::from_secs(1),
        ..ServerOptions::default()
    });
    // Three times as many clients as slots connect and never start a handshake.
    let stalled: Vec<std::net::TcpStream> = (0..3 * max)
        .map(|_| std::net::TcpStream::connect(f.server.addr()).unwrap())
        .collect();
    // The server takes them up to its cap, and no further (there is no signal to wait on: the
    // count is polled, within a generous bound).
    let registry = f.server.registry();
    let started = std::time::Instant::now();
    while registry.open_connections() < max {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "stalled handshakes never took the connection slots ({} of {max})",
            registry.open_connections()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(registry.open_connections(), max);
    // A real client gets through: stalled handshakes are dropped by the idle timeout.
    let out = strata_testutil::run_ok(
        std::process::Command::new(&curl)
            .args(["-sS", "--cacert"])
            .arg(&cert)
            .args(["-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("https://{}/v2/", f.host())),
    );
    assert_eq!(out, "200");
    drop(stalled);
}
