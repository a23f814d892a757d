//! Version ordering per ecosystem: each as its own tool orders versions.
//!
//! - [`deb`]: dpkg's `verrevcmp` over epoch, upstream version and revision (`~` sorts before
//!   everything, even the end of the string; letters sort before non-letters).
//! - [`rpm`]: `rpmvercmp` (alphanumeric segments, `~` before everything, `^` after the end but before
//!   any further segment) and rpm's EVR comparison.
//! - [`apk`]: apk-tools' order (numbers, a letter, `_suffix` ranks, `-rN`).
//!
//! All three are total on any input (hostile strings compare without panicking); agreement with
//! the real tools is tested on generated pairs (`tests/version_agreement.rs`).

pub mod apk;
pub mod deb;
pub mod rpm;

use std::cmp::Ordering;

/// Compare two runs of ASCII digits as numbers of any length.
pub(crate) fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| {
        let zeros = s.iter().take_while(|&&c| c == b'0').count();
        s[zeros..].to_vec()
    };
    let (a, b) = (strip(a), strip(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}
