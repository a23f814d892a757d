//! Issue 16: one rule for errors. A message holds its own text, the cause is chained by
//! `source()`, and the CLI prints the chain once; before, messages repeated their cause and the
//! CLI dropped a cause by substring.

use std::error::Error;
use std::io;
use std::path::PathBuf;
use std::process::Command;

/// ENOENT: "No such file or directory (os error 2)".
fn os_error() -> io::Error {
    io::Error::from_raw_os_error(2)
}

/// One error of every kind that wraps another, from every crate.
fn samples() -> Vec<Box<dyn Error>> {
    let path = PathBuf::from("/some/file");
    let sandbox_io = || strata_sandbox::SandboxError::Io {
        path: path.clone(),
        source: os_error(),
    };
    vec![
        Box::new(strata_oci::Error::Io {
            path: path.clone(),
            source: os_error(),
        }),
        Box::new(strata_oci::Error::Stream {
            context: "compressing a layer".into(),
            source: os_error(),
        }),
        Box::new(strata_oci::Error::Json {
            what: "index.json".into(),
            source: serde_json::from_str::<u8>("x").unwrap_err(),
        }),
        Box::new(strata_oci::RootError::Io {
            path: path.clone(),
            source: os_error(),
        }),
        Box::new(strata_build::context::ContextError::Root {
            path: path.clone(),
            source: os_error(),
        }),
        Box::new(strata_build::error::BuildError::Step {
            file: "Dockerfile".into(),
            line: 3,
            instruction: "RUN make".into(),
            source: Box::new(strata_build::error::StepError::Sandbox(sandbox_io())),
        }),
        Box::new(strata_build::error::StepError::SandboxAt {
            what: "USER app".into(),
            source: sandbox_io(),
        }),
        Box::new(strata_chain::ChainError::Read {
            path: path.clone(),
            source: os_error(),
        }),
        Box::new(strata_chain::ChainError::Git {
            location: strata_chain::Location {
                path: "strata.toml".into(),
                line: 7,
                column: 11,
            },
            field: "image[1].context".into(),
            source: Box::new(strata_chain::GitError::Io {
                path: path.clone(),
                source: os_error(),
            }),
        }),
        Box::new(strata_chain::GitError::Spawn(os_error())),
        Box::new(strata_events::EventError::Io {
            path: "events.db".into(),
            source: os_error(),
        }),
        Box::new(strata_inspect::error::InspectError::Image {
            image: "acme/app:1".into(),
            source: strata_oci::Error::Io {
                path: path.clone(),
                source: os_error(),
            },
        }),
        Box::new(sandbox_io()),
        Box::new(strata_tiertest::TierTestError::Read {
            path: path.clone(),
            source: os_error(),
        }),
        Box::new(strata_attest::KeyError::Io {
            path: path.clone(),
            source: os_error(),
        }),
        Box::new(strata_attest::KeyError::InVariable {
            variable: "STRATA_KEY_OPS".into(),
            inner: Box::new(strata_attest::KeyError::PassphraseNeeded),
        }),
        Box::new(strata_registry::RegistryError::Io {
            path: path.clone(),
            source: os_error(),
        }),
        Box::new(strata_build::secret::SecretError::Read {
            id: "token".into(),
            path: path.clone(),
            source: os_error(),
        }),
    ]
}

#[test]
fn no_error_message_repeats_its_cause() {
    for err in samples() {
        let message = err.to_string();
        let mut cause = err.source();
        assert!(cause.is_some(), "{message}: its cause is not chained");
        while let Some(c) = cause {
            let text = c.to_string();
            assert!(
                !message.contains(&text),
                "{message:?} repeats its cause {text:?}"
            );
            cause = c.source();
        }
        // Written out with its causes, each cause appears once.
        let line = strata_oci::report(err.as_ref());
        assert!(line.starts_with(&message), "{line}");
        assert!(line.matches("os error").count() <= 1, "{line}");
    }
}

#[test]
fn the_cli_prints_the_chain_once() {
    let dir = tempfile::tempdir().unwrap();
    // strata.toml is a directory: reading it fails with the operating system's error.
    std::fs::create_dir(dir.path().join("strata.toml")).unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin!("strata"))
        .arg("-C")
        .arg(dir.path())
        .arg("graph")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = lines[0];
    assert!(line.starts_with("error: "), "{line}");
    assert!(line.contains("strata.toml: "), "{line}");
    assert_eq!(line.matches("os error").count(), 1, "{line}");
    assert_eq!(line.matches("strata.toml").count(), 1, "{line}");
}
