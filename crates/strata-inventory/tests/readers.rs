//! The readers against fixture databases the real tools made (`tests/fixtures/regenerate.sh`),
//! checked against those tools' own reading where they are installed, and against hostile
//! mutations of the same files: every one is refused with a typed error, none panics.

use std::path::{Path, PathBuf};
use std::process::Command;

use strata_inventory::rpm::{bdb, header, sqlite};
use strata_inventory::{InventoryError, Package, apk, dpkg};
use strata_testutil::require_tool;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(path),
    )
    .unwrap()
}

fn fixture_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// `name version arch source source-version` lines, sorted.
fn lines(packages: &[Package]) -> Vec<String> {
    let mut out: Vec<String> = packages
        .iter()
        .map(|p| {
            format!(
                "{}\t{}\t{}\t{}\t{}",
                p.name, p.version, p.arch, p.source_name, p.source_version
            )
        })
        .collect();
    out.sort();
    out
}

fn tool_lines(mut command: Command) -> Vec<String> {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn dpkg_status_reads_as_dpkg_query_reads_it() {
    let ours = lines(&dpkg::parse_status("/var/lib/dpkg/status", &fixture("dpkg/status")).unwrap());
    assert_eq!(ours.len(), 7);
    assert!(ours.contains(&"libssl3\t3.0.19-1~deb12u2\tamd64\topenssl\t3.0.19-1~deb12u2".into()));
    assert!(
        ours.contains(&"bash\t5.2.15-2+b8\tamd64\tbash\t5.2.15-2".into()),
        "{ours:?}"
    );
    let Some(dpkg_query) = require_tool("dpkg-query") else {
        return;
    };
    let mut command = Command::new(dpkg_query);
    command
        .arg(format!("--admindir={}", fixture_path("dpkg").display()))
        .args([
            "-W",
            "-f=${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n",
        ]);
    assert_eq!(ours, tool_lines(command));
}

#[test]
fn distroless_status_d_lists_what_status_lists_and_skips_md5sums() {
    let dir = fixture_path("dpkg/status.d");
    let mut ours = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut dbs = strata_inventory::Databases::default();
        dbs.insert(
            &format!("/var/lib/dpkg/status.d/{name}"),
            std::fs::read(&path).unwrap(),
        );
        ours.extend(dbs.packages().unwrap());
    }
    let status = dpkg::parse_status("/var/lib/dpkg/status", &fixture("dpkg/status")).unwrap();
    assert_eq!(lines(&ours), lines(&status));
}

const RPM_EXPECTED: [&str; 3] = [
    "hello\t1:2.10-3.fc40\tnoarch\thello\t2.10-3.fc40",
    "hello-libs\t1:2.10-3.fc40\tnoarch\thello\t2.10-3.fc40",
    "zlib\t1.2.13-5.el9\tnoarch\tzlib\t1.2.13-5.el9",
];

/// rpm's own reading of a database directory, in our line format.
fn rpm_lines(dir: &Path, backend: &str) -> Option<Vec<String>> {
    let rpm = require_tool("rpm")?;
    let mut command = Command::new(rpm);
    command
        .arg("--define")
        .arg(format!("_db_backend {backend}"))
        .arg("--dbpath")
        .arg(dir)
        .args([
            "-qa",
            "--qf",
            "%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n",
        ])
        .stderr(std::process::Stdio::null());
    Some(
        tool_lines(command)
            .into_iter()
            .map(|l| {
                let (head, src) = l.rsplit_once('\t').unwrap();
                let (n, v) = header::split_source_rpm(src).unwrap();
                format!("{head}\t{n}\t{v}")
            })
            .collect(),
    )
}

