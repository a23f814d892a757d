//! Shell word splitting and variable expansion, as BuildKit's `shell.Lex` does it.
//!
//! This is not a shell: it removes quotes, honours the escape character and expands `$VAR`,
//! `${VAR}` and the modifiers `${VAR:-w} ${VAR-w} ${VAR:+w} ${VAR+w} ${VAR:?msg} ${VAR?msg}`,
//! `${VAR#pat} ${VAR##pat} ${VAR%pat} ${VAR%%pat} ${VAR/pat/repl} ${VAR//pat/repl}`.
//! Unset variables expand to the empty string. Single quotes are literal; inside double quotes
//! the escape character only escapes `"`, `$` and itself.

use std::fmt;

/// The deepest nesting of `${...}` words expanded (`${a:-${b:-...}}`). BuildKit has no limit
/// (Go stacks grow); strata refuses deeper input with an error instead of overflowing the
/// stack. Measured in a debug build, the worst case (`${a:-"${a:-"...`) at this depth needs
/// between 512 and 640 KiB of stack: a 2 MiB test thread has over 3x that
/// (`tests/buildkit_agreement.rs` runs it there).
pub const MAX_NESTING: usize = 100;

/// The variables an expansion can see.
pub trait Env {
    /// The value of `name`, or `None` when it is unset.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        <[(String, String)] as Env>::get(self.as_slice(), name)
    }
}

impl Env for std::collections::BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        std::collections::BTreeMap::get(self, name).map(String::as_str)
    }
}

/// An environment where nothing is set.
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Why an expansion failed. Displayed as BuildKit words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellError(pub String);

impl fmt::Display for ShellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShellError {}

impl ShellError {
    /// Whether the input nests substitutions deeper than [`MAX_NESTING`] (BuildKit would have
    /// expanded it: callers must not mistake this for a syntax error to ignore).
    pub fn is_nesting_limit(&self) -> bool {
        self.0.ends_with(NESTING_MESSAGE)
    }
}

const NESTING_MESSAGE: &str = "levels are not supported";

/// The largest result one expansion may produce. BuildKit has no limit, but `ENV A=$A$A`
/// repeated doubles a value per line and would exhaust memory: strata refuses instead.
pub const MAX_EXPANSION: usize = 16 << 20;

/// The pattern matching steps one expansion may take (`${A//a*b/x}` is quadratic in the
/// length of A). Ordinary values use a tiny fraction of it.
const MAX_PATTERN_WORK: u64 = 50_000_000;

fn check_size(len: usize) -> Result<(), ShellError> {
    if len > MAX_EXPANSION {
        return err(format!(
            "the expansion is larger than {} MiB",
            MAX_EXPANSION >> 20
        ));
    }
    Ok(())
}

fn err<T>(msg: impl Into<String>) -> Result<T, ShellError> {
    Err(ShellError(msg.into()))
}

/// A configured lexer: the escape character and BuildKit's switches.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    /// `\` or `` ` ``.
    pub escape: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters.
    pub skip_quotes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset: bool,
}

impl Lexer {
    /// A lexer with the given escape character and BuildKit's defaults.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_quotes: false,
            skip_unset: false,
        }
    }

    /// Expand `word` into one string (quotes removed, no splitting).
    pub fn expand<E: Env + ?Sized>(&self, word: &str, env: &E) -> Result<String, ShellError> {
        let (s, _) = self.process(word, env, false)?;
        Ok(s)
    }

    /// Expand `word` and split it into words on unquoted whitespace.
    pub fn expand_words<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<Vec<String>, ShellError> {
        let (_, words) = self.process(word, env, true)?;
        Ok(words)
    }

    fn process<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
        split: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let mut w = Word {
            lex: self,
            src: word,
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            split,
            depth: 0,
            work: MAX_PATTERN_WORK,
        };
        let raw = self.raw_escapes;
        w.stop_on(None, raw)
            .map_err(|e| ShellError(format!("failed to process {word:?}: {}", e.0)))
    }
}

