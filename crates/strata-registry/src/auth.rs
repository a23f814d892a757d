//! Who may pull and push: the auth file, credentials, tokens and the ownership rule.
//!
//! ```toml
//! pull = "open"                        # or "authenticated"
//! unknown_repositories = "deny"        # or "any-authenticated"
//! token_ttl_seconds = 300
//!
//! [users.alice]                        # htpasswd -nbB alice secret (bcrypt)
//! password = "$2y$05$..."
//! team = "operations"
//!
//! [users.ci-apps]                      # a token, stored as its sha256
//! token_sha256 = "9f86d08..."
//! team = "apps"
//!
//! registry = "registry.example.com"    # this registry's name (strata serve: the chain's)
//!
//! [owners]                             # repository → team; strata serve adds the chain's
//! "acme/corebuild" = "operations"
//! "docker.io/*" = "operations"         # a rule for every name under a prefix
//! ```
//!
//! Names map to owners through one normalisation ([`AuthConfig::owner_of`]): `localhost/` and
//! this registry's own name (`registry`) are dropped from the front, so
//! `registry.example.com/acme/corebuild` is `acme/corebuild`; then an exact `owners` entry wins,
//! else the longest `PREFIX/*` rule that matches. A push (or delete) to a repository with an owner
//! is allowed only to that team. A name with no owner is, when it is local (`acme/app`), per
//! `unknown_repositories`; when it names another registry (`docker.io/library/busybox`), refused:
//! only an explicit rule lets anyone write an external name, whatever `unknown_repositories` says. Credentials come as HTTP Basic (password or token as the password),
//! or as a bearer token issued by `GET /token` (HMAC-SHA256 signed, expiring), the flow Docker Hub
//! uses, so docker, podman and skopeo log in normally.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{RegistryError, Result};

/// Who may pull (the auth file's `pull`; not to be confused with `strata_remote::PullPolicy`,
/// when a build pulls).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullAccess {
    /// Anyone, without credentials.
    #[default]
    Open,
    /// Only users of the auth file.
    Authenticated,
}

/// Who may push to a repository no `owners` entry names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownRepositories {
    /// Nobody.
    #[default]
    Deny,
    /// Any user of the auth file.
    AnyAuthenticated,
}

/// One user of the auth file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// A bcrypt hash (`$2y$`, `$2b$`, as `htpasswd -B` writes).
    pub password: Option<String>,
    /// The sha256 (hex) of a token the user sends as its password or as a bearer token.
    pub token_sha256: Option<String>,
    /// The user's team.
    pub team: String,
}

/// The auth file (see the module docs).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Who may pull.
    #[serde(default)]
    pub pull: PullAccess,
    /// Who may push to repositories without an owner.
    #[serde(default)]
    pub unknown_repositories: UnknownRepositories,
    /// How long an issued bearer token is valid.
    #[serde(default = "default_ttl")]
    pub token_ttl_seconds: u64,
    /// Users by name.
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    /// Repository (or `PREFIX/*` rule) → owning team.
    #[serde(default)]
    pub owners: BTreeMap<String, String>,
    /// This registry's own host name: names under it are the same repositories as without it.
    #[serde(default)]
    pub registry: Option<String>,
}

fn default_ttl() -> u64 {
    300
}

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user name.
    pub user: String,
    /// The user's team.
    pub team: String,
}

/// What a request wants to do to a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read manifests, blobs, tags, referrers.
    Pull,
    /// Write blobs and manifests.
    Push,
    /// Delete manifests, tags, blobs.
    Delete,
}

impl Action {
    /// The scope action name (`pull`, `push`, `delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

/// The outcome of an access check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Credentials are needed (401).
    Unauthenticated,
    /// The user may not (403), and why.
    Deny(String),
}

