//! The scheduler: run the selected images in build order, an image only once its parents are
//! finished, up to `jobs` at once; a failure skips its descendants but not its siblings, and an
//! interrupt skips everything not yet started.
//!
//! It knows nothing of Dockerfiles or stores: an [`ImageBuilder`] builds one image. The cascade's
//! builder checks the build key and runs `strata-build`; the tests use a fake one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use crate::cascade::{CascadeEvent, CascadeSink, ImageReport, Outcome};
use crate::error::CascadeError;

/// Builds one image for the scheduler.
pub trait ImageBuilder: Sync {
    /// Build image `image` (or find it up to date); every parent in the schedule has finished.
    /// `parents_rebuilt` names the parents built by this run.
    fn build(&self, image: usize, parents_rebuilt: &[String]) -> ImageReport;

    /// Image `image` is not built; `because` says why (a parent failed, the run was interrupted).
    fn skip(&self, image: usize, because: String) -> ImageReport;
}

/// What the scheduler visits.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// The images to visit, parents before children (indices into `names`).
    pub order: Vec<usize>,
    /// Every image's name, by index.
    pub names: Vec<String>,
    /// Every image's parents, by index (parents outside `order` are taken as finished).
    pub parents: Vec<Vec<usize>>,
}

/// Run `schedule` with up to `jobs` builds at once; stop starting builds once `cancel` is set.
/// The reports come in the schedule's order.
pub fn run(
    schedule: &Schedule,
    jobs: usize,
    cancel: &AtomicBool,
    builder: &dyn ImageBuilder,
    sink: &dyn CascadeSink,
) -> Result<Vec<ImageReport>, CascadeError> {
    if jobs == 0 {
        return Err(CascadeError::Options("--jobs must be at least 1".into()));
    }
    let n = schedule.names.len();
    let mut in_schedule = vec![false; n];
    for &i in &schedule.order {
        in_schedule[i] = true;
    }
    let mut outcomes: Vec<Option<ImageReport>> = vec![None; n];
    let mut rebuilt = vec![false; n];
    let mut pending: Vec<usize> = schedule.order.clone();
    let mut running = 0usize;
    for &i in &pending {
        sink.event(CascadeEvent::Queued {
            image: &schedule.names[i],
        });
    }
    let (tx, rx) = mpsc::channel::<(usize, ImageReport)>();
    // `jobs` workers take images from a queue (a thread started per image was a few percent of
    // a large no-op cascade). The queue closes when the scope's closure returns (it owns
    // `work`), and the workers end with it.
    let (work, queue) = mpsc::channel::<(usize, Vec<String>)>();
    let queue = std::sync::Mutex::new(queue);
    std::thread::scope(|scope| -> Result<(), CascadeError> {
        let work = work;
        for _ in 0..jobs.min(schedule.order.len()) {
            let (tx, queue) = (tx.clone(), &queue);
            scope.spawn(move || {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((i, parents_rebuilt)) = next else {
                        return;
                    };
                    let report = builder.build(i, &parents_rebuilt);
                    // The receiver lives until every worker is done.
                    let _ = tx.send((i, report));
                }
            });
        }
        loop {
            // Start every image whose scheduled parents are finished, up to `jobs`.
            let mut k = 0;
            while k < pending.len() && running < jobs {
                let i = pending[k];
                let parents: Vec<usize> = schedule.parents[i]
                    .iter()
                    .copied()
                    .filter(|&p| in_schedule[p])
                    .collect();
                if parents.iter().any(|&p| outcomes[p].is_none()) {
                    k += 1;
                    continue;
                }
                pending.remove(k);
                let blocked =
                    parents
                        .iter()
                        .find_map(|&p| match outcomes[p].as_ref().map(|r| &r.outcome) {
                            Some(Outcome::Failed { .. }) => {
                                Some(format!("parent {} failed", schedule.names[p]))
                            }
                            Some(Outcome::Skipped { .. }) => {
                                Some(format!("parent {} was skipped", schedule.names[p]))
                            }
                            _ => None,
                        });
                let because = blocked.or_else(|| {
                    cancel
                        .load(Ordering::SeqCst)
                        .then(|| "interrupted".to_string())
                });
                if let Some(because) = because {
                    let report = builder.skip(i, because);
                    sink.event(CascadeEvent::Finished {
                        image: &schedule.names[i],
                        outcome: &report.outcome,
                    });
                    outcomes[i] = Some(report);
                    continue;
                }
                let parents_rebuilt: Vec<String> = parents
                    .iter()
                    .filter(|&&p| rebuilt[p])
                    .map(|&p| schedule.names[p].clone())
                    .collect();
                running += 1;
                if work.send((i, parents_rebuilt)).is_err() {
                    return Err(CascadeError::Options("the build workers vanished".into()));
                }
            }
            if running == 0 && pending.is_empty() {
                return Ok(());
            }
            if running == 0 {
                // Nothing can start: cannot happen with an acyclic graph, guard anyway.
                return Err(CascadeError::Options("the build order is stuck".into()));
            }
            let Ok((i, report)) = rx.recv() else {
                return Err(CascadeError::Options("a build worker vanished".into()));
            };
            running -= 1;
            rebuilt[i] = matches!(report.outcome, Outcome::Built { .. });
            sink.event(CascadeEvent::Finished {
                image: &schedule.names[i],
                outcome: &report.outcome,
            });
            outcomes[i] = Some(report);
        }
    })?;
    Ok(schedule
        .order
        .iter()
        .filter_map(|&i| outcomes[i].take())
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    use super::*;

    /// Records every event, in order.
    #[derive(Default)]
    struct Events(Mutex<Vec<String>>);

    impl CascadeSink for Events {
        fn event(&self, event: CascadeEvent<'_>) {
            let line = match event {
                CascadeEvent::Queued { image } => format!("queued {image}"),
                CascadeEvent::Finished { image, outcome } => {
                    format!("finished {image} {outcome:?}")
                }
                _ => return,
            };
            self.0.lock().unwrap().push(line);
        }
    }

    /// A content-addressed fake: an image's digest is the hash of its own input and its parents'
    /// digests, as the real build key is; an image whose key matches the stored one is up to date.
    struct Fake {
        schedule: Schedule,
        /// Each image's own input (its "Dockerfile").
        input: BTreeMap<usize, String>,
        /// Digests as stored before the run, and as built during it.
        stored: Mutex<BTreeMap<usize, u64>>,
        /// Images whose build fails.
        fail: Vec<usize>,
        /// Images rebuilt even when up to date.
        force: Vec<usize>,
        /// The log of starts and ends, to check the order.
        log: Mutex<Vec<(usize, bool)>>,
        running: AtomicUsize,
        peak: AtomicUsize,
        /// Builds wait here until this many run at once (0: do not wait).
        rendezvous: usize,
        together: (Mutex<()>, Condvar),
        /// Set the cancel flag when this image builds.
        cancel_at: Option<(usize, &'static AtomicBool)>,
    }

    fn hash(text: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        h.finish()
    }

    impl Fake {
        /// `edges`: (parent, child) by name; images in the given order.
        fn new(names: &[&str], edges: &[(&str, &str)]) -> Self {
            let index = |name: &str| names.iter().position(|n| *n == name).unwrap();
            let mut parents = vec![Vec::new(); names.len()];
            for (parent, child) in edges {
                parents[index(child)].push(index(parent));
            }
            Fake {
                schedule: Schedule {
                    order: (0..names.len()).collect(),
                    names: names.iter().map(|n| n.to_string()).collect(),
                    parents,
                },
                input: (0..names.len()).map(|i| (i, format!("v1 {i}"))).collect(),
                stored: Mutex::new(BTreeMap::new()),
                fail: Vec::new(),
                force: Vec::new(),
                log: Mutex::new(Vec::new()),
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                rendezvous: 0,
                together: (Mutex::new(()), Condvar::new()),
                cancel_at: None,
            }
        }

        fn index(&self, name: &str) -> usize {
            self.schedule.names.iter().position(|n| n == name).unwrap()
        }

        /// The key image `i` would be built with now.
        fn key(&self, i: usize) -> u64 {
            let stored = self.stored.lock().unwrap();
            let parents: Vec<String> = self.schedule.parents[i]
                .iter()
                .map(|p| stored.get(p).map_or("none".into(), |d| d.to_string()))
                .collect();
            hash(&format!("{} {}", self.input[&i], parents.join(",")))
        }

        fn report(&self, i: usize, reasons: Vec<String>, outcome: Outcome) -> ImageReport {
            ImageReport {
                image: self.schedule.names[i].clone(),
                owner: "team".into(),
                tier: None,
                reasons,
                outcome,
                signed_by: None,
                timings: None,
            }
        }

        fn run(&self, jobs: usize, cancel: &AtomicBool) -> (Vec<ImageReport>, Vec<String>) {
            let events = Events::default();
            let reports = run(&self.schedule, jobs, cancel, self, &events).unwrap();
            (reports, events.0.into_inner().unwrap())
        }
    }

    impl ImageBuilder for Fake {
        fn build(&self, i: usize, parents_rebuilt: &[String]) -> ImageReport {
            self.log.lock().unwrap().push((i, true));
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            if self.rendezvous > 0 {
                // Wait for the other builds that may run at once; the timeout only keeps a
                // broken scheduler from hanging the test (the peak assertion then fails).
                let (lock, cvar) = &self.together;
                let guard = lock.lock().unwrap();
                cvar.notify_all();
                let _ = cvar
                    .wait_timeout_while(guard, Duration::from_secs(30), |_| {
                        self.peak.load(Ordering::SeqCst) < self.rendezvous
                    })
                    .unwrap();
                cvar.notify_all();
            }
            if let Some((at, flag)) = self.cancel_at
                && at == i
            {
                flag.store(true, Ordering::SeqCst);
            }
            let key = self.key(i);
            let old = self.stored.lock().unwrap().get(&i).copied();
            let mut reasons: Vec<String> = parents_rebuilt
                .iter()
                .map(|p| format!("parent {p} rebuilt"))
                .collect();
            let forced = self.force.contains(&i);
            if forced {
                reasons.insert(0, "forced".into());
            }
            let outcome = if self.fail.contains(&i) {
                Outcome::Failed {
                    message: "boom".into(),
                }
            } else if old == Some(key) && !forced {
                Outcome::UpToDate {
                    digest: key.to_string(),
                }
            } else {
                self.stored.lock().unwrap().insert(i, key);
                Outcome::Built {
                    old: old.map(|d| d.to_string()),
                    new: key.to_string(),
                    number: 1,
                    duration_ms: 0,
                }
            };
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.log.lock().unwrap().push((i, false));
            self.report(i, reasons, outcome)
        }

        fn skip(&self, i: usize, because: String) -> ImageReport {
            self.report(i, Vec::new(), Outcome::Skipped { because })
        }
    }

    fn results(reports: &[ImageReport]) -> Vec<(String, String)> {
        reports
            .iter()
            .map(|r| {
                let word = match &r.outcome {
                    Outcome::Built { .. } => "built".to_string(),
                    Outcome::UpToDate { .. } => "up-to-date".to_string(),
                    Outcome::WouldBuild => "would-build".to_string(),
                    Outcome::Failed { .. } => "failed".to_string(),
                    Outcome::Skipped { because } => format!("skipped: {because}"),
                };
                (r.image.clone(), word)
            })
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const NAMES: [&str; 6] = ["base", "core", "left", "right", "top", "leaf"];
    const EDGES: [(&str, &str); 6] = [
        ("base", "core"),
        ("core", "left"),
        ("core", "right"),
        ("left", "top"),
        ("right", "top"),
        ("left", "leaf"),
    ];

    #[test]
    fn every_image_starts_after_its_parents_finished() {
        let fake = Fake::new(&NAMES, &EDGES);
        let (reports, events) = fake.run(4, &AtomicBool::new(false));
        assert!(
            reports
                .iter()
                .all(|r| matches!(r.outcome, Outcome::Built { .. }))
        );
        let log = fake.log.into_inner().unwrap();
        for (i, parents) in fake.schedule.parents.iter().enumerate() {
            let start = log.iter().position(|&e| e == (i, true)).unwrap();
            for &p in parents {
                let end = log.iter().position(|&e| e == (p, false)).unwrap();
                assert!(
                    end < start,
                    "{} started before {} ended: {log:?}",
                    NAMES[i],
                    NAMES[p]
                );
            }
        }
        // Every image is queued first, and reported finished once.
        assert!(
            events[..NAMES.len()]
                .iter()
                .all(|e| e.starts_with("queued"))
        );
        assert_eq!(events.len(), 2 * NAMES.len(), "{events:?}");
        // The reports come in the schedule's order, whatever the finishing order.
        let order: Vec<&str> = reports.iter().map(|r| r.image.as_str()).collect();
        assert_eq!(order, NAMES);
        // The reasons name the parents built in this run.
        assert_eq!(
            reports[4].reasons,
            ["parent left rebuilt", "parent right rebuilt"]
        );
    }

    #[test]
    fn no_more_than_jobs_images_build_at_once_and_siblings_do_share() {
        let names = ["a", "b", "c", "d", "e"];
        let mut fake = Fake::new(&names, &[]);
        fake.rendezvous = 2;
        fake.run(2, &AtomicBool::new(false));
        assert_eq!(fake.peak.load(Ordering::SeqCst), 2);

        let fake = Fake::new(&names, &[]);
        fake.run(1, &AtomicBool::new(false));
        assert_eq!(fake.peak.load(Ordering::SeqCst), 1);

        let fake = Fake::new(&names, &[]);
        let events = Events::default();
        let err = run(&fake.schedule, 0, &AtomicBool::new(false), &fake, &events).unwrap_err();
        assert_eq!(err.to_string(), "--jobs must be at least 1");
    }

    #[test]
    fn a_failure_skips_its_descendants_but_not_its_siblings() {
        let mut fake = Fake::new(&NAMES, &EDGES);
        fake.fail = vec![fake.index("left")];
        let (reports, _) = fake.run(3, &AtomicBool::new(false));
        assert_eq!(
            results(&reports),
            pairs(&[
                ("base", "built"),
                ("core", "built"),
                ("left", "failed"),
                ("right", "built"),
                ("top", "skipped: parent left failed"),
                ("leaf", "skipped: parent left failed"),
            ])
        );
        // A skip is passed on: the grandchild of a failure names its skipped parent.
        let mut fake = Fake::new(&NAMES, &EDGES);
        fake.fail = vec![fake.index("core")];
        let (reports, _) = fake.run(3, &AtomicBool::new(false));
        assert_eq!(results(&reports)[2].1, "skipped: parent core failed");
        assert_eq!(results(&reports)[4].1, "skipped: parent left was skipped");
    }

    #[test]
    fn an_interrupt_skips_what_has_not_started_and_lets_the_running_build_finish() {
        static CANCEL: AtomicBool = AtomicBool::new(false);
        let mut fake = Fake::new(&NAMES, &EDGES);
        fake.cancel_at = Some((fake.index("core"), &CANCEL));
        let (reports, _) = fake.run(1, &CANCEL);
        assert_eq!(
            results(&reports),
            pairs(&[
                ("base", "built"),
                ("core", "built"),
                ("left", "skipped: interrupted"),
                ("right", "skipped: interrupted"),
                ("top", "skipped: parent left was skipped"),
                ("leaf", "skipped: parent left was skipped"),
            ])
        );
    }

    #[test]
    fn nothing_is_rebuilt_when_fresh_and_an_identical_rebuild_stops_the_cascade() {
        let fake = Fake::new(&NAMES, &EDGES);
        fake.run(2, &AtomicBool::new(false));
        // A second run over the same inputs finds everything up to date.
        let (reports, _) = fake.run(2, &AtomicBool::new(false));
        assert!(
            reports
                .iter()
                .all(|r| matches!(r.outcome, Outcome::UpToDate { .. }) && r.reasons.is_empty()),
            "{:?}",
            results(&reports)
        );
        // Forcing core rebuilds it to the same digest: nothing above it is rebuilt, though the
        // scheduler tells them their parent was built.
        let mut fake = fake;
        fake.force = vec![fake.index("core")];
        let (reports, _) = fake.run(2, &AtomicBool::new(false));
        let got = results(&reports);
        assert_eq!(got[1], ("core".to_string(), "built".to_string()));
        assert!(
            got.iter()
                .filter(|(n, _)| n != "core")
                .all(|(_, r)| r == "up-to-date"),
            "{got:?}"
        );
        // A changed input rebuilds the image and everything above it, not beside it.
        fake.force.clear();
        let left = fake.index("left");
        fake.input.insert(left, "v2".into());
        let (reports, _) = fake.run(2, &AtomicBool::new(false));
        assert_eq!(
            results(&reports),
            pairs(&[
                ("base", "up-to-date"),
                ("core", "up-to-date"),
                ("left", "built"),
                ("right", "up-to-date"),
                ("top", "built"),
                ("leaf", "built"),
            ])
        );
        assert_eq!(reports[5].reasons, ["parent left rebuilt"]);
    }
}
