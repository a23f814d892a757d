//! Prints how fast strata signs and verifies provenance, and walks a chain of custody.
//!
//! `cargo run -p strata-attest --example attest_bench` (dependencies are optimised in dev builds).

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;
use strata_attest::provenance::{DockerfileBuild, DockerfileParameters, InternalParameters, Run};
use strata_attest::{
    KeyKind, Policy, PrivateKey, Statement, TrustConfig, attest_provenance, dsse, verify_chain,
};
use strata_oci::{Digest, Image, Store};

fn provenance(base: Option<(&str, &Image)>, owner: &str) -> strata_attest::Provenance {
    DockerfileBuild {
        parameters: DockerfileParameters {
            dockerfile: "app/Dockerfile".into(),
            context: "app".into(),
            target: None,
            build_args: BTreeMap::from([("VERSION".into(), "1.2.3".into())]),
        },
        internal: InternalParameters {
            owner: owner.into(),
            tier: Some("application".into()),
            ..Default::default()
        },
        base: base.map(|(name, b)| (name.to_string(), b.digest())),
        other_images: vec![],
        context_digest: Some(Digest::of(b"context")),
        git: None,
        builder_version: "0.1.0".into(),
        run: Run {
            invocation_id: "bench".into(),
            started_on: Utc::now(),
            finished_on: Utc::now(),
        },
    }
    .provenance()
}

/// An image of `parent`'s layers plus one layer holding `file`, annotated with its base.
fn image_on(store: &Store, parent: Option<&Image>, file: &str) -> Image {
    strata_oci::random::image_on(store, parent, file).unwrap()
}

fn main() {
    let statement = Statement::provenance_for(
        "localhost/acme/app:latest",
        &Digest::of(b"m"),
        &provenance(None, "web"),
    );
    let payload_len = serde_json::to_vec(&statement).unwrap().len();
    println!("statement payload: {payload_len} bytes");
    for kind in [KeyKind::EcdsaP256, KeyKind::Ed25519] {
        let key = PrivateKey::generate(kind).unwrap();
        let trusted = [key.public_key().clone()];
        let n = 500;
        let start = Instant::now();
        let mut envelope = None;
        for _ in 0..n {
            envelope = Some(dsse::sign(&statement, &key));
        }
        let sign = start.elapsed().as_secs_f64() / f64::from(n);
        let envelope = envelope.unwrap();
        let start = Instant::now();
        for _ in 0..n {
            dsse::verify(&envelope, &trusted).unwrap();
        }
        let verify = start.elapsed().as_secs_f64() / f64::from(n);
        println!(
            "{kind:<11} sign {:>7.1} µs ({:>6.0}/s)   verify {:>7.1} µs ({:>6.0}/s)",
            sign * 1e6,
            1.0 / sign,
            verify * 1e6,
            1.0 / verify
        );
    }

    // A chain of `tiers` images, each signed; verify_chain from the top.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path()).unwrap();
    let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let mut trust = TrustConfig::new();
    trust.add_key("ops", key.public_key().clone());
    let tiers = 8;
    let mut parent: Option<Image> = None;
    for i in 0..tiers {
        let image = image_on(&store, parent.as_ref(), &format!("tier-{i}"));
        let name = format!("acme/tier{i}");
        store.refs().tag(&name, image.descriptor()).unwrap();
        trust.set_owner(&name, "ops", None);
        let parent_name = format!("acme/tier{}", i.max(1) - 1);
        let p = provenance(parent.as_ref().map(|p| (parent_name.as_str(), p)), "ops");
        attest_provenance(
            &store,
            image.descriptor(),
            &format!("localhost/{name}:latest"),
            &p,
            &key,
        )
        .unwrap();
        parent = Some(image);
    }
    let top = format!("acme/tier{}", tiers - 1);
    let runs = 50;
    let start = Instant::now();
    let mut report = None;
    for _ in 0..runs {
        report = Some(verify_chain(&store, &top, &trust, &Policy::default(), Utc::now()).unwrap());
    }
    let per = start.elapsed().as_secs_f64() / f64::from(runs);
    let report = report.unwrap();
    assert!(report.verified, "{report}");
    println!(
        "verify_chain over {tiers} tiers: {:.2} ms ({:.2} ms per tier)",
        per * 1e3,
        per * 1e3 / f64::from(tiers)
    );
    println!("{report}");
}