impl AuthConfig {
    /// Read and check an auth file.
    pub fn load(path: &Path) -> Result<AuthConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        AuthConfig::parse(path, &text)
    }

    /// Parse and check the text of an auth file; errors name `path`.
    pub fn parse(path: &Path, text: &str) -> Result<AuthConfig> {
        let invalid = |reason: String| RegistryError::AuthConfig {
            path: path.to_path_buf(),
            reason,
        };
        let config: AuthConfig = toml::from_str(text)
            .map_err(|e| invalid(e.to_string().lines().next().unwrap_or_default().to_string()))?;
        for (name, user) in &config.users {
            match (&user.password, &user.token_sha256) {
                (None, None) => {
                    return Err(invalid(format!(
                        "users.{name}: needs `password` (bcrypt) or `token_sha256`"
                    )));
                }
                (Some(hash), _) if !hash.starts_with("$2") => {
                    return Err(invalid(format!(
                        "users.{name}.password: not a bcrypt hash (make one with `htpasswd -nbB {name} PASSWORD`)"
                    )));
                }
                (_, Some(hex))
                    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    return Err(invalid(format!(
                        "users.{name}.token_sha256: expected 64 hex characters"
                    )));
                }
                _ => {}
            }
            if name.contains(':') {
                return Err(invalid(format!(
                    "users.{name}: a user name cannot hold ':'"
                )));
            }
        }
        if config.token_ttl_seconds == 0 {
            return Err(invalid(
                "token_ttl_seconds: must be greater than zero".into(),
            ));
        }
        Ok(config)
    }

    /// Check a user name and password (or token); bcrypt takes tens of milliseconds, by design.
    pub fn check_password(&self, user: &str, password: &str) -> Option<Identity> {
        let entry = self.users.get(user)?;
        let ok = entry
            .token_sha256
            .as_ref()
            .is_some_and(|want| constant_eq(&hex::encode(Sha256::digest(password)), want))
            || entry
                .password
                .as_ref()
                .is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false));
        ok.then(|| Identity {
            user: user.to_string(),
            team: entry.team.clone(),
        })
    }

    /// A user whose static token this is.
    pub fn check_static_token(&self, token: &str) -> Option<Identity> {
        let hash = hex::encode(Sha256::digest(token));
        self.users.iter().find_map(|(name, user)| {
            user.token_sha256
                .as_ref()
                .is_some_and(|want| constant_eq(&hash, want))
                .then(|| Identity {
                    user: name.clone(),
                    team: user.team.clone(),
                })
        })
    }

    /// May `who` (None: anonymous) do `action` to `repository`?
    pub fn decide(&self, who: Option<&Identity>, repository: &str, action: Action) -> Decision {
        match action {
            Action::Pull => match (self.pull, who) {
                (PullAccess::Open, _) | (PullAccess::Authenticated, Some(_)) => Decision::Allow,
                (PullAccess::Authenticated, None) => Decision::Unauthenticated,
            },
            Action::Push | Action::Delete => {
                let Some(who) = who else {
                    return Decision::Unauthenticated;
                };
                match self.owner_of(repository) {
                    Some(owner) if owner == who.team => Decision::Allow,
                    Some(owner) => Decision::Deny(format!(
                        "{repository} is owned by team {owner}; user {} is in team {}",
                        who.user, who.team
                    )),
                    None if is_external(&self.normalise(repository)) => Decision::Deny(format!(
                        "{repository} names another registry and no owner rule covers it \
                         (add e.g. \"{}/*\" = \"TEAM\" to [owners])",
                        self.normalise(repository)
                            .split('/')
                            .next()
                            .unwrap_or_default()
                    )),
                    None => match self.unknown_repositories {
                        UnknownRepositories::AnyAuthenticated => Decision::Allow,
                        UnknownRepositories::Deny => Decision::Deny(format!(
                            "{repository} has no owner and unknown repositories are denied"
                        )),
                    },
                }
            }
        }
    }
}