struct Word<'a, E: ?Sized> {
    lex: &'a Lexer,
    /// The text and the byte position in it.
    src: &'a str,
    pos: usize,
    env: &'a E,
    raw_escapes: bool,
    /// Whether to split into words (`expand_words`) or only join (`expand`).
    split: bool,
    /// How many `${...}` words are open around the current position.
    depth: usize,
    /// Pattern matching steps left for this expansion (`${A//pat/x}` on a long value).
    work: u64,
}

#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
    /// Off when only the joined result is wanted: nothing is recorded.
    on: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if !self.on {
            return;
        }
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        if !self.on {
            return;
        }
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        if !self.on {
            return;
        }
        for ch in s.chars() {
            self.add_char(ch);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        if !self.on {
            return;
        }
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

impl<E: Env + ?Sized> Word<'_, E> {
    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().next())
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if let Some(c) = c {
            self.pos += c.len_utf8();
        }
        c
    }

    /// Read until `stop` (consumed) or the end; returns the joined result and the split words.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        // every nested `${...}` recurses through here: bound it so no input exhausts the stack
        if self.depth > MAX_NESTING {
            return err(format!(
                "substitutions nested deeper than {MAX_NESTING} {NESTING_MESSAGE}"
            ));
        }
        self.depth += 1;
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words {
            on: self.split,
            ..Words::default()
        };
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let special = match ch {
                '$' => Some(self.dollar()?),
                '<' => Some(self.possible_heredoc()),
                '\'' if !self.lex.skip_quotes => Some(self.single_quote()?),
                '"' if !self.lex.skip_quotes => Some(self.double_quote()?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                check_size(result.len())?;
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
                continue;
            }
            self.next();
            if ch == self.lex.escape {
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                match self.next() {
                    None => break,
                    Some(c) => {
                        words.add_raw_char(c);
                        result.push(c);
                    }
                }
            } else {
                words.add_char(ch);
                result.push(ch);
            }
        }
        if let Some(stop) = stop {
            return err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching single-quote",
                    );
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching double-quote",
                    );
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                    check_size(result.len())?;
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_string)
    }

    fn dollar(&mut self) -> Result<String, ShellError> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return err("syntax error: missing '}'"),
            Some('{' | '}' | ':') => return err("syntax error: bad substitution"),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut ch) = self.next() else {
            return err("syntax error: missing '}'");
        };
        let mut chs = ch.to_string();
        match ch {
            '}' => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                if null_is_unset {
                    match self.next() {
                        Some(c) => {
                            ch = c;
                            chs.push(c);
                        }
                        None => return err("syntax error: missing '}'"),
                    }
                }
                if !matches!(ch, '+' | '-' | '?' | '#' | '%') {
                    return err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let raw = ch == '#' || ch == '%';
                if null_is_unset && raw {
                    return err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return err("syntax error: missing '}'");
                        }
                        return Err(e);
                    }
                };
                let value = self.lookup(&name);
                if self.lex.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let empty = value.as_deref().is_none_or(str::is_empty);
                let unset = value.is_none() || (null_is_unset && empty);
                match ch {
                    '-' => Ok(if unset {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if unset { String::new() } else { word }),
                    '?' => {
                        if value.is_none() {
                            let msg = if word.is_empty() {
                                "is not allowed to be unset".to_string()
                            } else {
                                word
                            };
                            return err(format!("{name}: {msg}"));
                        }
                        if null_is_unset && empty {
                            let msg = if word.is_empty() {
                                "is not allowed to be empty".to_string()
                            } else {
                                word
                            };
                            return err(format!("{name}: {msg}"));
                        }
                        Ok(value.unwrap_or_default())
                    }
                    _ => {
                        let value = value.unwrap_or_default();
                        let (greedy, pattern) = match word.strip_prefix(ch) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let pat = Pattern::parse(&pattern)?;
                        if ch == '#' {
                            trim_prefix(&pat, &value, greedy, &mut self.work)
                        } else {
                            trim_suffix(&pat, &value, greedy, &mut self.work)
                        }
                    }
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = match self.stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return err("syntax error: missing '/' in ${}");
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return err("syntax error: missing '}'");
                        }
                        return Err(e);
                    }
                };
                let value = self.lookup(&name);
                if self.lex.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let pat = Pattern::parse(&pattern)?;
                replace(
                    &pat,
                    &value.unwrap_or_default(),
                    &replacement,
                    all,
                    &mut self.work,
                )
            }
            _ => {
                chs = ch.to_string();
                err(format!("unsupported modifier ({chs}) in substitution"))
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }
}

