//! Lexing: parser directives, comments, line continuations and heredoc bodies.
//!
//! The rules are BuildKit's (`frontend/dockerfile/parser/parser.go`):
//! - directives (`# syntax=`, `# escape=`, `# check=`) are read only until the first line that
//!   is not one (a blank line, another comment or an instruction ends them);
//! - a line whose last non-blank character is the escape character (not itself escaped)
//!   continues on the next line; the escape character and trailing blanks are dropped, the
//!   pieces are joined as they are (no space added), and continuation lines keep their
//!   leading whitespace;
//! - inside a continuation, comment lines and blank lines are skipped (a blank one is warned
//!   about, as BuildKit does);
//! - heredoc bodies follow the instruction's last line and end at a line equal to the
//!   delimiter (after stripping leading tabs for `<<-`).

use serde::Serialize;

use crate::Error;
use crate::shell::{Lexer, NoEnv};

/// The parser directives found at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    /// `# syntax=` (the frontend image; recorded, not acted upon).
    pub syntax: Option<String>,
    /// `# escape=`: `\` (the default) or `` ` ``.
    pub escape: char,
    /// `# check=` as written (lint configuration; parsed into `check_options`, not acted
    /// upon).
    pub check: Option<String>,
    /// `# check=` parsed as BuildKit's linter reads it (None without the directive).
    pub check_options: Option<CheckOptions>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
            check_options: None,
        }
    }
}

/// The `# check=skip=...;error=...;experimental=...` directive (BuildKit's
/// `linter.ParseLintOptions`). Recorded: strata produces no lint warnings to filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckOptions {
    /// `skip=all`.
    pub skip_all: bool,
    /// `skip=Rule1,Rule2`.
    pub skip: Vec<String>,
    /// `experimental=all`.
    pub experimental_all: bool,
    /// `experimental=Rule1,Rule2`.
    pub experimental: Vec<String>,
    /// `error=true`: lint warnings fail the build.
    pub error: bool,
}

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl CheckOptions {
    /// Parse the directive's first word, as BuildKit does: up to three `;`-separated
    /// `key=value` options, keys `skip`, `experimental` and `error`.
    pub fn parse(value: &str) -> Result<CheckOptions, String> {
        let value = value.trim();
        let mut out = CheckOptions::default();
        if value.is_empty() {
            return Ok(out);
        }
        let list = |v: &str| v.split(',').map(|r| r.trim().to_string()).collect();
        for part in value.splitn(3, ';') {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("invalid check option {part:?}"));
            };
            let v = v.trim();
            match k.trim() {
                "skip" if v == "all" => out.skip_all = true,
                "skip" => out.skip = list(v),
                "experimental" if v == "all" => out.experimental_all = true,
                "experimental" => out.experimental = list(v),
                "error" => {
                    out.error = go_bool(v).ok_or_else(|| {
                        format!(
                            "failed to parse check option {part:?}: strconv.ParseBool: parsing {v:?}: invalid syntax"
                        )
                    })?
                }
                k => return Err(format!("invalid check option {k:?}")),
            }
        }
        Ok(out)
    }
}

/// The `syntax` and `check` directives as BuildKit's frontend reads them
/// (`parser.ParseDirective`): after the byte-order mark and a first `#!` line, each line
/// starting with `#` (no leading blanks) that is a directive, until the first that is not;
/// the first of duplicates wins. Returns each value with its 1-based line.
pub(crate) struct FrontendDirectives {
    pub syntax: Option<(String, usize)>,
    pub check: Option<(String, usize)>,
}

pub(crate) fn frontend_directives(text: &str) -> FrontendDirectives {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = FrontendDirectives {
        syntax: None,
        check: None,
    };
    let mut seen: Vec<String> = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if i == 0 && line.starts_with("#!") {
            continue;
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        let Some((name, value)) = match_directive(line) else {
            break;
        };
        if !matches!(name.as_str(), "syntax" | "escape" | "check") || seen.contains(&name) {
            break;
        }
        seen.push(name.clone());
        match name.as_str() {
            "syntax" => out.syntax = Some((value, i + 1)),
            "check" => out.check = Some((value, i + 1)),
            _ => {}
        }
    }
    out
}

/// Something accepted but suspicious, as BuildKit warns about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Where a piece of a logical line came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Segment {
    /// Byte offset in the logical line.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column of the piece's first character.
    pub column: usize,
}

/// Maps byte offsets of a logical line back to `line:column`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Locator {
    pub text: String,
    pub segments: Vec<Segment>,
}

