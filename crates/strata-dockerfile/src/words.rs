//! The argument splitters BuildKit's line parsers use before any expansion: builder flags,
//! quote-preserving words, whitespace lists and the JSON array form.

/// Where a word tokenizer is: between words, in an unquoted word, or inside quotes.
#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote(char),
}

/// Split leading `--flag[=value]` words off `line`.
///
/// Returns the flags (quotes and escapes removed) with their byte offsets in `line`, and the
/// byte offset where the remaining arguments begin. A bare `--` ends the flags.
pub(crate) fn extract_flags(line: &str, escape: char) -> (Vec<(String, usize)>, usize) {
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut start = 0;
    let mut blank_ok = false;
    let mut iter = line.char_indices().peekable();
    while let Some((pos, ch)) = iter.next() {
        match phase {
            Phase::Spaces => {
                if ch.is_whitespace() {
                    continue;
                }
                if !line[pos..].starts_with("--") {
                    return (flags, pos);
                }
                phase = Phase::Word;
                start = pos;
                word.clear();
                blank_ok = false;
                word.push(ch);
            }
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (flags, pos);
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push((std::mem::take(&mut word), start));
                    }
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                    continue;
                }
                if ch == escape {
                    match iter.next() {
                        Some((_, c)) => word.push(c),
                        None => continue,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                    continue;
                }
                if ch == escape {
                    match iter.next() {
                        Some((_, c)) => word.push(c),
                        None => {
                            phase = Phase::Word;
                            continue;
                        }
                    }
                    continue;
                }
                word.push(ch);
            }
        }
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        flags.push((word, start));
    }
    (flags, line.len())
}

/// Split into words on whitespace, keeping quotes and escapes (BuildKit's `parseWords`), with
/// each word's byte offset.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<(String, usize)> {
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut start = 0;
    let mut blank_ok = false;
    let mut iter = rest.char_indices().peekable();
    while let Some((pos, ch)) = iter.next() {
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            phase = Phase::Word;
            start = pos;
        }
        match phase {
            Phase::Spaces => {}
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push((std::mem::take(&mut word), start));
                    }
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    match iter.next() {
                        None => continue,
                        Some((_, c)) => {
                            word.push(ch);
                            word.push(c);
                            continue;
                        }
                    }
                }
                word.push(ch);
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                }
                if ch == escape && q != '\'' {
                    match iter.next() {
                        None => {
                            phase = Phase::Word;
                            continue;
                        }
                        Some((_, c)) => {
                            word.push(ch);
                            word.push(c);
                            continue;
                        }
                    }
                }
                word.push(ch);
            }
        }
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push((word, start));
    }
    words
}

/// Split on runs of `[\t\v\f\r ]`, with byte offsets (BuildKit's `reWhitespace`).
pub(crate) fn split_whitespace(rest: &str) -> Vec<(String, usize)> {
    let is_ws = |c: char| matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ');
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in rest.char_indices() {
        match (is_ws(c), start) {
            (true, Some(s)) => {
                out.push((rest[s..i].to_string(), s));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((rest[s..].to_string(), s));
    }
    out
}

/// The outcome of trying the JSON array form.
pub(crate) enum Json {
    /// Not a JSON array of any kind: use the shell form.
    Shell,
    /// A JSON array of strings.
    Strings(Vec<String>),
    /// A valid JSON array holding something other than strings.
    NotStrings,
}

/// Go's `encoding/json` refuses input nested deeper than this ("exceeded max depth").
const GO_JSON_MAX_DEPTH: usize = 10_000;

/// Try `rest` as a JSON array of strings, as Go's `json.Unmarshal` into `[]any` would.
///
/// Nested arrays are valid JSON but not strings (BuildKit's "arrays must be comprised of
/// strings only" error) up to Go's depth limit; deeper, Go fails to parse and BuildKit takes
/// the shell form. The depth is measured without recursion, so no input exhausts the stack
/// (serde_json itself stops at 128 levels).
pub(crate) fn parse_json(rest: &str) -> Json {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return Json::Shell;
    }
    match json_depth(t) {
        None => return Json::Shell,
        Some(d) if d > GO_JSON_MAX_DEPTH => return Json::Shell,
        Some(d) if d > 1 => return Json::NotStrings,
        Some(_) => {}
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(t) {
        Err(_) => Json::Shell,
        Ok(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Strings(out)
        }
    }
}

/// The deepest nesting of arrays and objects in `s` when it is one valid JSON value (Go's
/// grammar, surrounding whitespace allowed), None when it is not. Iterative.
fn json_depth(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut stack: Vec<u8> = Vec::new();
    let mut max = 0;
    'value: loop {
        skip_ws(b, &mut i);
        match *b.get(i)? {
            open @ (b'[' | b'{') => {
                i += 1;
                stack.push(open);
                max = max.max(stack.len());
                skip_ws(b, &mut i);
                let close = if open == b'[' { b']' } else { b'}' };
                if b.get(i) == Some(&close) {
                    i += 1;
                    stack.pop();
                } else {
                    if open == b'{' {
                        i = json_key(b, i)?;
                    }
                    continue 'value;
                }
            }
            b'"' => i = json_string(b, i)?,
            b't' => i = json_literal(b, i, b"true")?,
            b'f' => i = json_literal(b, i, b"false")?,
            b'n' => i = json_literal(b, i, b"null")?,
            b'-' | b'0'..=b'9' => i = json_number(b, i)?,
            _ => return None,
        }
        // after a value: close containers or go on to the next element
        loop {
            skip_ws(b, &mut i);
            let Some(&open) = stack.last() else {
                return (i == b.len()).then_some(max);
            };
            let close = if open == b'[' { b']' } else { b'}' };
            match *b.get(i)? {
                b',' => {
                    i += 1;
                    if open == b'{' {
                        skip_ws(b, &mut i);
                        i = json_key(b, i)?;
                    }
                    continue 'value;
                }
                c if c == close => {
                    i += 1;
                    stack.pop();
                }
                _ => return None,
            }
        }
    }
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
        *i += 1;
    }
}

