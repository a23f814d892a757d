//! Run a test file against a stored image: every test, in container-structure-test's order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use strata_oci::{Reference, Store};

use crate::checks;
use crate::command::{self, CommandContext};
use crate::error::TierTestError;
use crate::expand::expand;
use crate::image::ImageView;
use crate::report::Report;
use crate::sandbox::Sandbox;
use crate::spec::{self, TestFile};

/// How to run.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Where layer snapshots for command tests live (shared with builds: the cache directory).
    /// None: a temporary directory in the store, removed afterwards.
    pub work_dir: Option<PathBuf>,
    /// Set to stop: a running command is killed and the run returns
    /// [`TierTestError::Interrupted`].
    pub cancel: Arc<AtomicBool>,
    /// Runs command tests (`strata_cascade::BuilderSandbox`). None: a file with command tests is
    /// refused with [`TierTestError::NoSandbox`]; the other tests need none.
    pub sandbox: Option<Arc<dyn Sandbox>>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("work_dir", &self.work_dir)
            .field("cancel", &self.cancel)
            .field("sandbox", &self.sandbox.is_some())
            .finish()
    }
}

/// Read the test file at `path` and run it against `reference`.
pub fn run_file(
    store: &Store,
    reference: &str,
    path: &Path,
    options: &RunOptions,
) -> Result<Report, TierTestError> {
    let file = spec::load(path)?;
    run(store, reference, &file, options)
}

/// Run every test of `file` against image `reference` (a tag, `name@sha256:...` or a digest).
pub fn run(
    store: &Store,
    reference: &str,
    file: &TestFile,
    options: &RunOptions,
) -> Result<Report, TierTestError> {
    // Setup images are untagged until they are dropped: keep gc away meanwhile.
    let _lease = store.lease().map_err(TierTestError::store(reference))?;
    let view = ImageView::open(store, reference)?;
    let digest = view.digest();
    let image_env = view.env();
    let mut env = image_env.clone();
    let mut global_env = Vec::new();
    for v in &file.global_env_vars {
        let value = expand(&v.value, &image_env);
        env.insert(v.key.clone(), value.clone());
        global_env.push((v.key.clone(), value));
    }
    let mut results = Vec::with_capacity(file.count());
    let check_cancel = || {
        if options.cancel.load(Ordering::SeqCst) {
            Err(TierTestError::Interrupted)
        } else {
            Ok(())
        }
    };

    if !file.command_tests.is_empty() {
        let sandbox = options.sandbox.as_deref().ok_or(TierTestError::NoSandbox)?;
        let temp;
        let work_dir = match &options.work_dir {
            Some(dir) => dir.clone(),
            None => {
                let tmp = store.tmp_dir();
                std::fs::create_dir_all(&tmp).map_err(|source| TierTestError::Write {
                    path: tmp.clone(),
                    source,
                })?;
                temp = tempfile::Builder::new()
                    .prefix("tiertest-")
                    .tempdir_in(&tmp)
                    .map_err(|source| TierTestError::Write { path: tmp, source })?;
                temp.path().to_path_buf()
            }
        };
        let repo = Reference::parse(reference)
            .map(|r| r.name())
            .unwrap_or_else(|_| "localhost/strata-tiertest".to_string());
        let ctx = CommandContext {
            store,
            pinned: format!("{repo}@{digest}"),
            env: env.clone(),
            global_env,
            user: file.run_user.clone(),
            work_dir: &work_dir,
            cancel: options.cancel.clone(),
            sandbox,
        };
        for test in &file.command_tests {
            check_cancel()?;
            results.push(command::run(&ctx, test)?);
        }
    }
    let timed = |f: &dyn Fn() -> crate::TestResult| {
        let started = Instant::now();
        let mut r = f();
        r.duration = started.elapsed();
        r
    };
    for test in &file.file_content_tests {
        check_cancel()?;
        results.push(timed(&|| checks::file_content(&view, test)));
    }
    let path_env: BTreeMap<String, String> = env;
    for test in &file.file_existence_tests {
        check_cancel()?;
        results.push(timed(&|| checks::file_existence(&view, test, &path_env)));
    }
    for test in &file.license_tests {
        check_cancel()?;
        results.push(timed(&|| checks::license(&view, test)));
    }
    if let Some(test) = &file.metadata_test {
        results.push(timed(&|| checks::metadata(&view, test)));
    }
    Ok(Report {
        image: reference.to_string(),
        digest: digest.to_string(),
        file: file.path.display().to_string(),
        results,
    })
}
