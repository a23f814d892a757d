//! `RUN --mount=...`: the CSV option string parsed into a typed [`Mount`], with BuildKit's
//! defaults and checks (`frontend/dockerfile/instructions/commands_runmount.go`).

use serde::Serialize;

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A read-only (by default) bind of the context or of a stage/image (`from=`).
    Bind,
    /// A persistent cache directory.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A secret file (or environment variable with `env=`).
    Secret,
    /// An SSH agent socket.
    Ssh,
}

/// How a cache mount is shared between concurrent builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    /// Used by all writers at once (the default).
    Shared,
    /// A new instance per concurrent writer.
    Private,
    /// One writer at a time.
    Locked,
}

/// One `--mount` of a RUN instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// `type=` (default `bind`).
    #[serde(rename = "type")]
    pub kind: MountType,
    /// `from=`: a stage name or index, or an image reference.
    pub from: Option<String>,
    /// `source=`/`src=`: the path inside `from` (or the secret/ssh id source).
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`: the mount point.
    pub target: Option<String>,
    /// Read-only: explicit `ro`/`rw`, or BuildKit's default (true except cache and tmpfs).
    pub readonly: bool,
    /// `size=` of a tmpfs, in bytes.
    pub size: Option<u64>,
    /// `id=` of a cache, secret or ssh mount. BuildKit defaults a cache's id to its cleaned
    /// target path; that is left to the builder.
    pub id: Option<String>,
    /// `sharing=` of a cache mount.
    pub sharing: Option<Sharing>,
    /// `required` for secret and ssh mounts.
    pub required: bool,
    /// `mode=` (octal) for cache, secret and ssh mounts.
    pub mode: Option<u32>,
    /// `uid=` for cache, secret and ssh mounts.
    pub uid: Option<u32>,
    /// `gid=` for cache, secret and ssh mounts.
    pub gid: Option<u32>,
    /// `env=`: expose a secret as this environment variable.
    pub env: Option<String>,
}

/// Split a CSV record (Go's `encoding/csv` rules, one line).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') => {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            field.push('"');
                        } else {
                            break;
                        }
                    }
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => out.push(field),
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => {
                        out.push(field);
                        break;
                    }
                    Some('"') => return Err("bare \" in non-quoted-field".into()),
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// docker/go-units `RAMInBytes`: `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`, binary units.
pub(crate) fn ram_in_bytes(v: &str) -> Option<u64> {
    let num_end = v
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
        .map_or(v.len(), |(i, _)| i);
    let (num, mut rest) = v.split_at(num_end);
    if num.is_empty() || !num.as_bytes()[0].is_ascii_digit() || num.ends_with('.') {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut mult: f64 = 1.0;
    if let Some(c) = rest.chars().next() {
        let m = match c.to_ascii_lowercase() {
            'k' => Some(1024f64),
            'm' => Some(1024f64.powi(2)),
            'g' => Some(1024f64.powi(3)),
            't' => Some(1024f64.powi(4)),
            'p' => Some(1024f64.powi(5)),
            _ => None,
        };
        if let Some(m) = m {
            mult = m;
            rest = &rest[1..];
        }
    }
    rest = rest.strip_prefix(['i', 'I']).unwrap_or(rest);
    rest = rest.strip_prefix(['b', 'B']).unwrap_or(rest);
    if !rest.is_empty() {
        return None;
    }
    let bytes = n * mult;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Parse one `--mount` value.
///
/// `expand` is applied to every `key=value` value. When `deferred` is set (parse time, before
/// ARG/ENV are known), BuildKit checks only the CSV syntax and `from=` (no variables): other
/// options are checked when a stage the target needs runs. The mount is then read as far as
/// it can be (values holding a `$` are kept as written) and `resolve` parses it again with
/// real expansion.
pub(crate) fn parse_mount(
    spec: &str,
    expand: &mut dyn FnMut(&str) -> Result<String, String>,
    deferred: bool,
) -> Result<Mount, String> {
    let fields = csv_fields(spec).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    if !deferred {
        return mount_fields(&fields, expand, false);
    }
    let mut from = None;
    for field in &fields {
        if let Some((key, value)) = field.split_once('=')
            && key.eq_ignore_ascii_case("from")
        {
            if let Some(i) = value.find('$')
                && i != value.len() - 1
            {
                return Err(
                    "'from' doesn't support variable expansion, define alias stage instead"
                        .to_string(),
                );
            }
            from = Some(value.to_string()).filter(|v| !v.is_empty());
        }
    }
    Ok(mount_fields(&fields, expand, true).unwrap_or(Mount {
        from,
        ..Mount::bind()
    }))
}

impl Mount {
    /// A bind mount with nothing set.
    fn bind() -> Mount {
        Mount {
            kind: MountType::Bind,
            from: None,
            source: None,
            target: None,
            readonly: true,
            size: None,
            id: None,
            sharing: None,
            required: false,
            mode: None,
            uid: None,
            gid: None,
            env: None,
        }
    }
}

fn mount_fields(
    fields: &[String],
    expand: &mut dyn FnMut(&str) -> Result<String, String>,
    deferred: bool,
) -> Result<Mount, String> {
    let mut m = Mount {
        readonly: false,
        ..Mount::bind()
    };
    let mut ro_auto = true;
    for field in fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true;
                }
                "required" => {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        kind_name(m.kind)
                    ));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        if key == "from"
            && let Some(i) = value.find('$')
            && i != value.len() - 1
        {
            return Err(format!(
                "'{key}' doesn't support variable expansion, define alias stage instead"
            ));
        }
        if deferred && value.contains('$') {
            // resolved later, once ARG and ENV are known
            match key.as_str() {
                "source" | "src" => m.source = Some(value.to_string()),
                "target" | "dst" | "destination" => m.target = Some(value.to_string()),
                "id" => m.id = Some(value.to_string()),
                "env" => m.env = Some(value.to_string()),
                _ => {}
            }
            continue;
        }
        let value = expand(value)?;
        let bad = |k: &str| format!("invalid value for {k}: {value}");
        match key.as_str() {
            "type" => {
                m.kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => return Err(format!("unsupported mount type {value:?}")),
                }
            }
            // an empty `from=` is no `from` (BuildKit's zero value)
            "from" => m.from = Some(value).filter(|v| !v.is_empty()),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                m.readonly = parse_bool(&value).ok_or_else(|| bad(&key))?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.readonly = !parse_bool(&value).ok_or_else(|| bad(&key))?;
                ro_auto = false;
            }
            "required" => {
                if !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        kind_name(m.kind)
                    ));
                }
                m.required = parse_bool(&value).ok_or_else(|| bad(&key))?;
            }
            "size" => {
                if m.kind != MountType::Tmpfs {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        kind_name(m.kind)
                    ));
                }
                m.size = Some(ram_in_bytes(&value).ok_or_else(|| bad(&key))?);
            }
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(format!("unsupported sharing value {value:?}")),
                })
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&value, 8)
                        .map_err(|_| format!("invalid value {value} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for gid"))?,
                )
            }
            "env" => m.env = Some(value),
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let file_info = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info {
        for (name, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(format!(
                    "{name} not allowed for {:?} type mounts",
                    kind_name(m.kind)
                ));
            }
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            kind_name(m.kind)
        ));
    }
    Ok(m)
}

fn kind_name(k: MountType) -> &'static str {
    match k {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Mount, String> {
        parse_mount(s, &mut |v| Ok(v.to_string()), false)
    }

    #[test]
    fn defaults_and_kinds() {
        let m = parse("type=cache,target=/root/.cache/go-build,sharing=locked,id=go").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert!(!m.readonly);
        assert_eq!(m.sharing, Some(Sharing::Locked));
        let m = parse("target=/src,from=builder,source=/out").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.readonly);
        let m = parse("type=bind,target=/src,rw").unwrap();
        assert!(!m.readonly);
        let m =
            parse("type=secret,id=npmrc,target=/root/.npmrc,required,mode=0400,uid=1000").unwrap();
        assert!(m.required);
        assert_eq!(m.mode, Some(0o400));
        assert_eq!(m.uid, Some(1000));
        let m = parse("type=tmpfs,target=/tmp,size=64m").unwrap();
        assert_eq!(m.size, Some(64 << 20));
    }

    #[test]
    fn rejects_bad_fields() {
        assert_eq!(
            parse("type=nfs").unwrap_err(),
            "unsupported mount type \"nfs\""
        );
        assert_eq!(
            parse("type=bind,uid=1").unwrap_err(),
            "uid not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            parse("type=cache,bogus=1").unwrap_err(),
            "unexpected key 'bogus' in 'bogus=1'"
        );
        assert_eq!(
            parse("type=secret").unwrap_err(),
            "invalid secret mount. one of source, target required"
        );
        assert_eq!(
            parse("type=bind,sharing=shared").unwrap_err(),
            "invalid cache sharing set for bind mount"
        );
        assert!(
            parse("from=$X")
                .unwrap_err()
                .contains("doesn't support variable expansion")
        );
        assert!(
            parse("target=\"a")
                .unwrap_err()
                .starts_with("failed to parse csv mounts")
        );
    }

    #[test]
    fn quoted_csv() {
        let m = parse("\"target=/a,b\",type=cache").unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
    }

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("100"), Some(100));
        assert_eq!(ram_in_bytes("1k"), Some(1024));
        assert_eq!(ram_in_bytes("1.5 GiB"), Some(1610612736));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("1q"), None);
    }
}
