//! The process environment of each RUN, shared between RUNs instead of copied.
//!
//! Each RUN sees the stage's environment at that point. Copying it into every RUN made the
//! resolved Dockerfile (and its JSON document) grow with the square of the file's length. A
//! [`RunEnv`] is instead a chain of deltas: each link holds the variables set since its parent
//! (a stage's first link holds its whole starting environment), and links are shared by every
//! RUN, and every later stage, that sees them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// One link of the chain: the variables set after its parent, in order.
#[derive(PartialEq, Eq)]
pub(crate) struct EnvLink {
    /// Unique within one [`crate::Resolved`]: the document's `run_envs` table is keyed by it.
    pub id: usize,
    pub parent: Option<Arc<EnvLink>>,
    pub vars: Vec<(String, String)>,
}

impl Drop for EnvLink {
    // unlink a long chain iteratively: the default recursive drop could exhaust the stack
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(link) = next {
            match Arc::try_unwrap(link) {
                Ok(mut owned) => next = owned.parent.take(),
                Err(_) => break,
            }
        }
    }
}

/// A RUN's process environment: cheap to clone, shared with the RUNs around it.
///
/// [`RunEnv::vars`] gives the variables as a list; JSON shows the link's `id` in the
/// document's `run_envs` table (see docs/dockerfile-json.md).
#[derive(Clone)]
pub struct RunEnv(pub(crate) Arc<EnvLink>);

impl RunEnv {
    /// The variables in order, as [`crate::ResolvedInstruction::env`] describes them: a
    /// variable set again keeps its first position and takes the later value.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut links = Vec::new();
        let mut link = Some(&*self.0);
        while let Some(l) = link {
            links.push(l);
            link = l.parent.as_deref();
        }
        let mut out: Vec<(String, String)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for l in links.iter().rev() {
            for (k, v) in &l.vars {
                match index.get(k.as_str()) {
                    Some(&i) => out[i].1 = v.clone(),
                    None => {
                        index.insert(k, out.len());
                        out.push((k.clone(), v.clone()));
                    }
                }
            }
        }
        out
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<String> {
        let mut link = Some(&*self.0);
        while let Some(l) = link {
            if let Some((_, v)) = l.vars.iter().rev().find(|(k, _)| k == name) {
                return Some(v.clone());
            }
            link = l.parent.as_deref();
        }
        None
    }

    /// The link's id in the document's `run_envs` table.
    pub fn id(&self) -> usize {
        self.0.id
    }
}

impl PartialEq for RunEnv {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.vars() == other.vars()
    }
}

impl Eq for RunEnv {}

impl fmt::Debug for RunEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RunEnv").field(&self.vars()).finish()
    }
}

impl Serialize for RunEnv {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0.id as u64)
    }
}

/// Builds a stage's chain while the resolver walks it.
#[derive(Clone, Default)]
pub(crate) struct EnvChain {
    head: Option<Arc<EnvLink>>,
    /// Set since `head`, not yet in a link.
    pending: Vec<(String, String)>,
}

impl EnvChain {
    /// A chain starting with `vars`.
    pub fn starting_with(vars: Vec<(String, String)>) -> Self {
        EnvChain {
            head: None,
            pending: vars,
        }
    }

    /// Record that `key` was set.
    pub fn set(&mut self, key: &str, value: &str) {
        self.pending.push((key.to_string(), value.to_string()));
    }

    /// The environment now, as a shared snapshot (a new link only when something changed),
    /// with `extra` appended for this one RUN.
    pub fn snapshot(&mut self, ids: &mut usize, extra: Vec<(String, String)>) -> RunEnv {
        let head = match &self.head {
            Some(head) if self.pending.is_empty() => head.clone(),
            _ => {
                let link = Arc::new(EnvLink {
                    id: next(ids),
                    parent: self.head.take(),
                    vars: std::mem::take(&mut self.pending),
                });
                self.head = Some(link.clone());
                link
            }
        };
        if extra.is_empty() {
            return RunEnv(head);
        }
        RunEnv(Arc::new(EnvLink {
            id: next(ids),
            parent: Some(head),
            vars: extra,
        }))
    }

    /// The chain with every pending variable in a link (for stages built on this one).
    pub fn sealed(mut self, ids: &mut usize) -> Self {
        if !self.pending.is_empty() {
            self.snapshot(ids, Vec::new());
        }
        self
    }
}

fn next(ids: &mut usize) -> usize {
    *ids += 1;
    *ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn links_fold_in_order_and_replace_in_place() {
        let mut ids = 0;
        let mut c = EnvChain::starting_with(vec![kv("PATH", "/bin"), kv("A", "1")]);
        let first = c.snapshot(&mut ids, Vec::new());
        c.set("B", "2");
        c.set("A", "3");
        let second = c.snapshot(&mut ids, vec![kv("HTTP_PROXY", "p")]);
        let third = c.snapshot(&mut ids, Vec::new());
        assert_eq!(first.vars(), vec![kv("PATH", "/bin"), kv("A", "1")]);
        assert_eq!(
            second.vars(),
            vec![
                kv("PATH", "/bin"),
                kv("A", "3"),
                kv("B", "2"),
                kv("HTTP_PROXY", "p")
            ]
        );
        assert_eq!(third.get("A").as_deref(), Some("3"));
        assert_eq!(third.get("HTTP_PROXY"), None);
        assert!(Arc::ptr_eq(&third.0, second.0.parent.as_ref().unwrap()));
    }

    #[test]
    fn a_long_chain_drops_without_recursion() {
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let mut ids = 0;
                let mut c = EnvChain::default();
                for i in 0..200_000 {
                    c.set("A", &i.to_string());
                    c.snapshot(&mut ids, Vec::new());
                }
                drop(c);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
