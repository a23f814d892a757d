//! Build triggers (`strata watch` in a chain project): what to do next about the chain's
//! upstreams and git contexts, decided from what is, never from what happened.
//!
//! [`decide`] is pure: given the lock on disk, the lock the registries and the git repositories
//! resolve to now (a moved branch or tag is a move like a moved upstream tag), each
//! image's status and the digests in the store and on the chain's registry, it returns the one
//! next [`Action`]. The caller does it, observes again and asks again, until [`Action::Idle`] or
//! [`Action::Wait`]. So a watch restarted at any point finds where it stopped (the lock already
//! moved, the images already built or pushed) and does only the rest; a second upstream move
//! during a cascade is seen by the next observation, one cascade later.
//!
//! A move is followed only when the new digest is signed by its owner: an upstream under an
//! `[owners]` rule of the chain must carry signed provenance verified with that team's key (the
//! lock entry's `built-by`), or the watch refuses it ([`refusals`]) and the lock stays: someone
//! who can push to the upstream's registry but does not hold its team's key cannot make this
//! chain rebuild (and sign) on their image.

use std::collections::BTreeMap;
use std::fmt;

use strata_chain::{GitMove, Lock, Move};

/// One chain image the upstreams or git contexts reach (it, or an image it is built on, names
/// one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// The chain image's name (`httpd-php`).
    pub name: String,
    /// Whether its stored image was built from its current inputs (at the lock on disk).
    pub state: ImageState,
    /// Its `:latest` digest in the store (None: never built).
    pub stored: Option<String>,
    /// Its tag's digest on the chain's registry (None: not there).
    pub pushed: Option<String>,
}

/// An image's build state, from the store's build keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageState {
    /// Built from its current inputs.
    Current,
    /// Its inputs moved (or it was never built): a cascade would rebuild it.
    Stale,
    /// Its last build failed and its inputs still differ from the stored image's.
    Failed,
}

/// What [`decide`] looks at.
#[derive(Debug, Clone)]
pub struct Observation {
    /// `strata.lock` as on disk.
    pub lock: Lock,
    /// The lock as the registries resolve the upstreams now (`strata update`'s result), with
    /// the `[[git]]` entries as the repositories resolve the contexts' revs now (`git
    /// ls-remote`).
    pub resolved: Lock,
    /// The images the upstreams and git contexts reach, in build order.
    pub images: Vec<Watched>,
    /// Whether the chain has a registry to push to (its `registry` setting).
    pub registry: bool,
    /// The lock (its [`lock_id`]) the last cascade failed on, if it failed.
    pub failed_on: Option<String>,
    /// The team each upstream under an `[owners]` rule must be signed by (reference → team).
    pub owners: BTreeMap<String, String>,
}

/// An upstream move not followed: the new digest is not signed by the upstream's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The upstream.
    pub reference: String,
    /// The digest it moved to.
    pub digest: String,
    /// The team that must have signed it.
    pub owner: String,
    /// The team whose trusted key signed it, if any.
    pub signed_by: Option<String>,
}

impl fmt::Display for Refusal {
    /// `HOST/ops/corebuild:latest moved to sha256:… but it is not signed by its owner operations
    /// (no signed provenance verifies with a key of this chain)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} moved to {} but it is not signed by its owner {} ",
            self.reference, self.digest, self.owner
        )?;
        match &self.signed_by {
            Some(team) => write!(f, "(signed by team {team}'s key)"),
            None => write!(
                f,
                "(no signed provenance verifies with a key this chain trusts)"
            ),
        }
    }
}

/// The next thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Upstreams or git contexts moved: write this lock (then observe again).
    MoveLock {
        /// The new lock.
        lock: Lock,
        /// The upstreams that moved.
        moves: Vec<Move>,
        /// The git contexts whose rev moved to another commit.
        git_moves: Vec<GitMove>,
    },
    /// Rebuild these images (and what they need) at the lock on disk.
    Cascade {
        /// The stale images, in build order.
        images: Vec<String>,
    },
    /// Push these images (name, store digest) to the chain's registry.
    Push {
        /// The images whose registry tag is not their store digest, in build order.
        images: Vec<(String, String)>,
    },
    /// Nothing will be done until something changes: the last cascade on this lock failed.
    Wait {
        /// The images left stale by that failure.
        images: Vec<String>,
    },
    /// Everything is where the lock says.
    Idle,
}

