//! Where a build's time goes (`--timings`): per step, the wall time split into the command's own
//! time (a RUN step's process in the sandbox) and strata's phases, each measured with a clock
//! around the code that does it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A kind of work a build step's time goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The RUN command itself, in its sandbox (from the sandbox's start to the command's exit).
    Command,
    /// Unpacking: parent layers into snapshots, an ADD's archives; reading a base image
    /// (strata's).
    Snapshot,
    /// Finding what a RUN step changed in its upper directory (strata's).
    Diff,
    /// Making a layer's tar stream: headers and reading the files (strata's).
    Tar,
    /// Compressing layers (strata's).
    Compress,
    /// Hashing: layer diff_ids, context files and ADD sources for cache keys (strata's).
    Hash,
    /// Writing blobs, the config, the manifest and tags to the store; indexing layers (strata's).
    Store,
    /// Signing the image (strata's).
    Sign,
    /// The image's tier tests (strata's share includes running them).
    Test,
}

impl Phase {
    /// Every phase, in table order.
    pub const ALL: [Phase; 9] = [
        Phase::Command,
        Phase::Snapshot,
        Phase::Diff,
        Phase::Tar,
        Phase::Compress,
        Phase::Hash,
        Phase::Store,
        Phase::Sign,
        Phase::Test,
    ];

    /// The phase's name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Command => "command",
            Phase::Snapshot => "snapshot",
            Phase::Diff => "diff",
            Phase::Tar => "tar",
            Phase::Compress => "compress",
            Phase::Hash => "hash",
            Phase::Store => "store",
            Phase::Sign => "sign",
            Phase::Test => "test",
        }
    }
}

/// Milliseconds, as the JSON reports them.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One step's time.
#[derive(Clone, Debug, Serialize)]
pub struct StepTiming {
    /// The step's number in the build (1 is the first FROM), or 0 for work after the steps
    /// (writing the image, signing, tests).
    pub number: usize,
    /// The instruction (or what the work after the steps was).
    pub text: String,
    /// Wall time of the step, in milliseconds.
    pub wall_ms: f64,
    /// Measured phases, in milliseconds (a phase not listed took no time).
    pub phases: BTreeMap<Phase, f64>,
    /// The rest of the wall time, not in any measured phase (parsing, cache look-ups), in
    /// milliseconds.
    pub other_ms: f64,
    /// Uncompressed layer bytes whose gzip member the store already had, copied rather than
    /// compressed again ([`strata_oci::member_memo`]).
    pub reused_bytes: u64,
}

/// One image's time: its steps, and the totals.
#[derive(Clone, Debug, Serialize)]
pub struct ImageTiming {
    /// Wall time of the whole image, in milliseconds.
    pub wall_ms: f64,
    /// The RUN commands' own time, in milliseconds.
    pub command_ms: f64,
    /// strata's own time: the wall time less the commands', in milliseconds.
    pub strata_ms: f64,
    /// Each phase over all steps, in milliseconds.
    pub phases: BTreeMap<Phase, f64>,
    /// The steps, in order.
    pub steps: Vec<StepTiming>,
    /// Layer bytes over all steps whose gzip member was copied rather than compressed again.
    pub reused_bytes: u64,
}

#[derive(Debug)]
struct Open {
    number: usize,
    text: String,
    started: Instant,
    phases: BTreeMap<Phase, Duration>,
    reused: u64,
}

/// Collects one image's timings while it builds; shared with the builder through
/// [`crate::builder::BuildOptions::timings`].
#[derive(Debug)]
pub struct Timings {
    started: Instant,
    state: Mutex<(Vec<StepTiming>, Option<Open>)>,
}

impl Default for Timings {
    fn default() -> Self {
        Timings::new()
    }
}

