//! Minimal edits of a user's YAML file: one scalar replaced (or one `key: value` line added) in
//! place, every other byte (comments, order, quoting, indentation) left as it was.
//!
//! The file is parsed by `saphyr-parser` for the positions of its nodes; the edit is then a splice
//! of the original text, never a re-serialization, so a reviewer's diff shows exactly the digest
//! that moved.

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Why a YAML edit could not be made (the caller names the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum YamlEditError {
    /// The text is not YAML.
    #[error("line {line}: not valid YAML: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// The path does not lead to a scalar.
    #[error("{0}")]
    NotFound(String),
    /// The node found cannot be edited in place (a block scalar, a flow mapping, an alias).
    #[error("{0}")]
    Unsupported(String),
    /// The path is not `key.key[N].key`.
    #[error("yaml_path {0:?} is not of the form key.key[N].key")]
    BadPath(String),
}

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Parse `spec.template.spec.containers[0].image`.
pub fn parse_path(text: &str) -> Result<Vec<Step>, YamlEditError> {
    let bad = || YamlEditError::BadPath(text.to_string());
    let mut steps = Vec::new();
    for part in text.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if key.is_empty() {
            return Err(bad());
        }
        steps.push(Step::Key(key.to_string()));
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(bad)?;
            let n: usize = rest[1..close].parse().map_err(|_| bad())?;
            steps.push(Step::Index(n));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad());
            }
        }
    }
    if steps.is_empty() {
        return Err(bad());
    }
    Ok(steps)
}

struct Doc<'t> {
    text: &'t str,
    events: Vec<(Event<'t>, Span)>,
    /// Byte offset of each char index (plus the end).
    offsets: Vec<usize>,
}

impl<'t> Doc<'t> {
    fn parse(text: &'t str) -> Result<Doc<'t>, YamlEditError> {
        let mut events = Vec::new();
        for e in Parser::new_from_str(text) {
            let e = e.map_err(|e| YamlEditError::Syntax {
                line: e.marker().line(),
                message: e.info().to_string(),
            })?;
            events.push(e);
        }
        let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        offsets.push(text.len());
        Ok(Doc {
            text,
            events,
            offsets,
        })
    }

    fn byte(&self, char_index: usize) -> usize {
        self.offsets
            .get(char_index)
            .copied()
            .unwrap_or(self.text.len())
    }

    /// The index just past the node starting at `i`.
    fn skip(&self, i: usize) -> usize {
        match &self.events[i].0 {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let mut j = i + 1;
                loop {
                    match &self.events[j].0 {
                        Event::MappingEnd | Event::SequenceEnd => return j + 1,
                        _ => j = self.skip(j),
                    }
                }
            }
            _ => i + 1,
        }
    }

    /// The value node of `key` in the mapping starting at `i`.
    fn lookup(&self, i: usize, key: &str) -> Option<(usize, usize)> {
        if !matches!(self.events[i].0, Event::MappingStart(..)) {
            return None;
        }
        let mut j = i + 1;
        while !matches!(self.events[j].0, Event::MappingEnd) {
            let value = self.skip(j);
            if matches!(&self.events[j].0, Event::Scalar(k, ..) if k == key) {
                return Some((j, value));
            }
            j = self.skip(value);
        }
        None
    }

    /// The `n`th item of the sequence starting at `i`.
    fn item(&self, i: usize, n: usize) -> Option<usize> {
        if !matches!(self.events[i].0, Event::SequenceStart(..)) {
            return None;
        }
        let mut j = i + 1;
        for _ in 0..n {
            if matches!(self.events[j].0, Event::SequenceEnd) {
                return None;
            }
            j = self.skip(j);
        }
        (!matches!(self.events[j].0, Event::SequenceEnd)).then_some(j)
    }

    /// The root node of the first document.
    fn root(&self) -> Option<usize> {
        self.events
            .iter()
            .position(|(e, _)| matches!(e, Event::DocumentStart(_)))
            .map(|i| i + 1)
            .filter(|i| {
                !matches!(
                    self.events.get(*i).map(|e| &e.0),
                    Some(Event::DocumentEnd) | None
                )
            })
    }

