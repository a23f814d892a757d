//! Our version orders against the real tools on generated pairs: Debian's through python3-apt's
//! `apt_pkg.version_compare` (itself checked against `dpkg --compare-versions` on a sample), rpm's
//! through one `rpm --eval` whose Lua loop calls `rpm.vercmp` on every pair. apk-tools is not
//! packaged by Debian 12, so apk's order is checked by its unit tests only.

#![allow(clippy::print_stderr)]

use std::cmp::Ordering;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use strata_inventory::version::{deb, rpm};
use strata_testutil::require_tool;

const PAIRS: usize = 100_000;
/// What a derived version may gain at its end.
const DEB_SUFFIXES: &[&str] = &["~", "+b1", "a", ".0", "-1", "~bpo12+1", "+deb12u1"];
const RPM_SUFFIXES: &[&str] = &["~", "^1", "a", ".0", "-1", "_1", "~rc1"];

/// xorshift64*: reproducible pairs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn number(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "0".to_string(),
        1 => format!("0{}", rng.below(10)),
        2 => format!("{}", rng.below(100_000)),
        3 => "18446744073709551616".to_string(), // beyond u64
        _ => format!("{}", rng.below(20)),
    }
}

fn deb_upstream(rng: &mut Rng) -> String {
    let mut out = number(rng);
    for _ in 0..rng.below(4) {
        match rng.below(10) {
            0 => out.push_str(rng.pick(&["a", "b", "rc", "alpha", "z", "Z"])),
            1 => out.push('+'),
            2 => out.push('~'),
            _ => {
                out.push('.');
                out.push_str(&number(rng));
            }
        }
    }
    if rng.chance(10) {
        out.push_str(rng.pick(&[
            "~rc1",
            "~beta2",
            "~~",
            "+dfsg",
            "+really1.0",
            "~git20240101.abc",
        ]));
    }
    out
}

fn deb_version(rng: &mut Rng) -> String {
    let mut out = String::new();
    if rng.chance(20) {
        out.push_str(&format!("{}:", rng.below(4)));
    }
    out.push_str(&deb_upstream(rng));
    if rng.chance(75) {
        out.push('-');
        out.push_str(&number(rng));
        match rng.below(8) {
            0 => out.push_str(&format!("+deb{}u{}", 10 + rng.below(4), rng.below(12))),
            1 => out.push_str(&format!("~deb{}u{}", 10 + rng.below(4), rng.below(12))),
            2 => out.push_str(&format!("~bpo{}+{}", 10 + rng.below(4), rng.below(3))),
            3 => out.push_str(&format!("+b{}", rng.below(4))),
            4 => out.push_str(&format!("ubuntu{}", rng.below(4))),
            5 => out.push_str(&format!(".{}", rng.below(3))),
            _ => {}
        }
    }
    out
}

fn rpm_segment(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => rng
            .pick(&["a", "b", "rc", "beta", "git", "el", "fc"])
            .to_string(),
        _ => number(rng),
    }
}

fn rpm_part(rng: &mut Rng) -> String {
    let mut out = rpm_segment(rng);
    for _ in 0..rng.below(4) {
        out.push_str(rng.pick(&[".", ".", ".", "_", "+", "~", "^", "", "%"]));
        out.push_str(&rpm_segment(rng));
    }
    if rng.chance(8) {
        out.push_str(rng.pick(&["~", "^", "~rc1", "^git1", "."]));
    }
    out
}

fn rpm_version(rng: &mut Rng) -> String {
    let mut out = String::new();
    if rng.chance(20) {
        out.push_str(&format!("{}:", rng.below(4)));
    }
    out.push_str(&rpm_part(rng));
    if rng.chance(80) {
        out.push('-');
        out.push_str(&rpm_part(rng));
        if rng.chance(30) {
            out.push_str(rng.pick(&[".el8", ".el9_2", ".fc40", ".el7_9.1"]));
        }
    }
    out
}

/// A pair: half independent, half one derived from the other (near-equal versions are where
/// orders disagree).
fn pairs(seed: u64, make: fn(&mut Rng) -> String, suffixes: &[&str]) -> Vec<(String, String)> {
    let mut rng = Rng(seed);
    (0..PAIRS)
        .map(|_| {
            let a = make(&mut rng);
            let b = if rng.chance(50) {
                make(&mut rng)
            } else {
                let mut b = a.clone();
                match rng.below(5) {
                    0 => b.push_str(rng.pick(suffixes)),
                    1 => b = b.replacen('1', "2", 1),
                    2 => b = b.replacen('.', "~", 1),
                    3 => {
                        b.pop();
                    }
                    _ => {}
                }
                // Keep b a valid version: dpkg and apt disagree on an empty revision (`1.0-`),
                // which dpkg itself refuses to install.
                if b.is_empty() || b.starts_with(['-', ':']) || b.ends_with(['-', ':']) {
                    b = a.clone();
                }
                b
            };
            (a, b)
        })
        .collect()
}

