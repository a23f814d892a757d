//! Who acts on a deployment. `approve`, `hold`, `release` and `rollback` are the owner team's
//! (`owner` in `deploy.toml`), and a team is proven the way the chain proves it everywhere else: by
//! holding a private key (`STRATA_KEY_<TEAM>`) whose public half the chain file trusts for that team
//! (`[teams.TEAM] keys` in `strata.toml`). What the actor did goes on record with its key's id.

use strata_attest::TrustConfig;
use strata_attest::keys::{signing_key_for_team, team_key_env};

use crate::error::DeployError;

/// A team proven by its signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    team: String,
    key: String,
    user: String,
}

impl Actor {
    /// Prove that the caller acts as `team`: its private key, read through `env` (a PEM or a key
    /// file in `STRATA_KEY_<TEAM>`, as `strata build` signs), must be one of the keys `trust` holds
    /// for `team`. Errors name the team and what is missing.
    pub fn prove(
        team: &str,
        trust: &TrustConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Actor, DeployError> {
        let key = signing_key_for_team(team, None, env)
            .map_err(|source| DeployError::TeamKey {
                team: team.to_string(),
                source: Box::new(source),
            })?
            .ok_or_else(|| DeployError::Identity {
                team: team.to_string(),
                message: format!("no signing key: set {}", team_key_env(team)),
            })?;
        if !trust.keys_of(team).contains(key.public_key()) {
            return Err(DeployError::Identity {
                team: team.to_string(),
                message: format!(
                    "key {} is not one the chain file trusts for {team} ([teams.{team}] keys)",
                    key.id().short()
                ),
            });
        }
        Ok(Actor {
            team: team.to_string(),
            key: key.id().short().to_string(),
            user: strata_events::current_user(),
        })
    }

    /// The team.
    pub fn team(&self) -> &str {
        &self.team
    }

    /// Who acted, for the record: `development (key 1a2b3c4d, user alice)`.
    pub fn describe(&self) -> String {
        format!("{} (key {}, user {})", self.team, self.key, self.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_attest::PrivateKey;
    use strata_attest::keys::KeyKind;

    fn pem(key: &PrivateKey) -> String {
        key.to_pem(None).unwrap().to_string()
    }

    #[test]
    fn only_a_key_the_chain_trusts_for_the_team_proves_it() {
        let dev = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let ops = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let mut trust = TrustConfig::new();
        trust.add_key("development", dev.public_key().clone());
        trust.add_key("operations", ops.public_key().clone());
        let env = |key: &PrivateKey| {
            let pem = pem(key);
            move |var: &str| (var == "STRATA_KEY_DEVELOPMENT").then(|| pem.clone())
        };
        let actor = Actor::prove("development", &trust, env(&dev)).unwrap();
        assert_eq!(actor.team(), "development");
        assert!(actor.describe().contains(dev.id().short()));
        // operations' key in development's variable does not make its holder development
        let err = Actor::prove("development", &trust, env(&ops)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot act as team development: key "),
            "{err}"
        );
        let err = Actor::prove("development", &trust, |_: &str| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot act as team development: no signing key: set STRATA_KEY_DEVELOPMENT"
        );
    }
}
