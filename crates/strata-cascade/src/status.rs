//! [`StoreStatus`]: each chain image's status from the store (build keys) and the events log.

use std::sync::Mutex;

use strata_chain::{Build, Chain, StaleReason, Status, StatusSource};
use strata_events::{EventLog, Kind};

use crate::error::CascadeError;
use crate::inputs::InputsResolver;

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

impl StatusSource for StoreStatus<'_> {
    type Error = CascadeError;

    fn status(&self, chain: &Chain, i: usize) -> Result<Status, CascadeError> {
        let Some((digest, stored)) = self.resolver.stored(i)? else {
            return Ok(match self.last_failure(chain, i) {
                Some(message) => Status::Failed { message },
                None => Status::NeverBuilt,
            });
        };
        if let Build::Image { reference, .. } = &chain.file.images[i].build {
            // A bought, pinned image is up to date when :latest is the pinned digest.
            let pinned = reference.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            return Ok(if pinned == digest {
                Status::UpToDate
            } else {
                Status::Stale {
                    reasons: vec![StaleReason::SourceChanged],
                }
            });
        }
        let current = match self.resolver.resolve(i) {
            Ok(current) => current,
            // A parent not built yet: this image will be rebuilt after it.
            Err(CascadeError::Inputs { message, .. }) if message.contains("has not been built") => {
                return Ok(Status::Stale {
                    reasons: vec![StaleReason::ParentChanged {
                        parent: message
                            .replace("its parent ", "")
                            .replace(" has not been built", ""),
                    }],
                });
            }
            // Missing inputs (a context, an external image): say so rather than fail the view.
            Err(e) => {
                return Ok(Status::Failed {
                    message: format!("cannot build: {}", strata_oci::report(&e)),
                });
            }
        };
        let Some(stored) = stored else {
            // Built by something else (no recorded inputs): strata cannot vouch for it.
            return Ok(Status::Stale {
                reasons: vec![StaleReason::BuilderChanged],
            });
        };
        if stored.key() == current.inputs.key() {
            return Ok(Status::UpToDate);
        }
        if let Some(message) = self.last_failure(chain, i) {
            return Ok(Status::Failed { message });
        }
        Ok(Status::Stale {
            reasons: current.inputs.changes_since(&stored, &current.parent_names),
        })
    }
}