fn sign(o: Ordering) -> i32 {
    match o {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
}

fn check(
    what: &str,
    pairs: &[(String, String)],
    theirs: &[i32],
    ours: impl Fn(&str, &str) -> Ordering,
) {
    assert_eq!(theirs.len(), pairs.len(), "{what}: one verdict per pair");
    let wrong: Vec<String> = pairs
        .iter()
        .zip(theirs)
        .filter(|((a, b), t)| sign(ours(a, b)) != t.signum())
        .take(20)
        .map(|((a, b), t)| format!("{a} vs {b}: {what} says {t}, we say {}", sign(ours(a, b))))
        .collect();
    assert!(wrong.is_empty(), "{what} disagrees:\n{}", wrong.join("\n"));
}

/// A python3 that can import apt_pkg (python3-apt installs into Debian's own python).
fn python_with_apt() -> Option<PathBuf> {
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import apt_pkg"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(PathBuf::from(candidate));
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("python3-apt is required under CI=true but is not installed");
    }
    eprintln!("skipping: python3-apt is not installed");
    None
}

fn apt_verdicts(python: &Path, pairs: &[(String, String)]) -> Vec<i32> {
    let script = "import sys, apt_pkg\napt_pkg.init_system()\nout = []\nfor line in sys.stdin:\n    a, b = line.rstrip('\\n').split('\\t')\n    out.append(str(apt_pkg.version_compare(a, b)))\nprint('\\n'.join(out))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let input: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "apt_pkg failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn debian_order_agrees_with_apt_pkg_on_100000_generated_pairs() {
    let Some(python) = python_with_apt() else {
        return;
    };
    let pairs = pairs(0x05ee_ddeb, deb_version, DEB_SUFFIXES);
    let theirs = apt_verdicts(&python, &pairs);
    check("apt_pkg.version_compare", &pairs, &theirs, deb::compare);
}

#[test]
fn apt_pkg_agrees_with_dpkg_compare_versions_on_a_2000_pair_sample() {
    let Some(python) = python_with_apt() else {
        return;
    };
    let Some(dpkg) = require_tool("dpkg") else {
        return;
    };
    let sample: Vec<(String, String)> = pairs(0xd9c6, deb_version, DEB_SUFFIXES)
        .into_iter()
        .take(2000)
        .collect();
    let theirs = apt_verdicts(&python, &sample);
    for ((a, b), t) in sample.iter().zip(&theirs) {
        let lt = Command::new(&dpkg)
            .args(["--compare-versions", a, "lt", b])
            .status()
            .unwrap()
            .success();
        let gt = !lt
            && Command::new(&dpkg)
                .args(["--compare-versions", a, "gt", b])
                .status()
                .unwrap()
                .success();
        let dpkg_says = if lt {
            -1
        } else if gt {
            1
        } else {
            0
        };
        assert_eq!(
            dpkg_says,
            t.signum(),
            "{a} vs {b}: dpkg says {dpkg_says}, apt_pkg {t}"
        );
        assert_eq!(
            dpkg_says,
            sign(deb::compare(a, b)),
            "{a} vs {b}: dpkg says {dpkg_says}"
        );
    }
}

#[test]
fn rpm_order_agrees_with_rpm_vercmp_on_100000_generated_pairs() {
    let Some(rpm) = require_tool("rpm") else {
        return;
    };
    let pairs = pairs(0x5eed_0f1e, rpm_version, RPM_SUFFIXES);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pairs");
    let output = dir.path().join("verdicts");
    let text: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let lua = format!(
        "%{{lua: local out = io.open('{}', 'w') for line in io.lines('{}') do local a, b = line:match('^([^\\t]*)\\t(.*)$') out:write(rpm.vercmp(a, b), '\\n') end out:close()}}",
        output.display(),
        input.display()
    );
    let status = Command::new(rpm).args(["--eval", &lua]).status().unwrap();
    assert!(status.success(), "rpm --eval failed");
    let theirs: Vec<i32> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    check("rpm.vercmp", &pairs, &theirs, rpm::compare_evr);
}