    fn scalar(&self, i: usize) -> Option<&Cow<'t, str>> {
        match &self.events[i].0 {
            Event::Scalar(v, ..) => Some(v),
            _ => None,
        }
    }

    /// Replace the scalar at `i` by `value`, in its own quoting style.
    fn replace(&self, i: usize, value: &str, what: &str) -> Result<String, YamlEditError> {
        let (Event::Scalar(_, style, ..), span) = &self.events[i] else {
            return Err(YamlEditError::Unsupported(format!(
                "{what} is not a scalar (line {})",
                self.events[i].1.start.line()
            )));
        };
        let start = self.byte(span.start.index());
        let rest = &self.text[start..];
        let (len, new) = match style {
            ScalarStyle::Plain => {
                let end = self.byte(span.end.index());
                (self.text[start..end].trim_end().len(), value.to_string())
            }
            // The closing quote, found in the text (the parser's end can run past it).
            ScalarStyle::SingleQuoted => {
                let mut k = 1;
                let b = rest.as_bytes();
                while k < b.len() {
                    if b[k] == b'\'' {
                        if b.get(k + 1) == Some(&b'\'') {
                            k += 2;
                            continue;
                        }
                        break;
                    }
                    k += 1;
                }
                (k + 1, format!("'{value}'"))
            }
            ScalarStyle::DoubleQuoted => {
                let mut k = 1;
                let b = rest.as_bytes();
                while k < b.len() && b[k] != b'"' {
                    k += if b[k] == b'\\' { 2 } else { 1 };
                }
                (k + 1, format!("\"{value}\""))
            }
            _ => {
                return Err(YamlEditError::Unsupported(format!(
                    "{what} is a block scalar (line {}); write it on one line",
                    span.start.line()
                )));
            }
        };
        let end = (start + len).min(self.text.len());
        Ok(format!(
            "{}{}{}",
            &self.text[..start],
            new,
            &self.text[end..]
        ))
    }
}

/// `text` with the scalar at `path` set to `value`; the text unchanged when it already holds it.
pub fn set_path(text: &str, path: &[Step], value: &str) -> Result<String, YamlEditError> {
    let doc = Doc::parse(text)?;
    let shown = show(path);
    let mut at = doc
        .root()
        .ok_or_else(|| YamlEditError::NotFound("the file has no YAML document".into()))?;
    for (n, step) in path.iter().enumerate() {
        let found = match step {
            Step::Key(k) => doc.lookup(at, k).map(|(_, v)| v),
            Step::Index(i) => doc.item(at, *i),
        };
        at = found.ok_or_else(|| {
            YamlEditError::NotFound(format!("{} is not in the file", show(&path[..=n])))
        })?;
    }
    if doc.scalar(at).is_some_and(|v| v == value) {
        return Ok(text.to_string());
    }
    doc.replace(at, value, &shown)
}

/// `text` (a kustomization) with the `images:` entry named `name` set to `digest` (and `newName`
/// to `new_name` when given); a missing `digest:`/`newName:` key is added under `name:`.
pub fn set_kustomize_image(
    text: &str,
    name: &str,
    new_name: Option<&str>,
    digest: &str,
) -> Result<String, YamlEditError> {
    let mut text = text.to_string();
    let keys: Vec<(&str, &str)> = new_name
        .map(|n| ("newName", n))
        .into_iter()
        .chain([("digest", digest)])
        .collect();
    for (key, value) in keys {
        let doc = Doc::parse(&text)?;
        let entry = doc
            .root()
            .and_then(|r| doc.lookup(r, "images"))
            .and_then(|(_, seq)| {
                let mut n = 0;
                while let Some(item) = doc.item(seq, n) {
                    if doc
                        .lookup(item, "name")
                        .and_then(|(_, v)| doc.scalar(v))
                        .is_some_and(|v| v == name)
                    {
                        return Some(item);
                    }
                    n += 1;
                }
                None
            })
            .ok_or_else(|| {
                YamlEditError::NotFound(format!(
                    "it has no images: entry with name: {name} (add one, e.g. `images: [{{name: \
                     {name}}}]`)"
                ))
            })?;
        match doc.lookup(entry, key) {
            Some((_, v)) => {
                if doc.scalar(v).is_none_or(|x| x != value) {
                    text = doc.replace(v, value, &format!("images[name={name}].{key}"))?;
                }
            }
            None => {
                let start = doc.byte(doc.events[entry].1.start.index());
                if text[start..].starts_with('{') {
                    return Err(YamlEditError::Unsupported(format!(
                        "the images: entry {name} is a flow mapping ({{...}}); write it as a \
                         block mapping to let strata add its {key}"
                    )));
                }
                let (key_at, value_at) = doc.lookup(entry, "name").expect("matched by name");
                let indent = doc.events[key_at].1.start.col();
                let after = doc.byte(doc.events[value_at].1.end.index());
                let eol = text[after..].find('\n').map_or(text.len(), |i| after + i);
                let line = format!("\n{}{key}: {value}", " ".repeat(indent));
                text.insert_str(eol, &line);
            }
        }
    }
    Ok(text)
}