/// `"key"` then `:`; returns the position after the colon.
fn json_key(b: &[u8], i: usize) -> Option<usize> {
    let mut i = json_string(b, i)?;
    skip_ws(b, &mut i);
    (b.get(i) == Some(&b':')).then_some(i + 1)
}

fn json_string(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = b.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
}

fn json_literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn json_number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => {
            digits(&mut i);
        }
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(v: &[(String, usize)]) -> Vec<&str> {
        v.iter().map(|(s, _)| s.as_str()).collect()
    }

    #[test]
    fn flags_stop_at_first_non_flag() {
        let (f, rest) = extract_flags("--from=build --chown=\"a b\" src dst", '\\');
        assert_eq!(w(&f), vec!["--from=build", "--chown=a b"]);
        assert_eq!(&"--from=build --chown=\"a b\" src dst"[rest..], "src dst");
        let (f, rest) = extract_flags("--link -- --weird dst", '\\');
        assert_eq!(w(&f), vec!["--link"]);
        assert_eq!(&"--link -- --weird dst"[rest..], " --weird dst");
        let (f, rest) = extract_flags("--mount=type=cache", '\\');
        assert_eq!(w(&f), vec!["--mount=type=cache"]);
        assert_eq!(rest, 18);
    }

    #[test]
    fn words_keep_quotes() {
        let v = parse_words("a=\"b c\" d='e f' g\\ h", '\\');
        assert_eq!(w(&v), vec!["a=\"b c\"", "d='e f'", "g\\ h"]);
        assert_eq!(v[1].1, 8);
    }

    #[test]
    fn json_forms() {
        assert!(matches!(parse_json(r#"["a", "b c"]"#), Json::Strings(v) if v == ["a", "b c"]));
        assert!(matches!(parse_json(r#"["a", 1]"#), Json::NotStrings));
        assert!(matches!(parse_json(r#"["a", "b""#), Json::Shell));
        assert!(matches!(parse_json("['a']"), Json::Shell));
        assert!(matches!(parse_json("echo [x]"), Json::Shell));
        assert!(matches!(
            parse_json(r#"["a", {"k": [1, -2.5e3, true, null]}]"#),
            Json::NotStrings
        ));
        assert!(matches!(parse_json(r#"["a", {"k" 1}]"#), Json::Shell));
        assert!(matches!(parse_json(r#"["a\u00e9\n"] "#), Json::Strings(v) if v == ["a\u{e9}\n"]));
        assert!(matches!(parse_json(r#"[01]"#), Json::Shell));
        assert!(matches!(parse_json("[\"a\"] x"), Json::Shell));
    }

    #[test]
    fn json_depths() {
        assert_eq!(json_depth("[]"), Some(1));
        assert_eq!(json_depth(r#" [[], {"a": [{}]}] "#), Some(4));
        assert_eq!(json_depth("[[]"), None);
        assert_eq!(json_depth("[1,]"), None);
        assert_eq!(json_depth(r#"{"a":1,}"#), None);
        assert_eq!(json_depth("[\"\t\"]"), None);
    }
}
