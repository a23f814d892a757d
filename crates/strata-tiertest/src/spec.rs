//! The test file: container-structure-test's schema 2.0.0, parsed strictly.
//!
//! The YAML is read with serde-saphyr into private `Raw*` types (unknown fields rejected, every
//! value located), then checked into the public types: regular expressions compiled, permission
//! strings and `isExecutableBy` values checked, required fields present. Every problem is one
//! [`TierTestError::Invalid`] naming `file:line:column`.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::TierTestError;

/// The only schema version container-structure-test accepts for these fields.
pub const SCHEMA_VERSION: &str = "2.0.0";

/// A checked test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Environment variables set for every test (expanded against the image's environment).
    pub global_env_vars: Vec<EnvVar>,
    /// Commands run in the image.
    pub command_tests: Vec<CommandTest>,
    /// Paths that must (or must not) exist, with their mode and owners.
    pub file_existence_tests: Vec<FileExistenceTest>,
    /// Files whose content must (or must not) match.
    pub file_content_tests: Vec<FileContentTest>,
    /// The image config's expectations (None when the file has none, or only empty ones).
    pub metadata_test: Option<MetadataTest>,
    /// Forbidden licenses in copyright files.
    pub license_tests: Vec<LicenseTest>,
    /// `containerRunOptions.user`: command tests run as this user instead of the image's USER.
    pub run_user: Option<String>,
}

impl TestFile {
    /// The number of results a run produces.
    pub fn count(&self) -> usize {
        self.command_tests.len()
            + self.file_existence_tests.len()
            + self.file_content_tests.len()
            + self.license_tests.len()
            + usize::from(self.metadata_test.is_some())
    }
}

/// A regular expression as written, compiled.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The expression as written.
    pub text: String,
    /// Compiled.
    pub regex: Regex,
}

impl Pattern {
    /// Does the expression match anywhere in `haystack`?
    pub fn is_match(&self, haystack: &str) -> bool {
        self.regex.is_match(haystack)
    }
}

/// `key`/`value`, for environment variables and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The name.
    pub key: String,
    /// The value (a regular expression when `is_regex`).
    pub value: String,
    /// Whether `value` is a regular expression (metadata tests only).
    pub is_regex: bool,
}

/// A command run in the image (entrypoint cleared, as container-structure-test does).
#[derive(Debug, Clone)]
pub struct CommandTest {
    /// The test's name.
    pub name: String,
    /// Commands run first, in order; their file changes are seen by the command.
    pub setup: Vec<Vec<String>>,
    /// Commands run after the command (their exit status is not checked).
    pub teardown: Vec<Vec<String>>,
    /// The executable; `$VAR` is expanded from the image's environment.
    pub command: String,
    /// Its arguments; `$VAR` is expanded from the image's environment.
    pub args: Vec<String>,
    /// Extra environment for this test (values expanded against the image's environment).
    pub env_vars: Vec<EnvVar>,
    /// Each must match stdout.
    pub expected_output: Vec<Pattern>,
    /// None may match stdout.
    pub excluded_output: Vec<Pattern>,
    /// Each must match stderr.
    pub expected_error: Vec<Pattern>,
    /// None may match stderr.
    pub excluded_error: Vec<Pattern>,
    /// The exit code expected (default 0).
    pub exit_code: i32,
}

/// Who must be able to execute a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutableBy {
    /// The owner (`0o100`).
    Owner,
    /// The group (`0o010`).
    Group,
    /// Others (`0o001`).
    Other,
    /// Anyone (any of the three bits).
    Any,
}

impl ExecutableBy {
    /// The mode bits of which at least one must be set.
    pub fn bits(self) -> u32 {
        match self {
            ExecutableBy::Owner => 0o100,
            ExecutableBy::Group => 0o010,
            ExecutableBy::Other => 0o001,
            ExecutableBy::Any => 0o111,
        }
    }

    /// The name used in test files.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutableBy::Owner => "owner",
            ExecutableBy::Group => "group",
            ExecutableBy::Other => "other",
            ExecutableBy::Any => "any",
        }
    }
}

