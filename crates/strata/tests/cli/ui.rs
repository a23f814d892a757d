//! The web pages of `strata serve` (`/ui/`, issue 21), driven by headless Chromium against the
//! example chain built by the test: the chain page shows the four images with their teams, an
//! image page its layer tree with teams and its verified custody, a build started from the
//! command line appears on an open timeline page without a reload (read from the DOM the browser
//! holds, through the DevTools protocol), hostile Dockerfile text stays text, and the pages keep
//! the registry's read rule. A screenshot of each page is kept under `target/ui-screenshots/`.

#![allow(clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{PATIENCE, Serve, free_port, ok, strata};

const TEAMS: [&str; 3] = ["operations", "middleware", "development"];

/// Chromium's flags that work offline and as root.
const CHROMIUM_FLAGS: [&str; 7] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A hostile line the app's Dockerfile carries: a label and a comment with markup in them.
const HOSTILE: &str = "<script>document.title='pwned'</script>";

/// The example chain, keys per team trusted in strata.toml, the app's Dockerfile carrying
/// [`HOSTILE`] in a comment and a label, built and signed. None when this machine cannot build it.
fn built_example() -> Option<(tempfile::TempDir, Vec<(&'static str, PathBuf)>)> {
    if !strata_testutil::can_build_example() {
        return None;
    }
    let dir = strata_testutil::init_example(assert_cmd::cargo::cargo_bin!("strata"));
    let d = dir.path();
    let mut toml = std::fs::read_to_string(d.join("strata.toml")).unwrap();
    let mut keys = Vec::new();
    for team in TEAMS {
        ok(strata(d, &[])
            .args(["key", "generate", "--team", team, "--out"])
            .arg(d.join("keys")));
        toml = toml.replace(
            &format!("[teams.{team}]\n"),
            &format!("[teams.{team}]\nkeys = [\"keys/{team}.pub\"]\n"),
        );
        keys.push((team, d.join(format!("keys/{team}.key"))));
    }
    // The middleware tier has a tier test, so its page has a result to show.
    let toml = toml.replace(
        "context = \"httpd-php\"\n",
        "context = \"httpd-php\"\ntest = \"httpd-php/structure-test.yaml\"\n",
    );
    std::fs::write(d.join("strata.toml"), toml).unwrap();
    std::fs::write(
        d.join("httpd-php/structure-test.yaml"),
        "schemaVersion: \"2.0.0\"\nfileExistenceTests:\n  - name: httpd config\n    path: /etc/httpd.conf\n    shouldExist: true\n",
    )
    .unwrap();
    let dockerfile = d.join("wordpress/Dockerfile");
    let mut text = std::fs::read_to_string(&dockerfile).unwrap();
    text.push_str(&format!(
        "# {HOSTILE}\nLABEL evil=\"{HOSTILE}\"\nCOPY dpkg-status /var/lib/dpkg/status\n"
    ));
    std::fs::write(&dockerfile, text).unwrap();
    // A package database, so the image page has packages to credit to the app's tier.
    std::fs::write(
        d.join("wordpress/dpkg-status"),
        "Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\n\
         Description: greets\n",
    )
    .unwrap();
    let key_refs: Vec<(&str, &Path)> = keys.iter().map(|(t, k)| (*t, k.as_path())).collect();
    ok(strata(d, &key_refs).arg("build"));
    Some((dir, keys))
}

/// `GET path` with extra header lines: (status, headers, body).
fn get(port: u16, path: &str, headers: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// Where screenshots are kept: `target/ui-screenshots/`.
fn screenshots() -> PathBuf {
    let bin = assert_cmd::cargo::cargo_bin!("strata");
    let target = bin
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| bin.parent().unwrap().to_path_buf());
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium with its own profile directory.
fn chromium(chromium: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(chromium);
    cmd.args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .stdin(Stdio::null());
    cmd
}

/// The DOM Chromium holds once `url` has loaded, serialized.
fn dump_dom(bin: &Path, profile: &Path, url: &str) -> String {
    let out = chromium(bin, profile)
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium --dump-dom {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A screenshot of `url` into `file`.
fn screenshot(bin: &Path, profile: &Path, url: &str, file: &Path) {
    let out = chromium(bin, profile)
        .args(["--hide-scrollbars", "--window-size=1280,900"])
        .arg(format!("--screenshot={}", file.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success() && file.exists(),
        "chromium --screenshot {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(file).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{} is no PNG", file.display());
}

#[test]
fn the_pages_show_the_built_chain_its_layers_by_team_and_verified_custody_in_chromium() {
    let Some(bin) = strata_testutil::require_tool("chromium") else {
        return;
    };
    let Some((dir, _keys)) = built_example() else {
        return;
    };
    let server = Serve::spawn(strata(dir.path(), &[]), &[]);
    let profile = tempfile::tempdir().unwrap();

    // The chain page: all four images, each with its team, linking to its page.
    let dom = dump_dom(&bin, profile.path(), &server.url("/ui/"));
    for (image, team) in [
        ("base", "operations"),
        ("corebuild", "operations"),
        ("httpd-php", "middleware"),
        ("wordpress", "development"),
    ] {
        assert!(
            dom.contains(&format!(
                "href=\"/ui/image/{image}\" class=\"node\" data-image=\"{image}\" data-team=\"{team}\" data-status=\"up-to-date\""
            )),
            "the chain page's graph lacks {image} of {team}, up to date:\n{dom}"
        );
    }
    // The JSON twin says the same.
    let (status, _, body) = get(server.port(), "/ui/?format=json", "");
    assert_eq!(status, 200, "{body}");
    let chain: serde_json::Value = serde_json::from_str(&body).unwrap();
    let nodes = chain["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4, "{body}");
    for n in nodes {
        assert_eq!(n["status"]["state"], "up-to-date", "{n}");
        assert!(n["digest"].as_str().unwrap().starts_with("sha256:"), "{n}");
        assert_eq!(n["build"], 1, "{n}");
    }

    // The app's page: its layer tree with each layer's team, its verified custody, its
    // Dockerfile with the hostile text shown as text.
    let dom = dump_dom(&bin, profile.path(), &server.url("/ui/image/wordpress"));
    for team in TEAMS {
        assert!(
            dom.contains(&format!("<tr class=\"layer\" data-team=\"{team}\">")),
            "no layer of {team} on the image page:\n{dom}"
        );
    }
    assert!(
        dom.contains("data-verified=\"true\""),
        "custody not verified:\n{dom}"
    );
    for team in TEAMS {
        assert!(
            dom.contains(&format!("<td>{team}</td>")),
            "custody lacks {team}"
        );
    }
    assert!(
        dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"),
        "the Dockerfile's hostile text is not shown as text:\n{dom}"
    );
    assert!(
        !dom.contains(HOSTILE) && !dom.contains("<title>pwned"),
        "hostile markup became markup:\n{dom}"
    );
    // Its packages, each with the tier and team that brought it in.
    assert!(
        dom.contains("<tr class=\"package\" data-team=\"development\"><td>hello</td><td class=\"mono\">2.10-3</td><td>acme/wordpress</td>"),
        "the package is not credited to the app's tier:\n{dom}"
    );
    let (status, head, body) = get(server.port(), "/ui/image/wordpress?format=json", "");
    assert_eq!(status, 200, "{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    let image: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(image["custody"]["verified"], true, "{body}");
    assert_eq!(image["custody"]["links"].as_array().unwrap().len(), 4);
    assert!(
        image["dockerfile"]["text"]
            .as_str()
            .unwrap()
            .contains(HOSTILE)
    );

    // The middleware's page has its tier test's result.
    let (status, _, body) = get(server.port(), "/ui/image/httpd-php?format=json", "");
    assert_eq!(status, 200, "{body}");
    let image: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(image["tests"][0]["result"], "ok", "{body}");
    let (_, _, html) = get(server.port(), "/ui/image/httpd-php", "");
    assert!(
        html.contains("data-kind=\"test\" data-result=\"ok\""),
        "{html}"
    );

    // The timeline has the build, one story for the cascade; deployments answers.
    let dom = dump_dom(&bin, profile.path(), &server.url("/ui/timeline?kind=build"));
    assert!(
        dom.contains("data-kind=\"build\" data-result=\"ok\""),
        "no build on the timeline:\n{dom}"
    );
    let (status, _, body) = get(server.port(), "/ui/timeline?format=json", "");
    assert_eq!(status, 200);
    let timeline: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stories = timeline["stories"].as_array().unwrap();
    assert!(
        stories
            .iter()
            .any(|s| s["events"].as_array().unwrap().len() >= 4
                && s["headline"].as_str().unwrap().contains("cascaded to")),
        "the build is not one story: {body}"
    );
    // Filters: one team's events only.
    let (status, _, body) = get(
        server.port(),
        "/ui/timeline?team=middleware&format=json",
        "",
    );
    assert_eq!(status, 200);
    let timeline: serde_json::Value = serde_json::from_str(&body).unwrap();
    let events: Vec<&serde_json::Value> = timeline["stories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["events"].as_array().unwrap())
        .collect();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["team"] == "middleware"), "{body}");
    let (status, _, _) = get(server.port(), "/ui/deployments?format=json", "");
    assert_eq!(status, 200);

    // A screenshot of each page.
    let shots = screenshots();
    for (path, name) in [
        ("/ui/", "chain.png"),
        ("/ui/image/wordpress", "image.png"),
        ("/ui/timeline", "timeline.png"),
        ("/ui/deployments", "deployments.png"),
    ] {
        screenshot(&bin, profile.path(), &server.url(path), &shots.join(name));
    }
}

#[test]
fn urls_cannot_traverse_and_the_pages_keep_the_registrys_read_rule() {
    let Some((dir, _keys)) = built_example() else {
        return;
    };
    let d = dir.path();
    // Pulls need credentials: so do the pages.
    let token = "s3cret-token";
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    };
    std::fs::write(
        d.join("auth.toml"),
        format!("pull = \"authenticated\"\n[users.olga]\ntoken_sha256 = \"{sha}\"\nteam = \"operations\"\n"),
    )
    .unwrap();
    let auth = d.join("auth.toml");
    let server = Serve::spawn(strata(d, &[]), &["--auth", auth.to_str().unwrap()]);
    for path in ["/ui/", "/ui/image/wordpress", "/ui/timeline", "/ui/events"] {
        let (status, head, _) = get(server.port(), path, "");
        assert_eq!(status, 401, "{path} without credentials: {head}");
        assert!(
            head.contains("WWW-Authenticate: Basic realm=\"strata\"")
                || head
                    .to_ascii_lowercase()
                    .contains("www-authenticate: basic realm"),
            "{head}"
        );
    }
    let basic = format!(
        "Authorization: Basic {}\r\n",
        base64_basic(&format!("olga:{token}"))
    );
    let bad = format!("Authorization: Basic {}\r\n", base64_basic("olga:wrong"));
    assert_eq!(get(server.port(), "/ui/", &bad).0, 401);
    let (status, _, body) = get(server.port(), "/ui/", &basic);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("wordpress"));

    // Pulls open to anyone: so are the pages, even with an auth file.
    let open_auth = d.join("auth-open.toml");
    std::fs::write(
        &open_auth,
        format!("pull = \"open\"\n[users.olga]\ntoken_sha256 = \"{sha}\"\nteam = \"operations\"\n"),
    )
    .unwrap();
    let open = Serve::spawn(strata(d, &[]), &["--auth", open_auth.to_str().unwrap()]);
    assert_eq!(get(open.port(), "/ui/", "").0, 200);
    drop(open);

    // No way out of the store or the repository through the URL.
    for path in [
        "/ui/image/..%2F..%2F..%2Fetc%2Fpasswd",
        "/ui/image/../../etc/passwd",
        "/ui/image/%2Fetc%2Fpasswd",
        "/ui/image/wordpress?a=..%2F..%2Fcorebuild%3A1&b=1",
        "/ui/image/wordpress?a=1&b=%2Fetc%2Fpasswd",
        "/ui/timeline?kind=%3Cscript%3E",
    ] {
        let (status, _, body) = get(server.port(), path, &basic);
        assert!(status == 400 || status == 404, "{path}: {status} {body}");
        assert!(!body.contains("root:x:0:0"), "{path} read /etc/passwd");
        assert!(!body.contains("<script>"), "{path} echoed markup: {body}");
    }
}

/// Standard base64 of `s` (for a Basic header), without pulling a crate into the tests.
fn base64_basic(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | (u32::from(c) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A DevTools-protocol session with one page of a headless Chromium (killed on drop).
struct Browser {
    child: Child,
    socket: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Chromium showing `url`, with a DevTools session on its page.
    fn open(bin: &Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = chromium(bin, profile.path())
            .arg(format!("--remote-debugging-port={port}"))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The page's websocket, from the DevTools HTTP endpoint once it answers.
        let deadline = Instant::now() + PATIENCE;
        let ws = loop {
            assert!(
                Instant::now() < deadline,
                "chromium's DevTools never answered"
            );
            if let Some(body) = devtools_list(port)
                && let Ok(serde_json::Value::Array(targets)) = serde_json::from_str(&body)
                && let Some(ws) = targets
                    .iter()
                    .find(|t| t["type"] == "page" && t["url"].as_str() == Some(url))
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            {
                break ws.to_string();
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let (socket, _) = tungstenite::client(ws.as_str(), stream).unwrap();
        Browser {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Evaluate `expression` in the page; its value (by value, as JSON).
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let call = serde_json::json!({
            "id": id,
            "method": "Runtime.evaluate",
            "params": { "expression": expression, "returnByValue": true },
        });
        self.socket
            .send(tungstenite::Message::text(call.to_string()))
            .unwrap();
        loop {
            let message = self.socket.read().unwrap();
            let Ok(text) = message.to_text() else {
                continue;
            };
            let Ok(reply) = serde_json::from_str::<serde_json::Value>(text) else {
                continue;
            };
            if reply["id"] == id {
                return reply["result"]["result"]["value"].clone();
            }
        }
    }

    /// Evaluate `expression` until it is true (a DOM state the page reaches by itself).
    fn until(&mut self, what: &str, expression: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.eval(expression) != serde_json::Value::Bool(true) {
            assert!(Instant::now() < deadline, "the page never showed {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// DevTools' list of targets (HTTP/1.1: it ignores 1.0 and keeps the connection open, so the
/// body is read by its Content-Length).
fn devtools_list(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut reader = BufReader::new(s);
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.socket.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_build_from_the_command_line_appears_on_an_open_timeline_without_a_reload() {
    let Some(bin) = strata_testutil::require_tool("chromium") else {
        return;
    };
    let Some((dir, keys)) = built_example() else {
        return;
    };
    let d = dir.path();
    let server = Serve::spawn(strata(d, &[]), &[]);
    let url = server.url("/ui/timeline");
    let mut browser = Browser::open(&bin, &url);
    browser.until(
        "its live feed open",
        "document.getElementById('live') !== null && document.getElementById('live').dataset.state === 'open'",
    );
    // A mark a reload would wipe.
    browser.eval("window.stillTheSamePage = true");

    // The app changes; its owner rebuilds from the command line.
    let dockerfile = d.join("wordpress/Dockerfile");
    let mut text = std::fs::read_to_string(&dockerfile).unwrap();
    text.push_str("ENV UI_TEST=1\n");
    std::fs::write(&dockerfile, text).unwrap();
    let key_refs: Vec<(&str, &Path)> = keys.iter().map(|(t, k)| (*t, k.as_path())).collect();
    ok(strata(d, &key_refs).args(["build", "wordpress"]));
    let built = Instant::now();

    browser.until(
        "the rebuild of wordpress",
        "[...document.querySelectorAll('li.story.new .event')].some(e => \
         e.dataset.kind === 'build' && e.dataset.result === 'ok' && e.textContent.includes('wordpress'))",
    );
    eprintln!(
        "the rebuild showed on the open page {} ms after `strata build` returned",
        built.elapsed().as_millis()
    );
    assert_eq!(
        browser.eval("window.stillTheSamePage === true"),
        serde_json::Value::Bool(true),
        "the page was reloaded"
    );
    // The run's events gathered in one story, as the page shows stories.
    let story = browser.eval(
        "[...document.querySelectorAll('li.story.new')].map(s => s.querySelectorAll('.event').length)",
    );
    let story: Vec<usize> = serde_json::from_value(story).unwrap();
    assert!(
        story.len() == 1 && story[0] >= 2,
        "the rebuild's events are not one story: {story:?}"
    );
    // The two builds of the app, compared on its page.
    let (status, _, body) = get(server.port(), "/ui/image/wordpress?a=1&b=2&format=json", "");
    assert_eq!(status, 200, "{body}");
    let image: serde_json::Value = serde_json::from_str(&body).unwrap();
    let added = image["diff"]["diff"]["added"].as_array().unwrap();
    assert!(
        image["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["build"] == 2)
            && added.is_empty(),
        "an ENV adds no layer, so builds 1 and 2 share every layer: {body}"
    );
    assert!(
        image["diff"]["diff"]["commonPrefix"].as_u64().unwrap() >= 6,
        "{body}"
    );
    // Each live row carries its log row id, once.
    let ids =
        browser.eval("[...document.querySelectorAll('.event')].map(e => Number(e.dataset.id))");
    let ids: Vec<i64> = serde_json::from_value(ids).unwrap();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "an event shown twice: {ids:?}");
}

/// Read SSE events from `/ui/events` with `Last-Event-ID`: their ids, until `last` is seen.
fn feed_ids(port: u16, last_event_id: i64, last: i64) -> Vec<i64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "GET /ui/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nLast-Event-ID: {last_event_id}\r\n\r\n"
    )
    .unwrap();
    let mut ids = Vec::new();
    for line in BufReader::new(s).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("id:") {
            let id: i64 = id.trim().parse().unwrap();
            ids.push(id);
            if id >= last {
                break;
            }
        }
    }
    ids
}

#[test]
fn the_live_feed_resumes_after_last_event_id_without_a_gap() {
    let Some((dir, _keys)) = built_example() else {
        return;
    };
    let server = Serve::spawn(strata(dir.path(), &[]), &[]);
    let (_, _, body) = get(server.port(), "/ui/timeline?format=json", "");
    let timeline: serde_json::Value = serde_json::from_str(&body).unwrap();
    let last = timeline["last_id"].as_i64().unwrap();
    assert!(last > 5, "too few events to resume in: {last}");
    // A browser that saw up to row 3 reconnects: every later row comes, in order, once.
    let ids = feed_ids(server.port(), 3, last);
    let expected: Vec<i64> = (4..=last).collect();
    assert_eq!(ids, expected);
}

#[test]
fn an_open_live_feed_does_not_keep_the_server_from_stopping() {
    let Some((dir, _keys)) = built_example() else {
        return;
    };
    let mut server = Serve::spawn(strata(dir.path(), &[]), &[]);
    // A browser on the timeline: its live feed open (headers received).
    let mut feed = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    feed.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        feed,
        "GET /ui/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(feed);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    ok(Command::new("kill").args(["-TERM", &server.pid().to_string()]));
    // The feed ends and the server exits (it used to wait for the feed forever).
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(exit) = server.try_status() {
            assert!(exit.success(), "serve exited {exit}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop with a feed open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