impl Locator {
    /// `(line, column)` of byte `offset` in the logical line.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let Some(seg) = self.segments.iter().rev().find(|s| s.offset <= offset) else {
            return (1, 1);
        };
        let chars = self
            .text
            .get(seg.offset..offset)
            .map_or(0, |s| s.chars().count());
        (seg.line, seg.column + chars)
    }

    /// `(line, column)` of the first occurrence of `needle` at or after byte `from`, if any.
    pub fn find(&self, needle: &str, from: usize) -> Option<(usize, usize)> {
        if needle.is_empty() {
            return None;
        }
        let from = from.min(self.text.len());
        let rest = self.text.get(from..)?;
        rest.find(needle).map(|i| self.position(from + i))
    }
}

/// One instruction's text after joining continuations.
#[derive(Debug, Clone)]
pub(crate) struct LogicalLine {
    pub locator: Locator,
    pub start_line: usize,
    pub end_line: usize,
}

/// A heredoc as declared on an instruction line: `[fd]<<[-]WORD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeredocSpec {
    pub name: String,
    pub expand: bool,
    pub chomp: bool,
    pub fd: u32,
}

/// Reads physical lines into logical lines and heredoc bodies.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    /// Each physical line with its line ending, and its byte offset in `text`.
    lines: Vec<(&'a str, usize)>,
    next: usize,
    directives: Directives,
    directives_done: bool,
    seen: Vec<String>,
    pub warnings: Vec<Warning>,
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Go's `\s` in RE2: `[\t\n\f\r ]`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// Match `#\s*NAME\s*=\s*VALUE` where NAME is `[a-zA-Z][a-zA-Z0-9]*`.
fn match_directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let mut chars = rest.char_indices();
    let (_, first) = chars.next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let end = rest
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
        .map_or(rest.len(), |(i, _)| i);
    let name = &rest[..end];
    let after = rest[end..].trim_start_matches(is_re_space);
    let after = after.strip_prefix('=')?;
    let value = after.trim_start_matches(is_re_space);
    let trimmed = value.trim_end_matches(is_re_space);
    let value = if !trimmed.is_empty() {
        trimmed.to_string()
    } else if let Some(last) = after.chars().last() {
        // `(.+?)\s*$` needs one character: the regex takes the last blank
        last.to_string()
    } else {
        return None;
    };
    Some((name.to_ascii_lowercase(), value))
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut lines = Vec::new();
        let mut start = 0;
        let bytes = text.as_bytes();
        while start < text.len() {
            let end = bytes[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |i| start + i + 1);
            lines.push((&text[start..end], start));
            start = end;
        }
        if let Some(first) = lines.first_mut()
            && let Some(rest) = first.0.strip_prefix('\u{feff}')
        {
            first.0 = rest;
            first.1 += '\u{feff}'.len_utf8();
        }
        Scanner {
            text,
            lines,
            next: 0,
            directives: Directives::default(),
            directives_done: false,
            seen: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn directives(&self) -> &Directives {
        &self.directives
    }

    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// The number of lines read so far (the current 1-based line).
    pub fn line(&self) -> usize {
        self.next
    }

    /// The exact source of lines `start..=end` (1-based), without the last line ending.
    pub fn source(&self, start: usize, end: usize) -> &'a str {
        let (Some(first), Some(last)) = (self.lines.get(start - 1), self.lines.get(end - 1)) else {
            return "";
        };
        let from = first.1;
        let to = last.1 + trim_newline(last.0).len();
        self.text.get(from..to).unwrap_or("")
    }

    /// Look for a directive on `token`; returns whether it was one.
    fn directive(&mut self, token: &str, line: usize) -> Result<bool, Error> {
        if self.directives_done {
            return Ok(false);
        }
        let Some((name, value)) = match_directive(token) else {
            self.directives_done = true;
            return Ok(false);
        };
        if !matches!(name.as_str(), "syntax" | "escape" | "check") {
            self.directives_done = true;
            return Ok(false);
        }
        if self.seen.contains(&name) {
            return Err(Error::new(
                line,
                1,
                None,
                format!("only one {name} parser directive can be used"),
            ));
        }
        self.seen.push(name.clone());
        match name.as_str() {
            "escape" => match value.as_str() {
                "\\" => self.directives.escape = '\\',
                "`" => self.directives.escape = '`',
                _ => {
                    return Err(Error::new(
                        line,
                        1,
                        None,
                        format!("invalid escape token '{value}' does not match ` or \\"),
                    ));
                }
            },
            "syntax" => self.directives.syntax = Some(value),
            _ => self.directives.check = Some(value),
        }
        Ok(true)
    }

    /// Drop a trailing continuation character: `Some(text)` when the line continues.
    fn continuation<'s>(&self, line: &'s str) -> Option<&'s str> {
        let e = self.directives.escape;
        let trimmed = line.trim_end_matches([' ', '\t']);
        let before = trimmed.strip_suffix(e)?;
        match before.chars().last() {
            Some(c) if c == e => None,
            _ => Some(before),
        }
    }

    /// The next logical line, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<LogicalLine>, Error> {
        while self.next < self.lines.len() {
            let (raw, _) = self.lines[self.next];
            self.next += 1;
            let line_no = self.next;
            let no_nl = trim_newline(raw);
            let token = no_nl.trim_start();
            let lead = no_nl[..no_nl.len() - token.len()].chars().count();
            self.directive(token, line_no)?;
            let token = if is_comment(token) { "" } else { token };
            let (first, mut more) = match self.continuation(token) {
                Some(t) => (t, true),
                None => (token, false),
            };
            if !more && first.is_empty() {
                continue;
            }
            let mut loc = Locator {
                text: first.to_string(),
                segments: vec![Segment {
                    offset: 0,
                    line: line_no,
                    column: lead + 1,
                }],
            };
            let mut empty_continuation = false;
            while more && self.next < self.lines.len() {
                let (raw, _) = self.lines[self.next];
                self.next += 1;
                let line_no = self.next;
                let piece = trim_newline(raw);
                self.directive(piece, line_no)?;
                if is_comment(raw) {
                    continue;
                }
                if piece.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let piece = match self.continuation(piece) {
                    Some(t) => t,
                    None => {
                        more = false;
                        piece
                    }
                };
                loc.segments.push(Segment {
                    offset: loc.text.len(),
                    line: line_no,
                    column: 1,
                });
                loc.text.push_str(piece);
            }
            if empty_continuation {
                self.warnings.push(Warning {
                    line: self.next,
                    message: format!("Empty continuation line found in: {}", loc.text),
                });
            }
            return Ok(Some(LogicalLine {
                locator: loc,
                start_line: line_no,
                end_line: self.next,
            }));
        }
        Ok(None)
    }

    /// Read a heredoc body after the current line. `start_line` is the instruction's first line.
    pub fn heredoc_body(
        &mut self,
        spec: &HeredocSpec,
        start_line: usize,
        instruction: &str,
    ) -> Result<String, Error> {
        let mut content = String::new();
        while self.next < self.lines.len() {
            let (raw, _) = self.lines[self.next];
            self.next += 1;
            let mut candidate = trim_newline(raw);
            if spec.chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == spec.name {
                return Ok(content);
            }
            content.push_str(raw);
        }
        Err(Error::new(
            start_line,
            1,
            Some(instruction),
            format!("unterminated heredoc {}", spec.name),
        ))
    }
}