/// A path that must (or must not) exist.
#[derive(Debug, Clone)]
pub struct FileExistenceTest {
    /// The test's name.
    pub name: String,
    /// The path (`$VAR` expanded from the image's environment); the last component is not
    /// followed when it is a symlink.
    pub path: String,
    /// Whether it must exist (default true).
    pub should_exist: bool,
    /// The mode as Go prints it (`-rwxr-xr-x`, `drwxrwxrwt`...).
    pub permissions: Option<String>,
    /// The owner's uid.
    pub uid: Option<u64>,
    /// The group's gid.
    pub gid: Option<u64>,
    /// Who must be able to execute it.
    pub is_executable_by: Option<ExecutableBy>,
}

/// A file whose content is checked.
#[derive(Debug, Clone)]
pub struct FileContentTest {
    /// The test's name.
    pub name: String,
    /// The file (symlinks followed inside the image).
    pub path: String,
    /// Each must match the content.
    pub expected_contents: Vec<Pattern>,
    /// None may match the content.
    pub excluded_contents: Vec<Pattern>,
}

/// Expectations on the image config. Every field is optional.
#[derive(Debug, Clone, Default)]
pub struct MetadataTest {
    /// Variables that must be set (to a value, or a value matching a regex).
    pub env_vars: Vec<EnvVar>,
    /// Variables that must not be set.
    pub unbound_env_vars: Vec<String>,
    /// Labels that must be set.
    pub labels: Vec<EnvVar>,
    /// The exact ENTRYPOINT (`[]`: none).
    pub entrypoint: Option<Vec<String>>,
    /// The exact CMD (`[]`: none).
    pub cmd: Option<Vec<String>>,
    /// Ports that must be exposed (`80`, protocol ignored).
    pub exposed_ports: Vec<String>,
    /// Ports that must not be exposed.
    pub unexposed_ports: Vec<String>,
    /// Volumes that must be declared.
    pub volumes: Vec<String>,
    /// Volumes that must not be declared.
    pub unmounted_volumes: Vec<String>,
    /// The WORKDIR, when not empty.
    pub workdir: Option<String>,
    /// The USER, when not empty.
    pub user: Option<String>,
}

/// Copyright files that must not name a forbidden license.
#[derive(Debug, Clone)]
pub struct LicenseTest {
    /// Check every package's `/usr/share/doc/<pkg>/copyright`.
    pub debian: bool,
    /// Other files to check.
    pub files: Vec<String>,
}

