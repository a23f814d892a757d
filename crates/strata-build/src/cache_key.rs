//! Step cache keys as an explicit, versioned encoding.
//!
//! A key is the sha256 of a version tag followed by its fields, each written as its length (8
//! bytes, little endian) and its bytes. Nothing is hashed through `Debug` or `Display`: an enum
//! is written through a `match` here, so renaming a variant is a compile error in this file, not a
//! silent change of every key. Changing what a key holds means a new version tag; the tests pin
//! known keys so an accidental change fails.

use sha2::{Digest as _, Sha256};

/// Builds one cache key: a version tag, then fields in a fixed order.
#[derive(Debug, Clone)]
pub(crate) struct KeyWriter {
    hash: Sha256,
}

impl KeyWriter {
    /// A key of the kind and version `version` (`strata-build/run/v2`).
    pub(crate) fn new(version: &str) -> Self {
        let mut writer = Self {
            hash: Sha256::new(),
        };
        writer.str(version);
        writer
    }

    /// A byte string, length first so that fields never run into each other.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.hash.update((bytes.len() as u64).to_le_bytes());
        self.hash.update(bytes);
        self
    }

    /// A text field.
    pub(crate) fn str(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    /// A number.
    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes(&value.to_le_bytes())
    }

    /// A list of text fields, its length first.
    pub(crate) fn strs<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        self.u64(items.len() as u64);
        for item in items {
            self.str(item.as_ref());
        }
        self
    }

    /// A layer compression, by its explicit name.
    pub(crate) fn compression(&mut self, compression: strata_oci::Compression) -> &mut Self {
        self.str(match compression {
            strata_oci::Compression::None => "none",
            strata_oci::Compression::Gzip => "gzip",
            strata_oci::Compression::Zstd => "zstd",
        })
    }

    /// A RUN step's network mode, by its explicit name.
    pub(crate) fn network(&mut self, network: strata_sandbox::Network) -> &mut Self {
        self.str(match network {
            strata_sandbox::Network::Private => "private",
            strata_sandbox::Network::Host => "host",
            strata_sandbox::Network::None => "none",
        })
    }

    /// The key: `sha256:<hex>`.
    pub(crate) fn finish(&self) -> String {
        format!("sha256:{}", hex::encode(self.hash.clone().finalize()))
    }
}

/// What a RUN step's result depends on.
#[derive(Debug)]
pub(crate) struct RunKey<'a> {
    /// The stage so far (its base and every step before this one).
    pub(crate) chain_key: &'a str,
    /// The command.
    pub(crate) argv: &'a [String],
    /// The environment, in order.
    pub(crate) env: &'a [(String, String)],
    /// The user, as written (`0` when unset).
    pub(crate) user: &'a str,
    /// The working directory.
    pub(crate) cwd: &'a str,
    /// The network mode.
    pub(crate) network: strata_sandbox::Network,
    /// A description of each `--mount` (never a secret's content).
    pub(crate) mounts: &'a [String],
    /// A heredoc script run as a file: its name and content.
    pub(crate) script: Option<(&'a str, &'a [u8])>,
}

impl RunKey<'_> {
    /// The step cache key.
    pub(crate) fn key(&self) -> String {
        let mut w = KeyWriter::new("strata-build/run/v2");
        w.str(self.chain_key).strs(self.argv);
        w.u64(self.env.len() as u64);
        for (name, value) in self.env {
            w.str(name).str(value);
        }
        w.str(self.user)
            .str(self.cwd)
            .network(self.network)
            .strs(self.mounts);
        match self.script {
            None => w.str("no-script"),
            Some((name, content)) => w.str("script").str(name).bytes(content),
        };
        w.finish()
    }
}

