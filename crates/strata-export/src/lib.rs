//! The chain handed to the engines that run builds and deployments at scale, instead of a
//! cluster of strata's own: OpenShift (`ImageStream`, `BuildConfig` with ImageChange triggers,
//! `Deployment` with the `image.openshift.io/triggers` annotation), Tekton (one `Pipeline`, a
//! task per image) and plain Kubernetes (`Deployment` + `Service` by digest, a kustomization).
//!
//! Each engine module turns the chain (and the deploy file, when there is one) into
//! [`Document`]s. What an engine cannot express is returned as [`Unsupported`] so the CLI says
//! it on stderr: nothing is dropped silently. [`import`] reads an export back into the graph.

use std::path::Path;

pub mod import;
mod k8s;
pub mod kubernetes;
pub mod openshift;
pub mod tekton;

/// One document of an export: the file it is written to (relative to the output directory) and
/// its content, an API object (`apiVersion`, `kind`, `metadata`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// File name, e.g. `wordpress-deployment.json`.
    pub file: String,
    /// The object.
    pub value: serde_json::Value,
}

/// Something of the chain or the deploy file the engine cannot express (or, on import, that
/// the export did not carry).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unsupported {
    /// The chain image or deployment it concerns.
    pub subject: String,
    /// What is lost, in one sentence.
    pub what: String,
}

/// An export: the documents and what they could not carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Export {
    /// The documents, in the order they should be applied.
    pub documents: Vec<Document>,
    /// What the engine cannot express.
    pub unsupported: Vec<Unsupported>,
}

/// Options every engine takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The namespace (OpenShift project) the documents go to.
    pub namespace: String,
}

/// An export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// An output file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The chain or deploy file holds something the export cannot be made from.
    #[error("{subject}: {message}")]
    Invalid {
        /// The chain image or deployment.
        subject: String,
        /// Why.
        message: String,
    },
}

impl Export {
    /// Write every document as pretty JSON (which `kubectl apply -f` and `oc apply -f` read as
    /// YAML's superset) into `dir`, created if missing; the files written, in order.
    pub fn write(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>, ExportError> {
        std::fs::create_dir_all(dir).map_err(|source| ExportError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut written = Vec::new();
        for document in &self.documents {
            let path = dir.join(&document.file);
            let mut text = serde_json::to_string_pretty(&document.value)
                .expect("a JSON value always serialises");
            text.push('\n');
            std::fs::write(&path, text).map_err(|source| ExportError::Write {
                path: path.clone(),
                source,
            })?;
            written.push(path);
        }
        Ok(written)
    }
}
