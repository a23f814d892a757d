//! The references a Dockerfile makes to other images, through strata-dockerfile.

use std::collections::BTreeMap;

use strata_dockerfile::DependencyKind;

use crate::graph::{Use, UseKind};

/// The references of image `image`'s Dockerfile `text` (FROM, COPY --from, RUN --mount from=),
/// after ARG substitution with the build `args`. Stage names and `scratch` are not references.
pub fn uses(
    image: usize,
    text: &str,
    args: &BTreeMap<String, String>,
) -> Result<Vec<Use>, strata_dockerfile::Error> {
    let dockerfile = strata_dockerfile::parse(text)?;
    Ok(dockerfile
        .dependencies(args)?
        .into_iter()
        .map(|d| Use {
            image,
            reference: d.reference,
            kind: match d.kind {
                DependencyKind::From => UseKind::From,
                DependencyKind::CopyFrom => UseKind::CopyFrom,
                DependencyKind::MountFrom => UseKind::MountFrom,
            },
            line: d.line,
        })
        .collect())
}