#[test]
fn rpm_sqlite_reads_as_rpm_reads_it() {
    let ours =
        lines(&sqlite::parse("/var/lib/rpm/rpmdb.sqlite", &fixture("rpm/rpmdb.sqlite")).unwrap());
    assert_eq!(ours, RPM_EXPECTED);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture_path("rpm/rpmdb.sqlite"),
        dir.path().join("rpmdb.sqlite"),
    )
    .unwrap();
    if let Some(theirs) = rpm_lines(dir.path(), "sqlite") {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn reading_a_sqlite_database_leaves_nothing_behind() {
    // rpm writes its sqlite database in WAL mode: a read-only connection creates `-wal` and
    // `-shm` files beside the copy, which must go with it.
    let temp = tempfile::tempdir().unwrap();
    let packages = sqlite::parse_in(
        "/var/lib/rpm/rpmdb.sqlite",
        &fixture("rpm/rpmdb.sqlite"),
        temp.path(),
    )
    .unwrap();
    assert_eq!(packages.len(), 3);
    let left: Vec<_> = std::fs::read_dir(temp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn rpm_berkeleydb_reads_as_rpm_reads_it() {
    let ours = lines(&bdb::parse("/var/lib/rpm/Packages", &fixture("rpm/Packages")).unwrap());
    assert_eq!(ours, RPM_EXPECTED);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture_path("rpm/Packages"), dir.path().join("Packages")).unwrap();
    if let Some(theirs) = rpm_lines(dir.path(), "bdb_ro") {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn apk_installed_fixture() {
    let ours =
        lines(&apk::parse_installed("/lib/apk/db/installed", &fixture("apk/installed")).unwrap());
    assert_eq!(
        ours,
        [
            "busybox\t1.36.1-r29\tx86_64\tbusybox\t1.36.1-r29",
            "libssl3\t3.3.1-r3\tx86_64\topenssl\t3.3.1-r3",
            "musl\t1.2.5-r0\tx86_64\tmusl\t1.2.5-r0",
        ]
    );
}

const PAGE: usize = 4096;

fn page_type(data: &[u8], pgno: usize) -> u8 {
    data[pgno * PAGE + 25]
}

fn bdb_err(data: &[u8]) -> String {
    match bdb::parse("/var/lib/rpm/Packages", data) {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(e @ (InventoryError::Malformed { .. } | InventoryError::TooLarge { .. })) => {
            e.to_string()
        }
        Err(e) => panic!("untyped: {e}"),
    }
}

#[test]
fn truncated_berkeleydb_files_are_refused_naming_the_file() {
    let data = fixture("rpm/Packages");
    let err = bdb_err(&data[..data.len() - 100]);
    assert!(
        err.starts_with("/var/lib/rpm/Packages: page 0 (metadata): "),
        "{err}"
    );
    assert!(err.contains("truncated"), "{err}");
    let err = bdb_err(&data[..data.len() - PAGE]);
    assert!(err.contains("beyond the file's"), "{err}");
    let err = bdb_err(&data[..10]);
    assert!(err.contains("shorter than a metadata page"), "{err}");
}

#[test]
fn a_loop_in_an_overflow_chain_is_refused() {
    let mut data = fixture("rpm/Packages");
    let pages = data.len() / PAGE;
    // An overflow page that continues on another: point its successor back at itself.
    let looped = (1..pages)
        .find(|&p| {
            page_type(&data, p) == 7
                && u32::from_le_bytes(data[p * PAGE + 16..p * PAGE + 20].try_into().unwrap()) != 0
        })
        .expect("the fixture has a multi-page overflow chain");
    data[looped * PAGE + 16..looped * PAGE + 20].copy_from_slice(&(looped as u32).to_le_bytes());
    let err = bdb_err(&data);
    assert!(
        err.contains(&format!("page {looped}: an overflow chain that loops")),
        "{err}"
    );
}

#[test]
fn huge_counts_are_refused() {
    let mut data = fixture("rpm/Packages");
    let hash = (1..data.len() / PAGE)
        .find(|&p| page_type(&data, p) == 13)
        .unwrap();
    data[hash * PAGE + 20..hash * PAGE + 22].copy_from_slice(&u16::MAX.to_le_bytes());
    let err = bdb_err(&data);
    assert!(
        err.contains(&format!("page {hash}: 65535 entries")),
        "{err}"
    );

    let blob = header::build(&[(1000, header::HeaderValue::Str("x"))]);
    let mut huge = blob.clone();
    huge[0..4].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    assert!(
        header::Header::parse(&huge)
            .unwrap_err()
            .contains("index entries")
    );
    let mut huge = blob;
    huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(
        header::Header::parse(&huge)
            .unwrap_err()
            .contains("data store")
    );
}

#[test]
fn a_bad_offset_in_an_rpm_header_is_refused_naming_the_record() {
    let blobs = bdb::header_blobs("/var/lib/rpm/Packages", &fixture("rpm/Packages")).unwrap();
    let (_, blob) = &blobs[0];
    // The first index entry's offset, far past the data store.
    let mut bad = blob.clone();
    bad[16..20].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
    let err = header::Header::parse(&bad);
    // The first entry is rpm's region tag, which strata does not read: move the bad offset to
    // a tag it reads (NAME) instead if the first was skipped.
    if err.is_ok() {
        let il = u32::from_be_bytes(blob[0..4].try_into().unwrap()) as usize;
        let name = (0..il)
            .find(|k| u32::from_be_bytes(blob[8 + k * 16..12 + k * 16].try_into().unwrap()) == 1000)
            .unwrap();
        bad = blob.clone();
        bad[8 + name * 16 + 8..8 + name * 16 + 12].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
    }
    let err = header::Header::parse(&bad).unwrap_err();
    assert!(err.contains("outside the"), "{err}");
}

/// xorshift64*, for reproducible mutations.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    for _ in 0..1 + rng.below(8) {
        if out.is_empty() {
            break;
        }
        let at = rng.below(out.len());
        match rng.below(6) {
            0 => out.truncate(at),
            1 => out[at] = 0xff,
            2 => out[at] = 0,
            3 => out[at] ^= 1 << rng.below(8),
            4 => {
                // a 32-bit field set to a huge or self-referencing value
                let end = (at + 4).min(out.len());
                let v = [u32::MAX, 0x7fff_ffff, 1, at as u32][rng.below(4)].to_le_bytes();
                out[at..end].copy_from_slice(&v[..end - at]);
            }
            _ => {
                let len = rng.below(64).min(out.len() - at);
                let copy = out[at..at + len].to_vec();
                let to = rng.below(out.len());
                let end = (to + len).min(out.len());
                out[to..end].copy_from_slice(&copy[..end - to]);
            }
        }
    }
    out
}

#[test]
fn random_mutations_of_every_fixture_never_panic() {
    let mut rng = Rng(0x51a7a);
    let packages = fixture("rpm/Packages");
    let blobs = bdb::header_blobs("/var/lib/rpm/Packages", &packages).unwrap();
    for _ in 0..3000 {
        let _ = bdb::parse("/var/lib/rpm/Packages", &mutate(&mut rng, &packages));
        let (_, blob) = &blobs[rng.below(blobs.len())];
        let _ = header::Header::parse(&mutate(&mut rng, blob));
        let _ = dpkg::parse_status(
            "/var/lib/dpkg/status",
            &mutate(&mut rng, &fixture("dpkg/status")),
        );
        let _ = apk::parse_installed(
            "/lib/apk/db/installed",
            &mutate(&mut rng, &fixture("apk/installed")),
        );
    }
    let sqlite_db = fixture("rpm/rpmdb.sqlite");
    for _ in 0..150 {
        let _ = sqlite::parse("/var/lib/rpm/rpmdb.sqlite", &mutate(&mut rng, &sqlite_db));
    }
}
