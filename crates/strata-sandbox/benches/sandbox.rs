//! Figures for the sandbox: the cost of one sandboxed command per isolation mode, and of
//! walking an upper directory. Needs root for the overlay and copy modes.
//! Run: `cargo bench -p strata-sandbox`.

#![allow(clippy::print_stdout)]

use std::fs;
use std::time::Instant;

use strata_sandbox::{Cancel, Discard, RootFs, SandboxSpec, Strategy, run, upper_changes};

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("sandbox bench: needs root, skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lower = dir.path().join("lower");
    if strata_testutil::busybox_rootfs_dir(&lower).is_none() {
        return;
    }
    // Some bulk, so the copy fallback has something to copy: 2000 files of 4 KiB.
    for d in 0..20 {
        let sub = lower.join("usr/share/bulk").join(d.to_string());
        fs::create_dir_all(&sub).unwrap();
        for f in 0..100 {
            fs::write(sub.join(f.to_string()), vec![b'x'; 4096]).unwrap();
        }
    }

    let runs = 30;
    for (name, strategy, dir_root) in [
        ("overlay", Strategy::Overlay, false),
        ("copy (fallback)", Strategy::Copy, false),
        ("directory in place", Strategy::Auto, true),
    ] {
        let start = Instant::now();
        for i in 0..runs {
            let rootfs = if dir_root {
                RootFs::Dir(lower.clone())
            } else {
                RootFs::Overlay {
                    lowers: vec![lower.clone()],
                    upper: dir.path().join(format!("up-{name}-{i}")),
                    work: dir.path().join(format!("work-{name}-{i}")),
                }
            };
            let mut spec = SandboxSpec::new(rootfs, vec!["true".into()]);
            spec.strategy = strategy;
            let outcome = run(&spec, &mut Discard, &Cancel::new()).unwrap();
            if !dir_root {
                outcome.changes().unwrap();
            }
        }
        let per = start.elapsed().as_secs_f64() * 1000.0 / runs as f64;
        println!("sandbox `true` + changes, {name:>20}: {per:7.2} ms per run ({runs} runs)");
    }

    // An upper directory with 10,000 new files.
    let upper = dir.path().join("big-upper");
    for d in 0..100 {
        let sub = upper.join(d.to_string());
        fs::create_dir_all(&sub).unwrap();
        for f in 0..100 {
            fs::write(sub.join(f.to_string()), b"").unwrap();
        }
    }
    let start = Instant::now();
    let n = upper_changes(&upper).unwrap().len();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    println!(
        "upper_changes: {n} entries in {ms:.1} ms ({:.0} entries/s)",
        n as f64 / ms * 1000.0
    );
}
