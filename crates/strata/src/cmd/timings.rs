//! `--timings` of `strata build` and `strata build-image`: the table (stderr), the JSON file
//! (`.strata/timings/<time>.json`), and the line saying what share of the build was strata's own.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use strata_build::timings::{ImageTiming, Phase};

/// The timings of one run: every built image's, and the totals.
#[derive(Debug, Serialize)]
pub struct RunTimings<'a> {
    /// When the run's timings were written (UTC, RFC 3339).
    pub time: String,
    /// The built images, in build order.
    pub images: Vec<NamedTiming<'a>>,
    /// Wall time of the images' builds, added up (parallel builds overlap), in milliseconds.
    pub wall_ms: f64,
    /// The RUN commands' own time, added up, in milliseconds.
    pub command_ms: f64,
    /// strata's own time (wall less commands), added up, in milliseconds.
    pub strata_ms: f64,
    /// strata's own time as a share of the wall time (0 to 1).
    pub strata_share: f64,
    /// Layer bytes whose gzip members the store already had (copied, not compressed again).
    pub reused_bytes: u64,
}

/// One image's timing with its name.
#[derive(Debug, Serialize)]
pub struct NamedTiming<'a> {
    /// The image (chain image name, or the tag/context of `build-image`).
    pub image: &'a str,
    /// Its timing.
    #[serde(flatten)]
    pub timing: &'a ImageTiming,
}

impl<'a> RunTimings<'a> {
    /// Totals over `images`.
    pub fn new(images: Vec<NamedTiming<'a>>) -> Self {
        let wall_ms: f64 = images.iter().map(|i| i.timing.wall_ms).sum();
        let command_ms: f64 = images.iter().map(|i| i.timing.command_ms).sum();
        let strata_ms: f64 = images.iter().map(|i| i.timing.strata_ms).sum();
        let reused_bytes = images.iter().map(|i| i.timing.reused_bytes).sum();
        RunTimings {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            images,
            wall_ms,
            command_ms,
            strata_ms,
            strata_share: if wall_ms > 0.0 {
                strata_ms / wall_ms
            } else {
                0.0
            },
            reused_bytes,
        }
    }

    /// Write the JSON to `<state_dir>/timings/<time>.json`; returns the path.
    pub fn write(&self, state_dir: &Path) -> Result<PathBuf> {
        let dir = state_dir.join("timings");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let name = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        let path = dir.join(format!("{name}.json"));
        let json = serde_json::to_vec_pretty(self)?;
        strata_oci::layout::atomic_write(&path, &json)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// The table: a line per step of each image (seconds per phase), then the summary line.
    pub fn table(&self) -> String {
        let secs = |ms: f64| format!("{:.3}", ms / 1000.0);
        let mut out = format!("{:<24} {:<34} {:>8}", "image", "step", "wall");
        for phase in Phase::ALL {
            out.push_str(&format!(" {:>8}", phase.name()));
        }
        out.push_str(&format!(" {:>8}\n", "other"));
        for image in &self.images {
            for step in &image.timing.steps {
                let text: String = step.text.chars().take(34).collect();
                out.push_str(&format!(
                    "{:<24} {:<34} {:>8}",
                    image.image,
                    text,
                    secs(step.wall_ms)
                ));
                for phase in Phase::ALL {
                    let ms = step.phases.get(&phase).copied().unwrap_or(0.0);
                    out.push_str(&format!(" {:>8}", secs(ms)));
                }
                out.push_str(&format!(" {:>8}\n", secs(step.other_ms)));
            }
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// One line: strata's own share of the build (and the layer bytes not compressed again).
    pub fn summary(&self) -> String {
        let mut line = format!(
            "timings: {} image(s) built in {:.3}s, of which RUN commands {:.3}s and strata's own work \
             {:.3}s ({:.1}%)",
            self.images.len(),
            self.wall_ms / 1000.0,
            self.command_ms / 1000.0,
            self.strata_ms / 1000.0,
            self.strata_share * 100.0
        );
        if self.reused_bytes > 0 {
            line.push_str(&format!(
                "; {:.1} MB of layers not compressed again (their gzip members were in the store)",
                self.reused_bytes as f64 / 1e6
            ));
        }
        line
    }
}