/// The start of an ADD step's key: the stage so far, the instruction, and the options that change
/// the layer; the sources' entries follow ([`KeyWriter::str`] each).
pub(crate) fn add_key(
    chain_key: &str,
    created_by: &str,
    unpack: Option<bool>,
    compression: strata_oci::Compression,
    source_date_epoch: u64,
) -> KeyWriter {
    let mut w = KeyWriter::new("strata-build/add/v3");
    w.str(chain_key).str(created_by).str(match unpack {
        None => "unpack-default",
        Some(true) => "unpack",
        Some(false) => "no-unpack",
    });
    w.compression(compression).u64(source_date_epoch);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_never_run_into_each_other() {
        let a = KeyWriter::new("t/v1").str("ab").str("c").finish();
        let b = KeyWriter::new("t/v1").str("a").str("bc").finish();
        assert_ne!(a, b);
        let c = KeyWriter::new("t/v1").strs(&["a"]).str("b").finish();
        let d = KeyWriter::new("t/v1").strs(&["a", "b"]).finish();
        assert_ne!(c, d);
    }

    #[test]
    fn a_known_key_keeps_its_value() {
        let key = KeyWriter::new("strata-build/test/v1")
            .str("text")
            .u64(42)
            .strs(&["x", "y"])
            .compression(strata_oci::Compression::Zstd)
            .network(strata_sandbox::Network::Private)
            .finish();
        assert_eq!(
            key, PINNED,
            "the cache key encoding changed: bump its version tag"
        );
    }

    // Checked by hand: sha256 over the length-prefixed fields, written out in Python.
    const PINNED: &str = "sha256:085bbb6034c327aeba02a2b69f2231522bb419eebdad093d7d158b28981799a2";

    #[test]
    fn a_known_run_key_keeps_its_value() {
        let argv = ["/bin/sh".to_string(), "-c".to_string(), "make".to_string()];
        let env = [("PATH".to_string(), "/usr/bin:/bin".to_string())];
        let mounts = ["cache /root/.cache id".to_string()];
        let key = RunKey {
            chain_key: "sha256:abc",
            argv: &argv,
            env: &env,
            user: "0",
            cwd: "/src",
            network: strata_sandbox::Network::None,
            mounts: &mounts,
            script: Some(("run.sh", b"#!/bin/sh\necho hi\n")),
        }
        .key();
        assert_eq!(
            key, PINNED_RUN,
            "the RUN key encoding changed: bump its version tag"
        );
        let no_script = RunKey {
            script: None,
            chain_key: "sha256:abc",
            argv: &argv,
            env: &env,
            user: "0",
            cwd: "/src",
            network: strata_sandbox::Network::None,
            mounts: &mounts,
        }
        .key();
        assert_ne!(key, no_script);
    }

    const PINNED_RUN: &str =
        "sha256:d98378eb9e6287fddd802ecc8f9706360c8485fc4c3a79eaa07e8774dd8e603e";

    #[test]
    fn a_known_add_key_keeps_its_value() {
        let key = add_key(
            "sha256:abc",
            "ADD a.tar /",
            None,
            strata_oci::Compression::Gzip,
            0,
        )
        .str("a.tar 644 0:0 0 deadbeef")
        .finish();
        assert_eq!(
            key, PINNED_ADD,
            "the ADD key encoding changed: bump its version tag"
        );
    }

    const PINNED_ADD: &str =
        "sha256:25a418466a108d54ae75d95b690c26344eb39ef81c395d40dd3312ca982fdfaa";

    #[test]
    fn a_known_copy_plan_key_keeps_its_value() {
        use crate::copy::{CopyPlan, PlannedContent, PlannedEntry};
        use crate::users::Owner;
        let entry = |content, mode| PlannedEntry {
            content,
            mode,
            owner: Owner { uid: 0, gid: 0 },
            mtime: Some(5),
            xattrs: Default::default(),
        };
        let plan = CopyPlan::from([
            ("etc".to_string(), entry(PlannedContent::Dir, 0o755)),
            (
                "etc/motd".to_string(),
                entry(PlannedContent::Bytes(b"hello\n".to_vec()), 0o644),
            ),
            (
                "etc/link".to_string(),
                entry(PlannedContent::Symlink("motd".into()), 0o777),
            ),
        ]);
        let options = strata_oci::tar::LayerOptions {
            compression: strata_oci::Compression::Gzip,
            source_date_epoch: 10,
        };
        let key =
            crate::layer::plan_key(&plan, &mut crate::context::StatCache::default(), &options)
                .unwrap();
        assert_eq!(
            key, PINNED_PLAN,
            "the COPY key encoding changed: bump its version tag"
        );
    }

    const PINNED_PLAN: &str =
        "sha256:50145cee7f4c226e104cf727cc1f01714b0f0af347faa3b23695dedd9ffaadb5";
}
