//! Fault injection for crash tests: kill the process at the Nth durable step.
//!
//! Every step the store's crash safety rests on (an fsync, a rename into place, an unlink) calls
//! [`point`] first. Unless the hidden environment variable `STRATA_FAULT_AT` is set, that is a
//! cheap no-op. With `STRATA_FAULT_AT=OP:N` (`OP` is `fsync`, `rename`, `unlink` or `any`) the
//! process sends itself `SIGKILL` just before its Nth such step, exactly as a crash or `kill -9`
//! would stop it there: no destructor, no flush. With `STRATA_FAULT_AT=count:FILE` every step
//! appends its name as a line to `FILE`, so a test learns how many points a command passes.
//!
//! The counter is per process and counts steps of every thread. Nothing in strata sets the
//! variable: it is for tests that prove a crash anywhere leaves a store fsck finds clean.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable read once per process.
pub const ENV: &str = "STRATA_FAULT_AT";

/// A kind of durable step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `fsync` of a file or directory.
    Fsync,
    /// A rename that makes a file visible under its final name.
    Rename,
    /// Removing a file or directory.
    Unlink,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Fsync => "fsync",
            Op::Rename => "rename",
            Op::Unlink => "unlink",
        }
    }
}

#[derive(Debug)]
enum Plan {
    Off,
    Kill { op: Option<Op>, at: u64 },
    Count(PathBuf),
}

static PLAN: OnceLock<Plan> = OnceLock::new();
static SEEN: AtomicU64 = AtomicU64::new(0);

fn parse(value: &str) -> Option<Plan> {
    let (op, arg) = value.split_once(':')?;
    let op = match op {
        "count" => return Some(Plan::Count(PathBuf::from(arg))),
        "any" => None,
        "fsync" => Some(Op::Fsync),
        "rename" => Some(Op::Rename),
        "unlink" => Some(Op::Unlink),
        _ => return None,
    };
    let at = arg.parse().ok().filter(|n| *n > 0)?;
    Some(Plan::Kill { op, at })
}

fn plan() -> &'static Plan {
    PLAN.get_or_init(|| match std::env::var(ENV) {
        Err(_) => Plan::Off,
        Ok(value) => parse(&value).unwrap_or_else(|| {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("strata: ignoring {ENV}={value:?}: expected OP:N or count:FILE");
            }
            Plan::Off
        }),
    })
}

/// A durable step of kind `op` is about to happen: count it, and die here when the plan says so.
pub fn point(op: Op) {
    match plan() {
        Plan::Off => {}
        Plan::Kill { op: wanted, at } => {
            if wanted.is_none_or(|w| w == op) && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == *at {
                let _ = rustix::process::kill_process(
                    rustix::process::getpid(),
                    rustix::process::Signal::KILL,
                );
            }
        }
        Plan::Count(path) => {
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = file.write_all(format!("{}\n", op.name()).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn plans_parse() {
        assert!(matches!(
            parse("any:3"),
            Some(Plan::Kill { op: None, at: 3 })
        ));
        assert!(matches!(
            parse("rename:1"),
            Some(Plan::Kill {
                op: Some(Op::Rename),
                at: 1
            })
        ));
        assert!(matches!(parse("count:/x/y"), Some(Plan::Count(p)) if p == Path::new("/x/y")));
        for bad in ["any", "any:0", "any:x", "write:1", ""] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
