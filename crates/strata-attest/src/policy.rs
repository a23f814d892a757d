//! What `strata verify --policy FILE` demands beyond a clean chain of custody.
//!
//! ```toml
//! # every key is optional
//! allowed-base-digests = ["sha256:4f2c..."]   # the bottom tier: its manifest or imported source
//! max-age = "30d"                             # every tier built at most this long ago (s, m, h, d, w)
//! [tier-teams]                                # the team that must own (and sign) each tier
//! base = "operations"
//! middleware = "middleware"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Duration;
use serde::{Deserialize, Serialize};
use strata_oci::Digest;

/// A verification policy. The default demands nothing beyond the chain of custody itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// When not empty, the bottom tier's manifest digest, or the digest of the source it was
    /// imported from, must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_base_digests: Vec<Digest>,
    /// The team that must own each tier, by tier label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tier_teams: BTreeMap<String, String>,
    /// The longest time since any tier was built.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "age_text")]
    pub max_age: Option<Duration>,
}

/// A policy file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct PolicyError {
    /// The policy file.
    pub path: PathBuf,
    /// What is wrong (the TOML parser's message names the line).
    pub reason: String,
}

impl Policy {
    /// Parse a policy file's text.
    pub fn from_toml(path: &Path, text: &str) -> Result<Policy, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError {
            path: path.to_path_buf(),
            reason: e.to_string().trim_end().replace('\n', " "),
        })
    }

    /// Read a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Policy::from_toml(path, &text)
    }
}

/// An age that [`parse_age`] cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("age {text:?}{problem}")]
pub struct AgeError {
    /// The text given.
    pub text: String,
    /// What is wrong with it, as the end of the message.
    problem: String,
}

/// Parse `30d`, `12h`, `90m`, `45s`, `2w` (a whole number and one unit).
pub fn parse_age(text: &str) -> Result<Duration, AgeError> {
    let text = text.trim();
    let bad = |problem: String| AgeError {
        text: text.to_string(),
        problem,
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| bad(" needs a unit: s, m, h, d or w".into()))?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| bad(" must start with a whole number".into()))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(bad(format!(": unknown unit {unit:?} (s, m, h, d or w)")));
        }
    };
    n.checked_mul(seconds)
        .and_then(Duration::try_seconds)
        .ok_or_else(|| bad(" is too large".into()))
}

/// Write a duration the way [`parse_age`] reads it.
pub fn format_age(age: &Duration) -> String {
    let s = age.num_seconds();
    for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s != 0 && s % n == 0 {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

mod age_text {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(age: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match age {
            Some(age) => s.serialize_str(&super::format_age(age)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_age(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_policy_file() {
        let d = Digest::of(b"base");
        let text = format!(
            "allowed-base-digests = [\"{d}\"]\nmax-age = \"30d\"\n[tier-teams]\nbase = \"operations\"\n"
        );
        let p = Policy::from_toml(Path::new("policy.toml"), &text).unwrap();
        assert_eq!(p.allowed_base_digests, vec![d]);
        assert_eq!(p.max_age, Some(Duration::days(30)));
        assert_eq!(p.tier_teams["base"], "operations");
        assert_eq!(
            Policy::from_toml(Path::new("p"), "").unwrap(),
            Policy::default()
        );
    }

    #[test]
    fn refuses_bad_policies_naming_the_file() {
        for bad in [
            "max-age = \"30\"",
            "max-age = \"3y\"",
            "allowed-base-digests = [\"sha256:abc\"]",
            "unknown = 1",
        ] {
            let err = Policy::from_toml(Path::new("policy.toml"), bad).unwrap_err();
            assert!(err.to_string().starts_with("policy.toml: "), "{bad}: {err}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
    }

    #[test]
    fn ages_round_trip() {
        for (text, secs) in [
            ("45s", 45),
            ("90m", 5400),
            ("12h", 43_200),
            ("2w", 1_209_600),
        ] {
            let age = parse_age(text).unwrap();
            assert_eq!(age.num_seconds(), secs);
            assert_eq!(parse_age(&format_age(&age)).unwrap(), age);
        }
        assert_eq!(format_age(&Duration::hours(24)), "1d");
        assert!(parse_age("99999999999999999w").is_err());
    }
}
