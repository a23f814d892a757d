//! File existence, file content, metadata and license tests: pure checks over an [`ImageView`],
//! with container-structure-test's semantics and reasons (expected vs actual).

use std::collections::BTreeMap;

use crate::expand::expand;
use crate::image::{ImageView, mode_string};
use crate::report::{TestKind, TestResult};
use crate::spec::{EnvVar, FileContentTest, FileExistenceTest, LicenseTest, MetadataTest};

/// Licenses whose name in a copyright file fails a license test.
pub const FORBIDDEN_LICENSES: &[&str] = &["AGPL", "WTFPL"];
/// Debian packages a license test skips.
pub const LICENSE_ALLOWLIST: &[&str] = &["libgnutls30"];

/// Check a path's existence, mode, owners and executable bits. `env` expands `$VAR` in the path.
pub fn file_existence(
    view: &ImageView<'_>,
    test: &FileExistenceTest,
    env: &BTreeMap<String, String>,
) -> TestResult {
    let mut result = TestResult::new(TestKind::FileExistence, &test.name);
    let path = expand(&test.path, env);
    let node = view.lstat(&path);
    match (node, test.should_exist) {
        (None, true) => {
            result.fail(format!("File {path} should exist but does not"));
            return result;
        }
        (Some(_), false) => {
            result.fail(format!("File {path} should not exist but does"));
            return result;
        }
        (None, false) => return result,
        (Some(_), true) => {}
    }
    let node = node.expect("exists");
    let actual = mode_string(node);
    if let Some(expected) = &test.permissions
        && *expected != actual
    {
        result.fail(format!(
            "{path} has incorrect permissions. Expected: {expected}, Actual: {actual}"
        ));
    }
    if let Some(by) = test.is_executable_by {
        let mode = if matches!(node.kind, strata_oci::fsindex::NodeKind::Symlink(_)) {
            0o777
        } else {
            node.mode
        };
        if mode & by.bits() == 0 {
            result.fail(format!(
                "{path} has incorrect executable bit. Expected to be executable by {}, Actual: {actual}",
                by.as_str()
            ));
        }
    }
    if let Some(uid) = test.uid
        && node.uid != uid
    {
        result.fail(format!(
            "{path} has incorrect user ownership. Expected: {uid}, Actual: {}",
            node.uid
        ));
    }
    if let Some(gid) = test.gid
        && node.gid != gid
    {
        result.fail(format!(
            "{path} has incorrect group ownership. Expected: {gid}, Actual: {}",
            node.gid
        ));
    }
    result
}

/// Check a file's content against the expected and excluded expressions.
pub fn file_content(view: &ImageView<'_>, test: &FileContentTest) -> TestResult {
    let mut result = TestResult::new(TestKind::FileContent, &test.name);
    let content = match view.read_file(&test.path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            result.fail(format!(
                "Failed to open {}. Error: {}",
                test.path,
                strata_oci::report(&e)
            ));
            return result;
        }
    };
    result.match_strings(
        &test.expected_contents,
        &test.excluded_contents,
        "file content string",
        &content,
    );
    result
}

/// Check the image config. Only the image's own environment counts (not `globalEnvVars`).
pub fn metadata(view: &ImageView<'_>, test: &MetadataTest) -> TestResult {
    let mut result = TestResult::new(TestKind::Metadata, "");
    let config = &view.config().config;
    let env = view.env();
    let matches = |want: &EnvVar, actual: &str| {
        if want.is_regex {
            regex::Regex::new(&want.value).is_ok_and(|r| r.is_match(actual))
        } else {
            want.value == actual
        }
    };
    for want in &test.env_vars {
        match env.get(&want.key) {
            Some(actual) if matches(want, actual) => {}
            Some(actual) => result.fail(format!(
                "env var {} value {actual} does not match expected value: {}",
                want.key, want.value
            )),
            None => result.fail(format!("variable {} not found in image env", want.key)),
        }
    }
    for key in &test.unbound_env_vars {
        if env.contains_key(key) {
            result.fail(format!(
                "env variable {key} should not be present in image metadata"
            ));
        }
    }
    for want in &test.labels {
        match config.labels.get(&want.key) {
            Some(actual) if matches(want, actual) => {}
            Some(actual) => result.fail(format!(
                "label {} value {actual} does not match expected value: {}",
                want.key, want.value
            )),
            None => result.fail(format!("label {} not found in image metadata", want.key)),
        }
    }
    let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    if let Some(cmd) = &test.cmd
        && *cmd != list(&config.cmd)
    {
        result.fail(format!(
            "Image Cmd {:?} does not match expected Cmd: {cmd:?}",
            list(&config.cmd)
        ));
    }
    if let Some(entrypoint) = &test.entrypoint
        && *entrypoint != list(&config.entrypoint)
    {
        result.fail(format!(
            "Image entrypoint {:?} does not match expected entrypoint: {entrypoint:?}",
            list(&config.entrypoint)
        ));
    }
    let workdir = config.working_dir.clone().unwrap_or_default();
    if let Some(want) = &test.workdir
        && *want != workdir
    {
        result.fail(format!(
            "Image workdir {workdir} does not match config workdir: {want}"
        ));
    }
    let user = config.user.clone().unwrap_or_default();
    if let Some(want) = &test.user
        && *want != user
    {
        result.fail(format!(
            "Image user {user} does not match config user: {want}"
        ));
    }
    // Ports are compared without their protocol (`80/tcp` is `80`), as container-structure-test does.
    let ports: Vec<&str> = config
        .exposed_ports
        .keys()
        .map(|p| p.split('/').next().unwrap_or(p))
        .collect();
    for port in &test.exposed_ports {
        if !ports.contains(&port.as_str()) {
            result.fail(format!("Port {port} not found in config"));
        }
    }
    for port in &test.unexposed_ports {
        if ports.contains(&port.as_str()) {
            result.fail(format!("Port {port} should not be exposed"));
        }
    }
    for volume in &test.volumes {
        if !config.volumes.contains_key(volume) {
            result.fail(format!("Volume {volume} not found in config"));
        }
    }
    for volume in &test.unmounted_volumes {
        if config.volumes.contains_key(volume) {
            result.fail(format!("Volume {volume} should not be mounted"));
        }
    }
    result
}

/// Check copyright files for forbidden licenses: every Debian package's
/// `/usr/share/doc/<pkg>/copyright` (when `debian`), and the listed files.
pub fn license(view: &ImageView<'_>, test: &LicenseTest) -> TestResult {
    let mut result = TestResult::new(TestKind::License, "");
    let check = |file: &str, result: &mut TestResult| match view.read_file(file) {
        Err(e) => result.fail(format!(
            "Error reading license file for {file}: {}",
            strata_oci::report(&e)
        )),
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).to_uppercase();
            for bad in FORBIDDEN_LICENSES {
                if text.contains(bad) {
                    result.fail(format!(
                        "Invalid license for {file}, license contains {bad}"
                    ));
                }
            }
        }
    };
    if test.debian {
        match view.read_dir("/usr/share/doc") {
            Err(e) => result.fail(format!(
                "Error reading directory: {}",
                strata_oci::report(&e)
            )),
            Ok(packages) => {
                for (name, node) in packages {
                    if node.kind != strata_oci::fsindex::NodeKind::Dir
                        || LICENSE_ALLOWLIST.contains(&name.as_str())
                    {
                        continue;
                    }
                    check(&format!("/usr/share/doc/{name}/copyright"), &mut result);
                }
            }
        }
    }
    for file in &test.files {
        check(file, &mut result);
    }
    result
}
