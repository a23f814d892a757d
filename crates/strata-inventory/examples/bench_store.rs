//! Make a store of many images for `scripts/bench-inventory`: `bench_store STORE N`.
//!
//! A Debian-like chain: a base (os-release and a dpkg status of 150 packages, openssl's among
//! them), a corebuild adding 30 and a middleware adding 40, then N application builds on top, each
//! with its own layer (50 applications of 10 teams, N/50 builds each), tagged `bench/appK:B`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;

use strata_oci::annotations::{ANNOTATION_CHAIN_IMAGE, ANNOTATION_OWNER};
use strata_oci::image_config::{History, ImageConfig};
use strata_oci::tar::{Entry, LayerOptions, Metadata};
use strata_oci::{Descriptor, MediaType, Store};

fn layer(store: &Store, entries: Vec<Entry>) -> (Descriptor, String) {
    let mut writer = store.layer_writer(LayerOptions::default()).unwrap();
    writer.append_all(entries).unwrap();
    let layer = writer.finish().unwrap();
    (layer.descriptor, layer.diff_id.to_string())
}

fn status(n: usize) -> Entry {
    let mut text = String::new();
    for i in 0..n {
        let (name, source) = match i {
            0 => ("libssl3".to_string(), "openssl".to_string()),
            1 => ("openssl".to_string(), "openssl".to_string()),
            _ => (format!("pkg{i}"), format!("src{}", i / 3)),
        };
        text.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nSource: {source}\nVersion: 3.0.{i}-1~deb12u1\nDescription: bench package {i}\n with a longer description line\n\n"
        ));
    }
    Entry::file_bytes(
        "var/lib/dpkg/status",
        text.into_bytes(),
        Metadata::new(0o644, 0, 0),
    )
}

fn image(
    store: &Store,
    tags: &[String],
    chain_image: &str,
    team: &str,
    base: Option<&Descriptor>,
    layers: &[&(Descriptor, String)],
) -> Descriptor {
    let mut config = ImageConfig::scratch();
    for (k, (_, diff_id)) in layers.iter().enumerate() {
        config.rootfs.diff_ids.push(diff_id.clone());
        config.history.push(History {
            created_by: Some(format!("RUN step {k}")),
            ..History::default()
        });
    }
    let config = store
        .blobs()
        .put_json(&config, MediaType::ImageConfig)
        .unwrap();
    let mut manifest =
        strata_oci::image::new_manifest(config, layers.iter().map(|(d, _)| d.clone()).collect());
    let mut annotations = HashMap::from([
        (ANNOTATION_CHAIN_IMAGE.to_string(), chain_image.to_string()),
        (ANNOTATION_OWNER.to_string(), team.to_string()),
    ]);
    if let Some(base) = base {
        annotations.insert(
            "org.opencontainers.image.base.digest".to_string(),
            base.digest().to_string(),
        );
    }
    manifest.set_annotations(Some(annotations));
    let descriptor = store.blobs().put_manifest(&manifest).unwrap();
    for tag in tags {
        store.refs().tag(tag, &descriptor).unwrap();
    }
    descriptor
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(n)) = (
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: bench_store STORE N");
        std::process::exit(2);
    };
    let store = Store::init(dir).unwrap();
    let os = Entry::file_bytes(
        "etc/os-release",
        b"ID=debian\nVERSION_ID=\"12\"\n".to_vec(),
        Metadata::new(0o644, 0, 0),
    );
    let l0 = layer(&store, vec![os, status(150)]);
    let l1 = layer(&store, vec![status(180)]);
    let l2 = layer(&store, vec![status(220)]);
    let base = image(
        &store,
        &["bench/base".into()],
        "bench/base",
        "platform",
        None,
        &[&l0],
    );
    let core = image(
        &store,
        &["bench/corebuild".into()],
        "bench/corebuild",
        "operations",
        Some(&base),
        &[&l0, &l1],
    );
    let mw = image(
        &store,
        &["bench/middleware".into()],
        "bench/middleware",
        "middleware",
        Some(&core),
        &[&l0, &l1, &l2],
    );
    let builds = n.div_ceil(50);
    for i in 0..n {
        let app = i % 50;
        let build = i / 50 + 1;
        let own = layer(
            &store,
            vec![Entry::file_bytes(
                "srv/app/index.php",
                format!("<?php // app {app} build {build}").into_bytes(),
                Metadata::new(0o644, 0, 0),
            )],
        );
        let mut tags = vec![format!("bench/app{app}:{build}")];
        if build == builds || i + 50 >= n {
            tags.push(format!("bench/app{app}:latest"));
        }
        image(
            &store,
            &tags,
            &format!("bench/app{app}"),
            &format!("team{}", app % 10),
            Some(&mw),
            &[&l0, &l1, &l2, &own],
        );
    }
    println!("{n} application images in {dir}");
}
