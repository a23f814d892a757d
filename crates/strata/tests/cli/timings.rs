//! `--timings` (issue 22): where a build's time goes, per image and step, split into the RUN
//! commands' own time and strata's phases; checked for sanity, never for speed.

use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

/// Each step's phases are ≥ 0 and add up to no more than its wall time; each image's command and
/// strata times add up to its wall time at most. Returns the RUN steps' command milliseconds.
fn check_image(image: &Value) -> Vec<f64> {
    let name = image["image"].as_str().unwrap_or("?");
    let wall = image["wall_ms"].as_f64().unwrap();
    let command = image["command_ms"].as_f64().unwrap();
    let strata = image["strata_ms"].as_f64().unwrap();
    assert!(command >= 0.0 && strata >= 0.0, "{name}: {image}");
    assert!(command + strata <= wall + 0.01, "{name}: {image}");
    let mut steps_wall = 0.0;
    let mut run_commands = Vec::new();
    for step in image["steps"].as_array().unwrap() {
        let step_wall = step["wall_ms"].as_f64().unwrap();
        steps_wall += step_wall;
        let phases = step["phases"].as_object().unwrap();
        let mut sum = step["other_ms"].as_f64().unwrap();
        assert!(sum >= 0.0, "{name}: {step}");
        for (phase, ms) in phases {
            let ms = ms.as_f64().unwrap();
            assert!(ms >= 0.0, "{name}: {phase} {step}");
            sum += ms;
        }
        // other_ms is the wall time less the phases: the whole adds up to the wall time.
        assert!(sum <= step_wall * 1.001 + 0.01, "{name}: {step}");
        if step["text"].as_str().unwrap().starts_with("RUN ") {
            run_commands.push(phases.get("command").and_then(Value::as_f64).unwrap_or(0.0));
        } else {
            assert!(phases.get("command").is_none(), "{name}: {step}");
        }
    }
    assert!(steps_wall <= wall + 0.01, "{name}: {image}");
    run_commands
}

/// `strata build-image CONTEXT -t TAG --timings --json` into `store`, which must succeed: its JSON
/// result and its stderr.
fn build_image_timed(store: &Path, context: &Path, tag: &str) -> (Value, String) {
    let out = cargo_bin_cmd!("strata")
        .env_remove("STRATA_STORE")
        .arg("--store")
        .arg(store)
        .arg("build-image")
        .arg(context)
        .args(["-t", tag, "--timings", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn timings_files(state: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(state.join("timings"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn build_timings_split_run_commands_from_strata_phases() {
    let Some(dir) = crate::cascade::example() else {
        return;
    };
    let out = cargo_bin_cmd!("strata")
        .arg("-C")
        .arg(dir.path())
        .args(["build", "--timings", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let timings = &summary["timings"];
    let images = timings["images"].as_array().unwrap();
    let built = summary["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["result"] == "built")
        .count();
    assert_eq!(images.len(), built, "{timings}");
    let mut commands = Vec::new();
    for image in images {
        commands.extend(check_image(image));
    }
    // The example's corebuild and middleware run commands: their time is the command's.
    assert!(!commands.is_empty(), "{timings}");
    assert!(commands.iter().all(|&ms| ms > 0.0), "{timings}");
    let share = timings["strata_share"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share), "{timings}");
    // Each image's entry in the summary carries its own timings too.
    for image in summary["images"].as_array().unwrap() {
        assert_eq!(
            image["result"] == "built",
            image.get("timings").is_some(),
            "{image}"
        );
    }
    // The same JSON is kept under .strata/timings.
    let files = timings_files(&dir.path().join(".strata"));
    assert_eq!(files.len(), 1, "{files:?}");
    let kept: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(kept["images"], timings["images"]);

    // Without --json: the table and the share on stderr, the usual summary on stdout.
    let out = cargo_bin_cmd!("strata")
        .arg("-C")
        .arg(dir.path())
        .args(["build", "--timings", "--force", "base"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("strata's own work"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("image ") && l.contains("compress")),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("built"));
    assert_eq!(timings_files(&dir.path().join(".strata")).len(), 2);
}

#[test]
fn build_image_timings_show_the_run_command() {
    if !strata_testutil::can_build_example() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    strata_testutil::busybox_rootfs_tar(&dir.path().join("rootfs.tar")).unwrap();
    std::fs::write(dir.path().join("motd"), "hello\n").unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nADD rootfs.tar /\nCOPY motd /etc/motd\nRUN cat /etc/motd > /etc/copy\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let (result, stderr) = build_image_timed(&store, dir.path(), "acme/timed");
    let images = result["timings"]["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    let commands = check_image(&images[0]);
    assert_eq!(commands.len(), 1, "{}", images[0]);
    assert!(commands[0] > 0.0);
    // The COPY and the RUN wrote layers: their tar, compression and store time is recorded.
    let steps = images[0]["steps"].as_array().unwrap();
    let copy = steps
        .iter()
        .find(|s| s["text"] == "COPY motd /etc/motd")
        .unwrap();
    for phase in ["tar", "compress", "store"] {
        assert!(copy["phases"].get(phase).is_some(), "{copy}");
    }
    assert!(stderr.contains("strata's own work"), "{stderr}");
    assert_eq!(timings_files(&store.join(".strata")).len(), 1);
}

/// A COPY rewritten because one small file changed keeps the big file's bytes: the second build's
/// timings count them as not compressed again (the store's gzip member memo), the first's do not.
#[test]
fn timings_count_the_layer_bytes_whose_gzip_members_the_store_had() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let big: String = (0..120_000)
        .map(|i| format!("/usr/lib/pkg{}/lib{i}.so {}\n", i % 313, i * 7))
        .collect();
    assert!(big.len() > 3 << 20);
    std::fs::write(data.join("big.txt"), &big).unwrap();
    std::fs::write(data.join("small.txt"), "v1\n").unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY data/ /data/\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let build = || {
        let (result, _) = build_image_timed(&store, dir.path(), "acme/data");
        let image = result["timings"]["images"][0].clone();
        let copy = image["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["text"] == "COPY data/ /data/")
            .cloned()
            .unwrap();
        (copy["reused_bytes"].as_u64().unwrap(), image, result)
    };
    let (first, image, _) = build();
    assert_eq!(first, 0, "{image}");
    std::fs::write(data.join("small.txt"), "v2, longer\n").unwrap();
    let (second, image, result) = build();
    // Every member but the one holding small.txt (and the tar's end) comes back.
    assert!(second >= 2 << 20, "{second} bytes reused: {image}");
    assert_eq!(image["reused_bytes"].as_u64(), Some(second));
    assert_eq!(result["timings"]["reused_bytes"].as_u64(), Some(second));
}
