//! `$VAR` and `${VAR}` expansion exactly as Go's `os.Expand`, which container-structure-test uses
//! for command lines, paths and environment values. Unknown names expand to nothing.

use std::collections::BTreeMap;

/// Expand `s` against `env`.
pub fn expand(s: &str, env: &BTreeMap<String, String>) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0; // start of the pending literal
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&s[i..j]);
            let (name, width) = shell_name(&s[j + 1..]);
            if name.is_empty() && width > 0 {
                // Bad syntax: the characters are eaten.
            } else if name.is_empty() {
                out.push('$');
            } else {
                out.push_str(env.get(name).map(String::as_str).unwrap_or(""));
            }
            j += width;
            i = j + 1;
        }
        j += 1;
    }
    out.push_str(&s[i.min(s.len())..]);
    out
}

fn is_special(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

/// The name after a `$` and the bytes it takes (Go's `getShellName`).
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        for (k, &c) in b.iter().enumerate().skip(1) {
            if c == b'}' {
                if k == 1 {
                    return ("", 2);
                }
                return (&s[1..k], k + 1);
            }
        }
        return ("", 1);
    }
    if is_special(b[0]) {
        return (&s[0..1], 1);
    }
    let end = b
        .iter()
        .position(|&c| !(c == b'_' || c.is_ascii_alphanumeric()))
        .unwrap_or(b.len());
    (&s[..end], end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_go() {
        let env: BTreeMap<String, String> = [("HOME", "/root"), ("A_1", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cases = [
            ("$HOME/bin", "/root/bin"),
            ("${HOME}x", "/rootx"),
            ("$A_1-$NOPE.", "x-."),
            ("cost: 5$", "cost: 5$"),
            ("a $ b", "a $ b"),
            ("${}z", "z"),
            ("${unclosed", "unclosed"),
            ("$$", ""),
            ("${1}", ""),
            ("plain", "plain"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &env), want, "{input}");
        }
    }
}
