//! `.dockerignore` with Docker's semantics: patterns are matched in order, the last match wins, `!`
//! re-includes, `**` spans directories, and a pattern that matches a directory excludes everything in
//! it (unless a later `!` pattern re-includes a path inside).
//!
//! Written by hand because no maintained crate implements Docker's variant: the `ignore` crate follows
//! gitignore, whose rules differ (unanchored basename matches, `dir/` suffixes). This follows
//! moby/patternmatcher's `MatchesOrParentMatches` and its ignorefile reader.

use regex::Regex;

/// A pattern that does not compile, with its line in the `.dockerignore` file.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: bad pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// 1-based line of the pattern in the file (0 when the pattern was not read from a file).
    pub line: usize,
    /// The pattern as written.
    pub pattern: String,
    /// Why it is rejected.
    pub reason: String,
    /// The regular expression library's error, when the pattern's translation did not compile.
    #[source]
    pub regex: Option<regex::Error>,
}

/// One compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    /// `!pattern`: re-includes what earlier patterns excluded.
    exclusion: bool,
    /// The cleaned pattern text, without the leading `!`.
    text: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact,
    /// `prefix**`
    Prefix(String),
    /// `**suffix`
    Suffix(String),
    Regex(Regex),
}

/// The exclusion patterns of a build context.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parse the text of a `.dockerignore` file: one pattern a line, `#` comments, blank lines ignored.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let mut patterns = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (exclusion, rest) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            if exclusion && rest.is_empty() {
                return Err(PatternError {
                    line: index + 1,
                    pattern: trimmed.to_string(),
                    reason: "illegal exclusion pattern \"!\"".to_string(),
                    regex: None,
                });
            }
            let mut cleaned = clean_path(rest);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let matcher = compile(&cleaned).map_err(|(reason, regex)| PatternError {
                line: index + 1,
                pattern: trimmed.to_string(),
                reason: reason.to_string(),
                regex,
            })?;
            patterns.push(Pattern {
                exclusion,
                text: cleaned,
                matcher,
            });
        }
        Ok(Self { patterns })
    }

    /// True when no pattern is set.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when some pattern is an exception (`!`): a directory that is excluded may still hold
    /// re-included files, so a walk must descend into it.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative to the context root, `/`-separated) is excluded: it, or one of its
    /// parent directories, matches a pattern, and no later exception re-includes it.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean_path(path);
        if path == "." {
            return false;
        }
        let parents: Vec<&str> = match path.rfind('/') {
            Some(pos) => path[..pos].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            // An inclusion cannot change an already-excluded path, nor an exception a kept one.
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(&path);
            if !hit {
                for i in 0..parents.len() {
                    if pattern.matches(&parents[..=i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether an exception pattern could re-include something under directory `dir`, so an
    /// excluded directory still has to be walked.
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let dir = clean_path(dir);
        self.patterns.iter().any(|p| {
            p.exclusion
                && (p.text.starts_with(&format!("{dir}/"))
                    || p.text.contains('*')
                    || p.text.contains('?')
                    || p.text.contains('['))
        })
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            Matcher::Regex(re) => re.is_match(path),
        }
    }
}

/// Lexically clean a `/`-separated path as Go's `filepath.Clean` does: drop `.` and empty components,
/// resolve `..` against earlier components, keep a leading `/`.
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Compile one cleaned pattern the way patternmatcher does: exact, `x**` prefix, `**x` suffix, or a
/// regular expression where `*` and `?` never cross `/` and `**` spans any number of directories.
/// An error is what is wrong, and the regular expression library's error when that is the cause.
fn compile(pattern: &str) -> Result<Matcher, (&'static str, Option<regex::Error>)> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut regex = String::from("^");
    let mut kind = Kind::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let ch = chars[i];
        let first = i == 0;
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        regex.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    regex.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                regex.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                regex.push_str("[^/]");
                kind = Kind::Regex;
            }
            '\\' => {
                if let Some(next) = chars.get(i) {
                    regex.push_str(&regex::escape(&next.to_string()));
                    i += 1;
                    kind = Kind::Regex;
                } else {
                    regex.push_str("\\\\");
                }
            }
            '[' => {
                in_class = true;
                regex.push('[');
                if chars.get(i) == Some(&'^') || chars.get(i) == Some(&'!') {
                    regex.push('^');
                    i += 1;
                }
                kind = Kind::Regex;
            }
            ']' => {
                in_class = false;
                regex.push(']');
                kind = Kind::Regex;
            }
            c if in_class => regex.push(c),
            c => regex.push_str(&regex::escape(&c.to_string())),
        }
    }
    if in_class {
        return Err(("unterminated character class", None));
    }
    match kind {
        Kind::Exact => Ok(Matcher::Exact),
        Kind::Prefix => Ok(Matcher::Prefix(pattern[..pattern.len() - 2].to_string())),
        Kind::Suffix => Ok(Matcher::Suffix(pattern[2..].to_string())),
        Kind::Regex => {
            regex.push('$');
            Regex::new(&regex)
                .map(Matcher::Regex)
                .map_err(|e| ("invalid pattern", Some(e)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn exact_and_parent_directory_matches() {
        let di = ignore("node_modules\n/build\n");
        assert!(di.is_excluded("node_modules"));
        assert!(di.is_excluded("node_modules/a/b.js"));
        assert!(di.is_excluded("build/out.o"));
        assert!(!di.is_excluded("src/node_modules")); // not a gitignore basename match
        assert!(!di.is_excluded("buildx"));
    }

    #[test]
    fn single_star_does_not_cross_directories() {
        let di = ignore("*.log\n");
        assert!(di.is_excluded("a.log"));
        assert!(!di.is_excluded("dir/a.log"));
        let di = ignore("*/*.log\n");
        assert!(di.is_excluded("dir/a.log"));
        assert!(!di.is_excluded("a/b/c.log"));
    }

    #[test]
    fn double_star_spans_any_depth() {
        let di = ignore("**/*.tmp\n");
        assert!(di.is_excluded("x.tmp"));
        assert!(di.is_excluded("a/b/c/x.tmp"));
        let di = ignore("docs/**\n");
        assert!(di.is_excluded("docs/a"));
        assert!(di.is_excluded("docs/a/b"));
        let di = ignore("a/**/z\n");
        assert!(di.is_excluded("a/z"));
        assert!(di.is_excluded("a/b/c/z"));
        assert!(!di.is_excluded("b/z"));
    }

    #[test]
    fn last_match_wins_and_exceptions_reinclude() {
        let di = ignore("*.md\n!README.md\n");
        assert!(di.is_excluded("CHANGES.md"));
        assert!(!di.is_excluded("README.md"));
        // Order matters: a later exclusion beats an earlier exception.
        let di = ignore("!README.md\n*.md\n");
        assert!(di.is_excluded("README.md"));
        let di = ignore("secrets\n!secrets/public.pem\n");
        assert!(di.is_excluded("secrets/key.pem"));
        assert!(!di.is_excluded("secrets/public.pem"));
        assert!(di.has_exceptions());
        assert!(di.may_reinclude_under("secrets"));
    }

    #[test]
    fn comments_blank_lines_and_cleaning() {
        let di = ignore("# a comment\n\n  ./tmp/../cache  \n");
        assert!(di.is_excluded("cache/x"));
        assert!(!di.is_excluded("tmp"));
        assert!(!di.is_excluded("# a comment"));
    }

    #[test]
    fn character_classes_and_escapes() {
        let di = ignore("file[0-9].txt\n\\*literal\n");
        assert!(di.is_excluded("file3.txt"));
        assert!(!di.is_excluded("filex.txt"));
        assert!(di.is_excluded("*literal"));
        assert!(!di.is_excluded("xliteral"));
    }

    #[test]
    fn bad_patterns_name_their_line() {
        let err = DockerIgnore::parse("ok\n!\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = DockerIgnore::parse("a\nb\n[abc\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.to_string().starts_with("line 3: bad pattern"));
    }

    #[test]
    fn clean_path_matches_go() {
        assert_eq!(clean_path("a/./b/../c"), "a/c");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path("../x"), "../x");
        assert_eq!(clean_path(""), ".");
        assert_eq!(clean_path("a//b/"), "a/b");
    }
}