/// A shell glob pattern: `*`, `?`, and `\` escaping `*`, `?` or `\`.
#[derive(Debug)]
struct Pattern(Vec<Tok>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Lit(char),
    Any,
    Star,
}

impl Pattern {
    fn parse(p: &str) -> Result<Pattern, ShellError> {
        let chars: Vec<char> = p.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => out.push(Tok::Star),
                '?' => out.push(Tok::Any),
                '\\' => match chars.get(i + 1) {
                    Some('}' | '/') => {}
                    Some(c @ ('*' | '?' | '\\')) => {
                        out.push(Tok::Lit(*c));
                        i += 1;
                    }
                    Some(c) => {
                        return err(format!(
                            "invalid pattern ({p}) in substitution: invalid escape '\\{c}'"
                        ));
                    }
                    None => {
                        return err(format!(
                            "invalid pattern ({p}) in substitution: invalid escape '\\'"
                        ));
                    }
                },
                c => out.push(Tok::Lit(c)),
            }
            i += 1;
        }
        Ok(Pattern(out))
    }

    /// Every `n` such that the pattern matches exactly `text[..n]`, ascending. `work` is the
    /// number of steps left: matching is O(text * pattern), so an expansion is bounded.
    fn match_ends(&self, text: &[char], work: &mut u64) -> Result<Vec<usize>, ShellError> {
        // positions reachable after consuming k tokens
        let mut states: Vec<usize> = vec![0];
        for tok in &self.0 {
            let steps = if *tok == Tok::Star {
                text.len() + 1
            } else {
                states.len()
            };
            *work = work.checked_sub(steps as u64).ok_or_else(|| {
                ShellError("pattern substitution too expensive on this value".to_string())
            })?;
            let mut next: Vec<usize> = Vec::new();
            match tok {
                Tok::Star => {
                    if let Some(&min) = states.iter().min() {
                        next.extend(min..=text.len());
                    }
                }
                Tok::Any => next.extend(states.iter().filter(|&&p| p < text.len()).map(|p| p + 1)),
                Tok::Lit(c) => next.extend(
                    states
                        .iter()
                        .filter(|&&p| p < text.len() && text[p] == *c)
                        .map(|p| p + 1),
                ),
            }
            next.sort_unstable();
            next.dedup();
            states = next;
            if states.is_empty() {
                break;
            }
        }
        Ok(states)
    }

    fn starts_with_star(&self) -> bool {
        self.0.first() == Some(&Tok::Star)
    }

    fn reversed(&self) -> Pattern {
        Pattern(self.0.iter().rev().copied().collect())
    }
}

fn trim_prefix(
    pat: &Pattern,
    value: &str,
    greedy: bool,
    work: &mut u64,
) -> Result<String, ShellError> {
    let chars: Vec<char> = value.chars().collect();
    let ends = pat.match_ends(&chars, work)?;
    let end = if greedy { ends.last() } else { ends.first() };
    Ok(match end {
        Some(&n) => chars[n..].iter().collect(),
        None => value.to_string(),
    })
}

fn trim_suffix(
    pat: &Pattern,
    value: &str,
    greedy: bool,
    work: &mut u64,
) -> Result<String, ShellError> {
    let rev: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&pat.reversed(), &rev, greedy, work)?;
    Ok(trimmed.chars().rev().collect())
}

