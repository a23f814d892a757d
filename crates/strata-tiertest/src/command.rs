//! Command tests in strata's sandbox: no daemon, the image's changes thrown away.
//!
//! As container-structure-test's docker driver: the entrypoint is cleared, `command` and `args`
//! have `$VAR` expanded from the image's environment (plus `globalEnvVars`), `envVars` are added
//! to the command's environment, and `setup` commands run first, each committed so the command
//! sees their changes. strata commits them by building a temporary image (one JSON-form `RUN` per
//! setup command, the test's variables as build arguments) that is never tagged. `teardown`
//! commands run afterwards on the same image; their exit status is not checked.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use strata_oci::Store;

use crate::error::TierTestError;
use crate::expand::expand;
use crate::report::{TestKind, TestResult};
use crate::sandbox::{BuildRequest, ExecRequest, Sandbox, SandboxError};
use crate::spec::CommandTest;

/// What every command test of a run shares.
pub struct CommandContext<'a> {
    /// The store.
    pub store: &'a Store,
    /// The image, pinned: `repo@sha256:...`.
    pub pinned: String,
    /// The image's environment with `globalEnvVars` applied (values expanded).
    pub env: BTreeMap<String, String>,
    /// `globalEnvVars`, expanded, in order: given to every command.
    pub global_env: Vec<(String, String)>,
    /// Run as this user instead of the image's USER.
    pub user: Option<String>,
    /// Snapshots of layers (shared with builds).
    pub work_dir: &'a Path,
    /// Set to stop.
    pub cancel: Arc<AtomicBool>,
    /// Runs the commands and builds the setup images.
    pub sandbox: &'a dyn Sandbox,
}

/// The name the temporary setup Dockerfile gives the image under test.
const UNDER_TEST: &str = "strata-tiertest-under-test";

/// Run one command test. Errors only for an interrupt; everything else is a failing result.
pub fn run(ctx: &CommandContext<'_>, test: &CommandTest) -> Result<TestResult, TierTestError> {
    let started = Instant::now();
    let mut result = TestResult::new(TestKind::Command, &test.name);
    let mut env = ctx.global_env.clone();
    for v in &test.env_vars {
        env.retain(|(k, _)| *k != v.key);
        env.push((v.key.clone(), expand(&v.value, &ctx.env)));
    }
    let image = if test.setup.is_empty() {
        ctx.pinned.clone()
    } else {
        match setup_image(ctx, &env, &test.setup) {
            Ok(image) => image,
            Err(StepErrorOr::Interrupted) => return Err(TierTestError::Interrupted),
            Err(StepErrorOr::Message(m)) => {
                result.fail(format!("error in setup: {m}"));
                result.duration = started.elapsed();
                return Ok(result);
            }
        }
    };
    let argv: Vec<String> = std::iter::once(&test.command)
        .chain(&test.args)
        .map(|a| expand(a, &ctx.env))
        .collect();
    let (code, stdout, stderr) = match exec_capture(ctx, &image, argv, &env) {
        Ok(out) => out,
        Err(StepErrorOr::Interrupted) => return Err(TierTestError::Interrupted),
        Err(StepErrorOr::Message(m)) => {
            result.fail(format!("error running {}: {m}", test.command));
            result.duration = started.elapsed();
            return Ok(result);
        }
    };
    for teardown in &test.teardown {
        match exec_capture(ctx, &image, teardown.clone(), &env) {
            Err(StepErrorOr::Interrupted) => return Err(TierTestError::Interrupted),
            Ok((0, _, _)) => {}
            Ok((code, _, err)) => tracing::warn!(
                "teardown {teardown:?} of test {:?} exited with {code}: {}",
                test.name,
                err.trim_end()
            ),
            Err(StepErrorOr::Message(m)) => {
                tracing::warn!("teardown {teardown:?} of test {:?}: {m}", test.name)
            }
        }
    }
    result.duration = started.elapsed();
    result.match_strings(&test.expected_error, &test.excluded_error, "error", &stderr);
    result.match_strings(
        &test.expected_output,
        &test.excluded_output,
        "output",
        &stdout,
    );
    if code != test.exit_code {
        result.fail(format!(
            "Test '{}' exited with incorrect error code. Expected: {}, Actual: {code}",
            test.name, test.exit_code
        ));
    }
    result.stdout = stdout;
    result.stderr = stderr;
    Ok(result)
}

enum StepErrorOr {
    Interrupted,
    Message(String),
}

/// Run `argv` (entrypoint cleared) in `image`; returns (exit code, stdout, stderr).
fn exec_capture(
    ctx: &CommandContext<'_>,
    image: &str,
    argv: Vec<String>,
    env: &[(String, String)],
) -> Result<(i32, String, String), StepErrorOr> {
    let request = ExecRequest {
        store: ctx.store,
        image,
        argv,
        user: ctx.user.clone(),
        env,
        work_dir: ctx.work_dir,
        cancel: ctx.cancel.clone(),
    };
    match ctx.sandbox.exec(&request) {
        Ok(o) => Ok((
            o.code,
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )),
        Err(SandboxError::Interrupted) => Err(StepErrorOr::Interrupted),
        Err(e) => Err(StepErrorOr::Message(e.to_string())),
    }
}

/// Commit the setup commands: build `FROM <image>` + one `RUN [...]` per command, untagged.
/// Returns the new image, pinned.
fn setup_image(
    ctx: &CommandContext<'_>,
    env: &[(String, String)],
    setup: &[Vec<String>],
) -> Result<String, StepErrorOr> {
    let msg = |e: &dyn std::fmt::Display| StepErrorOr::Message(e.to_string());
    let tmp = ctx.store.tmp_dir();
    std::fs::create_dir_all(&tmp).map_err(|e| msg(&e))?;
    let context = tempfile::Builder::new()
        .prefix("tiertest-setup-")
        .tempdir_in(&tmp)
        .map_err(|e| msg(&e))?;
    let mut dockerfile = format!("FROM {UNDER_TEST}\n");
    for (key, _) in env {
        dockerfile.push_str(&format!("ARG {key}\n"));
    }
    if let Some(user) = &ctx.user {
        dockerfile.push_str(&format!("USER {user}\n"));
    }
    for command in setup {
        let json = serde_json::to_string(command).map_err(|e| msg(&e))?;
        dockerfile.push_str(&format!("RUN {json}\n"));
    }
    let path = context.path().join("Dockerfile");
    std::fs::write(&path, dockerfile).map_err(|e| msg(&e))?;
    let request = BuildRequest {
        store: ctx.store,
        context: context.path(),
        dockerfile: &path,
        build_args: env,
        base_overrides: &[(UNDER_TEST.to_string(), ctx.pinned.clone())],
        cancel: ctx.cancel.clone(),
    };
    let digest = ctx.sandbox.build(&request).map_err(|e| match e {
        SandboxError::Interrupted => StepErrorOr::Interrupted,
        other => msg(&other),
    })?;
    let repo = ctx.pinned.split('@').next().unwrap_or(UNDER_TEST);
    Ok(format!("{repo}@{digest}"))
}