impl AuthConfig {
    /// The one normal form of a repository name: the reference grammar's (`docker.io/x` is
    /// `docker.io/library/x`, `index.docker.io` is `docker.io`, as the server names them), then
    /// `localhost/` and this registry's own name dropped from the front
    /// (`registry.example.com/acme/x` → `acme/x`).
    pub fn normalise(&self, repository: &str) -> String {
        let canonical = strata_reference::parse(repository)
            .ok()
            .filter(|r| r.tag().is_none() && r.digest().is_none())
            .map(|r| r.name());
        self.strip_own(canonical.as_deref().unwrap_or(repository))
    }

    /// The normal form of a `PREFIX/*` rule's prefix: not a repository (no `library/` is added),
    /// but `index.docker.io` is `docker.io`, and the local prefixes are dropped.
    fn normalise_prefix(&self, prefix: &str) -> String {
        let legacy = strata_reference::LEGACY_DOCKER_HUB;
        let prefix = match prefix.strip_prefix(legacy) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                format!("{}{rest}", strata_reference::DOCKER_HUB)
            }
            _ => prefix.to_string(),
        };
        self.strip_own(&prefix)
    }

    /// `name` without `localhost/` and this registry's own name at its front.
    fn strip_own(&self, name: &str) -> String {
        let mut name = name;
        if let Some(rest) = name.strip_prefix("localhost/") {
            name = rest;
        }
        if let Some(own) = self.registry.as_deref().filter(|r| !r.is_empty())
            && let Some(rest) = name.strip_prefix(own).and_then(|r| r.strip_prefix('/'))
        {
            name = rest;
        }
        name.to_string()
    }

    /// The team owning `repository`: its exact `owners` entry (after [`AuthConfig::normalise`]),
    /// else the longest matching `PREFIX/*` rule.
    pub fn owner_of(&self, repository: &str) -> Option<String> {
        let name = self.normalise(repository);
        if let Some(owner) = self.owners.get(&name).or_else(|| {
            self.owners
                .iter()
                .find(|(rule, _)| !rule.ends_with("/*") && self.normalise(rule) == name)
                .map(|(_, owner)| owner)
        }) {
            return Some(owner.clone());
        }
        self.owners
            .iter()
            .filter_map(|(rule, owner)| {
                let prefix = rule.strip_suffix("/*")?;
                let prefix = self.normalise_prefix(prefix);
                name.strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
                    .then_some((prefix.len(), owner))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, owner)| owner.clone())
    }
}

/// Does a (normalised) name start with another registry's host (`docker.io/...`, `host:5000/...`),
/// by the reference grammar's rule?
fn is_external(name: &str) -> bool {
    strata_reference::split_domain(name).0.is_some()
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y.to_ascii_lowercase()))
            == 0
}

/// What a bearer token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    /// The user, or None for an anonymous token.
    sub: Option<Identity>,
    /// Expiry, seconds since the epoch.
    exp: u64,
    /// Issued at.
    iat: u64,
}

/// Issues and checks bearer tokens: `base64url(claims).base64url(hmac-sha256(key, claims))`.
#[derive(Clone)]
pub struct TokenIssuer {
    key: [u8; 32],
    ttl: u64,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("ttl", &self.ttl)
            .finish()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

type HmacSha256 = hmac::Hmac<Sha256>;

impl TokenIssuer {
    /// An issuer with a fresh random key (tokens die with the server) and a lifetime.
    pub fn new(ttl_seconds: u64) -> Result<TokenIssuer> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| RegistryError::Invalid(format!("no randomness for token keys: {e}")))?;
        Ok(TokenIssuer {
            key,
            ttl: ttl_seconds,
        })
    }

    /// The token lifetime in seconds.
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    fn mac(&self, payload: &str) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// A signed token for `who` (None: anonymous).
    pub fn issue(&self, who: Option<&Identity>) -> String {
        let iat = now();
        let claims = Claims {
            sub: who.cloned(),
            exp: iat + self.ttl,
            iat,
        };
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let sig = URL_SAFE_NO_PAD.encode(self.mac(&payload));
        format!("{payload}.{sig}")
    }

    /// Check a token's signature and expiry: `Ok(Some(identity))`, `Ok(None)` for a valid
    /// anonymous token, `Err(reason)` otherwise.
    pub fn verify(&self, token: &str) -> std::result::Result<Option<Identity>, &'static str> {
        let (payload, sig) = token.split_once('.').ok_or("malformed token")?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| "malformed token signature")?;
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        mac.verify_slice(&sig).map_err(|_| "bad token signature")?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or("malformed token claims")?;
        if claims.exp <= now() {
            return Err("token expired");
        }
        Ok(claims.sub)
    }
}

