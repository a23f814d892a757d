//! [`StoreStatus`]: each chain image's status from the store (build keys) and the events log.

use std::sync::Mutex;

use strata_chain::{Build, Chain, StaleReason, Status, StatusSource};
use strata_events::{EventLog, Kind};

use crate::error::CascadeError;
use crate::inputs::{BuildInputs, InputsResolver, ResolvedInputs};

/// An image's status with what it was decided from, for the cascade to reuse: resolving an
/// image's inputs reads its Dockerfile and walks its context, and reading what is stored reads
/// its manifest; done again after the status, they made a no-op cascade do each twice per image.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The status.
    pub status: Status,
    /// The stored `:latest` digest and its recorded inputs ([`InputsResolver::stored`]).
    pub stored: Option<(String, Option<BuildInputs>)>,
    /// The current inputs, when they were resolved (not for a bought image, nor when a parent
    /// is not built or an input is missing).
    pub current: Option<ResolvedInputs>,
}

/// Compares each image's current inputs with those recorded in its stored `:latest` image.
#[derive(Debug)]
pub struct StoreStatus<'a> {
    resolver: &'a InputsResolver<'a>,
    events: Option<&'a Mutex<EventLog>>,
}

impl<'a> StoreStatus<'a> {
    /// A status source over `resolver`'s store; `events` tells failed builds apart.
    pub fn new(resolver: &'a InputsResolver<'a>, events: Option<&'a Mutex<EventLog>>) -> Self {
        Self { resolver, events }
    }

    fn last_failure(&self, chain: &Chain, i: usize) -> Option<String> {
        let events = self.events?;
        let log = events.lock().unwrap_or_else(|e| e.into_inner());
        let last = log.last(&chain.file.images[i].name, Kind::Build).ok()??;
        if last.result != "failed" {
            return None;
        }
        let error = last
            .detail
            .as_ref()
            .and_then(|d| d.get("error"))
            .and_then(|e| e.as_str())
            .map(str::to_string);
        Some(
            error
                .or(last.reason)
                .unwrap_or_else(|| "build failed".into()),
        )
    }
}

impl StoreStatus<'_> {
    /// Image `i`'s status, with the stored image and current inputs it compared.
    pub(crate) fn check(&self, chain: &Chain, i: usize) -> Result<Checked, CascadeError> {
        let stored = self.resolver.stored(i)?;
        let Some((digest, recorded)) = &stored else {
            let status = match self.last_failure(chain, i) {
                Some(message) => Status::Failed { message },
                None => Status::NeverBuilt,
            };
            return Ok(Checked {
                status,
                stored,
                current: None,
            });
        };
        let done = |status: Status, stored, current| {
            Ok(Checked {
                status,
                stored,
                current,
            })
        };
        if let Build::Image { reference, .. } = &chain.file.images[i].build {
            // A bought, pinned image is up to date when :latest is the pinned digest.
            let pinned = reference.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            let status = if pinned == digest {
                Status::UpToDate
            } else {
                Status::Stale {
                    reasons: vec![StaleReason::SourceChanged],
                }
            };
            return done(status, stored, None);
        }
        let current = match self.resolver.resolve(i) {
            Ok(current) => current,
            // A parent not built yet: this image will be rebuilt after it.
            Err(CascadeError::Inputs { message, .. }) if message.contains("has not been built") => {
                let status = Status::Stale {
                    reasons: vec![StaleReason::ParentChanged {
                        parent: message
                            .replace("its parent ", "")
                            .replace(" has not been built", ""),
                    }],
                };
                return done(status, stored, None);
            }
            // Missing inputs (a context, an external image): say so rather than fail the view.
            Err(e) => {
                let status = Status::Failed {
                    message: format!("cannot build: {}", strata_oci::report(&e)),
                };
                return done(status, stored, None);
            }
        };
        let status = match recorded {
            // Built by something else (no recorded inputs): strata cannot vouch for it.
            None => Status::Stale {
                reasons: vec![StaleReason::BuilderChanged],
            },
            Some(recorded) if recorded.key() == current.inputs.key() => Status::UpToDate,
            Some(recorded) => match self.last_failure(chain, i) {
                Some(message) => Status::Failed { message },
                None => Status::Stale {
                    reasons: current
                        .inputs
                        .changes_since(recorded, &current.parent_names),
                },
            },
        };
        done(status, stored, Some(current))
    }
}

impl StatusSource for StoreStatus<'_> {
    type Error = CascadeError;

    fn status(&self, chain: &Chain, i: usize) -> Result<Status, CascadeError> {
        self.check(chain, i).map(|checked| checked.status)
    }
}
