//! The chain's error type: every variant displays as one line that names the file and line at fault.

use std::fmt;
use std::path::PathBuf;

/// A position in a file: `path:line:column`, both 1-based (the column counts characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file, as the user named it (joined to the chain file's directory).
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text`, a file at `path`.
    pub fn at_offset(path: impl Into<PathBuf>, text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            path: path.into(),
            line,
            column,
        }
    }
}

/// Byte offset → line and column for one text, with the line starts computed once (locating
/// thousands of spans in a large file stays linear).
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Index the lines of `text`.
    pub fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// The location of byte `offset` in the file at `path`.
    pub fn locate(&self, path: impl Into<PathBuf>, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        Location {
            path: path.into(),
            line,
            column: self.text[start..offset].chars().count() + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// Why a chain could not be loaded or planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A file could not be read.
    #[error("{}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `strata.toml` is not valid TOML, or does not fit the schema, where no field can be named.
    #[error("{location}: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// What (one line).
        message: String,
    },
    /// A field of `strata.toml` is wrong: an unknown key, a missing file, an unknown owner, a bad name.
    #[error("{location}: field `{field}`: {message}")]
    Field {
        /// Where the field's value (or key) is.
        location: Location,
        /// The field's path, e.g. `image[2].owner` (images are counted from 1, in file order).
        field: String,
        /// What is wrong (one line).
        message: String,
    },
    /// A git context could not be resolved or fetched, or its URL or rev is refused.
    #[error("{location}: field `{field}`")]
    Git {
        /// Where the context is written in `strata.toml`.
        location: Location,
        /// The field, `image[2].context`.
        field: String,
        /// What went wrong (boxed: the error stays small).
        source: Box<crate::git::GitError>,
    },
    /// An image's Dockerfile does not parse, or its references cannot be resolved.
    #[error("{}:{error}", path.display())]
    Dockerfile {
        /// The Dockerfile.
        path: PathBuf,
        /// The parser's error, which displays as `LINE:COL: INSTRUCTION: message`: a position
        /// that continues the file name, so part of this message rather than a `source()`.
        error: strata_dockerfile::Error,
    },
    /// An image's Dockerfile names the image itself.
    #[error("{location}: image \"{image}\" refers to itself: {site}")]
    SelfReference {
        /// Where the image is declared in `strata.toml`.
        location: Location,
        /// The image.
        image: String,
        /// The reference: `httpd-php/Dockerfile:2 COPY --from acme/httpd-php:old`.
        site: String,
    },
    /// A Dockerfile names an image in the chain's own namespace (`acme/corebuil`) that the chain
    /// does not declare: a misspelling, caught before anything is built.
    #[error("{site}: {reference} is not an image of chain \"{chain}\"{hint}")]
    UnknownChainImage {
        /// Where: `httpd-php/Dockerfile:1 FROM`.
        site: String,
        /// The reference as written.
        reference: String,
        /// The chain's name.
        chain: String,
        /// ` (did you mean corebuild?)`, or ` (its images: …)`.
        hint: String,
    },
    /// The images' references form a cycle.
    #[error("{location}: image \"{image}\": the image graph has a cycle: {}", cycle.join(" → "))]
    Cycle {
        /// Where the first image of the cycle is declared in `strata.toml`.
        location: Location,
        /// The first image of the cycle (the smallest name).
        image: String,
        /// The cycle, first image repeated at the end: `corebuild → httpd-php → corebuild`.
        cycle: Vec<String>,
    },
    /// A command named an image the chain does not have.
    #[error("unknown image \"{name}\" (the chain has: {})", known.join(", "))]
    UnknownImage {
        /// The name given.
        name: String,
        /// The chain's images, sorted.
        known: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_character_columns() {
        let text = "a = 1\nbé = 2\n";
        let at = |o| {
            let l = Location::at_offset("s.toml", text, o);
            (l.line, l.column)
        };
        assert_eq!(at(0), (1, 1));
        assert_eq!(at(4), (1, 5));
        assert_eq!(at(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters
        assert_eq!(at(12), (2, 6));
        assert_eq!(at(999), (3, 1));
        assert_eq!(
            Location::at_offset("s.toml", text, 6).to_string(),
            "s.toml:2:1"
        );
    }
}