/// The heredocs declared on an instruction line, as BuildKit finds them: the line is split
/// into words (quotes and escapes kept) and each word of the form `[fd]<<[-]WORD` is one.
pub(crate) fn heredocs_in(line: &str) -> Result<Vec<HeredocSpec>, String> {
    let lex = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        ..Lexer::new('\\')
    };
    // BuildKit ignores lexing errors here (no heredocs then), but it has no nesting limit
    let words = match lex.expand_words(line, &NoEnv) {
        Ok(words) => words,
        Err(e) if e.is_nesting_limit() => return Err(e.0),
        Err(_) => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for word in words {
        if let Some(spec) = heredoc_word(&word)? {
            out.push(spec);
        }
    }
    Ok(out)
}

/// Parse one word as a heredoc declaration (`^(\d*)<<(-?)\s*([^<]*)$`).
pub(crate) fn heredoc_word(word: &str) -> Result<Option<HeredocSpec>, String> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(is_re_space);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = if digits == 0 {
        0
    } else {
        word[..digits].parse::<u32>().unwrap_or(0)
    };
    let mut lex = Lexer {
        skip_unset: true,
        ..Lexer::new('\\')
    };
    let words = lex.expand_words(rest, &NoEnv).map_err(|e| e.0)?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.expand_words(rest, &NoEnv).map_err(|e| e.0)?;
    if raw.len() != 1 {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = quotes(&words[0]) == quotes(&raw[0]);
    Ok(Some(HeredocSpec {
        name: words[0].clone(),
        expand,
        chomp,
        fd,
    }))
}

