//! apk version order (apk-tools' `apk_version_compare`): a version is read as tokens — numbers
//! separated by `.`, one letter, `_suffix` with an optional number (`alpha`, `beta`, `pre`, `rc` sort
//! before the bare version; `cvs`, `svn`, `git`, `hg`, `p` after), then `-rN`. Tokens are compared
//! in turn; a component after a `.` with leading zeros compares by the count of zeros first (a
//! fraction: `1.01` < `1.1`); where one version ends, the longer one is greater unless what follows
//! is a pre-release suffix.

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

const PRE: [&[u8]; 4] = [b"alpha", b"beta", b"pre", b"rc"];
const POST: [&[u8]; 5] = [b"cvs", b"svn", b"git", b"hg", b"p"];

fn next_token(kind: &mut Token, s: &mut &[u8]) {
    let mut next = Token::Invalid;
    match s.first() {
        None | Some(0) => next = Token::End,
        Some(c) if matches!(kind, Token::Digit | Token::DigitOrZero) && c.is_ascii_lowercase() => {
            next = Token::Letter
        }
        Some(c) if *kind == Token::Letter && c.is_ascii_digit() => next = Token::Digit,
        Some(c) if *kind == Token::Suffix && c.is_ascii_digit() => next = Token::SuffixNo,
        Some(c) => {
            match c {
                b'.' => next = Token::DigitOrZero,
                b'_' => next = Token::Suffix,
                b'-' if s.get(1) == Some(&b'r') => {
                    next = Token::RevisionNo;
                    *s = &s[1..];
                }
                _ => {}
            }
            *s = &s[1..];
        }
    }
    if next < *kind
        && !((next == Token::DigitOrZero && *kind == Token::Digit)
            || (next == Token::Suffix && *kind == Token::SuffixNo)
            || (next == Token::Digit && *kind == Token::Letter))
    {
        next = Token::Invalid;
    }
    *kind = next;
}

fn get_token(kind: &mut Token, s: &mut &[u8]) -> i64 {
    if s.is_empty() {
        *kind = Token::End;
        return 0;
    }
    let value: i64;
    let mut i = 0;
    let mut forced = None;
    let digits = |s: &[u8], i: &mut usize| {
        let mut v: i64 = 0;
        while *i < s.len() && s[*i].is_ascii_digit() {
            v = v.saturating_mul(10).saturating_add(i64::from(s[*i] - b'0'));
            *i += 1;
        }
        v
    };
    match *kind {
        Token::DigitOrZero
            if s[0] == b'0' && {
                let zeros = s.iter().take_while(|&&c| c == b'0').count();
                s.get(zeros).is_some_and(u8::is_ascii_digit)
            } =>
        {
            while s[i] == b'0' {
                i += 1;
            }
            forced = Some(Token::Digit);
            value = -(i as i64);
        }
        Token::DigitOrZero | Token::Digit | Token::SuffixNo | Token::RevisionNo => {
            value = digits(s, &mut i);
        }
        Token::Letter => {
            value = i64::from(s[0]);
            i = 1;
        }
        Token::Suffix => {
            if let Some(k) = PRE.iter().position(|p| s.starts_with(p)) {
                i = PRE[k].len();
                value = k as i64 - PRE.len() as i64;
            } else if let Some(k) = POST.iter().position(|p| s.starts_with(p)) {
                i = POST[k].len();
                value = k as i64;
            } else {
                *kind = Token::Invalid;
                return -1;
            }
        }
        Token::Invalid | Token::End => {
            *kind = Token::Invalid;
            return -1;
        }
    }
    *s = &s[i..];
    if s.is_empty() {
        *kind = Token::End;
    } else if let Some(k) = forced {
        *kind = k;
    } else {
        next_token(kind, s);
    }
    value
}

/// Compare two apk versions (`apk version -t A B`).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let (mut at, mut bt) = (Token::Digit, Token::Digit);
    let (mut av, mut bv) = (0i64, 0i64);
    while at == bt && at != Token::End && at != Token::Invalid && av == bv {
        av = get_token(&mut at, &mut a);
        bv = get_token(&mut bt, &mut b);
    }
    if av != bv {
        return av.cmp(&bv);
    }
    if at == bt {
        return Ordering::Equal;
    }
    let mut t = at;
    if at == Token::Suffix && get_token(&mut t, &mut a) < 0 {
        return Ordering::Less;
    }
    let mut t = bt;
    if bt == Token::Suffix && get_token(&mut t, &mut b) < 0 {
        return Ordering::Greater;
    }
    bt.cmp(&at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apk_examples() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0-r1", Less),
            ("1.0_rc1", "1.0", Less),
            ("1.0_p1", "1.0", Greater),
            ("1.0_alpha", "1.0_beta", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0b", Less),
            ("1.01", "1.1", Less),
            ("3.0.11-r0", "3.0.11-r2", Less),
            ("1.2.3", "1.2", Greater),
            ("1.10", "1.9", Greater),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
        }
    }
}