// ---- the YAML as written ----

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFile {
    schema_version: S<String>,
    #[serde(default)]
    global_env_vars: Vec<RawEnvVar>,
    #[serde(default)]
    command_tests: Vec<RawCommandTest>,
    #[serde(default)]
    file_existence_tests: Vec<RawFileExistenceTest>,
    #[serde(default)]
    file_content_tests: Vec<RawFileContentTest>,
    #[serde(default)]
    metadata_test: Option<RawMetadataTest>,
    #[serde(default)]
    license_tests: Vec<RawLicenseTest>,
    #[serde(default)]
    container_run_options: Option<RawRunOptions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEnvVar {
    key: S<String>,
    #[serde(default)]
    value: Option<S<String>>,
    #[serde(default)]
    is_regex: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCommandTest {
    name: S<String>,
    #[serde(default)]
    setup: Vec<S<Vec<String>>>,
    #[serde(default)]
    teardown: Vec<S<Vec<String>>>,
    #[serde(default)]
    env_vars: Vec<RawEnvVar>,
    #[serde(default)]
    exit_code: i32,
    command: S<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    expected_output: Vec<S<String>>,
    #[serde(default)]
    excluded_output: Vec<S<String>>,
    #[serde(default)]
    expected_error: Vec<S<String>>,
    #[serde(default)]
    excluded_error: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFileExistenceTest {
    name: S<String>,
    path: S<String>,
    #[serde(default)]
    should_exist: Option<bool>,
    #[serde(default)]
    permissions: Option<S<String>>,
    #[serde(default)]
    uid: Option<S<i64>>,
    #[serde(default)]
    gid: Option<S<i64>>,
    #[serde(default)]
    is_executable_by: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFileContentTest {
    name: S<String>,
    path: S<String>,
    #[serde(default)]
    expected_contents: Vec<S<String>>,
    #[serde(default)]
    excluded_contents: Vec<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMetadataTest {
    #[serde(default)]
    env_vars: Vec<RawEnvVar>,
    #[serde(default)]
    unbound_env_vars: Vec<RawEnvVar>,
    #[serde(default)]
    labels: Vec<RawEnvVar>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    exposed_ports: Vec<S<String>>,
    #[serde(default)]
    unexposed_ports: Vec<String>,
    #[serde(default)]
    volumes: Vec<S<String>>,
    #[serde(default)]
    unmounted_volumes: Vec<String>,
    #[serde(default)]
    workdir: String,
    #[serde(default)]
    user: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawLicenseTest {
    debian: bool,
    #[serde(default)]
    files: Vec<String>,
}

/// Only `user` is supported: strata's sandbox has no privileged mode, TTY or bind mounts to give.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRunOptions {
    #[serde(default)]
    user: Option<String>,
}

/// Read and check the test file at `path`.
pub fn load(path: &Path) -> Result<TestFile, TierTestError> {
    let text = std::fs::read_to_string(path).map_err(|source| TierTestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Check `text`, the test file at `path` (used in messages only).
pub fn parse(path: &Path, text: &str) -> Result<TestFile, TierTestError> {
    let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let message = e.without_snippet().to_string();
        // serde-saphyr appends " at line L, column C": the location is in front already.
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        TierTestError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })?;
    Checker { path }.check(raw)
}

struct Checker<'a> {
    path: &'a Path,
}

impl Checker<'_> {
    fn err<T>(&self, at: &S<T>, message: impl Into<String>) -> TierTestError {
        TierTestError::Invalid {
            path: self.path.to_path_buf(),
            line: at.referenced.line(),
            column: at.referenced.column(),
            message: message.into(),
        }
    }

    fn check(&self, raw: RawFile) -> Result<TestFile, TierTestError> {
        if raw.schema_version.value != SCHEMA_VERSION {
            return Err(self.err(
                &raw.schema_version,
                format!(
                    "unsupported schemaVersion {:?}: strata reads \"{SCHEMA_VERSION}\"",
                    raw.schema_version.value
                ),
            ));
        }
        let global_env_vars = self.env_vars(raw.global_env_vars, "globalEnvVars", true)?;
        let mut command_tests = Vec::new();
        for (i, t) in raw.command_tests.into_iter().enumerate() {
            command_tests.push(self.command_test(i, t)?);
        }
        let mut file_existence_tests = Vec::new();
        for (i, t) in raw.file_existence_tests.into_iter().enumerate() {
            file_existence_tests.push(self.file_existence_test(i, t)?);
        }
        let mut file_content_tests = Vec::new();
        for (i, t) in raw.file_content_tests.into_iter().enumerate() {
            let field = format!("fileContentTests[{i}]");
            let name = self.name(&t.name, &field)?;
            let path = self.non_empty(&t.path, &format!("{field}.path"))?;
            file_content_tests.push(FileContentTest {
                name,
                path,
                expected_contents: self.patterns(t.expected_contents, &field)?,
                excluded_contents: self.patterns(t.excluded_contents, &field)?,
            });
        }
        let metadata_test = match raw.metadata_test {
            Some(m) => self.metadata(m)?,
            None => None,
        };
        let license_tests = raw
            .license_tests
            .into_iter()
            .map(|l| LicenseTest {
                debian: l.debian,
                files: l.files,
            })
            .collect();
        Ok(TestFile {
            path: self.path.to_path_buf(),
            global_env_vars,
            command_tests,
            file_existence_tests,
            file_content_tests,
            metadata_test,
            license_tests,
            run_user: raw
                .container_run_options
                .and_then(|o| o.user)
                .filter(|u| !u.is_empty()),
        })
    }

    fn name(&self, name: &S<String>, field: &str) -> Result<String, TierTestError> {
        self.non_empty(name, &format!("{field}.name"))
    }

    fn non_empty(&self, value: &S<String>, field: &str) -> Result<String, TierTestError> {
        if value.value.is_empty() {
            return Err(self.err(value, format!("{field} must not be empty")));
        }
        Ok(value.value.clone())
    }

    fn patterns(&self, raw: Vec<S<String>>, field: &str) -> Result<Vec<Pattern>, TierTestError> {
        raw.into_iter()
            .map(|p| match Regex::new(&p.value) {
                Ok(regex) => Ok(Pattern {
                    text: p.value,
                    regex,
                }),
                Err(e) => Err(self.err(
                    &p,
                    format!(
                        "{field}: invalid regular expression {:?}: {}",
                        p.value,
                        first_line(&e.to_string())
                    ),
                )),
            })
            .collect()
    }

    fn env_vars(
        &self,
        raw: Vec<RawEnvVar>,
        field: &str,
        need_value: bool,
    ) -> Result<Vec<EnvVar>, TierTestError> {
        let mut out = Vec::new();
        for (i, v) in raw.into_iter().enumerate() {
            let key = self.non_empty(&v.key, &format!("{field}[{i}].key"))?;
            let value = match v.value {
                Some(value) => {
                    if need_value && value.value.is_empty() {
                        return Err(
                            self.err(&value, format!("{field}[{i}].value must not be empty"))
                        );
                    }
                    if v.is_regex
                        && let Err(e) = Regex::new(&value.value)
                    {
                        return Err(self.err(
                            &value,
                            format!(
                                "{field}[{i}].value: invalid regular expression {:?}: {}",
                                value.value,
                                first_line(&e.to_string())
                            ),
                        ));
                    }
                    value.value
                }
                None if need_value => {
                    return Err(self.err(&v.key, format!("{field}[{i}] has no value")));
                }
                None => String::new(),
            };
            out.push(EnvVar {
                key,
                value,
                is_regex: v.is_regex,
            });
        }
        Ok(out)
    }

    fn command_test(&self, i: usize, t: RawCommandTest) -> Result<CommandTest, TierTestError> {
        let field = format!("commandTests[{i}]");
        let name = self.name(&t.name, &field)?;
        let command = self.non_empty(&t.command, &format!("{field}.command"))?;
        let commands = |list: Vec<S<Vec<String>>>, what: &str| {
            list.into_iter()
                .enumerate()
                .map(|(k, c)| {
                    if c.value.is_empty() || c.value[0].is_empty() {
                        Err(self.err(&c, format!("{field}.{what}[{k}] is an empty command")))
                    } else {
                        Ok(c.value)
                    }
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(CommandTest {
            setup: commands(t.setup, "setup")?,
            teardown: commands(t.teardown, "teardown")?,
            env_vars: self.env_vars(t.env_vars, &format!("{field}.envVars"), true)?,
            expected_output: self
                .patterns(t.expected_output, &format!("{field}.expectedOutput"))?,
            excluded_output: self
                .patterns(t.excluded_output, &format!("{field}.excludedOutput"))?,
            expected_error: self.patterns(t.expected_error, &format!("{field}.expectedError"))?,
            excluded_error: self.patterns(t.excluded_error, &format!("{field}.excludedError"))?,
            exit_code: t.exit_code,
            name,
            command,
            args: t.args,
        })
    }

    fn file_existence_test(
        &self,
        i: usize,
        t: RawFileExistenceTest,
    ) -> Result<FileExistenceTest, TierTestError> {
        let field = format!("fileExistenceTests[{i}]");
        let name = self.name(&t.name, &field)?;
        let path = self.non_empty(&t.path, &format!("{field}.path"))?;
        let permissions = match t.permissions {
            Some(p) if p.value.is_empty() => None,
            Some(p) => {
                if !is_mode_string(&p.value) {
                    return Err(self.err(
                        &p,
                        format!(
                            "{field}.permissions: {:?} is not a mode string such as -rwxr-xr-x or drwxrwxrwt",
                            p.value
                        ),
                    ));
                }
                Some(p.value)
            }
            None => None,
        };
        let owner = |v: Option<S<i64>>, what: &str| -> Result<Option<u64>, TierTestError> {
            match v {
                None => Ok(None),
                // -1 is container-structure-test's "not set".
                Some(v) if v.value == -1 => Ok(None),
                Some(v) => u64::try_from(v.value)
                    .map(Some)
                    .map_err(|_| self.err(&v, format!("{field}.{what}: {} is not an id", v.value))),
            }
        };
        let is_executable_by = match t.is_executable_by {
            None => None,
            Some(v) if v.value.is_empty() => None,
            Some(v) => Some(match v.value.as_str() {
                "owner" => ExecutableBy::Owner,
                "group" => ExecutableBy::Group,
                "other" => ExecutableBy::Other,
                "any" => ExecutableBy::Any,
                other => {
                    return Err(self.err(
                        &v,
                        format!(
                            "{field}.isExecutableBy: {other:?} is not one of owner, group, other, any"
                        ),
                    ));
                }
            }),
        };
        Ok(FileExistenceTest {
            name,
            path,
            should_exist: t.should_exist.unwrap_or(true),
            permissions,
            uid: owner(t.uid, "uid")?,
            gid: owner(t.gid, "gid")?,
            is_executable_by,
        })
    }

    fn metadata(&self, m: RawMetadataTest) -> Result<Option<MetadataTest>, TierTestError> {
        let field = "metadataTest";
        for p in &m.exposed_ports {
            self.non_empty(p, &format!("{field}.exposedPorts"))?;
        }
        for v in &m.volumes {
            self.non_empty(v, &format!("{field}.volumes"))?;
        }
        let test = MetadataTest {
            env_vars: self.env_vars(m.env_vars, &format!("{field}.envVars"), false)?,
            unbound_env_vars: self
                .env_vars(
                    m.unbound_env_vars,
                    &format!("{field}.unboundEnvVars"),
                    false,
                )?
                .into_iter()
                .map(|v| v.key)
                .collect(),
            labels: self.env_vars(m.labels, &format!("{field}.labels"), false)?,
            entrypoint: m.entrypoint,
            cmd: m.cmd,
            exposed_ports: m.exposed_ports.into_iter().map(|p| p.value).collect(),
            unexposed_ports: m.unexposed_ports,
            volumes: m.volumes.into_iter().map(|v| v.value).collect(),
            unmounted_volumes: m.unmounted_volumes,
            workdir: Some(m.workdir).filter(|w| !w.is_empty()),
            user: Some(m.user).filter(|u| !u.is_empty()),
        };
        let empty = test.env_vars.is_empty()
            && test.unbound_env_vars.is_empty()
            && test.labels.is_empty()
            && test.entrypoint.is_none()
            && test.cmd.is_none()
            && test.exposed_ports.is_empty()
            && test.unexposed_ports.is_empty()
            && test.volumes.is_empty()
            && test.unmounted_volumes.is_empty()
            && test.workdir.is_none()
            && test.user.is_none();
        // container-structure-test skips an empty metadata test (no result at all).
        Ok((!empty).then_some(test))
    }
}

fn first_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

/// A mode string as Go's `os.FileMode.String()` prints it: type letters, then nine `rwx` places.
fn is_mode_string(s: &str) -> bool {
    let Some(split) = s.len().checked_sub(9) else {
        return false;
    };
    let (kind, perms) = s.split_at(split);
    let type_ok =
        kind == "-" || (!kind.is_empty() && kind.chars().all(|c| "dalTLDpSugct?".contains(c)));
    let perm_ok = perms
        .chars()
        .zip("rwxrwxrwx".chars())
        .all(|(c, want)| c == want || c == '-');
    type_ok && perm_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<TestFile, TierTestError> {
        parse(Path::new("t.yaml"), text)
    }

    #[test]
    fn a_full_file_parses() {
        let file = parse_str(
            r#"schemaVersion: "2.0.0"
globalEnvVars:
  - key: GREETING
    value: hello
commandTests:
  - name: echo
    setup: [["touch", "/x"]]
    command: sh
    args: ["-c", "echo $GREETING"]
    expectedOutput: ["^hello\n$"]
    exitCode: 0
fileExistenceTests:
  - name: sh
    path: /bin/sh
    permissions: "Lrwxrwxrwx"
    uid: 0
    isExecutableBy: any
  - name: absent
    path: /nope
    shouldExist: false
fileContentTests:
  - name: passwd
    path: /etc/passwd
    expectedContents: ["root:x:0:0"]
metadataTest:
  envVars:
    - key: PATH
      value: "/bin"
      isRegex: true
  cmd: ["/bin/sh"]
  exposedPorts: ["80"]
licenseTests:
  - debian: true
"#,
        )
        .unwrap();
        assert_eq!(file.count(), 6);
        assert_eq!(file.command_tests[0].setup, [["touch", "/x"]]);
        assert!(file.command_tests[0].expected_output[0].is_match("hello\n"));
        assert!(file.file_existence_tests[1].uid.is_none());
        assert!(!file.file_existence_tests[1].should_exist);
        assert!(file.file_existence_tests[0].should_exist);
        assert_eq!(
            file.file_existence_tests[0].is_executable_by,
            Some(ExecutableBy::Any)
        );
        assert_eq!(file.metadata_test.unwrap().cmd.unwrap(), ["/bin/sh"]);
    }

    fn invalid(text: &str) -> String {
        parse_str(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_are_located() {
        assert_eq!(
            invalid(
                "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: a\n    path: /a\n    bogus: 1\n"
            ),
            "t.yaml:5:5: unknown field `bogus`, expected one of name, path, shouldExist, permissions, uid, gid, isExecutableBy"
        );
        assert_eq!(
            invalid(
                "schemaVersion: 2.0.0\ncommandTests:\n  - name: a\n    command: x\n    exitCode: zero\n"
            ),
            "t.yaml:5:15: invalid i32"
        );
        let bad = invalid(
            "schemaVersion: 2.0.0\ncommandTests:\n  - name: a\n    command: x\n    expectedOutput: [\"ok\", \"(unclosed\"]\n",
        );
        assert!(
            bad.starts_with("t.yaml:5:28: commandTests[0].expectedOutput: invalid regular expression \"(unclosed\""),
            "{bad}"
        );
        assert_eq!(
            invalid("schemaVersion: 1.0.0\n"),
            "t.yaml:1:16: unsupported schemaVersion \"1.0.0\": strata reads \"2.0.0\""
        );
        assert_eq!(
            invalid(
                "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: a\n    path: /a\n    permissions: '755'\n"
            ),
            "t.yaml:5:18: fileExistenceTests[0].permissions: \"755\" is not a mode string such as -rwxr-xr-x or drwxrwxrwt"
        );
        assert_eq!(
            invalid(
                "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: a\n    path: /a\n    isExecutableBy: everyone\n"
            ),
            "t.yaml:5:21: fileExistenceTests[0].isExecutableBy: \"everyone\" is not one of owner, group, other, any"
        );
        let missing = invalid("schemaVersion: 2.0.0\ncommandTests:\n  - name: a\n");
        assert!(missing.contains("missing field `command`"), "{missing}");
        assert!(missing.starts_with("t.yaml:3:"), "{missing}");
    }

    #[test]
    fn mode_strings() {
        for ok in [
            "-rwxr-xr-x",
            "drwxrwxrwx",
            "dtrwxrwxrwx",
            "Lrwxrwxrwx",
            "urwxr-xr-x",
            "Dcrw-rw-rw-",
        ] {
            assert!(is_mode_string(ok), "{ok}");
        }
        for bad in [
            "755",
            "rwxr-xr-x",
            "-rwxr-xr-q",
            "xrwxr-xr-x",
            "-rwxr-xr-x-",
        ] {
            assert!(!is_mode_string(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn json_test_files_parse_too() {
        // container-structure-test also reads `.json` files; JSON is YAML, and errors stay located.
        let file = parse(
            Path::new("t.json"),
            "{\n  \"schemaVersion\": \"2.0.0\",\n  \"fileExistenceTests\": [\n    {\"name\": \"sh\", \"path\": \"/bin/sh\", \"shouldExist\": true}\n  ]\n}\n",
        )
        .unwrap();
        assert_eq!(file.file_existence_tests[0].path, "/bin/sh");
        let err = parse(
            Path::new("t.json"),
            "{\"schemaVersion\": \"2.0.0\",\n \"fileContentTests\": [{\"name\": \"a\", \"path\": \"/a\", \"expected\": []}]}\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("t.json:2:"), "{err}");
        assert!(
            err.to_string().contains("unknown field `expected`"),
            "{err}"
        );
    }
}
