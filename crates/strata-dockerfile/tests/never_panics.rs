//! The parser and resolver never panic, whatever the input: every input gives Ok or Err.

use std::collections::BTreeMap;

use proptest::prelude::*;

fn run(text: &str) {
    if let Ok(df) = strata_dockerfile::parse(text) {
        let _ = df.resolve(&BTreeMap::new(), None);
        let _ = df.resolve(&BTreeMap::new(), Some("x"));
        let _ = df.dependencies(&BTreeMap::new());
        for i in &df.instructions {
            let _ = i.command.to_string();
            if let strata_dockerfile::Command::Run(r) = &i.command {
                let _ = r.script();
            }
        }
    }
}

/// Fragments that exercise every path: keywords, flags, quotes, heredocs, expansions.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FROM ".to_string()),
        Just("RUN ".to_string()),
        Just("COPY ".to_string()),
        Just("ADD ".to_string()),
        Just("ENV ".to_string()),
        Just("ARG ".to_string()),
        Just("LABEL ".to_string()),
        Just("ONBUILD ".to_string()),
        Just("HEALTHCHECK ".to_string()),
        Just("EXPOSE ".to_string()),
        Just("SHELL ".to_string()),
        Just("CMD ".to_string()),
        Just(" AS ".to_string()),
        Just("--from=".to_string()),
        Just("--mount=type=cache,target=".to_string()),
        Just("--interval=".to_string()),
        Just("<<EOF".to_string()),
        Just("<<-'EOF'".to_string()),
        Just("EOF".to_string()),
        Just("\n".to_string()),
        Just("\t".to_string()),
        Just("\\\n".to_string()),
        Just("`\n".to_string()),
        Just("# escape=`\n".to_string()),
        Just("${A:-".to_string()),
        Just("${A%%".to_string()),
        Just("${A//".to_string()),
        Just("}".to_string()),
        Just("$".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("[\"a\", ".to_string()),
        Just("]".to_string()),
        Just("=".to_string()),
        Just("0".to_string()),
        "[a-z0-9./:_-]{1,8}",
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        run(&text);
    }

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        run(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn dockerfile_like(parts in proptest::collection::vec(fragment(), 0..60)) {
        let text = format!("FROM a\n{}", parts.concat());
        run(&text);
        run(&parts.concat());
    }
}
