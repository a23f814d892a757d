//! The sandbox flags `build`, `build-image` and `run` share: `--network` and `--pids-limit`.

use strata_sandbox::Network;

/// How a sandboxed command is confined.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// The network of RUN steps that do not choose one (and of `strata run`): `default` (its own
    /// network namespace with outbound access through slirp4netns; the host's loopback and
    /// ports are out of reach), `host` (the host's network, an explicit opt-in as in `docker
    /// build --network host`) or `none`.
    #[arg(long, value_parser = ["default", "host", "none"], default_value = "default")]
    pub network: String,
    /// The most processes a RUN step (or `strata run`) may have at once, through a pids cgroup
    /// where the host allows one (as root); 0 or -1: unlimited (as podman). A step that reaches
    /// it fails.
    #[arg(long, value_name = "N", default_value_t = i64::from(strata_sandbox::DEFAULT_PIDS_LIMIT), allow_negative_numbers = true)]
    pub pids_limit: i64,
}

impl SandboxArgs {
    /// The network chosen.
    pub fn network(&self) -> Network {
        Network::parse(&self.network).unwrap_or_default()
    }

    /// The pids limit: None for unlimited.
    pub fn pids_limit(&self) -> Option<u32> {
        pids_limit(self.pids_limit)
    }
}

/// `--pids-limit N` as podman reads it: 0 or less is unlimited; more than fits is unlimited too.
fn pids_limit(n: i64) -> Option<u32> {
    if n <= 0 { None } else { u32::try_from(n).ok() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_minus_one_are_unlimited() {
        assert_eq!(pids_limit(0), None);
        assert_eq!(pids_limit(-1), None);
        assert_eq!(pids_limit(64), Some(64));
    }
}