/// Split an `Authorization: Basic ...` value into user and password.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

pub use strata_remote::auth::basic_header;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_rules_name_repositories_as_the_server_does() {
        let text = r#"
[users.olga]
token_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
team = "operations"
[owners]
"docker.io/busybox" = "operations"
"index.docker.io/alpine" = "operations"
"#;
        let auth = AuthConfig::parse(Path::new("auth.toml"), text).unwrap();
        let olga = Identity {
            user: "olga".into(),
            team: "operations".into(),
        };
        // The server names these repositories docker.io/library/... (reference normalisation).
        for served in ["docker.io/library/busybox", "docker.io/library/alpine"] {
            assert_eq!(
                auth.decide(Some(&olga), served, Action::Push),
                Decision::Allow,
                "{served}"
            );
        }
        let mallory = Identity {
            user: "mallory".into(),
            team: "apps".into(),
        };
        assert!(matches!(
            auth.decide(Some(&mallory), "docker.io/library/busybox", Action::Push),
            Decision::Deny(_)
        ));
    }

    fn config() -> AuthConfig {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let token = hex::encode(Sha256::digest("tok-123"));
        let text = format!(
            r#"
pull = "authenticated"
[users.alice]
password = "{hash}"
team = "operations"
[users.ci]
token_sha256 = "{token}"
team = "apps"
[owners]
"acme/corebuild" = "operations"
"acme/wordpress" = "apps"
"#
        );
        AuthConfig::parse(Path::new("auth.toml"), &text).unwrap()
    }

    #[test]
    fn passwords_and_tokens() {
        let c = config();
        let alice = c.check_password("alice", "s3cret").unwrap();
        assert_eq!(alice.team, "operations");
        assert!(c.check_password("alice", "wrong").is_none());
        assert!(c.check_password("bob", "s3cret").is_none());
        assert_eq!(c.check_password("ci", "tok-123").unwrap().team, "apps");
        assert_eq!(c.check_static_token("tok-123").unwrap().user, "ci");
        assert!(c.check_static_token("tok-124").is_none());
    }

    #[test]
    fn ownership_rule() {
        let c = config();
        let alice = c.check_password("alice", "s3cret").unwrap();
        let ci = c.check_password("ci", "tok-123").unwrap();
        assert_eq!(
            c.decide(Some(&alice), "acme/corebuild", Action::Push),
            Decision::Allow
        );
        assert!(matches!(
            c.decide(Some(&ci), "acme/corebuild", Action::Push),
            Decision::Deny(reason) if reason.contains("owned by team operations")
        ));
        assert_eq!(
            c.decide(None, "acme/corebuild", Action::Push),
            Decision::Unauthenticated
        );
        assert_eq!(
            c.decide(None, "acme/corebuild", Action::Pull),
            Decision::Unauthenticated
        );
        assert_eq!(
            c.decide(Some(&ci), "acme/corebuild", Action::Pull),
            Decision::Allow
        );
        assert!(matches!(
            c.decide(Some(&ci), "other/thing", Action::Delete),
            Decision::Deny(_)
        ));
        let open = AuthConfig {
            unknown_repositories: UnknownRepositories::AnyAuthenticated,
            ..c
        };
        assert_eq!(
            open.decide(Some(&ci), "other/thing", Action::Push),
            Decision::Allow
        );
    }

    #[test]
    fn external_and_registry_prefixed_names_map_to_owners() {
        // Issue 14: with any-authenticated, external and registry-prefixed names were free for all.
        let mut c = AuthConfig {
            unknown_repositories: UnknownRepositories::AnyAuthenticated,
            registry: Some("registry.example.com".into()),
            ..config()
        };
        let alice = c.check_password("alice", "s3cret").unwrap();
        let ci = c.check_password("ci", "tok-123").unwrap();
        for name in [
            "registry.example.com/acme/corebuild",
            "localhost/acme/corebuild",
        ] {
            assert_eq!(c.owner_of(name).as_deref(), Some("operations"), "{name}");
            assert!(matches!(
                c.decide(Some(&ci), name, Action::Push),
                Decision::Deny(reason) if reason.contains("owned by team operations")
            ));
            assert_eq!(c.decide(Some(&alice), name, Action::Push), Decision::Allow);
        }
        for name in ["docker.io/library/busybox", "quay.io/x/y", "host:5000/a"] {
            assert!(
                matches!(
                    c.decide(Some(&ci), name, Action::Push),
                    Decision::Deny(reason) if reason.contains("no owner rule")
                ),
                "{name}"
            );
        }
        // Local unowned names still follow unknown_repositories.
        assert_eq!(
            c.decide(Some(&ci), "other/thing", Action::Push),
            Decision::Allow
        );
        // An explicit rule opens an external prefix to its team only; the longest rule wins.
        c.owners.insert("docker.io/*".into(), "operations".into());
        c.owners.insert("docker.io/apps/*".into(), "apps".into());
        assert_eq!(
            c.decide(Some(&alice), "docker.io/library/busybox", Action::Push),
            Decision::Allow
        );
        assert!(matches!(
            c.decide(Some(&ci), "docker.io/library/busybox", Action::Push),
            Decision::Deny(_)
        ));
        assert_eq!(
            c.decide(Some(&ci), "docker.io/apps/tool", Action::Push),
            Decision::Allow
        );
        // A rule does not match a sibling that merely shares the prefix's text.
        assert_eq!(c.owner_of("docker.iox/a"), None);
    }

    #[test]
    fn bad_files_are_named() {
        let err = AuthConfig::parse(
            Path::new("a.toml"),
            "[users.x]\npassword = \"plain\"\nteam = \"t\"\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("a.toml: users.x.password"),
            "{err}"
        );
        let err = AuthConfig::parse(Path::new("a.toml"), "pull = \"sometimes\"\n").unwrap_err();
        assert!(err.to_string().starts_with("a.toml: "), "{err}");
        let err = AuthConfig::parse(Path::new("a.toml"), "[users.x]\nteam = \"t\"\n").unwrap_err();
        assert!(err.to_string().contains("needs `password`"), "{err}");
    }

    #[test]
    fn tokens_are_signed_and_expire() {
        let issuer = TokenIssuer::new(60).unwrap();
        let who = Identity {
            user: "alice".into(),
            team: "operations".into(),
        };
        let token = issuer.issue(Some(&who));
        assert_eq!(issuer.verify(&token), Ok(Some(who.clone())));
        assert_eq!(issuer.verify(&issuer.issue(None)), Ok(None));
        // Another server's key does not verify.
        let other = TokenIssuer::new(60).unwrap();
        assert_eq!(other.verify(&token), Err("bad token signature"));
        // A forged payload with the old signature fails.
        let (_, sig) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                sub: Some(Identity {
                    user: "mallory".into(),
                    team: "operations".into(),
                }),
                exp: now() + 100,
                iat: now(),
            })
            .unwrap(),
        );
        assert!(issuer.verify(&format!("{forged}.{sig}")).is_err());
        let expired = TokenIssuer {
            ttl: 0,
            ..issuer.clone()
        };
        assert_eq!(
            issuer.verify(&expired.issue(Some(&who))),
            Err("token expired")
        );
    }

    #[test]
    fn basic_round_trip() {
        let h = basic_header("alice", "pa:ss");
        assert_eq!(
            parse_basic(&h),
            Some(("alice".to_string(), "pa:ss".to_string()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
    }
}
