//! Build secrets for `RUN --mount=type=secret`: where each one comes from, given on the command
//! line as BuildKit's and buildah's `--secret` spells it.
//!
//! `id=ID,src=FILE` (or `source=`) reads a file; `id=ID,env=VAR` reads an environment variable;
//! `type=file|env` may say which. With neither `src` nor `env`, the environment variable named ID
//! is used when it is set, else the file named ID, as buildx does. Without `id`, a file secret is
//! named after the file's base name and an env secret after the variable. The content never
//! enters a layer or the build key (as in BuildKit, changing a secret does not invalidate cached
//! steps).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A `--secret` that cannot be parsed or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The `--secret` value is malformed.
    #[error("invalid --secret {spec:?}: {why}")]
    Invalid {
        /// The value given.
        spec: String,
        /// What is wrong.
        why: String,
    },
    /// The secret's file cannot be read.
    #[error("secret {id:?}: cannot read {}", path.display())]
    Read {
        /// The secret's id.
        id: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The secret's environment variable is not set.
    #[error("secret {id:?}: environment variable {var} is not set")]
    Unset {
        /// The secret's id.
        id: String,
        /// The variable.
        var: String,
    },
}

/// Where a build secret's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the build host.
    File(PathBuf),
    /// An environment variable of the build process.
    Env(String),
}

impl SecretSource {
    /// The secret's bytes, read now; the error names the file or variable.
    pub fn read(&self, id: &str) -> Result<Vec<u8>, SecretError> {
        match self {
            SecretSource::File(path) => std::fs::read(path).map_err(|source| SecretError::Read {
                id: id.to_string(),
                path: path.clone(),
                source,
            }),
            SecretSource::Env(var) => std::env::var_os(var)
                .map(std::os::unix::ffi::OsStringExt::into_vec)
                .ok_or_else(|| SecretError::Unset {
                    id: id.to_string(),
                    var: var.clone(),
                }),
        }
    }
}

/// Parse one `--secret` value into its id and source. `env_is_set` tells whether an environment
/// variable exists (the process environment in the CLI; a test passes its own).
pub fn parse_secret(
    spec: &str,
    env_is_set: impl Fn(&str) -> bool,
) -> Result<(String, SecretSource), SecretError> {
    let bad = |why: &str| SecretError::Invalid {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let (mut kind, mut id, mut src, mut env) = (None, None, None, None);
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| bad(&format!("{field:?} is not key=value")))?;
        let slot = match key.trim().to_ascii_lowercase().as_str() {
            "type" => &mut kind,
            "id" => &mut id,
            "src" | "source" => &mut src,
            "env" => &mut env,
            other => return Err(bad(&format!("unknown key {other:?} (type, id, src, env)"))),
        };
        if value.is_empty() {
            return Err(bad(&format!("{key} is empty")));
        }
        *slot = Some(value.to_string());
    }
    let kind = match kind.as_deref() {
        Some("file") => "file",
        Some("env") => "env",
        Some(other) => return Err(bad(&format!("type {other:?} (file or env)"))),
        None if env.is_some() => "env",
        None if src.is_some() => "file",
        None => match &id {
            Some(id) if env_is_set(id) => "env",
            Some(_) => "file",
            None => return Err(bad("give id=, src= or env=")),
        },
    };
    match kind {
        "env" => {
            if src.is_some() {
                return Err(bad("src= is for file secrets"));
            }
            let var = env
                .or_else(|| id.clone())
                .ok_or_else(|| bad("give id= or env="))?;
            Ok((id.unwrap_or_else(|| var.clone()), SecretSource::Env(var)))
        }
        _ => {
            if env.is_some() {
                return Err(bad("env= is for env secrets"));
            }
            let path = src
                .or_else(|| id.clone())
                .ok_or_else(|| bad("give id= or src="))?;
            let id = match id {
                Some(id) => id,
                None => Path::new(&path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| bad("src= names no file"))?,
            };
            Ok((id, SecretSource::File(PathBuf::from(path))))
        }
    }
}

/// Whether the process environment has `var` (for [`parse_secret`]).
pub fn process_env_is_set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v: OsString| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<(String, SecretSource), String> {
        parse_secret(spec, |v| v == "SET_VAR").map_err(|e| e.to_string())
    }

    #[test]
    fn forms_buildkit_accepts() {
        let file = |p: &str| SecretSource::File(PathBuf::from(p));
        let env = |v: &str| SecretSource::Env(v.to_string());
        assert_eq!(
            parse("id=aws,src=/home/u/.aws/credentials").unwrap(),
            ("aws".into(), file("/home/u/.aws/credentials"))
        );
        assert_eq!(
            parse("id=aws,source=creds").unwrap(),
            ("aws".into(), file("creds"))
        );
        assert_eq!(
            parse("src=/run/token.txt").unwrap(),
            ("token.txt".into(), file("/run/token.txt"))
        );
        assert_eq!(
            parse("type=file,id=tok").unwrap(),
            ("tok".into(), file("tok"))
        );
        assert_eq!(
            parse("id=kube,env=KUBECONFIG").unwrap(),
            ("kube".into(), env("KUBECONFIG"))
        );
        assert_eq!(parse("env=API").unwrap(), ("API".into(), env("API")));
        assert_eq!(
            parse("type=env,id=TOKEN").unwrap(),
            ("TOKEN".into(), env("TOKEN"))
        );
        // Bare id: the variable when it is set, else the file.
        assert_eq!(
            parse("id=SET_VAR").unwrap(),
            ("SET_VAR".into(), env("SET_VAR"))
        );
        assert_eq!(parse("id=unset").unwrap(), ("unset".into(), file("unset")));
    }

    #[test]
    fn bad_specs_say_why() {
        for (spec, why) in [
            ("", "give id="),
            ("id", "is not key=value"),
            ("id=x,colour=red", "unknown key"),
            ("type=ssh,id=x", "type \"ssh\""),
            ("id=x,src=f,env=V", "src= is for file secrets"),
            ("type=file,id=x,env=V", "env= is for env secrets"),
            ("type=env,id=x,src=f", "src= is for file secrets"),
            ("id=", "id is empty"),
        ] {
            let err = parse(spec).unwrap_err();
            assert!(err.contains(why), "{spec}: {err}");
            assert!(err.starts_with("invalid --secret"), "{err}");
        }
    }

    #[test]
    fn reading_names_what_is_missing() {
        let err = SecretSource::File(PathBuf::from("/nonexistent/s"))
            .read("s")
            .unwrap_err();
        assert_eq!(err.to_string(), "secret \"s\": cannot read /nonexistent/s");
        assert!(
            std::error::Error::source(&err).is_some(),
            "the OS error is the cause"
        );
        let err = SecretSource::Env("STRATA_TEST_SURELY_UNSET_VAR".into())
            .read("x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("STRATA_TEST_SURELY_UNSET_VAR is not set"),
            "{err}"
        );
    }
}