/// An identity of a lock's content, to remember which lock a failed cascade ran on.
pub fn lock_id(lock: &Lock) -> String {
    strata_oci::Digest::of(lock.to_toml().as_bytes()).to_string()
}

/// The next action for `o`: move the lock when an upstream or a git context moved; else rebuild
/// the stale images
/// (not again on a lock a cascade already failed on: that waits for the next move); else push
/// what the registry does not have yet, of the images built at the current lock (after a
/// failure, the ones it did not stop); else wait (a failure) or idle.
pub fn decide(o: &Observation) -> Action {
    let (accepted, _) = vet(o);
    let moves = accepted.diff(&o.lock);
    let git_moves = accepted.git_diff(&o.lock);
    if !moves.is_empty() || !git_moves.is_empty() {
        return Action::MoveLock {
            lock: accepted,
            moves,
            git_moves,
        };
    }
    let stale: Vec<String> = o
        .images
        .iter()
        .filter(|i| i.state != ImageState::Current)
        .map(|i| i.name.clone())
        .collect();
    let failed_here = o.failed_on.as_deref() == Some(lock_id(&o.lock).as_str());
    if !stale.is_empty() && !failed_here {
        return Action::Cascade { images: stale };
    }
    let push: Vec<(String, String)> = o
        .images
        .iter()
        .filter(|i| o.registry && i.state == ImageState::Current)
        .filter_map(|i| {
            let stored = i.stored.as_ref()?;
            (i.pushed.as_ref() != Some(stored)).then(|| (i.name.clone(), stored.clone()))
        })
        .collect();
    if !push.is_empty() {
        Action::Push { images: push }
    } else if !stale.is_empty() {
        Action::Wait { images: stale }
    } else {
        Action::Idle
    }
}

/// The moves of `o` not followed (see the module's documentation).
pub fn refusals(o: &Observation) -> Vec<Refusal> {
    vet(o).1
}