/// The scalar at `path`, if there is one.
pub fn get_path(text: &str, path: &[Step]) -> Option<String> {
    let doc = Doc::parse(text).ok()?;
    let mut at = doc.root()?;
    for step in path {
        at = match step {
            Step::Key(k) => doc.lookup(at, k).map(|(_, v)| v),
            Step::Index(i) => doc.item(at, *i),
        }?;
    }
    doc.scalar(at).map(|v| v.to_string())
}

/// The `digest` of the kustomization's `images:` entry named `name`, if it has one.
pub fn get_kustomize_digest(text: &str, name: &str) -> Option<String> {
    let doc = Doc::parse(text).ok()?;
    let (_, seq) = doc.lookup(doc.root()?, "images")?;
    let mut n = 0;
    while let Some(item) = doc.item(seq, n) {
        if doc
            .lookup(item, "name")
            .and_then(|(_, v)| doc.scalar(v))
            .is_some_and(|v| v == name)
        {
            let (_, v) = doc.lookup(item, "digest")?;
            return doc.scalar(v).map(|v| v.to_string());
        }
        n += 1;
    }
    None
}

fn show(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUSTOMIZATION: &str = "\
# prod overlay
resources:
  - ../../base   # the base
images:
  - name: other
    newTag: \"1\"
  - name: acme/wordpress   # follows the chain
    newName: registry.example.com/acme/wordpress
    digest: \"sha256:aaaa\"  # moved by strata
";

    #[test]
    fn a_kustomization_digest_is_replaced_in_place_and_nothing_else_moves() {
        let out =
            set_kustomize_image(KUSTOMIZATION, "acme/wordpress", None, "sha256:bbbb").unwrap();
        assert_eq!(
            out,
            KUSTOMIZATION.replace("\"sha256:aaaa\"", "\"sha256:bbbb\"")
        );
        // the same digest again: the same text
        assert_eq!(
            set_kustomize_image(&out, "acme/wordpress", None, "sha256:bbbb").unwrap(),
            out
        );
    }

    #[test]
    fn a_missing_digest_key_is_added_under_the_name() {
        let text = "images:\n- name: web\n  newTag: v1\nresources: [a.yaml]\n";
        let out = set_kustomize_image(text, "web", Some("r.example/web"), "sha256:cc").unwrap();
        assert_eq!(
            out,
            "images:\n- name: web\n  digest: sha256:cc\n  newName: r.example/web\n  newTag: \
             v1\nresources: [a.yaml]\n"
        );
        let err = set_kustomize_image(text, "db", None, "sha256:cc").unwrap_err();
        assert!(
            err.to_string().contains("no images: entry with name: db"),
            "{err}"
        );
    }

    #[test]
    fn a_plain_yaml_path_is_set_in_its_own_quoting() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      \
                    containers:\n        - name: web\n          image: 'r.example/web:1' # pinned\n";
        let path = parse_path("spec.template.spec.containers[0].image").unwrap();
        let out = set_path(text, &path, "r.example/web@sha256:dd").unwrap();
        assert_eq!(
            out,
            text.replace("'r.example/web:1'", "'r.example/web@sha256:dd'")
        );
        assert_eq!(
            set_path(&out, &path, "r.example/web@sha256:dd").unwrap(),
            out
        );
        let missing = parse_path("spec.template.spec.containers[1].image").unwrap();
        assert_eq!(
            set_path(text, &missing, "x").unwrap_err().to_string(),
            "spec.template.spec.containers[1] is not in the file"
        );
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[x]").is_err());
    }
}