fn replace(
    pat: &Pattern,
    value: &str,
    replacement: &str,
    all: bool,
    work: &mut u64,
) -> Result<String, ShellError> {
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut done = false;
    while i <= chars.len() {
        if !done {
            // the leftmost, longest match starting at i (BuildKit uses a greedy regex)
            match pat.match_ends(&chars[i..], work)?.last() {
                Some(&n) => {
                    out.push_str(replacement);
                    check_size(out.len())?;
                    if !all {
                        done = true;
                    }
                    if n > 0 {
                        i += n;
                        continue;
                    }
                    // an empty match: copy one character and move on
                }
                // a leading `*` matching nowhere from here matches nowhere further on
                None if pat.starts_with_star() => done = true,
                None => {}
            }
        }
        if i < chars.len() {
            out.push(chars[i]);
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [
            ("A", "a"),
            ("E", ""),
            ("S", "x y"),
            ("P", "/usr/local/bin/app.tar.gz"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn ex(word: &str) -> Result<String, ShellError> {
        Lexer::new('\\').expand(word, &env())
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(ex("$A").unwrap(), "a");
        assert_eq!(ex("${A}b").unwrap(), "ab");
        assert_eq!(ex("$Ab").unwrap(), "");
        assert_eq!(ex("$UNSET-x").unwrap(), "-x");
        assert_eq!(ex("a$").unwrap(), "a$");
        assert_eq!(ex("$1x").unwrap(), "x");
    }

    #[test]
    fn modifiers() {
        assert_eq!(ex("${A:-w}").unwrap(), "a");
        assert_eq!(ex("${E:-w}").unwrap(), "w");
        assert_eq!(ex("${E-w}").unwrap(), "");
        assert_eq!(ex("${U-w}").unwrap(), "w");
        assert_eq!(ex("${A:+w}").unwrap(), "w");
        assert_eq!(ex("${E:+w}").unwrap(), "");
        assert_eq!(ex("${E+w}").unwrap(), "w");
        assert_eq!(ex("${U+w}").unwrap(), "");
        assert_eq!(ex("${U:-$A}").unwrap(), "a");
        assert_eq!(ex("${A:?oops}").unwrap(), "a");
        assert_eq!(
            ex("${U:?must be set}").unwrap_err().0,
            "failed to process \"${U:?must be set}\": U: must be set"
        );
        assert_eq!(
            ex("${E:?}").unwrap_err().0,
            "failed to process \"${E:?}\": E: is not allowed to be empty"
        );
        assert_eq!(ex("${E?}").unwrap(), "");
        assert_eq!(
            ex("${U?}").unwrap_err().0,
            "failed to process \"${U?}\": U: is not allowed to be unset"
        );
    }

    #[test]
    fn pattern_modifiers() {
        assert_eq!(ex("${P#*/}").unwrap(), "usr/local/bin/app.tar.gz");
        assert_eq!(ex("${P##*/}").unwrap(), "app.tar.gz");
        assert_eq!(ex("${P%.*}").unwrap(), "/usr/local/bin/app.tar");
        assert_eq!(ex("${P%%.*}").unwrap(), "/usr/local/bin/app");
        assert_eq!(ex("${P/local/opt}").unwrap(), "/usr/opt/bin/app.tar.gz");
        assert_eq!(ex("${P//\\//_}").unwrap(), "_usr_local_bin_app.tar.gz");
        assert_eq!(ex("${A/z/y}").unwrap(), "a");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(ex("'$A'").unwrap(), "$A");
        assert_eq!(ex("\"$A\"").unwrap(), "a");
        assert_eq!(ex("\\$A").unwrap(), "$A");
        assert_eq!(ex("\"\\$A\"").unwrap(), "$A");
        assert_eq!(ex("\"a\\b\"").unwrap(), "a\\b");
        assert_eq!(ex("a\\ b").unwrap(), "a b");
        assert_eq!(ex("\"it's\"").unwrap(), "it's");
        assert!(ex("'open").unwrap_err().0.contains("matching single-quote"));
        assert!(
            ex("\"open")
                .unwrap_err()
                .0
                .contains("matching double-quote")
        );
        assert!(ex("${A").unwrap_err().0.contains("missing '}'"));
        assert!(ex("${}").unwrap_err().0.contains("bad substitution"));
        assert!(
            ex("${A:x}")
                .unwrap_err()
                .0
                .contains("unsupported modifier (:x)")
        );
    }

    #[test]
    fn backtick_escape() {
        let lex = Lexer::new('`');
        assert_eq!(lex.expand("C:\\dir `$A", &env()).unwrap(), "C:\\dir $A");
    }

    #[test]
    fn word_splitting() {
        let lex = Lexer::new('\\');
        assert_eq!(
            lex.expand_words("a $S \"q r\" 'x'y", &env()).unwrap(),
            vec!["a", "x", "y", "q r", "xy"]
        );
        assert_eq!(
            lex.expand_words("  ", &env()).unwrap(),
            Vec::<String>::new()
        );
    }
}
