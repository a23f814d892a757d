//! `strata rmi REF...`: remove tags from the store, as `podman rmi` does; the blobs go at the
//! next `strata store gc`.

use crate::out::outln;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use strata_oci::{Digest, Store};

use crate::global::GlobalArgs;

/// Arguments of `strata rmi`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tags (`acme/corebuild:3`, `localhost/acme/app:1`), or a manifest (`sha256:...`,
    /// `name@sha256:...`) to remove with every tag that points at it.
    #[arg(required = true)]
    references: Vec<String>,
    /// Print what was removed as JSON.
    #[arg(long)]
    json: bool,
}

/// One removed tag.
#[derive(Debug, serde::Serialize)]
struct Untagged {
    reference: String,
    digest: String,
}

/// Remove the tags; fails (removing nothing) when any reference names no image.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let path = global.store_path()?;
    let store =
        Store::open(&path).with_context(|| format!("cannot open the store {}", path.display()))?;
    // Resolve everything first: a typo must not leave half the list removed.
    for reference in &args.references {
        if store.refs().resolve(reference).is_err() {
            bail!("no image {reference} in the store (list them with `strata images`)");
        }
    }
    let events =
        strata_events::EventLog::open(&crate::global::state_dir_of(&path).join("events.db")).ok();
    let mut removed = Vec::new();
    for reference in &args.references {
        let by_digest = reference.starts_with("sha256:")
            || reference.starts_with("sha512:")
            || reference.contains('@');
        let before = store.refs().list()?;
        if by_digest {
            // A manifest: every tag pointing at it.
            let digest = Digest::from_oci(store.refs().resolve(reference)?.digest())?.to_string();
            for tag in before
                .iter()
                .filter(|t| t.descriptor.digest().to_string() == digest)
            {
                store.refs().untag(&tag.name)?;
            }
        } else {
            store.refs().untag(reference)?;
        }
        let after: Vec<String> = store.refs().list()?.into_iter().map(|t| t.name).collect();
        for tag in before.into_iter().filter(|t| !after.contains(&t.name)) {
            let digest = tag.descriptor.digest().to_string();
            if let Some(log) = &events {
                let _ = log.record(&strata_events::Event {
                    kind: Some(strata_events::Kind::Delete),
                    image: tag.name.clone(),
                    user: Some(strata_events::current_user()),
                    old_digest: Some(digest.clone()),
                    reason: Some("strata rmi".into()),
                    result: "ok".into(),
                    ..strata_events::Event::default()
                });
            }
            removed.push(Untagged {
                reference: tag.name,
                digest,
            });
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&removed)?);
    } else {
        for u in &removed {
            outln!("untagged {} ({})", u.reference, u.digest);
        }
        outln!("the images' blobs go at the next `strata store gc`");
    }
    Ok(ExitCode::SUCCESS)
}
