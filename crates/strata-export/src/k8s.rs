//! What every engine's Kubernetes-style documents share: object-name and label-value rules, and
//! a health check as container probes.

/// A DNS-1123 label, what most object names must be: lower-case letters, digits and `-`, not at
/// either end, at most 63 characters. (A Service name, a DNS-1035 label, must also start with a
/// letter: the caller checks that where it names Services.)
pub(crate) fn is_dns1123_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A label value: at most 63 characters, alphanumerics with `-_.` inside, alphanumeric at both
/// ends (or empty). Other owner or tier names travel as annotations only.
pub(crate) fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .last()
            .is_none_or(|c| c.is_ascii_alphanumeric())
}

/// A health check as probes: the builder `strata deploy`'s kubernetes target applies with, so
/// an export and a deploy give the cluster the same probes.
pub(crate) use strata_deploy::kubernetes::probes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_label_values() {
        assert!(is_dns1123_label("httpd-php"));
        assert!(is_dns1123_label("1web"));
        for bad in ["", "Httpd", "a_b", "-a", "a-", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
        assert!(is_label_value("operations"));
        assert!(is_label_value("tier_1.a"));
        assert!(is_label_value(""));
        for bad in ["-a", "a.", "a b", &"a".repeat(64)] {
            assert!(!is_label_value(bad), "{bad}");
        }
    }
}