/// The lock with the moves signed by their owners applied (and every git context's move: a
/// commit carries no signature strata checks), and the refused moves.
fn vet(o: &Observation) -> (Lock, Vec<Refusal>) {
    let mut lock = o.lock.clone();
    let mut refused = Vec::new();
    for m in o.resolved.git_diff(&o.lock) {
        match o.resolved.git_entry(&m.url, &m.rev) {
            Some(entry) => lock.insert_git(entry.clone()),
            None => lock.remove_git(&m.url, &m.rev),
        }
    }
    for m in o.resolved.diff(&o.lock) {
        let Some(entry) = m.entry else {
            lock.retain(|r| r != m.reference);
            continue;
        };
        if let Some(owner) = o.owners.get(&m.reference)
            && entry.built_by.as_ref() != Some(owner)
        {
            refused.push(Refusal {
                reference: m.reference,
                digest: entry.digest,
                owner: owner.clone(),
                signed_by: entry.built_by,
            });
            continue;
        }
        lock.insert(entry);
    }
    (lock, refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_chain::Locked;

    const UP: &str = "r.example/ops/corebuild:latest";

    fn lock(hex: char) -> Lock {
        let mut lock = Lock::new();
        lock.insert(Locked {
            reference: UP.into(),
            digest: format!("sha256:{}", hex.to_string().repeat(64)),
            registry: "r.example".into(),
            resolved: "2026-12-06T14:02:00Z".into(),
            built_by: None,
            key: None,
            built: None,
        });
        lock
    }

    fn image(name: &str, state: ImageState, stored: &str, pushed: Option<&str>) -> Watched {
        Watched {
            name: name.into(),
            state,
            stored: Some(stored.into()),
            pushed: pushed.map(Into::into),
        }
    }

    fn observe(on_disk: char, resolved: char, images: Vec<Watched>) -> Observation {
        Observation {
            lock: lock(on_disk),
            resolved: lock(resolved),
            images,
            registry: true,
            failed_on: None,
            owners: BTreeMap::new(),
        }
    }

    #[test]
    fn a_moved_upstream_moves_the_lock_first_whatever_else_is_pending() {
        let o = observe(
            'a',
            'b',
            vec![image("httpd-php", ImageState::Stale, "d1", None)],
        );
        let Action::MoveLock {
            lock: new, moves, ..
        } = decide(&o)
        else {
            panic!("{:?}", decide(&o))
        };
        assert_eq!(new, lock('b'));
        assert_eq!(moves.len(), 1);
        assert_eq!(moves[0].reference, UP);
    }

    #[test]
    fn stale_images_cascade_then_the_rebuilt_ones_are_pushed_then_idle() {
        let mut o = observe(
            'b',
            'b',
            vec![
                image("httpd-php", ImageState::Stale, "d1", Some("d1")),
                image("wordpress", ImageState::Stale, "d2", Some("d2")),
            ],
        );
        assert_eq!(
            decide(&o),
            Action::Cascade {
                images: vec!["httpd-php".into(), "wordpress".into()]
            }
        );
        // Built: new store digests the registry does not have.
        o.images = vec![
            image("httpd-php", ImageState::Current, "d3", Some("d1")),
            image("wordpress", ImageState::Current, "d4", None),
        ];
        assert_eq!(
            decide(&o),
            Action::Push {
                images: vec![
                    ("httpd-php".into(), "d3".into()),
                    ("wordpress".into(), "d4".into())
                ]
            }
        );
        // A restarted watch after the pushes: nothing again.
        o.images = vec![
            image("httpd-php", ImageState::Current, "d3", Some("d3")),
            image("wordpress", ImageState::Current, "d4", Some("d4")),
        ];
        assert_eq!(decide(&o), Action::Idle);
        // Without a registry nothing is pushed.
        o.images[0].pushed = None;
        o.registry = false;
        assert_eq!(decide(&o), Action::Idle);
    }

    #[test]
    fn a_cascade_that_failed_on_this_lock_waits_for_the_next_move_and_pushes_only_what_it_did_not_stop()
     {
        let mut o = observe(
            'b',
            'b',
            vec![
                image("httpd-php", ImageState::Failed, "d1", Some("d1")),
                image("wordpress", ImageState::Stale, "d2", Some("d2")),
            ],
        );
        o.failed_on = Some(lock_id(&lock('b')));
        assert_eq!(
            decide(&o),
            Action::Wait {
                images: vec!["httpd-php".into(), "wordpress".into()]
            }
        );
        // A sibling the failure did not stop, rebuilt, is pushed; the failed ones are not.
        o.images
            .push(image("php-fpm", ImageState::Current, "d5", Some("d0")));
        assert_eq!(
            decide(&o),
            Action::Push {
                images: vec![("php-fpm".into(), "d5".into())]
            }
        );
        o.images.pop();
        // A failure on an older lock does not hold back the cascade on this one.
        o.failed_on = Some(lock_id(&lock('a')));
        assert!(matches!(decide(&o), Action::Cascade { .. }));
        // The next move is taken: the lock moves, then the cascade runs again.
        o.resolved = lock('c');
        assert!(matches!(decide(&o), Action::MoveLock { .. }));
    }

    #[test]
    fn a_move_not_signed_by_the_upstreams_owner_is_refused_and_the_lock_stays() {
        let mut o = observe(
            'a',
            'b',
            vec![image("httpd-php", ImageState::Current, "d1", Some("d1"))],
        );
        o.owners.insert(UP.into(), "operations".into());
        assert_eq!(decide(&o), Action::Idle, "nothing moves, nothing rebuilds");
        let refused = refusals(&o);
        assert_eq!(refused.len(), 1);
        assert_eq!(
            refused[0].to_string(),
            format!(
                "{UP} moved to sha256:{} but it is not signed by its owner operations \
                 (no signed provenance verifies with a key this chain trusts)",
                "b".repeat(64)
            )
        );
        // Signed by another team of the chain: refused, naming it.
        let mut foreign = lock('b');
        let mut entry = foreign.get(UP).unwrap().clone();
        entry.built_by = Some("development".into());
        foreign.insert(entry.clone());
        o.resolved = foreign.clone();
        assert!(
            refusals(&o)[0]
                .to_string()
                .ends_with("(signed by team development's key)")
        );
        // Signed by the owner: followed.
        entry.built_by = Some("operations".into());
        foreign.insert(entry);
        o.resolved = foreign.clone();
        assert!(refusals(&o).is_empty());
        assert_eq!(
            decide(&o),
            Action::MoveLock {
                lock: foreign,
                moves: o.resolved.diff(&o.lock),
                git_moves: vec![],
            }
        );
        // An upstream under no owner rule is followed as `strata update` follows it.
        o.owners.clear();
        o.resolved = lock('c');
        assert!(matches!(decide(&o), Action::MoveLock { .. }));
    }

    fn with_git(mut lock: Lock, commit: char, resolved: &str) -> Lock {
        lock.insert_git(strata_chain::lock::GitLocked {
            url: "file:///srv/git/mw.git".into(),
            rev: "main".into(),
            commit: commit.to_string().repeat(40),
            resolved: resolved.into(),
        });
        lock
    }

    #[test]
    fn a_moved_git_branch_moves_the_lock_like_an_upstream_then_cascades_pushes_and_idles() {
        let mut o = observe(
            'a',
            'a',
            vec![image("httpd-php", ImageState::Current, "d1", Some("d1"))],
        );
        o.lock = with_git(lock('a'), '1', "2026-12-06T14:00:00Z");
        // The repository resolves the branch to the same commit: nothing moves.
        o.resolved = with_git(lock('a'), '1', "2026-12-06T14:00:00Z");
        assert_eq!(decide(&o), Action::Idle);
        // The branch moved (the newest commit is all a poll sees: moves coalesce).
        o.resolved = with_git(lock('a'), '3', "2026-12-06T14:05:00Z");
        let Action::MoveLock {
            lock: new,
            moves,
            git_moves,
        } = decide(&o)
        else {
            panic!("{:?}", decide(&o))
        };
        assert!(moves.is_empty(), "the upstream did not move: {moves:?}");
        assert_eq!(
            new, o.resolved,
            "the lock takes the resolved entry as it is"
        );
        assert_eq!(
            git_moves
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [format!(
                "file:///srv/git/mw.git main: {} → {}",
                "1".repeat(12),
                "3".repeat(12)
            )]
        );
        // Once written, the image on it is stale: a cascade, then its push, then idle.
        o.lock = new;
        o.images[0].state = ImageState::Stale;
        assert!(matches!(decide(&o), Action::Cascade { .. }));
        o.images[0] = image("httpd-php", ImageState::Current, "d2", Some("d1"));
        assert!(matches!(decide(&o), Action::Push { .. }));
        o.images[0].pushed = Some("d2".into());
        assert_eq!(decide(&o), Action::Idle);
        // A context no image names any more is unlocked.
        o.resolved = lock('a');
        let Action::MoveLock {
            lock, git_moves, ..
        } = decide(&o)
        else {
            panic!("{:?}", decide(&o))
        };
        assert_eq!(lock.git_entries().count(), 0);
        assert_eq!(git_moves[0].to, None);
    }

    #[test]
    fn a_git_move_is_followed_while_an_unsigned_upstream_move_is_refused() {
        let mut o = observe('a', 'b', vec![]);
        o.owners.insert(UP.into(), "operations".into());
        o.lock = with_git(lock('a'), '1', "t0");
        o.resolved = with_git(lock('b'), '2', "t1");
        assert_eq!(refusals(&o).len(), 1);
        let Action::MoveLock {
            lock: new,
            moves,
            git_moves,
        } = decide(&o)
        else {
            panic!("{:?}", decide(&o))
        };
        assert!(moves.is_empty());
        assert_eq!(git_moves.len(), 1);
        assert_eq!(new, with_git(lock('a'), '2', "t1"), "the upstream stays");
    }

    #[test]
    fn an_image_never_built_is_not_pushed() {
        let mut o = observe('a', 'a', vec![]);
        o.images.push(Watched {
            name: "httpd-php".into(),
            state: ImageState::Current,
            stored: None,
            pushed: None,
        });
        assert_eq!(decide(&o), Action::Idle);
    }
}
