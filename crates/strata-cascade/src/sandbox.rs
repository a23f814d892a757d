//! The builder as the tier tests' sandbox: command tests run through `strata_build::exec` and
//! their setup commands are committed by `strata_build::builder::build`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use strata_build::builder::{BuildOptions, NoSink, build};
use strata_build::error::StepError;
use strata_build::exec::{ExecRequest as BuildExecRequest, exec};
use strata_sandbox::Stream;
use strata_tiertest::sandbox::{BuildRequest, Captured, ExecRequest, Sandbox, SandboxError};

/// Runs tier tests' commands in strata's build sandbox (`strata test`, the cascade's gate).
#[derive(Debug, Clone, Copy, Default)]
pub struct BuilderSandbox;

impl Sandbox for BuilderSandbox {
    fn exec(&self, request: &ExecRequest<'_>) -> Result<Captured, SandboxError> {
        let exec_request = BuildExecRequest {
            argv: request.argv.clone(),
            entrypoint: Some(Vec::new()),
            user: request.user.clone(),
            workdir: None,
            env: request.env.to_vec(),
            ..BuildExecRequest::default()
        };
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut output = |stream: Stream, bytes: &[u8]| match stream {
            Stream::Stdout => stdout.extend_from_slice(bytes),
            Stream::Stderr => stderr.extend_from_slice(bytes),
        };
        let outcome = exec(
            request.store,
            request.image,
            &exec_request,
            request.work_dir,
            &mut output,
            request.cancel.clone(),
        );
        match outcome {
            Ok(o) => Ok(Captured {
                code: o.code,
                stdout,
                stderr,
            }),
            Err(StepError::Interrupted) => Err(SandboxError::Interrupted),
            Err(e) => Err(SandboxError::Failed(Box::new(e))),
        }
    }

    fn build(&self, request: &BuildRequest<'_>) -> Result<String, SandboxError> {
        let mut options = BuildOptions::new(request.context);
        options.dockerfile = Some(request.dockerfile.to_path_buf());
        options.build_args = request.build_args.iter().cloned().collect();
        options.base_overrides = request
            .base_overrides
            .iter()
            .cloned()
            .collect::<BTreeMap<_, _>>();
        options.compression = strata_oci::Compression::None;
        options.cancel = request.cancel.clone();
        match build(request.store, &options, &NoSink) {
            Ok(built) => Ok(built.digest.to_string()),
            Err(_) if request.cancel.load(Ordering::SeqCst) => Err(SandboxError::Interrupted),
            Err(e) => Err(SandboxError::Failed(Box::new(e))),
        }
    }
}
