//! The instructions that only change the image configuration (no layer): ENV, LABEL, EXPOSE,
//! VOLUME, CMD, ENTRYPOINT, SHELL, USER, STOPSIGNAL, HEALTHCHECK, MAINTAINER, ONBUILD.

use strata_dockerfile::{Command, CommandLine};

use strata_oci::image_config::{Empty, HealthConfig, ImageConfig};

/// The default shell of a Linux image.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The stage's shell: SHELL if set, else `/bin/sh -c`.
pub fn shell_of(config: &ImageConfig) -> Vec<String> {
    config
        .config
        .shell
        .clone()
        .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
}

/// A command line as argv: exec form as is, shell form through the stage's shell.
pub fn argv(config: &ImageConfig, line: &CommandLine) -> Vec<String> {
    match line {
        CommandLine::Exec(argv) => argv.clone(),
        CommandLine::Shell(text) => {
            let mut argv = shell_of(config);
            argv.push(text.clone());
            argv
        }
    }
}

/// Per-stage facts that change how later instructions apply.
#[derive(Debug, Clone, Default)]
pub struct StageFlags {
    /// CMD was set in this stage (an ENTRYPOINT then keeps it; otherwise it resets the inherited
    /// CMD, Docker's rule).
    pub cmd_set: bool,
}

/// Apply a metadata instruction (already resolved: EXPOSE ports are `port/proto`, ranges
/// expanded) to `config`. Returns `false` when `command` is not a metadata instruction (RUN,
/// COPY, ADD, WORKDIR, ARG, FROM are the builder's).
pub fn apply(config: &mut ImageConfig, flags: &mut StageFlags, command: &Command) -> bool {
    match command {
        Command::Env(env) => {
            for kv in &env.vars {
                config.env_set(&kv.key, &kv.value);
            }
        }
        Command::Label(label) => {
            for kv in &label.labels {
                config
                    .config
                    .labels
                    .insert(kv.key.clone(), kv.value.clone());
            }
        }
        Command::Expose(expose) => {
            for port in &expose.ports {
                config.config.exposed_ports.insert(port.clone(), Empty {});
            }
        }
        Command::Volume(volume) => {
            for path in &volume.paths {
                config.config.volumes.insert(path.clone(), Empty {});
            }
        }
        Command::Cmd(cmd) => {
            config.config.cmd = Some(argv(config, &cmd.command));
            flags.cmd_set = true;
        }
        Command::Entrypoint(entrypoint) => {
            let argv = argv(config, &entrypoint.command);
            config.config.entrypoint = if argv.is_empty() { None } else { Some(argv) };
            if !flags.cmd_set {
                config.config.cmd = None;
            }
        }
        Command::Shell(shell) => config.config.shell = Some(shell.shell.clone()),
        Command::User(user) => config.config.user = Some(user.user.clone()),
        Command::StopSignal(signal) => config.config.stop_signal = Some(signal.signal.clone()),
        Command::Maintainer(m) => config.author = Some(m.name.clone()),
        Command::Onbuild(onbuild) => config
            .config
            .on_build
            .get_or_insert_with(Vec::new)
            .push(onbuild.expression.clone()),
        Command::Healthcheck(health) => {
            config.config.healthcheck = Some(match &health.check {
                None => HealthConfig {
                    test: vec!["NONE".to_string()],
                    ..HealthConfig::default()
                },
                Some(check) => HealthConfig {
                    test: match &check.command {
                        CommandLine::Exec(argv) => std::iter::once("CMD".to_string())
                            .chain(argv.iter().cloned())
                            .collect(),
                        CommandLine::Shell(text) => vec!["CMD-SHELL".to_string(), text.clone()],
                    },
                    interval: ns(check.interval_ns),
                    timeout: ns(check.timeout_ns),
                    start_period: ns(check.start_period_ns),
                    start_interval: ns(check.start_interval_ns),
                    retries: i64::from(check.retries.unwrap_or(0)),
                },
            })
        }
        _ => return false,
    }
    true
}

fn ns(v: Option<u64>) -> i64 {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX)).unwrap_or(0)
}
