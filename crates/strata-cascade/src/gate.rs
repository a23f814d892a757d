//! Tier tests gate an image: it is built untagged, its tests run, and only when they pass do its
//! tags (`:latest`, `:<n>`, extra tags) move to it. A failure leaves `:latest` on the last good
//! image and fails the build, so nothing is built on top of it.

use std::path::Path;
use std::sync::Mutex;

use strata_chain::Chain;
use strata_events::EventLog;
use strata_oci::Store;

use crate::cascade::CascadeOptions;
use crate::error::ImageError;
use crate::refs;

/// Run chain image `i`'s tests (`test`) against its new, untagged build `digest`; record a
/// `test` event; tag it with `tags` when every test passed. Errors are the build's failure
/// message: the failing test, the owner, and where `:latest` stays.
#[allow(clippy::too_many_arguments)]
pub(crate) fn test_then_tag(
    store: &Store,
    chain: &Chain,
    i: usize,
    digest: &str,
    test: &Path,
    tags: &[String],
    events: Option<&Mutex<EventLog>>,
    options: &CascadeOptions,
) -> Result<(), ImageError> {
    let image = &chain.file.images[i];
    let reference = format!("{}@{digest}", refs::repository(chain, i));
    let run = strata_tiertest::RunOptions {
        work_dir: options.cache_dir.clone(),
        cancel: options.cancel.clone(),
        sandbox: Some(std::sync::Arc::new(crate::BuilderSandbox)),
    };
    let report = strata_tiertest::run_file(store, &reference, test, &run).map_err(|source| {
        ImageError::TierTests {
            image: image.name.clone(),
            source: Box::new(source),
        }
    })?;
    if let Some(events) = events {
        let event = report.to_event(&image.name, &image.owner, Some(&options.run_id));
        let log = events.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = log.record(&event) {
            tracing::warn!("cannot record the tests of {}: {e}", image.name);
        }
    }
    if !report.success() {
        let latest = refs::tagged(chain, i, "latest");
        let stays = match store.refs().resolve(&latest) {
            Ok(d) => format!("{latest} stays on {}", d.digest()),
            Err(_) => format!("{latest} is not set"),
        };
        return Err(ImageError::TierTestFailed(format!(
            "tier test failed ({} of {} in {}, owner {}): {}; {stays}",
            report.failed(),
            report.results.len(),
            chain.file.relative(test).display(),
            image.owner,
            report
                .first_failure()
                .unwrap_or_else(|| "no test ran".to_string()),
        )));
    }
    let descriptor = store.refs().resolve(&reference)?;
    for tag in tags {
        store.refs().tag(tag, &descriptor)?;
    }
    Ok(())
}