impl Timings {
    /// Start timing an image now.
    pub fn new() -> Timings {
        Timings {
            started: Instant::now(),
            state: Mutex::new((Vec::new(), None)),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (Vec<StepTiming>, Option<Open>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A step starts (the previous one, if open, ends).
    pub fn step(&self, number: usize, text: &str) {
        let mut state = self.state();
        close(&mut state);
        state.1 = Some(Open {
            number,
            text: text.lines().next().unwrap_or("").to_string(),
            started: Instant::now(),
            phases: BTreeMap::new(),
            reused: 0,
        });
    }

    /// The open step ends.
    pub fn end_step(&self) {
        close(&mut self.state());
    }

    /// Add `spent` to `phase` of the open step (or of a step 0 named `text`, opened for it).
    pub fn add(&self, phase: Phase, spent: Duration) {
        let mut state = self.state();
        let open = open_step(&mut state, spent);
        *open.phases.entry(phase).or_default() += spent;
    }

    /// Count `bytes` of layer whose gzip members the store already had, in the open step.
    pub fn add_reused(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut state = self.state();
        open_step(&mut state, Duration::ZERO).reused += bytes;
    }

    /// Time `work` as `phase` of the open step. Phases `work` records itself (a layer written
    /// while the image is stored) are its own, not counted twice.
    pub fn time<T>(&self, phase: Phase, work: impl FnOnce() -> T) -> T {
        let before = self.recorded();
        let start = Instant::now();
        let value = work();
        let spent = start.elapsed();
        let nested = self.recorded().saturating_sub(before);
        self.add(phase, spent.saturating_sub(nested));
        value
    }

    /// Everything recorded so far, in every step.
    fn recorded(&self) -> Duration {
        let state = self.state();
        let closed: f64 = state.0.iter().flat_map(|s| s.phases.values()).sum::<f64>();
        let open: Duration = state.1.iter().flat_map(|o| o.phases.values()).sum();
        Duration::from_secs_f64(closed / 1000.0) + open
    }

    /// The image's timing so far (open steps end).
    pub fn report(&self) -> ImageTiming {
        let mut state = self.state();
        close(&mut state);
        let wall = ms(self.started.elapsed());
        let steps = state.0.clone();
        let mut phases: BTreeMap<Phase, f64> = BTreeMap::new();
        for step in &steps {
            for (phase, spent) in &step.phases {
                *phases.entry(*phase).or_default() += spent;
            }
        }
        let command = phases.get(&Phase::Command).copied().unwrap_or(0.0);
        ImageTiming {
            wall_ms: wall,
            command_ms: command,
            strata_ms: (wall - command).max(0.0),
            phases,
            reused_bytes: steps.iter().map(|s| s.reused_bytes).sum(),
            steps,
        }
    }
}

/// The open step, or a step 0 "(after the steps)" opened for work recorded outside any step,
/// started `spent` ago.
fn open_step(state: &mut (Vec<StepTiming>, Option<Open>), spent: Duration) -> &mut Open {
    state.1.get_or_insert_with(|| Open {
        number: 0,
        text: "(after the steps)".to_string(),
        started: Instant::now() - spent,
        phases: BTreeMap::new(),
        reused: 0,
    })
}

fn close(state: &mut (Vec<StepTiming>, Option<Open>)) {
    if let Some(open) = state.1.take() {
        let wall = open.started.elapsed();
        let measured: Duration = open.phases.values().sum();
        state.0.push(StepTiming {
            number: open.number,
            text: open.text,
            wall_ms: ms(wall),
            phases: open.phases.iter().map(|(p, d)| (*p, ms(*d))).collect(),
            other_ms: ms(wall.saturating_sub(measured)),
            reused_bytes: open.reused,
        });
    }
}

thread_local! {
    /// The timings of the image this thread is building, if timed: the builder's steps, the
    /// layer writer and the cascade's signing run on the image's thread and record here without
    /// every function between them passing it on.
    static CURRENT: std::cell::RefCell<Option<std::sync::Arc<Timings>>> =
        const { std::cell::RefCell::new(None) };
}

/// Run `work` with `timings` as this thread's current timings (restored after).
pub fn with_current<T>(timings: Option<std::sync::Arc<Timings>>, work: impl FnOnce() -> T) -> T {
    let before = CURRENT.with(|c| c.replace(timings));
    let value = work();
    CURRENT.with(|c| *c.borrow_mut() = before);
    value
}

/// This thread's current timings.
pub fn current() -> Option<std::sync::Arc<Timings>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Time `work` as `phase` of this thread's current timings, if any.
pub fn timed<T>(phase: Phase, work: impl FnOnce() -> T) -> T {
    match current() {
        Some(t) => t.time(phase, work),
        None => work(),
    }
}

/// Add a layer's measured times to this thread's current timings, if any.
pub fn record_layer(times: &strata_oci::tar::LayerTimes) {
    if let Some(t) = current() {
        t.add(Phase::Tar, times.tar);
        t.add(Phase::Hash, times.hash);
        t.add(Phase::Compress, times.compress);
        t.add(Phase::Store, times.store);
        t.add_reused(times.reused);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_fit_in_the_wall_time() {
        let timings = Timings::new();
        timings.step(1, "FROM x");
        timings.time(Phase::Snapshot, || {
            std::hint::black_box((0..10_000).sum::<u64>())
        });
        timings.step(2, "RUN true");
        timings.time(Phase::Command, || {
            std::hint::black_box((0..10_000).sum::<u64>())
        });
        let report = timings.report();
        assert_eq!(report.steps.len(), 2);
        for step in &report.steps {
            let sum: f64 = step.phases.values().sum();
            assert!(sum <= step.wall_ms + 1e-6, "{step:?}");
            assert!(step.other_ms >= 0.0);
        }
        assert!(report.command_ms > 0.0);
        assert!(report.command_ms + report.strata_ms <= report.wall_ms + 1e-6);
    }
}
