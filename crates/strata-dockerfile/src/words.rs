//! The argument splitters BuildKit's line parsers use before any expansion: builder flags,
//! quote-preserving words, whitespace lists and the JSON array form.

/// Split leading `--flag[=value]` words off `line`.
///
/// Returns the flags (quotes and escapes removed) with their byte offsets in `line`, and the
/// byte offset where the remaining arguments begin. A bare `--` ends the flags.
pub(crate) fn extract_flags(line: &str, escape: char) -> (Vec<(String, usize)>, usize) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
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
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
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

/// Try `rest` as a JSON array of strings, as Go's `json.Unmarshal` into `[]any` would.
pub(crate) fn parse_json(rest: &str) -> Json {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return Json::Shell;
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
    }
}