/// Strip leading tabs from every line (`<<-`).
pub(crate) fn chomp(content: &str) -> String {
    let mut out = String::with_capacity(content.len());
    for line in content.split_inclusive('\n') {
        out.push_str(line.trim_start_matches('\t'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(String, usize, usize)> {
        let mut s = Scanner::new(text);
        let mut out = Vec::new();
        while let Some(l) = s.next_line().unwrap() {
            out.push((l.locator.text, l.start_line, l.end_line));
        }
        out
    }

    #[test]
    fn continuations_join_without_spaces() {
        let got = lines("RUN a \\\n    b \\  \n\tc\nRUN d\n");
        assert_eq!(
            got,
            vec![
                ("RUN a     b \tc".to_string(), 1, 3),
                ("RUN d".to_string(), 4, 4)
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines_inside_continuations() {
        let mut s = Scanner::new("RUN a \\\n# comment\n\n  b\n");
        let l = s.next_line().unwrap().unwrap();
        assert_eq!(l.locator.text, "RUN a   b");
        assert_eq!((l.start_line, l.end_line), (1, 4));
        assert_eq!(s.warnings.len(), 1);
        assert_eq!(s.warnings[0].line, 4);
    }

    #[test]
    fn escaped_escape_does_not_continue() {
        assert_eq!(
            lines("RUN echo \\\\\nRUN b"),
            vec![
                ("RUN echo \\\\".to_string(), 1, 1),
                ("RUN b".to_string(), 2, 2)
            ]
        );
    }

    #[test]
    fn lone_escape_line_continues() {
        assert_eq!(lines("RUN a\\\n\\\nb"), vec![("RUN ab".to_string(), 1, 3)]);
    }

    #[test]
    fn continuation_at_eof() {
        assert_eq!(lines("RUN a \\"), vec![("RUN a ".to_string(), 1, 1)]);
    }

    #[test]
    fn comment_ending_in_escape_does_not_continue() {
        assert_eq!(lines("# note \\\nRUN a"), vec![("RUN a".to_string(), 2, 2)]);
    }

    #[test]
    fn directives_only_at_top() {
        let mut s =
            Scanner::new("# syntax=docker/dockerfile:1\n#escape = `\nFROM a\n# escape=\\\n");
        while s.next_line().unwrap().is_some() {}
        assert_eq!(s.directives().escape, '`');
        assert_eq!(
            s.directives().syntax.as_deref(),
            Some("docker/dockerfile:1")
        );

        let mut s = Scanner::new("\n# escape=`\nFROM a\n");
        while s.next_line().unwrap().is_some() {}
        assert_eq!(s.directives().escape, '\\');

        let mut s = Scanner::new("# escape=`\n# escape=`\n");
        let e = s.next_line().unwrap_err();
        assert_eq!(
            e.to_string(),
            "2:1: only one escape parser directive can be used"
        );

        let mut s = Scanner::new("# escape=x\n");
        assert!(
            s.next_line()
                .unwrap_err()
                .to_string()
                .contains("invalid escape token 'x'")
        );
    }

    #[test]
    fn backtick_continuation() {
        let mut s = Scanner::new("# escape=`\nRUN dir c:\\ `\n  /b\n");
        let l = s.next_line().unwrap().unwrap();
        assert_eq!(l.locator.text, "RUN dir c:\\   /b");
    }

    #[test]
    fn columns_follow_segments() {
        let mut s = Scanner::new("  RUN a \\\n   bad\n");
        let l = s.next_line().unwrap().unwrap();
        assert_eq!(l.locator.position(0), (1, 3));
        let at = l.locator.text.find("bad").unwrap();
        assert_eq!(l.locator.position(at), (2, 4));
    }

    #[test]
    fn heredoc_words() {
        let h = heredocs_in("RUN <<EOF cat <<-\"END\" 3<<'x' >out").unwrap();
        let names: Vec<_> = h
            .iter()
            .map(|h| (h.name.as_str(), h.expand, h.chomp, h.fd))
            .collect();
        assert_eq!(
            names,
            vec![
                ("EOF", true, false, 0),
                ("END", false, true, 0),
                ("x", false, false, 3)
            ]
        );
        assert!(heredocs_in("RUN echo '<<EOF'").unwrap().is_empty());
        // `<< b` is a heredoc named b, as in BuildKit
        assert_eq!(heredocs_in("RUN a << b").unwrap()[0].name, "b");
    }

    #[test]
    fn heredoc_bodies() {
        let mut s = Scanner::new("RUN <<-EOF\n\techo hi\n\tEOF\nRUN x\n");
        let l = s.next_line().unwrap().unwrap();
        let spec = heredocs_in(&l.locator.text).unwrap().remove(0);
        let body = s.heredoc_body(&spec, l.start_line, "RUN").unwrap();
        assert_eq!(body, "\techo hi\n");
        assert_eq!(chomp(&body), "echo hi\n");
        assert_eq!(s.next_line().unwrap().unwrap().locator.text, "RUN x");
        let mut s = Scanner::new("RUN <<EOF\necho\n");
        let l = s.next_line().unwrap().unwrap();
        let spec = heredocs_in(&l.locator.text).unwrap().remove(0);
        let e = s.heredoc_body(&spec, l.start_line, "RUN").unwrap_err();
        assert_eq!(e.to_string(), "1:1: RUN: unterminated heredoc EOF");
    }
}
